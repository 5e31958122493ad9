/**
 * Builds libmeditron from the bundled C++ sources with CMake. Used by `deno task build` (into
 * `runtime/build/`) and by the library loader when no built library is found (into a per-version cache dir,
 * atomically: build in a temp dir, then rename). A package imported from JSR or another non-`file://` URL has
 * no sources on disk: the loader first downloads them with {@linkcode fetchSources}.
 *
 * @module
 */
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/** The URL of the directory holding CMakeLists.txt, include/ and src/ (`file://` in a checkout). */
export const SOURCE_URL: URL = new URL("./", import.meta.url);
/**
 * That directory on local disk; the empty string when this module was imported from a non-`file://` URL
 * (then pass {@linkcode BuildOptions.sourceDir}, e.g. a directory filled by {@linkcode fetchSources}).
 */
export const SOURCE_DIR: string = SOURCE_URL.protocol === "file:"
  ? dirname(fileURLToPath(import.meta.url))
  : "";
/**
 * The files of the build, relative to {@linkcode SOURCE_URL}: what {@linkcode fetchSources} downloads
 * (tests/runtime/build_test.ts checks the list against the files in runtime/).
 */
export const SOURCE_FILES: readonly string[] = [
  "CMakeLists.txt",
  "cuda_toolchain.sh",
  "include/meditron.h",
  "src/api.cpp",
  "src/comm.cpp",
  "src/comm.hpp",
  "src/common.hpp",
  "src/cuda/attention.cu",
  "src/cuda/attention_mma.cu",
  "src/cuda/backend.cu",
  "src/cuda/common.cuh",
  "src/cuda/cuda.cmake",
  "src/cuda/emulator.cpp",
  "src/cuda/emulator.hpp",
  "src/cuda/emulator_nccl.cpp",
  "src/cuda/kernels.cu",
  "src/cuda/kernels.cuh",
  "src/cuda/nccl_comm.cu",
  "src/cuda/nccl_comm.cuh",
  "src/cuda_stub.cpp",
  "src/device.hpp",
  "src/kernels.cpp",
  "src/kernels.hpp",
  "src/model.cpp",
  "src/model.hpp",
  "src/optim.cpp",
  "src/optim.hpp",
];
/** File name of the shared library. */
export const LIB_NAME = "libmeditron.so";

/** Options of {@linkcode buildNative}. */
export interface BuildOptions {
  /** CMake build directory (kept between builds: incremental). */
  buildDir: string;
  /** Extra `-D` definitions, e.g. `{ MEDITRON_SANITIZE: "ON" }`. */
  defines?: Record<string, string>;
  /** Print CMake's output (default: only on failure). */
  verbose?: boolean;
  /** Directory of CMakeLists.txt (default {@linkcode SOURCE_DIR}). */
  sourceDir?: string;
}

/** `dir`, or a clear error when the sources are not on local disk. */
function localSources(dir: string): string {
  if (dir) return dir;
  throw new Error(
    `the C++ sources are at ${SOURCE_URL.href}, not on local disk: download them with fetchSources()`,
  );
}

/** The body of `url`; a failure throws one error naming it. */
async function download(url: URL): Promise<Uint8Array> {
  let res: Response;
  try {
    res = await fetch(url);
  } catch (e) {
    throw new Error(`cannot fetch ${url.href}: ${e instanceof Error ? e.message : e}`);
  }
  if (!res.ok) {
    await res.body?.cancel();
    throw new Error(`cannot fetch ${url.href}: HTTP ${res.status} ${res.statusText}`.trim());
  }
  return new Uint8Array(await res.arrayBuffer());
}

/**
 * Downloads {@linkcode SOURCE_FILES} from `from` into the directory `dest` unless it already exists, and returns
 * `dest`. Everything is downloaded before anything is written; the files then go into a temp dir beside `dest`,
 * renamed into place, so that `dest` is complete or absent. A failed download throws one error naming its URL.
 *
 * @example
 * ```ts ignore
 * import { buildNative, fetchSources } from "./build.ts";
 * const sourceDir = await fetchSources("/tmp/meditron-sources");
 * const lib = await buildNative({ buildDir: "/tmp/meditron-build", sourceDir });
 * ```
 */
export async function fetchSources(dest: string, from: URL = SOURCE_URL): Promise<string> {
  const done = () => Deno.stat(dest).then(() => true, () => false);
  if (await done()) return dest;
  const bodies = await Promise.all(SOURCE_FILES.map((f) => download(new URL(f, from))));
  await Deno.mkdir(dirname(dest), { recursive: true });
  const tmp = await Deno.makeTempDir({ dir: dirname(dest), prefix: ".sources-" });
  try {
    for (const [i, f] of SOURCE_FILES.entries()) {
      await Deno.mkdir(dirname(join(tmp, f)), { recursive: true });
      await Deno.writeFile(join(tmp, f), bodies[i]);
    }
    await Deno.rename(tmp, dest);
  } catch (e) {
    await Deno.remove(tmp, { recursive: true });
    // Another process renamed its copy into place first: use it.
    if (!(await done())) throw e;
  }
  return dest;
}

