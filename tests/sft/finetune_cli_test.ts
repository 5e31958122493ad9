// The finetune command's checks and run control: inputs are checked before anything is written, --resume
// continues with the run's own settings, SIGTERM stops a run with a checkpoint that --resume continues.
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { main as finetune } from "../../cli/finetune.ts";
import { INTERRUPT_MESSAGE } from "../../cli/signals.ts";
import { readCheckpointMeta, resolveCheckpoint } from "../../models/checkpoint.ts";
import { tempDir } from "../helpers.ts";
import { saveInitModel } from "./fixtures.ts";

const FINETUNE = new URL("../../cli/finetune.ts", import.meta.url).pathname;

// Conversations of varied lengths: two answers are cut at --seq 64, the others fill 32-token batches (at the
// default seed, steps 1-4 of 2 examples have 64, 32, 64 and 32 tokens: a resume at step 2 must not keep 32).
const ROWS = Array.from({ length: 6 }, (_, i) => ({
  messages: [
    { role: "user", content: `Question ${i}: which drug?` },
    {
      role: "assistant",
      content: `Answer ${i}: ${"aspirin, once a day. ".repeat(1 + 8 * Number(i % 3 === 2))}`,
    },
  ],
}));

/** A test's temp dir, with an init model (`pre`) and SFT data (`sft.jsonl`). */
interface Setup {
  dir: string;
  data: string;
  /** finetune's arguments for a run `name` from `pre` on the data, small settings, then `more`. */
  args: (name: string, ...more: string[]) => string[];
}

/** A test with a fresh {@linkcode Setup}, removed afterwards. */
function sftTest(name: string, fn: (s: Setup) => Promise<void>): void {
  Deno.test({
    name,
    sanitizeResources: false,
    fn: async () => {
      using tmp = tempDir("sft-cli-");
      const dir = tmp.path, data = join(dir, "sft.jsonl");
      await saveInitModel(join(dir, "pre"));
      await Deno.writeTextFile(data, ROWS.map((r) => JSON.stringify(r)).join("\n") + "\n");
      const args = (name: string, ...more: string[]) => [
        ...["--init", join(dir, "pre"), "--data", data, "--name", name, "--out", dir],
        ...["--micro-batch", "2", "--grad-accum", "1", "--lr", "1e-3", "--seq", "64", ...more],
      ];
      await fn({ dir, data, args });
    },
  });
}

const metrics = (runDir: string) =>
  Deno.readTextFileSync(join(runDir, "metrics.jsonl")).trim().split("\n").map((l) => {
    const { step, loss, lr, grad_norm } = JSON.parse(l);
    return { step, loss, lr, grad_norm };
  });

const quietly = async <T>(f: () => Promise<T>): Promise<T> => {
  const log = console.log, error = console.error;
  console.log = console.error = () => {};
  try {
    return await f();
  } finally {
    console.log = log;
    console.error = error;
  }
};

