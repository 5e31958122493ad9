// runtime/build.ts: a build directory copied or moved with its checkout is configured afresh, not refused.
import assert from "node:assert/strict";
import { join } from "node:path";
import { clearStaleBuild, SOURCE_DIR } from "../../runtime/build.ts";
import { tempDir } from "../helpers.ts";

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
