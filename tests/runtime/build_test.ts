// runtime/build.ts: a build directory copied or moved with its checkout is configured afresh, not refused; the
// manifest of sources fetched by a package imported over http(s) lists exactly the files of runtime/.
import assert from "node:assert/strict";
import { join, relative } from "node:path";
import { clearStaleBuild, fetchSources, SOURCE_DIR, SOURCE_FILES } from "../../runtime/build.ts";
import { tempDir } from "../helpers.ts";
import { serveFiles } from "../package/static_server.ts";

function writeCache(buildDir: string, cacheDir: string, home: string): void {
  Deno.mkdirSync(buildDir, { recursive: true });
  Deno.writeTextFileSync(
    join(buildDir, "CMakeCache.txt"),
    `CMAKE_BUILD_TYPE:STRING=Release\nCMAKE_CACHEFILE_DIR:INTERNAL=${cacheDir}\n` +
      `CMAKE_HOME_DIRECTORY:INTERNAL=${home}\n`,
  );
  Deno.writeTextFileSync(join(buildDir, "libmeditron.so"), "old");
}

Deno.test("clearStaleBuild: a cache made for another build or source directory is removed, with the reason", async () => {
  using dir = tempDir();
  const build = join(dir.path, "build");
  writeCache(build, "/elsewhere/runtime/build", SOURCE_DIR);
  const why = await clearStaleBuild(build);
  assert.match(
    why ?? "",
    /CMakeCache\.txt was made for the build directory \/elsewhere\/runtime\/build, not /,
  );
  assert.equal(await Deno.stat(build).then(() => true, () => false), false);

  writeCache(build, build, "/elsewhere/runtime");
  assert.match((await clearStaleBuild(build)) ?? "", /source directory \/elsewhere\/runtime/);
  assert.equal(await Deno.stat(build).then(() => true, () => false), false);
});

Deno.test("clearStaleBuild: a cache of this very place, or no cache, is left alone", async () => {
  using dir = tempDir();
  const build = join(dir.path, "build");
  assert.equal(await clearStaleBuild(build), undefined);
  writeCache(build, build, SOURCE_DIR);
  assert.equal(await clearStaleBuild(build), undefined);
  assert.equal(Deno.readTextFileSync(join(build, "libmeditron.so")), "old");
});

/** Files under `dir`, recursively, relative to SOURCE_DIR. */
function filesUnder(dir: string): string[] {
  return [...Deno.readDirSync(dir)].flatMap((e) =>
    e.isDirectory ? filesUnder(join(dir, e.name)) : [relative(SOURCE_DIR, join(dir, e.name))]
  );
}

Deno.test("SOURCE_FILES lists exactly CMakeLists.txt, cuda_toolchain.sh, include/ and src/ of runtime/", () => {
  const present = [
    "CMakeLists.txt",
    "cuda_toolchain.sh",
    ...filesUnder(join(SOURCE_DIR, "include")),
    ...filesUnder(join(SOURCE_DIR, "src")),
  ];
  assert.deepEqual([...SOURCE_FILES].sort(), present.sort(), "update SOURCE_FILES in runtime/build.ts");
});

Deno.test("fetchSources: downloads the sources over http into place; a missing file fails naming its URL", async () => {
  await using server = serveFiles(SOURCE_DIR);
  using dir = tempDir();
  const dest = join(dir.path, "cache", "sources");
  assert.equal(await fetchSources(dest, new URL(server.url)), dest);
  for (const f of SOURCE_FILES) {
    assert.deepEqual(Deno.readFileSync(join(dest, f)), Deno.readFileSync(join(SOURCE_DIR, f)), f);
  }
  assert.deepEqual([...Deno.readDirSync(join(dir.path, "cache"))].map((e) => e.name), ["sources"]);

  // A server that lacks one of the files (served from the copy just made, less that file).
  Deno.removeSync(join(dest, "src/cuda/cuda.cmake"));
  await using partial = serveFiles(dest);
  const other = join(dir.path, "other");
  await assert.rejects(
    fetchSources(join(other, "sources"), new URL(partial.url)),
    new Error(`cannot fetch ${partial.url}src/cuda/cuda.cmake: HTTP 404 Not Found`),
  );
  assert.equal(await Deno.stat(other).then(() => true, () => false), false, "nothing written");
});
