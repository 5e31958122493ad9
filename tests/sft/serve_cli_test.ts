// deno task serve as a process: listens on 127.0.0.1, answers, stops on SIGTERM.
import assert from "node:assert/strict";
import { join } from "node:path";
import { saveInitModel } from "./fixtures.ts";

Deno.test("serve CLI: --port 0 prints the address; /health, auth and a completion over HTTP; SIGTERM exits 0", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await saveInitModel(join(dir, "run"), {
      model: { vocab_size: 32002, max_seq: 256 },
      seed: 1,
      initStd: 0.3,
    });
    const p = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        new URL("../../cli/serve.ts", import.meta.url).pathname,
        "--model",
        join(dir, "run"),
        "--port",
        "0",
        "--api-key",
        "k",
      ],
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
    const url = out.match(/listening on (http:\/\/127\.0\.0\.1:\d+)/)![1];
    assert.match(out, /template chatml/);
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
    p.kill("SIGTERM");
    reader.releaseLock();
    await p.stdout.cancel();
    const status = await p.status;
    await p.stderr.cancel();
    assert.equal(status.code, 0);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
