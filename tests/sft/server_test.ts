// The OpenAI-compatible server end to end over real HTTP on 127.0.0.1: shapes, streaming, continuous batching
// equal to sequential generation at temperature 0, errors, auth.
import assert from "node:assert/strict";
import { NativeModel } from "../../runtime/mod.ts";
import { NativeLanguageModel } from "../../models/lm.ts";
import { CHATML } from "../../models/chat.ts";
import { BatchEngine, openAiHandler, type ServerOptions } from "../../models/server.ts";
import { Tokenizer } from "../../data/tokenizer.ts";
import { TEST_OPTIM } from "../helpers.ts";

const DIMS = {
  dim: 32,
  nLayers: 2,
  nHeads: 4,
  nKvHeads: 2,
  ffnDim: 64,
  vocabSize: 32002,
  maxSeq: 96,
  normEps: 1e-5,
  ropeTheta: 1e4,
};
const tok = Tokenizer.llama2({ chatTokens: true });
const EOS = [tok.tokenToId("<|im_end|>")!, tok.eosId!];

async function createModel(): Promise<NativeModel> {
  return await NativeModel.create(DIMS, TEST_OPTIM, { seed: 11, initStd: 0.3 });
}

interface Served extends AsyncDisposable {
  url: string;
  engine: BatchEngine;
}

async function serve(
  model: NativeModel,
  opts: Partial<Omit<ServerOptions, "engine">> = {},
): Promise<Served> {
  const engine = new BatchEngine(model, 8);
  const handler = openAiHandler({ engine, codec: tok, template: CHATML, modelName: "test-model", ...opts });
  const ready = Promise.withResolvers<number>();
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: (a) => ready.resolve(a.port) },
    handler,
  );
  const port = await ready.promise;
  return {
    url: `http://127.0.0.1:${port}`,
    engine,
    async [Symbol.asyncDispose]() {
      await server.shutdown();
      engine[Symbol.dispose]();
    },
  };
}

// Sequential reference: one generation at a time without the server.
async function reference(model: NativeModel, text: string, maxTokens: number): Promise<string> {
  using lm = new NativeLanguageModel(model, 2);
  const ids: number[] = [];
  for await (const id of lm.generate(tok.encode(text, { addBos: true }), { maxTokens, eos: EOS })) {
    if (EOS.includes(id)) break;
    ids.push(id);
  }
  return tok.decode(ids);
}

async function post(url: string, body: unknown, headers: Record<string, string> = {}): Promise<Response> {
  return await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
}

Deno.test("server: health, models, chat and text completions match sequential generation", async () => {
  using model = await createModel();
  await using s = await serve(model);
  assert.equal((await (await fetch(`${s.url}/health`)).json()).status, "ok");
  const models = await (await fetch(`${s.url}/v1/models`)).json();
  assert.equal(models.data[0].id, "test-model");

  const messages = [{ role: "user", content: "What is the first-line treatment of asthma?" }];
  const r = await post(`${s.url}/v1/chat/completions`, { messages, max_tokens: 12, temperature: 0 });
  assert.equal(r.status, 200);
  const j = await r.json();
  assert.equal(j.object, "chat.completion");
  assert.equal(j.choices[0].message.role, "assistant");
  assert.equal(j.choices[0].message.content, await reference(model, CHATML.prompt(messages), 12));
  assert.ok(["stop", "length"].includes(j.choices[0].finish_reason));
  assert.equal(j.usage.prompt_tokens, tok.encode(CHATML.prompt(messages), { addBos: true }).length);

  const c =
    await (await post(`${s.url}/v1/completions`, { prompt: "Anemia is", max_tokens: 10, temperature: 0 }))
      .json();
  assert.equal(c.object, "text_completion");
  assert.equal(c.choices[0].text, await reference(model, "Anemia is", 10));
  assert.equal(c.usage.completion_tokens, 10);
  assert.equal(c.choices[0].finish_reason, "length");
});

Deno.test("server: streaming sends the same text as SSE chunks ending in [DONE]", async () => {
  using model = await createModel();
  await using s = await serve(model);
  const messages = [{ role: "user", content: "Describe pneumonia." }];
  const plain =
    await (await post(`${s.url}/v1/chat/completions`, { messages, max_tokens: 16, temperature: 0 }))
      .json();
  const r = await post(`${s.url}/v1/chat/completions`, {
    messages,
    max_tokens: 16,
    temperature: 0,
    stream: true,
  });
  assert.equal(r.headers.get("content-type"), "text/event-stream");
  const events = (await r.text()).split("\n\n").filter((e) => e.trim());
  assert.equal(events.at(-1), "data: [DONE]");
  const chunks = events.slice(0, -1).map((e) => JSON.parse(e.replace(/^data: /, "")));
  assert.ok(chunks.every((c) => c.object === "chat.completion.chunk" && c.id === chunks[0].id));
  assert.equal(chunks[0].choices[0].delta.role, "assistant");
  const text = chunks.map((c) => c.choices[0].delta.content ?? "").join("");
  assert.equal(text, plain.choices[0].message.content);
  assert.ok(chunks.length >= 3);
  assert.equal(chunks.at(-1).choices[0].finish_reason, plain.choices[0].finish_reason);
});

