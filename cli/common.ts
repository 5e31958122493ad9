/**
 * What every CLI entry point shares: one-line errors (stack traces only with `--debug`) and usage errors.
 *
 * @module
 */
import type { Device } from "../runtime/ffi.ts";

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
    const err = e as Error;
    const debug = Deno.args.includes("--debug");
    const usage = e instanceof UsageError || (err as { code?: string }).code?.startsWith("ERR_PARSE_ARGS");
    console.error(`error: ${debug ? err.stack : err.message}`);
    if (usage) console.error(`\n${help.split("\n")[0]}\nRun with --help for all options.`);
    hooks.onError?.();
    Deno.exit(1);
  }
}
