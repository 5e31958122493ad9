// A checkpoint on a full disk fails with a clear error, leaves the previous checkpoint intact and loadable,
// and train.on_save_error decides whether training stops or goes on. Needs root to mount a tiny tmpfs.
import assert from "node:assert/strict";
import { join } from "node:path";
import { NativeModel } from "../../runtime/mod.ts";
import {
  modelDims,
  optimSettings,
  overrideConfig,
  presetConfig,
  validateConfig,
} from "../../models/config.ts";
import { type BatchSource, train } from "../../models/trainer.ts";
import { loadCheckpoint, resolveCheckpoint } from "../../models/checkpoint.ts";
import { tempDir } from "../helpers.ts";

async function mountTiny(dir: string, size: string): Promise<boolean> {
  const out = await new Deno.Command("mount", {
    args: ["-t", "tmpfs", "-o", `size=${size}`, "tmpfs", dir],
    stderr: "null",
  })
    .output().catch(() => undefined);
  return out?.success ?? false;
}

const canMount = await (async () => {
  using probe = tempDir();
  const ok = await mountTiny(probe.path, "64k");
  if (ok) await new Deno.Command("umount", { args: [probe.path] }).output();
  return ok;
})();

function config(onSaveError: string) {
  const cfg = presetConfig("tiny");
  const set: Record<string, string> = {
    "model.dim": "32",
    "model.n_layers": "1",
    "model.ffn_dim": "64",
    "model.vocab_size": "300",
    "train.seq": "16",
    "train.micro_batch": "2",
    "train.grad_accum": "1",
    "train.warmup_steps": "1",
    "train.steps": "4",
    "train.eval_every": "0",
    "train.save_every": "1",
    "train.on_save_error": onSaveError,
  };
  for (const [k, v] of Object.entries(set)) overrideConfig(cfg, k, v);
  validateConfig(cfg, "test");
  return cfg;
}

const data: BatchSource = {
  train: (consumed, rows) => {
    const tokens = Int32Array.from({ length: rows * 16 }, (_, i) => (i * 7 + consumed) % 300);
    return {
      tokens,
      targets: tokens.map((t) => (t + 1) % 300),
      lossMask: new Float32Array(rows * 16).fill(1),
    };
  },
  valid: () => [],
  state: {},
};

for (const mode of ["stop", "continue"]) {
  Deno.test({
    name: `disk full during a checkpoint (on_save_error: ${mode})`,
    ignore: !canMount,
    fn: async () => {
      using dir = tempDir();
      // One checkpoint of this model is ~0.35 MB: the first fits, the second does not.
      assert.ok(await mountTiny(dir.path, "600k"));
      try {
        const cfg = config(mode);
        using model = await NativeModel.create(modelDims(cfg.model), optimSettings(cfg.train), {
          seed: 1,
          initStd: 0.02,
        });
        const runDir = join(dir.path, "run");
        const notices: string[] = [];
        const run = train({ model, config: cfg, runDir, data, onNotice: (s) => notices.push(s) });
        if (mode === "stop") {
          await assert.rejects(
            () => run,
            /checkpoint of iteration 2 in .* failed \(.*\); the previous checkpoint is intact/,
          );
        } else {
          const r = await run;
          assert.equal(r.history.length, 4, "training went on");
          assert.ok(notices.some((n) => /training continues/.test(n)), notices.join("\n"));
        }
        const latest = await resolveCheckpoint(runDir);
        assert.match(latest, /iter_0000001$/);
        assert.deepEqual([...Deno.readDirSync(join(runDir, "checkpoints"))].map((e) => e.name).sort(), [
          "iter_0000001",
          "latest",
        ]);
        using fresh = await NativeModel.create(modelDims(cfg.model), optimSettings(cfg.train), {
          seed: 9,
          initStd: 0.02,
        });
        const meta = await loadCheckpoint(latest, fresh);
        assert.equal(meta.iteration, 1);
      } finally {
        await new Deno.Command("umount", { args: [dir.path] }).output();
      }
    },
  });
}