/** A dependency the build could not find, with the Debian package that provides it. */
export class MissingDependencyError extends Error {
  /** Debian/Ubuntu packages to install. */
  readonly packages: string[];
  /** Creates the error from CMake's `MEDITRON-MISSING:` line. */
  constructor(message: string, packages: string[]) {
    super(message);
    this.name = "MissingDependencyError";
    this.packages = packages;
  }
}

async function run(cmd: string, args: string[], verbose: boolean): Promise<string> {
  let out: Deno.CommandOutput;
  try {
    out = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      const pkg = cmd === "cmake" ? "cmake" : "g++";
      throw new MissingDependencyError(`'${cmd}' is not installed (Debian: apt-get install ${pkg})`, [pkg]);
    }
    throw e;
  }
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  if (verbose) console.error(text);
  if (!out.success) {
    const missing = text.match(/MEDITRON-MISSING: ([^\n]*)/);
    if (missing) {
      const pkgs = [...missing[1].matchAll(/apt-get install ([\w+.-]+)/g)].map((m) => m[1]);
      throw new MissingDependencyError(missing[1].trim(), pkgs);
    }
    throw new Error(`${cmd} ${args.join(" ")} failed:\n${text.trim().split("\n").slice(-25).join("\n")}`);
  }
  return text;
}

/**
 * The CMake definitions of a CUDA build (`MEDITRON_CUDA=ON` plus the toolchain's locations): runs
 * `runtime/cuda_toolchain.sh`, which finds the machine's nvcc, cuBLAS and NCCL or installs the CUDA 13 PyPI
 * wheels into a cache directory (compile and link only, no GPU needed).
 *
 * @example
 * ```ts
 * import { buildNative, cudaDefines } from "./build.ts";
 * const lib = await buildNative({ buildDir: "/tmp/meditron-cuda", defines: await cudaDefines() });
 * ```
 */
export async function cudaDefines(sourceDir: string = SOURCE_DIR): Promise<Record<string, string>> {
  const out = await new Deno.Command("bash", {
    args: [join(localSources(sourceDir), "cuda_toolchain.sh")],
    stdout: "piped",
    stderr: "inherit",
  }).output();
  if (!out.success) throw new Error(`runtime/cuda_toolchain.sh failed (exit ${out.code})`);
  const defines: Record<string, string> = { MEDITRON_CUDA: "ON" };
  for (const line of new TextDecoder().decode(out.stdout).split("\n")) {
    const m = line.match(/^-D([A-Z_]+)=(.*)$/);
    if (m) defines[m[1]] = m[2];
  }
  return defines;
}

/**
 * Removes `buildDir` when its CMake cache belongs to another place (a checkout moved or copied together with its
 * build directory: CMake refuses such a cache, or another `sourceDir`) and says why; `undefined` (nothing
 * removed) otherwise.
 *
 * @example
 * ```ts
 * import { clearStaleBuild } from "./build.ts";
 * const why = await clearStaleBuild("/tmp/no-such-build"); // undefined: nothing to clear
 * ```
 */
export async function clearStaleBuild(
  buildDir: string,
  sourceDir: string = SOURCE_DIR,
): Promise<string | undefined> {
  let cache: string;
  try {
    cache = await Deno.readTextFile(join(buildDir, "CMakeCache.txt"));
  } catch {
    return undefined;
  }
  const entry = (key: string) => cache.match(new RegExp(`^${key}:INTERNAL=(.*)$`, "m"))?.[1];
  const checks: [string, string | undefined, string][] = [
    ["build directory", entry("CMAKE_CACHEFILE_DIR"), buildDir],
    ["source directory", entry("CMAKE_HOME_DIRECTORY"), sourceDir],
  ];
  for (const [what, recorded, actual] of checks) {
    if (recorded === undefined) continue;
    const [a, b] = await Promise.all([recorded, actual].map((p) => Deno.realPath(p).catch(() => p)));
    if (a !== b) {
      await Deno.remove(buildDir, { recursive: true });
      return `${join(buildDir, "CMakeCache.txt")} was made for the ${what} ${recorded}, not ${actual}`;
    }
  }
  return undefined;
}

/**
 * Configures (first time) and builds the library; returns the path of `libmeditron.so`.
 *
 * @example
 * ```ts
 * import { buildNative } from "./build.ts";
 * const lib = await buildNative({ buildDir: "/tmp/meditron-build" });
 * console.log(lib); // /tmp/meditron-build/libmeditron.so
 * ```
 */
export async function buildNative(opts: BuildOptions): Promise<string> {
  const verbose = opts.verbose ?? false;
  const sourceDir = localSources(opts.sourceDir ?? SOURCE_DIR);
  const stale = await clearStaleBuild(opts.buildDir, sourceDir);
  if (stale) console.error(`build: ${stale}: configuring afresh`);
  const defines = Object.entries({ CMAKE_BUILD_TYPE: "Release", ...opts.defines }).map(([k, v]) =>
    `-D${k}=${v}`
  );
  await run("cmake", ["-S", sourceDir, "-B", opts.buildDir, ...defines], verbose);
  await run("cmake", ["--build", opts.buildDir, "-j", String(navigator.hardwareConcurrency || 2)], verbose);
  return join(opts.buildDir, LIB_NAME);
}
