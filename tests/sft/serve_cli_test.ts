// deno task serve as a process: listens on 127.0.0.1, answers, stops on SIGTERM.
import assert from "node:assert/strict";
import { join } from "node:path";
import { resolveCheckpoint } from "../../models/checkpoint.ts";
import { saveInitModel } from "./fixtures.ts";

const SERVE = new URL("../../cli/serve.ts", import.meta.url).pathname;

/** Starts `serve args` and reads stdout up to its "listening on" line; SIGTERM `stop` returns the exit code. */
async function startServe(args: string[]) {
  const p = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", SERVE, ...args],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const reader = p.stdout.getReader();
  let out = "";
  while (!/listening on (\S+)/.test(out)) {
    const { value, done } = await reader.read();
    if (done) break;
    out += new TextDecoder().decode(value);
  }
  const stop = async () => {
    p.kill("SIGTERM");
    reader.releaseLock();
    await p.stdout.cancel();
    const status = await p.status;
    const stderr = new TextDecoder().decode(await new Response(p.stderr).arrayBuffer());
    return { code: status.code, stderr };
  };
  return { out, url: out.match(/listening on (http:\/\/127\.0\.0\.1:\d+)/)?.[1], stop };
}

Deno.test("serve CLI: --port 0 prints the address; /health, auth and a completion over HTTP; SIGTERM exits 0", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await saveInitModel(join(dir, "run"), {
      model: { vocab_size: 32002, max_seq: 256 },
      seed: 1,
      initStd: 0.3,
    });
    const { out, url, stop } = await startServe([
      "--model",
      join(dir, "run"),
      "--port",
      "0",
      "--api-key",
      "k",
      "--max-body-mb",
      "1",
    ]);
    assert.match(out, /template chatml/);
    const big = await fetch(`${url}/v1/chat/completions`, {
      method: "POST",
      headers: { authorization: "Bearer k", "content-type": "application/json" },
      body: JSON.stringify({ messages: [{ role: "user", content: "x".repeat(1_100_000) }] }),
    });
    assert.equal(big.status, 413, "a body over --max-body-mb 1");
    await big.body?.cancel();
    assert.equal((await (await fetch(`${url}/health`)).json()).status, "ok");
    const denied = await fetch(`${url}/v1/models`);
    assert.equal(denied.status, 401);
    await denied.body?.cancel();
    const r = await fetch(`${url}/v1/chat/completions`, {
      method: "POST",
      headers: { authorization: "Bearer k", "content-type": "application/json" },
      body: JSON.stringify({ messages: [{ role: "user", content: "Hi" }], max_tokens: 4 }),
    });
    assert.equal(r.status, 200);
    assert.equal((await r.json()).usage.completion_tokens > 0, true);
    const stopped = await stop();
    assert.equal(stopped.code, 0, stopped.stderr);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("serve CLI: a pretrained 256-token model answers with medical-zero-shot; --no-verify", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const run = join(dir, "run");
    await saveInitModel(run, { model: { vocab_size: 32000, max_seq: 256 }, seed: 1, initStd: 0.3 });
    const f = join(await resolveCheckpoint(run), "optim-tp00-pp00-dp00.safetensors");
    const bytes = Deno.readFileSync(f);
    bytes[bytes.length - 1] ^= 1;
    Deno.writeFileSync(f, bytes);
    const { out, url, stop } = await startServe(["--model", run, "--port", "0", "--no-verify"]);
    assert.ok(url, out);
    assert.match(out, /template medical-zero-shot/);
    const r = await fetch(`${url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ messages: [{ role: "user", content: "Hi" }], max_tokens: 4 }),
    });
    const body = await r.json();
    assert.equal(r.status, 200, JSON.stringify(body));
    assert.ok(body.usage.prompt_tokens < 256, JSON.stringify(body.usage));
    const { code, stderr } = await stop();
    assert.equal(code, 0, stderr);
    assert.match(stderr, /note: the medical-one-shot template takes \d+ tokens .*using medical-zero-shot/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("serve CLI: a port in use is named, with --port to choose another, before the model loads", async () => {
  using taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (taken.addr as Deno.NetAddr).port;
  const o = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", SERVE, "--model", "/nonexistent/run", "--port", String(port)],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stderr = new TextDecoder().decode(o.stderr);
  assert.equal(o.code, 1);
  assert.match(
    stderr,
    new RegExp(
      `^error: cannot listen on 127\\.0\\.0\\.1:${port}: the address is already in use \\(choose another --port\\)`,
    ),
  );
});