sftTest(
  "finetune checks its inputs before writing anything, with one line naming the file or flag",
  async ({ dir, data, args }) => {
    const fails = async (name: string, more: string[], error: RegExp, argv = args(name, ...more)) => {
      await assert.rejects(quietly(() => finetune(argv)), (e: Error) => {
        assert.match(e.message, error);
        assert.ok(!e.message.includes("\n"), `one line: ${e.message}`);
        return true;
      });
      assert.ok(!existsSync(join(dir, name)), `${name}: nothing is written`);
    };
    const missing = join(dir, "missing.jsonl");
    await fails("nodata", [], /missing\.jsonl: cannot read SFT data/, [...args("nodata"), "--data", missing]);
    const badRow = join(dir, "bad.jsonl");
    await Deno.writeTextFile(badRow, `${JSON.stringify(ROWS[0])}\n{"messages": [\n`);
    await fails("badrow", ["--data", badRow], /bad\.jsonl:2: invalid JSON/);
    // Every assistant reply starts after token 8: the error says so and names the --seq that keeps one.
    await fails(
      "short",
      ["--seq", "8"],
      /train\.seq 8 \(--seq\) cuts off every assistant reply.*--seq \d+ or more/,
    );
    const badYaml = join(dir, "bad.yaml");
    await Deno.writeTextFile(badYaml, "train:\n  lr: [1,\n");
    await fails("badyaml", ["--config", badYaml], /bad\.yaml: invalid YAML/);
    await fails("noyaml", ["--config", join(dir, "none.yaml")], /none\.yaml: cannot read config/);
    // A corrupt initial checkpoint: the conversion fails and leaves no partial run behind.
    const badInit = join(dir, "bad-pre");
    assert.ok(
      (await new Deno.Command("cp", { args: ["-r", join(dir, "pre"), badInit] }).output()).success,
    );
    const shard = join(await resolveCheckpoint(badInit), "model-tp00-pp00.safetensors");
    const bytes = await Deno.readFile(shard);
    bytes[bytes.length - 8] ^= 0xff;
    await Deno.writeFile(shard, bytes);
    await fails("corrupt", ["--init", badInit], /sha256 mismatch — the shard is corrupt \(use --no-verify/);
    await quietly(() => finetune(args("unverified", "--init", badInit, "--no-verify", "--steps", "1")));
    assert.equal((await readCheckpointMeta(await resolveCheckpoint(join(dir, "unverified")))).iteration, 1);
    await fails("both", ["--resume", join(dir, "pre")], /--init and --resume are exclusive/);

    // An existing run: refused without --overwrite (naming --resume), and --overwrite with bad data keeps it.
    await quietly(() => finetune(args("run", "--steps", "1")));
    const run = join(dir, "run");
    await assert.rejects(
      quietly(() => finetune(args("run", "--steps", "1"))),
      new RegExp(`${run} already has checkpoints: pass --resume ${run} to continue, --overwrite`),
    );
    await assert.rejects(
      quietly(() => finetune([...args("run", "--steps", "1", "--overwrite"), "--data", missing])),
    );
    assert.equal((await readCheckpointMeta(await resolveCheckpoint(run))).iteration, 1);
    assert.ok(existsSync(data));
  },
);

sftTest(
  "finetune --resume continues with the run's own settings: the uninterrupted run's steps bit for bit",
  async ({ dir, args }) => {
    // Settings far from configs/sft.yaml's (lr 2e-5, micro-batch 4 x 16, no BOS), a checkpoint at step 2.
    const full = join(dir, "full");
    await quietly(() =>
      finetune(args("full", "--steps", "4", "--bos", "--set", "train.save_every=2", "--min-lr", "1e-4"))
    );
    // The step-2 checkpoint continued in another run directory, with no settings on the command line.
    const resumed = join(dir, "resumed");
    await quietly(() =>
      finetune([
        "--resume",
        join(full, "checkpoints", "iter_0000002"),
        "--name",
        "resumed",
        "--out",
        dir,
      ])
    );
    assert.deepEqual(metrics(resumed), metrics(full).slice(2));
    // A checkpoint of an earlier version (no longest seq, no bos/prompt weight/warmup ratio recorded; its
    // train.seq is the last batch's 32): seq and those settings come from configs/sft.yaml, with a notice,
    // and the flags the run used reproduce it.
    const old = join(dir, "old");
    await Deno.mkdir(old);
    for (const e of Deno.readDirSync(join(full, "checkpoints", "iter_0000002"))) {
      await Deno.copyFile(join(full, "checkpoints", "iter_0000002", e.name), join(old, e.name));
    }
    const raw = JSON.parse(Deno.readTextFileSync(join(old, "meta.json")));
    const { source, seed, examples, sft } = raw.data;
    raw.data = { source, seed, examples, epochs: sft.epochs, pack: sft.pack };
    assert.equal(raw.config.train.seq, 32, "the fixture's step-2 batch is 32 tokens long");
    Deno.writeTextFileSync(join(old, "meta.json"), JSON.stringify(raw));
    const said: string[] = [];
    const error = console.error, log = console.log;
    console.error = (s: string) => said.push(String(s));
    console.log = () => {};
    try {
      await finetune(["--resume", old, "--name", "from-old", "--out", dir, "--seq", "64", "--bos"]);
    } finally {
      console.error = error;
      console.log = log;
    }
    assert.ok(
      said.some((l) => /meta\.json predates recorded finetuning settings: train\.seq 128, bos false/.test(l)),
      said.join("\n"),
    );
    assert.deepEqual(metrics(join(dir, "from-old")), metrics(full).slice(2));
    const meta = await readCheckpointMeta(await resolveCheckpoint(resumed));
    assert.equal(meta.iteration, 4);
    assert.equal(meta.consumed_samples, 8);
    // --steps extends the run; the other settings stay the run's.
    await quietly(() => finetune(["--resume", resumed, "--steps", "5", "--out", dir]));
    const extended = await readCheckpointMeta(await resolveCheckpoint(resumed));
    assert.equal(extended.iteration, 5);
    assert.deepEqual(
      [extended.config.train.lr, extended.config.train.min_lr, extended.config.train.micro_batch],
      [1e-3, 1e-4, 2],
    );
    assert.equal((extended.data as { sft: { bos: boolean } }).sft.bos, true);
    await assert.rejects(
      quietly(() => finetune(["--resume", resumed, "--out", dir])),
      /is at step 5 of 5: pass --steps N/,
    );
  },
);

sftTest(
  "finetune: SIGTERM finishes the step, writes a checkpoint and exits 0; --resume continues from it",
  async ({ dir, args }) => {
    const run = join(dir, "ft");
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", FINETUNE, ...args("ft", "--steps", "100000")],
      stdout: "null",
      stderr: "piped",
    }).spawn();
    const stderr = new Response(child.stderr).text();
    // Once a step is logged, training (and its signal listeners) has started.
    const deadline = Date.now() + 120_000;
    while (!existsSync(join(run, "metrics.jsonl")) || !Deno.readTextFileSync(join(run, "metrics.jsonl"))) {
      assert.ok(Date.now() < deadline, "no step within 120 s");
      await new Promise((r) => setTimeout(r, 50));
    }
    child.kill("SIGTERM");
    const status = await child.status, log = await stderr;
    assert.equal(status.code, 0, log);
    assert.ok(log.includes(INTERRUPT_MESSAGE), log);
    const stopped = await readCheckpointMeta(await resolveCheckpoint(run));
    assert.ok(stopped.iteration >= 1 && stopped.iteration < 100000);
    assert.equal(metrics(run).length, stopped.iteration);
    const steps = stopped.iteration + 1;
    await quietly(() => finetune(["--resume", run, "--steps", String(steps), "--out", dir]));
    assert.equal((await readCheckpointMeta(await resolveCheckpoint(run))).iteration, steps);
    assert.deepEqual(metrics(run).map((m) => m.step), Array.from({ length: steps }, (_, i) => i + 1));
  },
);
