/**
 * Progress reporting for long tasks: a single redrawn status line when stderr is a TTY, periodic plain lines
 * otherwise (logs, CI). `NO_COLOR` disables colour.
 *
 * @module
 */

/** Formats seconds as `1h02m`, `3m05s` or `12s`. */
export function formatDuration(s: number): string {
  if (!Number.isFinite(s)) return "?";
  s = Math.max(0, Math.round(s));
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = s % 60;
  if (h) return `${h}h${String(m).padStart(2, "0")}m`;
  if (m) return `${m}m${String(sec).padStart(2, "0")}s`;
  return `${sec}s`;
}

/** A progress sink: `update` redraws (TTY) or prints every `plainEvery` seconds; `line` prints a full line. */
export class Progress {
  readonly #tty: boolean;
  readonly #color: boolean;
  readonly #plainEvery: number;
  #lastPlain = -Infinity;
  #drawn = false;
  readonly #enc = new TextEncoder();

  /** `plainEvery`: seconds between plain lines when not on a TTY (0: every update). */
  constructor(plainEvery = 5, tty: boolean = Deno.stderr.isTerminal()) {
    this.#tty = tty;
    this.#color = tty && !Deno.env.get("NO_COLOR");
    this.#plainEvery = plainEvery;
  }

  #write(s: string): void {
    Deno.stderr.writeSync(this.#enc.encode(s));
  }

  /** Status update; `force` prints a plain line regardless of the interval. */
  update(text: string, force = false): void {
    if (this.#tty) {
      const cols = (() => {
        try {
          return Deno.consoleSize().columns;
        } catch {
          return 120;
        }
      })();
      const shown = text.length >= cols ? text.slice(0, cols - 1) : text;
      this.#write(`\r\x1b[2K${this.#color ? `\x1b[36m${shown}\x1b[0m` : shown}`);
      this.#drawn = true;
      return;
    }
    const now = performance.now() / 1000;
    if (force || now - this.#lastPlain >= this.#plainEvery) {
      this.#lastPlain = now;
      this.#write(text + "\n");
    }
  }

  /** A permanent line (clears the status line first on a TTY). */
  line(text: string): void {
    if (this.#tty && this.#drawn) this.#write("\r\x1b[2K");
    this.#drawn = false;
    this.#write(text + "\n");
  }

  /** Ends the status line. */
  done(): void {
    if (this.#tty && this.#drawn) this.#write("\n");
    this.#drawn = false;
  }
}