Deno.test("server: 8 concurrent clients get the answers of sequential generation (continuous batching)", async () => {
  using model = await createModel();
  await using s = await serve(model);
  const prompts = Array.from(
    { length: 8 },
    (_, i) => `Patient ${i} presents with ${"fever ".repeat(i + 1)}and`,
  );
  const lengths = prompts.map((_, i) => 6 + 2 * i); // different lengths: slots finish at different steps
  const answers = await Promise.all(
    prompts.map(async (prompt, i) =>
      (await (await post(`${s.url}/v1/completions`, { prompt, max_tokens: lengths[i], temperature: 0 }))
        .json())
        .choices[0].text as string
    ),
  );
  const stats = { ...s.engine.stats };
  for (let i = 0; i < prompts.length; i++) {
    assert.equal(answers[i], await reference(model, prompts[i], lengths[i]), `client ${i}`);
  }
  assert.equal(stats.completed, 8);
  assert.ok(
    stats.rows / stats.steps > 2,
    `mean batch ${stats.rows / stats.steps}: requests were not batched`,
  );
  // A sampled request with n = 2 and a seed is reproducible.
  const body = { prompt: "Fever", max_tokens: 8, temperature: 1, seed: 5, n: 2 };
  const a = await (await post(`${s.url}/v1/completions`, body)).json();
  const b = await (await post(`${s.url}/v1/completions`, body)).json();
  assert.equal(a.choices.length, 2);
  assert.deepEqual(
    a.choices.map((c: { text: string }) => c.text),
    b.choices.map((c: { text: string }) => c.text),
  );
});

Deno.test("server: malformed requests get OpenAI-style 400s and the next request still works", async () => {
  using model = await createModel();
  await using s = await serve(model);
  const bad: [unknown, string | null][] = [
    ["{not json", "invalid_json"],
    [[1, 2], "invalid_type"],
    [{ messages: "hi" }, "invalid_type"],
    [{ messages: [{ role: "user", content: "x" }], max_tokens: "ten" }, "invalid_type"],
    [{ messages: [{ role: "user", content: "x" }], temperature: 9 }, "invalid_value"],
    [{ messages: [{ role: "user", content: "fever ".repeat(200) }] }, "context_length_exceeded"],
  ];
  for (const [body, code] of bad) {
    const r = await post(`${s.url}/v1/chat/completions`, body);
    assert.equal(r.status, 400, JSON.stringify(body).slice(0, 60));
    const j = await r.json();
    assert.equal(j.error.type, "invalid_request_error");
    assert.equal(j.error.code, code);
    assert.equal(typeof j.error.message, "string");
  }
  const ok = await post(`${s.url}/v1/chat/completions`, {
    messages: [{ role: "user", content: "Hi" }],
    max_tokens: 3,
  });
  assert.equal(ok.status, 200);
  assert.equal((await ok.json()).usage.completion_tokens > 0, true);
  const missing = await fetch(`${s.url}/v1/nothing`);
  assert.equal(missing.status, 404);
  await missing.body?.cancel();
});

Deno.test("server: --api-key requires the bearer token", async () => {
  using model = await createModel();
  await using s = await serve(model, { apiKey: "sekret" });
  const body = { prompt: "Hi", max_tokens: 2 };
  const tries: Record<string, string>[] = [{}, { authorization: "Bearer wrong" }];
  for (const headers of tries) {
    const r = await post(`${s.url}/v1/completions`, body, headers);
    assert.equal(r.status, 401);
    assert.equal((await r.json()).error.type, "authentication_error");
  }
  const ok = await post(`${s.url}/v1/completions`, body, { authorization: "Bearer sekret" });
  assert.equal(ok.status, 200);
  await ok.body?.cancel();
  const models = await fetch(`${s.url}/v1/models`, { headers: { authorization: "Bearer sekret" } });
  assert.equal(models.status, 200);
  await models.body?.cancel();
});

