/**
 * Graceful interruption of a training command: SIGINT (Ctrl-C) and SIGTERM (preemption) ask the run to finish
 * its current step, write a checkpoint and exit 0; a second signal kills the process.
 *
 * @module
 */

/** The signals that stop a run gracefully. */
const SIGNALS = ["SIGINT", "SIGTERM"] as const;

/** The line logged on the first signal. */
export const INTERRUPT_MESSAGE =
  "interrupt: finishing the current step and writing a checkpoint (signal again to kill)";

/** What {@linkcode stopOnSignals} returns: the stop request, and the removal of its listeners. */
export interface SignalStop extends Disposable {
  /** Aborted on the first SIGINT or SIGTERM (pass it as `train({ signal })`); never aborted when disabled. */
  readonly signal: AbortSignal;
}

/**
 * Turns the first SIGINT or SIGTERM into a stop request: logs {@linkcode INTERRUPT_MESSAGE} through `log`,
 * aborts the returned `signal` and removes its listeners, so that a second signal has its default effect
 * (the process is killed). Disposing the result (`using`) removes the listeners if no signal came.
 *
 * Only for a single process (`enabled`: true, the default): a multi-rank job is stopped through mpirun, which
 * signals every rank, and the ranks could then stop at different steps. With `enabled` false nothing is
 * installed and `signal` never aborts.
 *
 * @example
 * ```ts ignore
 * using stop = stopOnSignals((s) => console.error(s), ranks === 1);
 * await train({ model, config, runDir, data, signal: stop.signal });
 * ```
 */
export function stopOnSignals(log: (line: string) => void, enabled = true): SignalStop {
  const abort = new AbortController();
  let listening = false;
  const remove = () => {
    if (!listening) return;
    listening = false;
    for (const sig of SIGNALS) Deno.removeSignalListener(sig, onSignal);
  };
  const onSignal = () => {
    remove(); // first: the next signal has its default effect
    log(INTERRUPT_MESSAGE);
    abort.abort();
  };
  if (enabled) {
    listening = true;
    for (const sig of SIGNALS) Deno.addSignalListener(sig, onSignal);
  }
  return { signal: abort.signal, [Symbol.dispose]: remove };
}
