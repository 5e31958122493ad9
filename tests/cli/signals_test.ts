// stopOnSignals in a child process: the first SIGINT/SIGTERM/SIGUSR2 aborts with one log line, the second kills;
// disposed, nothing is caught.
import assert from "node:assert/strict";
import { INTERRUPT_MESSAGE } from "../../cli/signals.ts";

const MODULE = new URL("../../cli/signals.ts", import.meta.url).href;

/** A child Deno process running `body` after `stop` is set up; its stdout lines, and signals sent to it. */
class Child {
  readonly #proc: Deno.ChildProcess;
  readonly #lines: AsyncIterator<string>;
  readonly seen: string[] = [];

  constructor(setup: string) {
    const code = `import { stopOnSignals } from ${JSON.stringify(MODULE)};\n` +
      `${setup}\n` +
      `stop.signal.addEventListener("abort", () => console.log("aborted"));\n` +
      `console.log("ready");\n` +
      `setTimeout(() => console.log("timeout"), 10000);\n`;
    this.#proc = new Deno.Command(Deno.execPath(), {
      args: ["eval", code],
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    this.#lines = this.#proc.stdout.pipeThrough(new TextDecoderStream()).pipeThrough(lineSplitter())
      [Symbol.asyncIterator]();
  }

  /** Reads lines until `line` (recorded in `seen`). */
  async until(line: string): Promise<void> {
    for (;;) {
      const r = await this.#lines.next();
      if (r.done) throw new Error(`the child ended before '${line}' (saw ${JSON.stringify(this.seen)})`);
      this.seen.push(r.value);
      if (r.value === line) return;
    }
  }

  kill(sig: Deno.Signal): void {
    this.#proc.kill(sig);
  }

  /** The exit status, after reading the remaining lines. */
  async status(): Promise<Deno.CommandStatus> {
    for (let r = await this.#lines.next(); !r.done; r = await this.#lines.next()) this.seen.push(r.value);
    return await this.#proc.status;
  }
}

function lineSplitter(): TransformStream<string, string> {
  let rest = "";
  return new TransformStream({
    transform(chunk, out) {
      const parts = (rest + chunk).split("\n");
      rest = parts.pop()!;
      for (const p of parts) out.enqueue(p);
    },
    flush(out) {
      if (rest) out.enqueue(rest);
    },
  });
}

for (
  const [first, second] of [["SIGINT", "SIGTERM"], ["SIGTERM", "SIGINT"], ["SIGUSR2", "SIGTERM"]] as const
) {
  Deno.test(`stopOnSignals: ${first} aborts with one log line, then ${second} kills`, async () => {
    const child = new Child("const stop = stopOnSignals((s) => console.log(s));");
    await child.until("ready");
    child.kill(first);
    await child.until("aborted");
    child.kill(second);
    const status = await child.status();
    assert.equal(status.signal, second, `exit ${status.code}, output ${JSON.stringify(child.seen)}`);
    assert.deepEqual(child.seen, ["ready", INTERRUPT_MESSAGE, "aborted"]);
  });
}

Deno.test("stopOnSignals: a repeated SIGUSR2 is the same request (it can reach a rank twice), not a kill", async () => {
  const child = new Child("const stop = stopOnSignals((s) => console.log(s));");
  await child.until("ready");
  child.kill("SIGUSR2");
  await child.until("aborted");
  child.kill("SIGUSR2");
  await new Promise((r) => setTimeout(r, 300)); // time to die of it, were it not caught
  child.kill("SIGTERM");
  const status = await child.status();
  assert.equal(status.signal, "SIGTERM", `exit ${status.code}, output ${JSON.stringify(child.seen)}`);
  assert.deepEqual(child.seen, ["ready", INTERRUPT_MESSAGE, "aborted"]);
});

Deno.test("stopOnSignals disposed: a signal has its default effect, nothing is logged", async () => {
  const child = new Child("let stop;\n{\n  using s = stopOnSignals((m) => console.log(m));\n  stop = s;\n}");
  await child.until("ready");
  child.kill("SIGTERM");
  const status = await child.status();
  assert.equal(status.signal, "SIGTERM");
  assert.deepEqual(child.seen, ["ready"]);
});
