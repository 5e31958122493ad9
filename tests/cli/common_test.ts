// cli/common.ts: failFast, the one place where a rank's error takes a multi-rank job down.
import assert from "node:assert/strict";
import { failFast } from "../../cli/common.ts";

class Aborted extends Error {}

/** Runs `body` through failFast on `ranks` ranks inside a scope holding a `using` resource; the events. */
async function inScope(
  ranks: number,
  body: () => Promise<number>,
): Promise<{ events: string[]; error?: unknown }> {
  const events: string[] = [];
  const stderr = console.error;
  console.error = (s: string) => events.push(`stderr ${s}`);
  try {
    using _model = { [Symbol.dispose]: () => events.push("dispose") };
    const value = await failFast(ranks, body, (code) => {
      events.push(`abort ${code}`);
      throw new Aborted(); // MPI_Abort does not return; the test unwinds instead
    }, (line) => events.push(`log ${line}`));
    events.push(`value ${value}`);
  } catch (error) {
    return { events, error };
  } finally {
    console.error = stderr;
  }
  return { events };
}

Deno.test("failFast: a rank's error is printed and aborts the job before the scope's resources are freed", async () => {
  const { events, error } = await inScope(
    2,
    () => Promise.reject(new Error("rank 1: token id 40000 out of range")),
  );
  assert.ok(error instanceof Aborted);
  assert.deepEqual(events, [
    "stderr error: rank 1: token id 40000 out of range",
    "log error: rank 1: token id 40000 out of range",
    "abort 1",
    "dispose",
  ]);
});

Deno.test("failFast: one rank rethrows the error itself, without aborting", async () => {
  const boom = new Error("boom");
  const { events, error } = await inScope(1, () => Promise.reject(boom));
  assert.equal(error, boom);
  assert.deepEqual(events, ["dispose"]);
});

Deno.test("failFast: success returns the body's value on any number of ranks", async () => {
  for (const ranks of [1, 4]) {
    const { events, error } = await inScope(ranks, () => Promise.resolve(42));
    assert.equal(error, undefined);
    assert.deepEqual(events, ["value 42", "dispose"]);
  }
});

Deno.test("runMain: a native library error (numeric code) is one line, not a crash of the handler", async () => {
  // eval --device cuda on a library built without CUDA fails in the native library (MeditronError, code 1).
  const lib = new URL("../../runtime/mod.ts", import.meta.url).href;
  const common = new URL("../../cli/common.ts", import.meta.url).href;
  const code = `import { MeditronError } from "${lib}";
import { runMain } from "${common}";
await runMain(() => Promise.reject(new MeditronError(1, "device 7 is not 0 (cpu) or 1 (cuda)")), "Usage: x");`;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["eval", code],
    stdout: "piped",
    stderr: "piped",
  })
    .output();
  assert.equal(out.code, 1);
  assert.equal(new TextDecoder().decode(out.stderr), "error: device 7 is not 0 (cpu) or 1 (cuda)\n");
});
