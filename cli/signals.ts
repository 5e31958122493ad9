/**
 * Graceful interruption of a training command: SIGINT (Ctrl-C), SIGTERM (preemption) and SIGUSR2 (what a
 * launcher forwards: `runUnderMpi` of parallel/launcher.ts, or Slurm's `--signal=USR2@SECONDS`) ask the run to finish its
 * current step, write a checkpoint and exit 0; a second signal kills the process. In a multi-rank job the
 * ranks agree on the step to stop at (the trainer's per-step all-reduce), so one rank's signal stops them all;
 * and a job whose launching command has ended stops the same way.
 *
 * @module
 */

/** The signals that stop a run gracefully. Not SIGUSR1: Deno opens its inspector (a debugger port) on it. */
const SIGNALS = ["SIGINT", "SIGTERM", "SIGUSR2"] as const;

import { watchLauncher } from "../parallel/launcher.ts";

/** The line logged on the first signal. */
export const INTERRUPT_MESSAGE =
  "interrupt: finishing the current step and writing a checkpoint (signal again to kill)";

/** The line logged by rank 0 when the command that launched its job has ended (SIGKILL, a closed terminal). */
export const LAUNCHER_ENDED_MESSAGE =
  "the launching command has ended: finishing the current step and writing a checkpoint";

/** What {@linkcode stopOnSignals} returns: the stop request, and the removal of its listeners. */
export interface SignalStop extends Disposable {
  /** Aborted on the first SIGINT, SIGTERM or SIGUSR2 (pass it as `train({ signal })`). */
  readonly signal: AbortSignal;
}

/**
 * Turns the first SIGINT, SIGTERM or SIGUSR2 into a stop request: logs {@linkcode INTERRUPT_MESSAGE} through
 * `log`, aborts the returned `signal` and removes its listeners, so that a second signal has its default effect
 * (the process is killed). Disposing the result (`using`) removes the listeners if no signal came. In rank 0 of a
 * job `runUnderMpi` launched, the end of the launching command is a stop request too
 * ({@linkcode LAUNCHER_ENDED_MESSAGE}; `watchLauncher`).
 *
 * @example
 * ```ts ignore
 * using stop = stopOnSignals((s) => console.error(s));
 * await train({ model, config, runDir, data, signal: stop.signal, sync: { allOk: distAllOk } });
 * ```
 */
export function stopOnSignals(log: (line: string) => void): SignalStop {
  const abort = new AbortController();
  let listening = true;
  const remove = () => {
    if (!listening) return;
    listening = false;
    for (const sig of SIGNALS) Deno.removeSignalListener(sig, onSignal);
    launcher[Symbol.dispose]();
  };
  const stop = (line: string) => {
    remove(); // first: the next signal has its default effect
    log(line);
    abort.abort();
  };
  const onSignal = () => stop(INTERRUPT_MESSAGE);
  for (const sig of SIGNALS) Deno.addSignalListener(sig, onSignal);
  const launcher = watchLauncher(() => stop(LAUNCHER_ENDED_MESSAGE));
  return { signal: abort.signal, [Symbol.dispose]: remove };
}
