// A checkpoint on a full disk fails with a clear error, leaves the previous checkpoint intact and loadable,
// and train.on_save_error decides whether training stops or goes on. Needs root to mount a tiny tmpfs.
import assert from "node:assert/strict";
import { join } from "node:path";
import { NativeModel } from "../../runtime/mod.ts";
import { modelDims, optimSettings } from "../../models/config.ts";
import { train } from "../../models/trainer.ts";
import { loadCheckpoint, resolveCheckpoint } from "../../models/checkpoint.ts";
import { tempDir } from "../helpers.ts";
import { SYNTHETIC_DATA, tinyRunConfig } from "./tiny_run.ts";

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
  return tinyRunConfig({ steps: "4", save_every: "1", on_save_error: onSaveError });
}

const data = SYNTHETIC_DATA;

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