Deno.test("server: stop strings cut the answer (non-streaming and streaming) with finish_reason stop", async () => {
  using model = await createModel();
  await using s = await serve(model);
  const full = await reference(model, "Anemia is", 16);
  const at = Math.floor(full.length / 2);
  const stop = full.slice(at, at + 3);
  assert.ok(stop.length === 3);
  const expected = full.slice(0, full.indexOf(stop));
  const j = await (await post(`${s.url}/v1/completions`, {
    prompt: "Anemia is",
    max_tokens: 16,
    temperature: 0,
    stop,
  }))
    .json();
  assert.equal(j.choices[0].text, expected);
  assert.equal(j.choices[0].finish_reason, "stop");
  const r = await post(`${s.url}/v1/completions`, {
    prompt: "Anemia is",
    max_tokens: 16,
    temperature: 0,
    stop: [stop],
    stream: true,
  });
  const chunks = (await r.text()).split("\n\n").filter((e) => e.startsWith("data: {")).map((e) =>
    JSON.parse(e.slice(6))
  );
  assert.equal(chunks.map((c) => c.choices[0].text).join(""), expected);
  assert.equal(chunks.at(-1).choices[0].finish_reason, "stop");
});

Deno.test("server: an oversized body gets a 413 and a prompt too long to fit is refused before tokenizing", async () => {
  using model = await createModel();
  // A codec that records the longest text it was asked to tokenize.
  let longestEncoded = 0;
  const codec = Object.assign(Object.create(tok), {
    encode(text: string, options?: { addBos?: boolean }) {
      longestEncoded = Math.max(longestEncoded, text.length);
      return tok.encode(text, options);
    },
  });
  const t0 = performance.now();
  for (const maxBodyBytes of [undefined, 64 << 10]) {
    await using s = await serve(model, { codec, maxBodyBytes });
    const big = { prompt: "fever ".repeat((maxBodyBytes ?? 4 << 20) / 6 + 100), max_tokens: 2 };
    const r = await post(`${s.url}/v1/completions`, big);
    assert.equal(r.status, 413);
    const j = await r.json();
    assert.equal(j.error.type, "invalid_request_error");
    assert.equal(j.error.code, "request_too_large");
    assert.match(j.error.message, new RegExp(`larger than ${maxBodyBytes ?? 4 << 20} bytes`));
    assert.equal((await (await fetch(`${s.url}/health`)).json()).status, "ok");
    // Under the cap but longer than any maxSeq tokens can cover: 400 without tokenizing it.
    longestEncoded = 0;
    const long = "fever ".repeat(10_000);
    const c = await post(`${s.url}/v1/chat/completions`, { messages: [{ role: "user", content: long }] });
    assert.equal(c.status, 400);
    assert.equal((await c.json()).error.code, "context_length_exceeded");
    assert.ok(longestEncoded < long.length, `the ${long.length}-character prompt was tokenized`);
    const ok = await post(`${s.url}/v1/completions`, { prompt: "Hi", max_tokens: 2 });
    assert.equal(ok.status, 200);
    await ok.body?.cancel();
  }
  assert.ok(performance.now() - t0 < 60_000, "oversized requests took over a minute");
});

Deno.test("server: unseeded sampling differs between requests; an explicit seed reproduces", async () => {
  using model = await createModel();
  await using s = await serve(model);
  const texts = async (extra: Record<string, unknown>) => {
    const out: string[] = [];
    for (let i = 0; i < 3; i++) {
      const body = { messages: [{ role: "user", content: "Hi" }], max_tokens: 24, temperature: 1, ...extra };
      const j = await (await post(`${s.url}/v1/chat/completions`, body)).json();
      out.push(j.choices[0].message.content);
    }
    return out;
  };
  const unseeded = await texts({});
  assert.ok(new Set(unseeded).size > 1, `three unseeded answers were all ${JSON.stringify(unseeded[0])}`);
  const seeded = await texts({ seed: 42 });
  assert.equal(new Set(seeded).size, 1, JSON.stringify(seeded));
});

Deno.test("server: stream_options.include_usage sends a usage chunk before [DONE]", async () => {
  using model = await createModel();
  await using s = await serve(model);
  const body = { prompt: "Anemia is", max_tokens: 6, temperature: 0, n: 2 };
  const plain = await (await post(`${s.url}/v1/completions`, body)).json();
  const r = await post(`${s.url}/v1/completions`, {
    ...body,
    stream: true,
    stream_options: { include_usage: true },
  });
  const events = (await r.text()).split("\n\n").filter((e) => e.trim());
  assert.equal(events.at(-1), "data: [DONE]");
  const chunks = events.slice(0, -1).map((e) => JSON.parse(e.replace(/^data: /, "")));
  const last = chunks.at(-1);
  assert.deepEqual(last.choices, []);
  assert.deepEqual(last.usage, plain.usage);
  assert.equal(last.id, chunks[0].id);
  assert.ok(chunks.slice(0, -1).every((c) => c.usage === null && c.choices.length === 1));
  // Without it, no usage chunk; stream_options without stream is refused.
  const without = await (await post(`${s.url}/v1/completions`, { ...body, stream: true })).text();
  assert.ok(!without.includes('"usage"'));
  const bad = await post(`${s.url}/v1/completions`, { ...body, stream_options: { include_usage: true } });
  assert.equal(bad.status, 400);
  assert.equal((await bad.json()).error.param, "stream_options");
});
