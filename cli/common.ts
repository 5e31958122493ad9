/**
 * What every CLI entry point shares: one-line errors (stack traces only with `--debug`), usage errors, and
 * path arguments that may name a Hugging Face Hub repository instead (resolved to the local hub cache).
 *
 * @module
 */
import type { Device } from "../runtime/ffi.ts";

import { join } from "node:path";
import {
  HubError,
  modelFiles,
  parseRepoRef,
  type RepoRef,
  type RepoType,
  snapshotDownload,
  type SnapshotOptions,
} from "../data/hub.ts";
import { formatDuration, Progress } from "./progress.ts";

/** A usage mistake: printed with a pointer to `--help`. */
export class UsageError extends Error {
  /** Creates the error. */
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/**
 * The `--device` flag of the commands that load a model: "cpu" (default) or "cuda".
 *
 * @example
 * ```ts
 * import { deviceFlag } from "./common.ts";
 * deviceFlag("cuda"); // "cuda"
 * ```
 */
export function deviceFlag(value: string | undefined): Device {
  if (value === undefined || value === "cpu" || value === "cuda") return value ?? "cpu";
  throw new UsageError(`--device must be cpu or cuda (got ${value})`);
}

/** Hooks of {@linkcode runMain}. */
export interface RunHooks {
  /** Called after the error is printed, before exiting (e.g. MPI_Abort). */
  onError?: () => void;
  /** Called after a successful run (e.g. MPI_Finalize). */
  onExit?: () => void;
}

/**
 * Runs `main(Deno.args)`; on failure prints `error: <message>` (with the stack under `--debug`) and exits 1.
 */
export async function runMain(
  main: (args: string[]) => Promise<void>,
  help: string,
  hooks: RunHooks = {},
): Promise<void> {
  try {
    await main(Deno.args);
    hooks.onExit?.();
  } catch (e) {
    printError(e, help);
    hooks.onError?.();
    Deno.exit(1);
  }
}

/** Prints `error: <message>` (the stack under `--debug`) and, for a usage error, the usage line of `help`. */
function printError(e: unknown, help?: string): void {
  const err = e instanceof Error ? e : new Error(String(e));
  const debug = Deno.args.includes("--debug");
  const code = (err as { code?: unknown }).code; // node's parseArgs: a string; MeditronError: a number
  const usage = e instanceof UsageError || (typeof code === "string" && code.startsWith("ERR_PARSE_ARGS"));
  console.error(`error: ${debug ? err.stack : err.message}`);
  if (usage && help) console.error(`\n${help.split("\n")[0]}\nRun with --help for all options.`);
}

/**
 * Runs the work of one rank of a `ranks`-rank job so that an error takes the whole job down at once: the error
 * is printed (and handed to `log`, e.g. the rank's log file) and `abort(1)` (MPI_Abort) called right here, before the `using` declarations of the caller's
 * scope free their native objects. Freeing a model first completes its pending sends and collectives, which the
 * other ranks may never match: the job would hang instead of failing. With one rank, errors propagate as usual.
 *
 * @example
 * ```ts ignore
 * using model = await NativeModel.create(dims, optim, init, topology);
 * await failFast(ranks, () => train({ model, ... }), distAbort);
 * ```
 */
export async function failFast<T>(
  ranks: number,
  body: () => Promise<T>,
  abort: (code: number) => never,
  log?: (line: string) => void,
): Promise<T> {
  if (ranks === 1) return await body();
  try {
    return await body();
  } catch (e) {
    printError(e);
    log?.(`error: ${e instanceof Error ? e.message : String(e)}`);
    return abort(1);
  }
}

/**
 * Runs the subcommand named by the first argument (`deno task convert hf-to-native …`): prints `help` for no
 * command, `help`, `-h` or `--help`; an unknown one is a {@linkcode UsageError} listing the known ones.
 * `--debug` (read by {@linkcode runMain}) is dropped from the arguments.
 *
 * @example
 * ```ts ignore
 * export const main = (args: string[]) => runSubcommand(args, { inspect: inspectCommand }, HELP);
 * ```
 */
export async function runSubcommand(
  rawArgs: string[],
  commands: Record<string, (args: string[]) => Promise<unknown>>,
  help: string,
): Promise<void> {
  const [command, ...rest] = rawArgs.filter((a) => a !== "--debug");
  if (command === undefined || command === "--help" || command === "-h" || command === "help") {
    console.log(help);
    return;
  }
  const run = commands[command];
  if (!run) {
    throw new UsageError(`unknown command '${command}' (commands: ${Object.keys(commands).join(", ")})`);
  }
  await run(rest);
}

/**
 * A command-line path argument resolved to a local path: itself, or a hub repository's snapshot directory
 * (`repo` set) or a file in it (`hf://…/path`).
 */
export interface ResolvedArg {
  /** Local path to hand on. */
  path: string;
  /** The hub repository it came from, if any. */
  repo?: RepoRef;
}

/**
 * Draws a download on `log`: bytes, files, MB/s and ETA (redrawn on a TTY, a plain line every 5 s otherwise).
 */
export function hubProgress(log: Progress = new Progress()): Pick<SnapshotOptions, "onPlan" | "onProgress"> {
  const started = performance.now();
  let first: number | undefined;
  return {
    onPlan: (m) => log.line(`hub: ${m}`),
    onProgress: (p) => {
      if (p.retry) log.line(`hub: ${p.retry}`);
      first ??= p.bytes;
      const secs = (performance.now() - started) / 1000, rate = (p.bytes - first) / Math.max(secs, 1e-3);
      const mb = (n: number) => (n / 1e6).toFixed(1);
      const eta = rate > 0 ? formatDuration((p.totalBytes - p.bytes) / rate) : "?";
      const text = `hub: ${mb(p.bytes)}/${mb(p.totalBytes)} MB, ${p.filesDone}/${p.files} files, ` +
        `${mb(rate)} MB/s, ETA ${eta} (${p.file})`;
      if (p.filesDone === p.files && p.bytes >= p.totalBytes) {
        log.update(text, true);
        log.done();
      } else log.update(text);
    },
  };
}

const existsLocal = (p: string) => Deno.lstat(p).then(() => true, () => false);

/**
 * Resolves a path-or-repo argument. A path that exists is returned as it is; so is anything that is not a
 * repository id, or whose first component is an existing local directory (`runs/tiny` when `runs/` exists:
 * a local path, never a hub lookup). Otherwise `org/name[@rev]` or `hf://[datasets/]org/name[@rev][/path]`
 * is fetched into the hub cache (huggingface_hub's layout; `HF_HUB_OFFLINE=1` uses the cache only) and its
 * snapshot directory (or the named file in it) is returned. `select` picks the repository files to fetch.
 *
 * @example
 * ```ts ignore
 * const { path } = await resolveRepoArg("epfl-llm/meditron-7b", "model", modelFiles);
 * ```
 */
export async function resolveRepoArg(
  arg: string,
  type: RepoType,
  select?: (files: string[]) => string[],
  log: Progress = new Progress(),
): Promise<ResolvedArg> {
  if (await existsLocal(arg)) return { path: arg };
  const ref = parseRepoRef(arg, type);
  if (!ref) return { path: arg };
  if (!arg.startsWith("hf://") && await existsLocal(arg.split("/")[0])) return { path: arg };
  const pick = ref.path === undefined
    ? select
    : (files: string[]) => files.filter((f) => f === ref.path || f.startsWith(`${ref.path}/`));
  try {
    const dir = await snapshotDownload(ref, { select: pick, ...hubProgress(log) });
    const path = ref.path === undefined ? dir : join(dir, ref.path);
    if (!(await existsLocal(path))) throw new HubError(`${arg}: no such file in the repository`);
    return { path, repo: ref };
  } catch (e) {
    // A plain `a/b` may have been meant as a local path: say that it is not one either.
    const missing = e instanceof HubError &&
      (e.status === 404 || ["RepoNotFound", "Unreachable", "OfflineNotCached"].includes(e.code ?? ""));
    if (missing && !arg.startsWith("hf://")) {
      const he = e as HubError;
      throw new HubError(
        `no local path '${arg}', and as a hub repository: ${he.message}`,
        he.status,
        he.code,
      );
    }
    throw e;
  }
}

/**
 * A `--model`/`--in`/`--init` argument as a local path: a native run, an HF directory, or a hub model
 * repository (`org/name[@rev]`) fetched with only the files needed to load it ({@linkcode modelFiles}).
 *
 * @example
 * ```ts ignore
 * const dir = await resolveModelArg("epfl-llm/meditron-7b"); // …/models--epfl-llm--meditron-7b/snapshots/<sha>
 * ```
 */
export async function resolveModelArg(arg: string, log?: Progress): Promise<string> {
  return (await resolveRepoArg(arg, "model", modelFiles, log)).path;
}

/**
 * A data argument as a local path: a file or directory, or a hub dataset repository (`org/name[@rev]`, or
 * `hf://datasets/org/name[@rev]/file` for one file). `select` picks the files of a whole repository.
 *
 * @example
 * ```ts ignore
 * const { path, repo } = await resolveDatasetArg("openlifescienceai/medmcqa");
 * ```
 */
export async function resolveDatasetArg(
  arg: string,
  select?: (files: string[]) => string[],
  log?: Progress,
): Promise<ResolvedArg> {
  return await resolveRepoArg(arg, "dataset", select, log);
}
