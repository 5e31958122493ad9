/**
 * Graceful interruption of a training command: SIGINT (Ctrl-C), SIGTERM (preemption) and SIGUSR2 (`kill -USR2`
 * of a hand-started mpirun, or Slurm's `--signal=USR2@SECONDS`) ask the run to finish its current step, write a
 * checkpoint and exit 0 (no checkpoint when no step has run yet); a second signal kills the process. In a job
 * that `runUnderMpi` (parallel/launcher.ts) started, rank 0 also takes the launching command's interrupts, and
 * its end, through a pipe. The ranks of a job agree after every step (the trainer's all-reduce) whether any of
 * them was asked, so they all stop after the same step.
 *
 * @module
 */
import { watchLauncher } from "../parallel/launcher.ts";

/** The signals that stop a run gracefully. Not SIGUSR1: Deno opens its inspector (a debugger port) on it. */
const SIGNALS = ["SIGINT", "SIGTERM", "SIGUSR2"] as const;

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
 * `log`, aborts the returned `signal` and removes its SIGINT and SIGTERM listeners, so that a second one has its
 * default effect (the process is killed); a later SIGUSR2 is the same request again, never a kill. Disposing
 * the result (`using`) removes the listeners if no signal came. In rank 0 of a job `runUnderMpi` launched, an
 * interrupt the launching command passes on, or its end ({@linkcode LAUNCHER_ENDED_MESSAGE}), is a stop request
 * too (`watchLauncher`).
 *
 * @example
 * ```ts ignore
 * using stop = stopOnSignals((s) => console.error(s));
 * await train({ model, config, runDir, data, signal: stop.signal, sync: { allOk: distAllOk } });
 * ```
 */
export function stopOnSignals(log: (line: string) => void): SignalStop {
  const abort = new AbortController();
  const listening = new Set<Deno.Signal>(SIGNALS);
  const unlisten = (keep?: Deno.Signal) => {
    for (const sig of listening) {
      if (sig !== keep) {
        Deno.removeSignalListener(sig, onSignal);
        listening.delete(sig);
      }
    }
  };
  const stop = (line: string) => {
    if (abort.signal.aborted) return; // a repeated SIGUSR2
    // First: a second SIGINT or SIGTERM has its default effect. SIGUSR2 only ever asks (never typed by a
    // person; in a Slurm job it can reach a rank twice, from Slurm and through mpirun), so it stays caught.
    unlisten("SIGUSR2");
    launcher[Symbol.dispose]();
    log(line);
    abort.abort();
  };
  const onSignal = () => stop(INTERRUPT_MESSAGE);
  for (const sig of SIGNALS) Deno.addSignalListener(sig, onSignal);
  const launcher = watchLauncher((why) =>
    stop(why === "interrupt" ? INTERRUPT_MESSAGE : LAUNCHER_ENDED_MESSAGE)
  );
  return {
    signal: abort.signal,
    [Symbol.dispose]: () => {
      unlisten();
      launcher[Symbol.dispose]();
    },
  };
}
