// Importing the package as a user does: from a copy of exactly the published files, outside the repository,
// through a file:// URL, with bare specifiers rewritten to npm: as `deno publish` does, an empty cache and no
// MEDITRON_LIB. The first import builds libmeditron from the bundled sources into the per-version cache
// (announced on stderr, renamed into place); the second finds it there.
import assert from "node:assert/strict";
import { dirname, join } from "node:path";
import { RUNTIME_VERSION } from "../../runtime/library.ts";
import { tempDir } from "../helpers.ts";

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
  path?: string,
): Promise<{ code: number; stdout: string; stderr: string }> {
  const env: Record<string, string> = { ...Deno.env.toObject(), XDG_CACHE_HOME: cache, NO_COLOR: "1" };
  if (path !== undefined) env.PATH = path;
  delete env.MEDITRON_LIB;
  const r = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--no-config", "--node-modules-dir=none", "main.ts"],
    cwd: dir,
    env,
    clearEnv: true,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: r.code, stdout: dec.decode(r.stdout), stderr: dec.decode(r.stderr) };
}

/** A copy of the published files outside the repository and a consumer script importing it by file:// URL. */
async function preparePackage(pkg: string, consumer: string): Promise<void> {
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
  const entry = new URL(`file://${pkg}/mod.ts`).href;
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

Deno.test({
  name: "first import from a file:// copy builds the native library into an empty cache, once",
  sanitizeResources: false,
  fn: async () => {
    using pkg = tempDir("meditron-pkg-");
    using consumer = tempDir("meditron-consumer-");
    using cache = tempDir("meditron-cache-");
    await preparePackage(pkg.path, consumer.path);
    const first = await runConsumer(consumer.path, cache.path);
    assert.equal(first.code, 0, first.stderr);
    const libDir = join(cache.path, "meditron", RUNTIME_VERSION);
    assert.match(first.stderr, new RegExp(`building the native library into ${libDir}`));
    assert.match(first.stdout, /^info: .+/m);
    assert.match(first.stdout, /^params: [1-9]\d+$/m);
    assert.deepEqual(
      [...Deno.readDirSync(libDir)].map((e) => e.name),
      ["libmeditron.so"],
      "renamed into place",
    );
    const built = Deno.statSync(join(libDir, "libmeditron.so")).mtime;

    const second = await runConsumer(consumer.path, cache.path);
    assert.equal(second.code, 0, second.stderr);
    assert.ok(!second.stderr.includes("building"), `no second build: ${second.stderr}`);
    assert.deepEqual(Deno.statSync(join(libDir, "libmeditron.so")).mtime, built);
  },
});

Deno.test("first import without CMake: one error naming the missing tool and its Debian package", async () => {
  using pkg = tempDir("meditron-pkg-");
  using consumer = tempDir("meditron-consumer-");
  using cache = tempDir("meditron-cache-");
  using emptyPath = tempDir("meditron-path-");
  await preparePackage(pkg.path, consumer.path);
  const r = await runConsumer(consumer.path, cache.path, emptyPath.path);
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
});
