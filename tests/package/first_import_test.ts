// Importing the package as a user does: from a copy of exactly the published files, outside the repository,
// with bare specifiers rewritten to npm: as `deno publish` does, an empty cache and no MEDITRON_LIB. Served
// over http:// (as JSR serves it), a pure-TS import needs no native library; the first native call downloads
// the C++ sources and builds libmeditron into the per-version cache (announced on stderr, renamed into place);
// later imports, over http:// or through a file:// URL, find it there.
import assert from "node:assert/strict";
import { dirname, join } from "node:path";
import { SOURCE_FILES } from "../../runtime/build.ts";
import { RUNTIME_VERSION } from "../../runtime/library.ts";
import { tempDir } from "../helpers.ts";
import { serveFiles } from "./static_server.ts";

const ROOT = new URL("../../", import.meta.url).pathname;

/** The files `deno publish` would upload, relative to the repository root. */
async function publishedFiles(): Promise<string[]> {
  const r = await new Deno.Command(Deno.execPath(), {
    args: ["publish", "--dry-run", "--allow-dirty", "--no-check"],
    cwd: ROOT,
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const out = new TextDecoder().decode(r.stdout) + new TextDecoder().decode(r.stderr);
  assert.equal(r.code, 0, out);
  const prefix = `file://${ROOT}`;
  return out.split("\n").map((l) => l.trim().split(" ")[0]).filter((f) => f.startsWith(prefix))
    .map((f) => f.slice(prefix.length));
}

/** Rewrites bare specifiers of the import map to their npm: targets, as JSR does at publish time. */
function rewriteBare(source: string, imports: Record<string, string>): string {
  return source.replace(/((?:from|import)\s*\(?\s*)"([^".][^"]*)"/g, (all, head: string, spec: string) => {
    for (const [key, target] of Object.entries(imports)) {
      if (spec === key) return `${head}"${target}"`;
      if (spec.startsWith(`${key}/`)) return `${head}"${target}${spec.slice(key.length)}"`;
    }
    return all;
  });
}

async function runConsumer(
  dir: string,
  cache: string,
  extraEnv: Record<string, string> = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  const env: Record<string, string> = {
    ...Deno.env.toObject(),
    XDG_CACHE_HOME: cache,
    NO_COLOR: "1",
    ...extraEnv,
  };
  delete env.MEDITRON_LIB;
  const r = await new Deno.Command(Deno.execPath(), {
    // --reload of the loopback origin: a port an earlier run used must not serve its cached modules.
    args: ["run", "-A", "--no-config", "--node-modules-dir=none", "--reload=http://127.0.0.1", "main.ts"],
    cwd: dir,
    env,
    clearEnv: true,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: r.code, stdout: dec.decode(r.stdout), stderr: dec.decode(r.stderr) };
}

/** A copy of the published files outside the repository. */
async function preparePackage(pkg: string): Promise<void> {
  const files = await publishedFiles();
  assert.ok(!files.some((f) => f.startsWith("runtime/build/")), "no prebuilt library is published");
  const imports = (JSON.parse(await Deno.readTextFile(join(ROOT, "deno.json"))) as {
    imports: Record<string, string>;
  }).imports;
  assert.ok(!pkg.startsWith(ROOT), "the copy lies outside the repository");
  for (const f of files) {
    await Deno.mkdir(join(pkg, dirname(f)), { recursive: true });
    if (f.endsWith(".ts")) {
      await Deno.writeTextFile(join(pkg, f), rewriteBare(await Deno.readTextFile(join(ROOT, f)), imports));
    } else await Deno.copyFile(join(ROOT, f), join(pkg, f));
  }
}

/** The consumer script `main.ts` in `consumer`: imports `entry` and opens the native library and a model. */
async function writeConsumer(consumer: string, entry: string): Promise<void> {
  await Deno.writeTextFile(
    join(consumer, "main.ts"),
    `import { buildInfo, modelDims, NativeModel, optimSettings, presetConfig } from "${entry}";\n` +
      `console.log("info:", await buildInfo());\n` +
      `const cfg = presetConfig("tiny");\n` +
      `using model = await NativeModel.create(modelDims(cfg.model), optimSettings(cfg.train), ` +
      `{ seed: 1, initStd: 0.02 });\n` +
      `console.log("params:", model.numParams);\n`,
  );
}

const exists = (path: string) => Deno.stat(path).then(() => true, () => false);

Deno.test({
  name:
    "first import from an http:// URL: pure TS needs no library; the first native call fetches the sources " +
    "and builds it into an empty cache, once",
  sanitizeResources: false,
  fn: async () => {
    using pkg = tempDir("meditron-pkg-");
    using consumer = tempDir("meditron-consumer-");
    using cache = tempDir("meditron-cache-");
    await preparePackage(pkg.path);
    await using server = serveFiles(pkg.path);
    const libDir = join(cache.path, "meditron", RUNTIME_VERSION);

    await Deno.writeTextFile(
      join(consumer.path, "main.ts"),
      `import { presetConfig, Tokenizer } from "${server.url}mod.ts";\n` +
        `console.log("layers:", presetConfig("tiny").model.n_layers);\n` +
        `console.log("tokens:", Tokenizer.llama2().encode("Aspirin inhibits COX-1.").length);\n`,
    );
    const pure = await runConsumer(consumer.path, cache.path);
    assert.equal(pure.code, 0, pure.stderr);
    assert.match(pure.stdout, /^layers: [1-9]\d*\ntokens: [1-9]\d*$/m);
    assert.ok(!pure.stderr.includes("building"), pure.stderr);
    assert.equal(await exists(libDir), false, "pure TS leaves the cache alone");

    await writeConsumer(consumer.path, `${server.url}mod.ts`);
    const first = await runConsumer(consumer.path, cache.path);
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stderr, new RegExp(`building the native library into ${libDir}`));
    assert.match(first.stdout, /^info: .+/m);
    assert.match(first.stdout, /^params: [1-9]\d+$/m);
    assert.deepEqual(
      [...Deno.readDirSync(libDir)].map((e) => e.name).sort(),
      ["libmeditron.so", "sources"],
      "renamed into place",
    );
    for (const f of SOURCE_FILES) {
      assert.deepEqual(
        Deno.readFileSync(join(libDir, "sources", f)),
        Deno.readFileSync(join(pkg.path, "runtime", f)),
      );
    }
    const built = Deno.statSync(join(libDir, "libmeditron.so")).mtime;

    const second = await runConsumer(consumer.path, cache.path);
    assert.equal(second.code, 0, second.stderr);
    assert.ok(!second.stderr.includes("building"), `no second build: ${second.stderr}`);
    await writeConsumer(consumer.path, new URL(`file://${pkg.path}/mod.ts`).href);
    const local = await runConsumer(consumer.path, cache.path);
    assert.equal(local.code, 0, local.stderr);
    assert.ok(!local.stderr.includes("building"), `a file:// import finds the same cache: ${local.stderr}`);
    assert.deepEqual(Deno.statSync(join(libDir, "libmeditron.so")).mtime, built);
  },
});

Deno.test("first import without CMake: one error naming the missing tool and its Debian package", async () => {
  using pkg = tempDir("meditron-pkg-");
  using consumer = tempDir("meditron-consumer-");
  using cache = tempDir("meditron-cache-");
  using emptyPath = tempDir("meditron-path-");
  using tmp = tempDir("meditron-tmp-");
  await preparePackage(pkg.path);
  await writeConsumer(consumer.path, new URL(`file://${pkg.path}/mod.ts`).href);
  const r = await runConsumer(consumer.path, cache.path, { PATH: emptyPath.path, TMPDIR: tmp.path });
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /building the native library/);
  assert.match(
    r.stderr,
    /MissingDependencyError: 'cmake' is not installed \(Debian: apt-get install cmake\)/,
  );
  const libDir = join(cache.path, "meditron", RUNTIME_VERSION);
  assert.ok(
    !(await Deno.stat(join(libDir, "libmeditron.so")).then(() => true, () => false)),
    "nothing half-built in the cache",
  );
  assert.deepEqual([...Deno.readDirSync(tmp.path)], [], "no build directory left behind");
});
