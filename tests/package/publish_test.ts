// The JSR package: `deno publish --dry-run` (no slow types, the native sources carried, no tests or runs) and
// `deno doc --lint` on every entry point of deno.json.
import assert from "node:assert/strict";

const ROOT = new URL("../../", import.meta.url).pathname;
const config = JSON.parse(await Deno.readTextFile(`${ROOT}deno.json`)) as {
  name: string;
  exports: Record<string, string>;
};

async function deno(args: string[]): Promise<{ code: number; out: string }> {
  const r = await new Deno.Command(Deno.execPath(), {
    args,
    cwd: ROOT,
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: r.code, out: dec.decode(r.stdout) + dec.decode(r.stderr) };
}

Deno.test("deno publish --dry-run passes and carries the TS and the native sources, nothing else", async () => {
  const r = await deno(["publish", "--dry-run", "--allow-dirty"]);
  assert.equal(r.code, 0, r.out);
  assert.match(r.out, /Dry run complete/);
  const prefix = `file://${ROOT}`;
  const rel = r.out.split("\n").map((l) => l.trim().split(" ")[0])
    .filter((f) => f.startsWith(prefix)).map((f) => f.slice(prefix.length));
  const has = (p: string) => rel.some((f) => f === p);
  for (
    const needed of [
      "mod.ts",
      "runtime/CMakeLists.txt",
      "runtime/include/meditron.h",
      "runtime/build.ts",
      "runtime/cuda_toolchain.sh",
      "runtime/src/cuda/cuda.cmake",
      "runtime/library.ts",
      "models/plot.ts",
      "data/tokenizer_worker.ts",
      "eval/prompts/instructions.json",
      ...Object.values(config.exports).map((p) => p.replace(/^\.\//, "")),
    ]
  ) assert.ok(has(needed), `the package carries ${needed}`);
  const cpp = rel.filter((f) => /^runtime\/src\/.*\.(cpp|hpp|cu|cuh)$/.test(f));
  const onDisk: string[] = [];
  const walk = (dir: string): void => {
    for (const e of Deno.readDirSync(`${ROOT}${dir}`)) {
      if (e.isDirectory) walk(`${dir}/${e.name}`);
      else if (/\.(cpp|hpp|cu|cuh)$/.test(e.name)) onDisk.push(`${dir}/${e.name}`);
    }
  };
  walk("runtime/src"); // the CPU sources and src/cuda/
  assert.equal(cpp.length, onDisk.length, `every native source is carried: ${cpp.join(", ")}`);
  for (const f of rel) {
    assert.ok(
      !/^(tests|runs|node_modules|bench|examples)\/|^runtime\/build(-[^/]*)?\//.test(f),
      `${f} must not be published`,
    );
  }
});

Deno.test("deno doc --lint is clean on every entry point", async () => {
  const entries = Object.values(config.exports);
  assert.ok(entries.length >= 5, "the entry points of deno.json");
  const r = await deno(["doc", "--lint", ...entries]);
  assert.equal(r.code, 0, r.out);
  assert.ok(!/error\[/.test(r.out), r.out);
});
