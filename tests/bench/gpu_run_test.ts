// bench/gpu/run.sh, the one-shot script of a GPU session (a lent machine gives minutes, so it must not break
// between sessions): its CPU dry run goes through every step — build, checks, layouts, timings, profile — and ends
// with the table; --bundle leaves only run.log and results.tgz in OUT (the device tool returns at most 8 files).
import assert from "node:assert/strict";
import { join } from "node:path";
import { tempDir } from "../helpers.ts";

const ROOT = new URL("../../", import.meta.url).pathname;

Deno.test({
  name:
    "bench/gpu/run.sh --dry-run --bundle: every step runs on the CPU backend, the table, two files in OUT",
  fn: async () => {
    using dir = tempDir("mt-gpu-run-");
    const out = join(dir.path, "out");
    const r = await new Deno.Command("bash", {
      args: ["bench/gpu/run.sh", "--dry-run", "--bundle"],
      cwd: ROOT,
      env: { OUT: out, WORK: join(dir.path, "work"), ACCUM: "2" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(r.stdout) + new TextDecoder().decode(r.stderr);
    assert.equal(r.code, 0, text);
    const table = text.slice(text.lastIndexOf("== meditron CUDA: summary =="));
    assert.match(table, /correctness vs CPU backend\s+(\d+)\/\1 pass/, table);
    assert.match(table, /parallel layouts vs 1 rank \(one GPU, host\)\s+10\/10 pass/, table);
    assert.match(table, /train step, meditron CUDA\s+\d+ tok\/s, L 16 B 4 T 64:/, table);
    assert.match(
      table,
      /train step accumulated, meditron CUDA\s+\d+ tok\/s, L 16 B 4 T 64 x 2 micro-batches/,
      table,
    );
    assert.match(table, /decode batch 64\s+\d+ tok\/s/, table);
    assert.doesNotMatch(text, /\(skipped /, "no step may be skipped for time on a dry run");
    const files = [...Deno.readDirSync(out)].map((e) => e.name).sort();
    assert.deepEqual(files, ["results.tgz", "run.log"]);
    const tar = await new Deno.Command("tar", { args: ["-tzf", join(out, "results.tgz")], stdout: "piped" })
      .output();
    const members = new TextDecoder().decode(tar.stdout);
    for (const f of ["check.json", "layouts.json", "train.json", "decode.json", "run.log"]) {
      assert.match(members, new RegExp(`\\./${f.replace(".", "\\.")}\\n`), members);
    }
  },
});
