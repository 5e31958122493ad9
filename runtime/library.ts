/**
 * Opening libmeditron and turning native statuses into exceptions. Lookup order (DESIGN.md §2):
 * `MEDITRON_LIB` → `runtime/build/libmeditron.so` next to this module → a build from the bundled sources into
 * a per-version cache directory (`$XDG_CACHE_HOME/meditron` or `~/.cache/meditron`); a package imported from a
 * non-`file://` URL (JSR) first downloads its sources into that directory's `sources/`.
 *
 * @module
 */
import { join } from "node:path";
import { ABI_VERSION, type Device, deviceCode, SYMBOLS, type Symbols } from "./ffi.ts";
import { buildNative, fetchSources, LIB_NAME, SOURCE_DIR } from "./build.ts";

/** Package version; the cache directory of a first-import build is keyed by it. */
export const RUNTIME_VERSION = "0.1.0";

/** An error reported by the native library (the message is the library's own). */
export class MeditronError extends Error {
  /** Native status code (1 invalid argument, 2 invalid handle, 3 out of memory, 4 not found, 5 internal). */
  readonly code: number;
  /** Wraps a native failure. */
  constructor(code: number, message: string) {
    super(message);
    this.name = "MeditronError";
    this.code = code;
  }
}

let lib: Deno.DynamicLibrary<typeof SYMBOLS> | undefined;

function exists(path: string): boolean {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
}

function cacheDir(): string {
  const base = Deno.env.get("XDG_CACHE_HOME") ?? join(Deno.env.get("HOME") ?? "/tmp", ".cache");
  return join(base, "meditron", RUNTIME_VERSION);
}

/** Finds or builds the library file following the lookup order; returns its absolute path. */
export async function locateLibrary(): Promise<string> {
  const fromEnv = Deno.env.get("MEDITRON_LIB");
  if (fromEnv) {
    if (!exists(fromEnv)) throw new Error(`MEDITRON_LIB points to '${fromEnv}', which does not exist`);
    return fromEnv;
  }
  const local = new URL(`./build/${LIB_NAME}`, import.meta.url);
  if (local.protocol === "file:" && exists(local.pathname)) return local.pathname;
  const cached = join(cacheDir(), LIB_NAME);
  if (exists(cached)) return cached;
  console.error(
    `meditron: building the native library into ${cacheDir()} (first use; takes about a minute)…`,
  );
  const sourceDir = SOURCE_DIR || await fetchSources(join(cacheDir(), "sources"));
  const tmp = await Deno.makeTempDir({ prefix: "meditron-build-" });
  try {
    await buildNative({ buildDir: tmp, sourceDir });
    await Deno.mkdir(cacheDir(), { recursive: true });
    const staged = `${cached}.tmp-${Deno.pid}`;
    await Deno.copyFile(join(tmp, LIB_NAME), staged);
    await Deno.rename(staged, cached);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
  return cached;
}

/** The opened library, loading it on first use. */
export async function native(): Promise<Symbols> {
  if (lib) return lib.symbols;
  const path = await locateLibrary();
  const opened = Deno.dlopen(path, SYMBOLS);
  const abi = opened.symbols.mt_abi_version();
  if (abi !== ABI_VERSION) {
    opened.close();
    throw new Error(`${path} speaks ABI ${abi}, this binding ${ABI_VERSION}: rebuild with 'deno task build'`);
  }
  lib = opened;
  return lib.symbols;
}

/** The library if already loaded (synchronous paths, e.g. dispose); throws otherwise. */
export function loaded(): Symbols {
  if (!lib) throw new Error("libmeditron is not loaded: call native() first");
  return lib.symbols;
}

function cString(ptr: Deno.PointerValue): string {
  return ptr === null ? "" : Deno.UnsafePointerView.getCString(ptr);
}

/** Throws {@linkcode MeditronError} with the thread's last message when `status` is not 0. */
export function check(status: number): void {
  if (status !== 0) throw new MeditronError(status, cString(loaded().mt_last_error()));
}

/** Like {@linkcode check} for calls on a model handle (reads the handle's message: safe for nonblocking calls). */
export function checkModel(status: number, handle: Deno.PointerValue): void {
  if (status !== 0) throw new MeditronError(status, cString(loaded().mt_model_error(handle)));
}

/** The library's build description (backend, BLAS, threads, flags). */
export async function buildInfo(): Promise<string> {
  return cString((await native()).mt_build_info());
}

/**
 * Throws a {@linkcode MeditronError} saying why `device` cannot run here (a library built without CUDA, or the
 * CUDA runtime's reason for finding no GPU): the library's own check, the one model creation makes, so that a
 * command can refuse before it writes anything. "cpu" always passes.
 *
 * @example
 * ```ts
 * import { checkDevice } from "./library.ts";
 * await checkDevice("cpu");
 * ```
 */
export async function checkDevice(device: Device): Promise<void> {
  check((await native()).mt_device_check(deviceCode(device)));
}

/** This process's place in an MPI launch. */
export interface DistInfo {
  /** World rank (0 outside a launch). */
  rank: number;
  /** World size (1 outside a launch). */
  size: number;
  /** Whether the library was built with MPI. */
  haveMpi: boolean;
}

/**
 * Initialises MPI when this process is one rank of an MPI launch (idempotent) and returns its rank and size.
 *
 * @example
 * ```ts
 * import { distInit } from "./library.ts";
 * const { rank, size } = await distInit();
 * ```
 */
export async function distInit(): Promise<DistInfo> {
  const lib = await native();
  const rank = new Int32Array(1), size = new Int32Array(1);
  check(lib.mt_dist_init(rank, size));
  return { rank: rank[0], size: size[0], haveMpi: lib.mt_dist_have_mpi() === 1 };
}

/** Barrier over all ranks (no-op outside a launch). */
export async function distBarrier(): Promise<void> {
  check(await (await native()).mt_dist_barrier());
}

/**
 * A barrier over all ranks that also agrees on success: resolves to true when every rank passed `ok`, on every
 * rank (outside a launch: `ok`).
 *
 * @example
 * ```ts ignore
 * import { distAllOk } from "./library.ts";
 * let ok = true;
 * try { await writeMyShard(); } catch { ok = false; }
 * if (!(await distAllOk(ok))) throw new Error("a rank failed to write its shard");
 * ```
 */
export async function distAllOk(ok: boolean): Promise<boolean> {
  const out = new Int32Array(1);
  check(await (await native()).mt_dist_all_ok(ok ? 1 : 0, out));
  return out[0] === 1;
}

/** MPI_Finalize; call once before a multi-rank process exits (no-op outside a launch). */
export function distFinalize(): void {
  if (lib) check(lib.symbols.mt_dist_finalize());
}

/** Takes the whole MPI job down with `code` (MPI_Abort); exits the process outside a launch. */
export function distAbort(code: number): never {
  if (lib) lib.symbols.mt_dist_abort(code);
  Deno.exit(code);
}

/** Sets the number of threads of the kernels and BLAS (≤ 0: all cores). */
export async function setNumThreads(n: number): Promise<void> {
  check((await native()).mt_set_num_threads(n));
}
