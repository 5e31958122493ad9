/**
 * Showing results in a Jupyter notebook (the Deno kernel, `deno jupyter`).
 *
 * Deno 2.9's kernel does not wait for a display message to be sent: `Deno.jupyter.display` resolves before its
 * message is out, and stdout is forwarded by another task. A cell's last output can then reach the front end
 * after the cell has ended, and a headless runner (nbconvert, papermill) drops it. {@linkcode display} gives
 * the message a moment to leave before the cell goes on.
 *
 * @example
 * ```ts ignore
 * import { display } from "@meditron/toolkit/models";
 * await display({ "text/markdown": "| a | b |\n|---|---|\n| 1 | 2 |" }, { raw: true });
 * await display("step 10/50", { display_id: "progress" });
 * await display("step 20/50", { display_id: "progress", update: true }); // redraws the line above
 * ```
 *
 * @module
 */

/** How long {@linkcode display} waits after each message (ms): ample on a loaded 2-core machine. */
export const DISPLAY_SETTLE_MS = 400;

/** Waits long enough for the kernel to send what the cell displayed or printed so far. */
export function settleOutput(ms: number = DISPLAY_SETTLE_MS): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * `Deno.jupyter.display`, then {@linkcode settleOutput}: the output reaches the notebook even when it is a cell's
 * last. `options.display_id` names an output that later calls with `update: true` redraw in place (a live
 * progress line). Outside the Deno kernel it throws Deno's "only available in `deno jupyter`" error.
 */
export async function display(obj: unknown, options?: Deno.jupyter.DisplayOptions): Promise<void> {
  await Deno.jupyter.display(obj, options);
  await settleOutput();
}
