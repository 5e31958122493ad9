// Finetuning under mpirun: TP=2 and DP=2 give the loss curve of the 1-rank run (variable-length batches).
import assert from "node:assert/strict";
import { join } from "node:path";
import { assertClose } from "../helpers.ts";
import { runRanks } from "../../parallel/launcher.ts";
import { saveInitModel } from "./fixtures.ts";

const FINETUNE = new URL("../../cli/finetune.ts", import.meta.url).pathname;

async function losses(runDir: string): Promise<number[]> {
  return (await Deno.readTextFile(join(runDir, "metrics.jsonl"))).trim().split("\n").map((l) =>
    JSON.parse(l).loss
  );
}

Deno.test({
  name: "finetune --tp 2 / --dp 2 under mpirun equal the 1-rank run",
  sanitizeResources: false,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "sft-par-" });
    try {
      await saveInitModel(join(dir, "pre"), {
        model: { n_layers: 2, n_heads: 4, n_kv_heads: 2 },
      });
      const data = join(dir, "sft.jsonl");
      const rows = Array.from({ length: 8 }, (_, i) => ({
        messages: [
          { role: "user", content: `Question ${i}: ${"why ".repeat(1 + 3 * i)}?` },
          { role: "assistant", content: `Answer ${i} ${"because ".repeat(1 + (i % 3))}.` },
        ],
      }));
      await Deno.writeTextFile(data, rows.map((r) => JSON.stringify(r)).join("\n"));
      const common = [
        "--init",
        join(dir, "pre"),
        "--data",
        data,
        "--out",
        dir,
        "--steps",
        "3",
        "--lr",
        "1e-3",
        "--grad-accum",
        "1",
        "--threads",
        "1",
      ];
      const run = async (name: string, extra: string[]) => {
        const o = await new Deno.Command(Deno.execPath(), {
          args: ["run", "-A", FINETUNE, ...common, "--name", name, ...extra],
          stdout: "piped",
          stderr: "piped",
        }).output();
        assert.equal(o.code, 0, new TextDecoder().decode(o.stderr));
        return await losses(join(dir, name));
      };
      const one = await run("one", ["--micro-batch", "2"]);
      assert.equal(one.length, 3);
      const tp = await run("tp2", ["--micro-batch", "2", "--tp", "2"]);
      const dp = await run("dp2", ["--micro-batch", "1", "--dp", "2"]);
      for (let i = 0; i < 3; i++) {
        assertClose(tp[i], one[i], 1e-4, `tp2 step ${i + 1}`);
        assertClose(dp[i], one[i], 1e-4, `dp2 step ${i + 1}`);
      }
      // Started by mpirun directly (as srun would): world rank 0 writes the initial checkpoint while the
      // other rank waits, and the run is the one the command's own launch gives.
      const underMpirun = (name: string, extra: string[]) =>
        runRanks(
          [Deno.execPath(), "run", "-A", FINETUNE, ...common, "--name", name, "--dp", "2", ...extra],
          2,
        );
      const direct = await underMpirun("direct", ["--micro-batch", "1"]);
      assert.ok(direct.success, new TextDecoder().decode(direct.stderr));
      assert.deepEqual(await losses(join(dir, "direct")), dp);
      // Rank 0 failing while it prepares takes the job down (MPI_Abort); the waiting rank does not hang.
      const failed = await underMpirun("nodata", ["--data", "missing.jsonl"]);
      assert.equal(failed.success, false);
      assert.match(new TextDecoder().decode(failed.stderr), /missing\.jsonl: cannot read SFT data/);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "finetune --resume continues a run exactly (same losses as the uninterrupted run)",
  sanitizeResources: false,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "sft-resume-" });
    try {
      await saveInitModel(join(dir, "pre"), { seed: 4 });
      const data = join(dir, "sft.jsonl");
      await Deno.writeTextFile(
        data,
        Array.from(
          { length: 5 },
          (_, i) => JSON.stringify({ prompt: `Q${i} ${"x ".repeat(i * 4)}`, gold: `A${i}` }),
        )
          .join("\n"),
      );
      const common = [
        "--data",
        data,
        "--out",
        dir,
        "--steps",
        "4",
        "--lr",
        "1e-3",
        "--micro-batch",
        "2",
        "--grad-accum",
        "1",
        "--threads",
        "1",
      ];
      const run = async (args: string[]) => {
        const o = await new Deno.Command(Deno.execPath(), {
          args: ["run", "-A", FINETUNE, ...common, ...args],
          stdout: "piped",
          stderr: "piped",
        }).output();
        assert.equal(o.code, 0, new TextDecoder().decode(o.stderr));
      };
      await run(["--init", join(dir, "pre"), "--name", "a", "--set", "train.save_every=2"]);
      await run(["--resume", join(dir, "a", "checkpoints", "iter_0000002"), "--name", "b"]);
      const a = await losses(join(dir, "a")), b = await losses(join(dir, "b"));
      assert.equal(a.length, 4);
      assert.deepEqual(b, a.slice(2));
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
