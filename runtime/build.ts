/**
 * Builds libmeditron from the bundled C++ sources with CMake. Used by `deno task build` (into
 * `runtime/build/`) and by the library loader when no built library is found (into a per-version cache dir,
 * atomically: build in a temp dir, then rename).
 *
 * @module
 */
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/** The directory holding CMakeLists.txt, include/ and src/. */
export const SOURCE_DIR: string = dirname(fileURLToPath(import.meta.url));
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
export async function cudaDefines(): Promise<Record<string, string>> {
  const out = await new Deno.Command("bash", {
    args: [join(SOURCE_DIR, "cuda_toolchain.sh")],
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
 * build directory: CMake refuses such a cache) and says why; `undefined` (nothing removed) otherwise.
 *
 * @example
 * ```ts
 * import { clearStaleBuild } from "./build.ts";
 * const why = await clearStaleBuild("/tmp/no-such-build"); // undefined: nothing to clear
 * ```
 */
export async function clearStaleBuild(buildDir: string): Promise<string | undefined> {
  let cache: string;
  try {
    cache = await Deno.readTextFile(join(buildDir, "CMakeCache.txt"));
  } catch {
    return undefined;
  }
  const entry = (key: string) => cache.match(new RegExp(`^${key}:INTERNAL=(.*)$`, "m"))?.[1];
  const checks: [string, string | undefined, string][] = [
    ["build directory", entry("CMAKE_CACHEFILE_DIR"), buildDir],
    ["source directory", entry("CMAKE_HOME_DIRECTORY"), SOURCE_DIR],
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
  const stale = await clearStaleBuild(opts.buildDir);
  if (stale) console.error(`build: ${stale}: configuring afresh`);
  const defines = Object.entries({ CMAKE_BUILD_TYPE: "Release", ...opts.defines }).map(([k, v]) =>
    `-D${k}=${v}`
  );
  await run("cmake", ["-S", SOURCE_DIR, "-B", opts.buildDir, ...defines], verbose);
  await run("cmake", ["--build", opts.buildDir, "-j", String(navigator.hardwareConcurrency || 2)], verbose);
  return join(opts.buildDir, LIB_NAME);
}
