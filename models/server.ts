/**
 * Serving: a continuous-batching generation engine over the KV cache's slots, and an OpenAI-compatible HTTP
 * handler on top of it (`POST /v1/chat/completions`, `POST /v1/completions`, `GET /v1/models`, `GET /health`,
 * server-sent events ending in `data: [DONE]` with optional `stream_options.include_usage`, OpenAI-style error
 * bodies, optional bearer token, request bodies capped (413) and prompts too long for the context refused before
 * they are tokenized).
 *
 * Continuous batching: requests wait in a queue; at every step the engine admits queued sequences into free
 * slots and runs ONE batched decode call holding the new sequences' whole prompts (prefill) and one token of
 * every running sequence; a sequence that finishes frees its slot for the next step.
 *
 * @module
 */
import { KvCache } from "../runtime/kv.ts";
import type { NativeModel } from "../runtime/model.ts";
import { applyPenalties, sampleToken, type SamplingOptions, seededRandom } from "./sampling.ts";
import { type ChatTemplate, type ChatTurn, cutAtStop, pendingStopPrefix } from "./chat.ts";

/** Why a generation ended (OpenAI's `finish_reason`). */
export type FinishReason = "stop" | "length";

/** One generation request of the engine. */
export interface GenerationJob extends SamplingOptions {
  /** Prompt ids (non-empty). */
  prompt: number[];
  /** Most tokens to generate. */
  maxTokens: number;
  /** Sampler seed. */
  seed?: number;
  /** Token ids that end the generation (not included in the output). */
  eos?: readonly number[];
  /** Called with each token; return false to stop (e.g. a stop string appeared). */
  onToken?: (token: number) => boolean;
  /** Aborts the generation (client gone). */
  signal?: AbortSignal;
}

/** Outcome of a {@linkcode GenerationJob}. */
export interface GenerationResult {
  /** Generated ids (without an eos id). */
  tokens: number[];
  /** `stop` (eos, stop string, abort) or `length` (max tokens or the context). */
  finishReason: FinishReason;
}

interface Active {
  job: GenerationJob;
  slot: number;
  rand: () => number;
  counts: Map<number, number>;
  tokens: number[];
  pending: number[]; // ids to feed at the next step
  resolve: (r: GenerationResult) => void;
  reject: (e: unknown) => void;
}

/** Counters of the engine. */
export interface EngineStats {
  /** Batched decode calls. */
  steps: number;
  /** Sequences decoded per call, summed (÷ steps = mean batch). */
  rows: number;
  /** Requests completed. */
  completed: number;
}

/**
 * Continuous batching over `slots` KV-cache slots of a native model (one rank).
 *
 * @example
 * ```ts ignore
 * const engine = new BatchEngine(model, 8);
 * const r = await engine.generate({ prompt: [1, 450], maxTokens: 8 });
 * ```
 */
export class BatchEngine implements Disposable {
  readonly #model: NativeModel;
  readonly #kv: KvCache;
  readonly #free: number[];
  readonly #queue: Omit<Active, "slot">[] = [];
  readonly #active: Active[] = [];
  #running = false;
  /** Counters since creation. */
  readonly stats: EngineStats = { steps: 0, rows: 0, completed: 0 };

  /** `slots` sequences decode together. */
  constructor(model: NativeModel, slots = 8) {
    this.#model = model;
    this.#kv = KvCache.create(model, slots, model.dims.maxSeq);
    this.#free = Array.from({ length: slots }, (_, i) => slots - 1 - i);
  }

  /** Longest prompt + generation. */
  get maxSeq(): number {
    return this.#model.dims.maxSeq;
  }

  /** Requests waiting for a slot. */
  get queued(): number {
    return this.#queue.length;
  }

  /** Sequences being decoded. */
  get running(): number {
    return this.#active.length;
  }

  /** Queues a job; resolves when it ends. */
  generate(job: GenerationJob): Promise<GenerationResult> {
    if (job.prompt.length === 0) return Promise.reject(new Error("the prompt must hold at least one token"));
    if (job.prompt.length >= this.maxSeq) {
      return Promise.reject(
        new Error(`the prompt has ${job.prompt.length} tokens; the context is ${this.maxSeq}`),
      );
    }
    return new Promise((resolve, reject) => {
      this.#queue.push({
        job,
        rand: seededRandom(job.seed ?? 0),
        counts: new Map(),
        tokens: [],
        pending: job.prompt,
        resolve,
        reject,
      });
      if (!this.#running) this.#loop();
    });
  }

  #finish(a: Active, reason: FinishReason): void {
    this.#active.splice(this.#active.indexOf(a), 1);
    this.#free.push(a.slot);
    this.stats.completed++;
    a.resolve({ tokens: a.tokens, finishReason: reason });
  }

  async #loop(): Promise<void> {
    this.#running = true;
    try {
      while (this.#queue.length || this.#active.length) {
        while (this.#queue.length && this.#free.length) {
          const slot = this.#free.pop()!;
          this.#kv.reset(slot);
          this.#active.push({ ...this.#queue.shift()!, slot });
        }
        for (const a of [...this.#active]) if (a.job.signal?.aborted) this.#finish(a, "stop");
        if (!this.#active.length) continue;
        const seq: number[] = [], tok: number[] = [], want: boolean[] = [];
        const batch = [...this.#active];
        for (const a of batch) {
          a.pending.forEach((t, i) => {
            seq.push(a.slot);
            tok.push(t);
            want.push(i === a.pending.length - 1);
          });
        }
        let logits: Float32Array;
        try {
          logits = await this.#kv.decode(seq, tok, want);
        } catch (e) {
          for (const a of batch) {
            this.#active.splice(this.#active.indexOf(a), 1);
            this.#free.push(a.slot);
            a.reject(e);
          }
          continue;
        }
        this.stats.steps++;
        this.stats.rows += batch.length;
        const V = this.#model.dims.vocabSize;
        batch.forEach((a, row) => {
          const l = logits.subarray(row * V, (row + 1) * V);
          applyPenalties(l, a.counts, a.job);
          const token = sampleToken(l, a.job, a.rand);
          a.counts.set(token, (a.counts.get(token) ?? 0) + 1);
          const used = this.#kv.length(a.slot);
          if (a.job.eos?.includes(token)) return this.#finish(a, "stop");
          a.tokens.push(token);
          let go = true;
          try {
            go = a.job.onToken?.(token) ?? true;
          } catch {
            go = false;
          }
          if (!go || a.job.signal?.aborted) return this.#finish(a, "stop");
          if (a.tokens.length >= a.job.maxTokens || used + 1 > this.maxSeq) return this.#finish(a, "length");
          a.pending = [token];
        });
      }
    } finally {
      this.#running = false;
    }
  }

  /** Frees the KV cache. */
  [Symbol.dispose](): void {
    this.#kv.dispose();
  }
}

/** What the server needs of a tokenizer. */
export interface ServerCodec {
  /** Text to ids. */
  encode(text: string, options?: { addBos?: boolean; addEos?: boolean }): number[];
  /** Ids to text (special tokens dropped). */
  decode(ids: number[]): string;
  /** Id of a token, `undefined` when absent. */
  tokenToId(token: string): number | undefined;
  /** End-of-sequence id. */
  readonly eosId: number | null;
  /** Number of ids. */
  readonly vocabSize: number;
  /**
   * Token string of an id, `undefined` when absent; none covers more characters of a text than its own length
   * (the prompt length check relies on it).
   */
  idToToken(id: number): string | undefined;
}

/** Default of {@linkcode ServerOptions.maxBodyBytes}: 4 MiB. */
export const DEFAULT_MAX_BODY_BYTES = 4 << 20;

/** Options of {@linkcode openAiHandler}. */
export interface ServerOptions {
  /** The generation engine. */
  engine: BatchEngine;
  /** Tokenizer of the model. */
  codec: ServerCodec;
  /** Chat template of `/v1/chat/completions`. */
  template: ChatTemplate;
  /** Model id reported by `/v1/models` and in responses. */
  modelName: string;
  /** Bearer token required on `/v1/*` (none: open). */
  apiKey?: string;
  /** Default `max_tokens` (default 256; always capped by the context). */
  defaultMaxTokens?: number;
  /** Largest request body in bytes; a larger one gets a 413 before it is parsed (default 4 MiB). */
  maxBodyBytes?: number;
}

/** An OpenAI-style request error. */
export class ApiError extends Error {
  /** HTTP status. */
  readonly status: number;
  /** Offending parameter. */
  readonly param: string | null;
  /** Machine-readable code. */
  readonly code: string | null;
  /** Creates the error. */
  constructor(status: number, message: string, param: string | null = null, code: string | null = null) {
    super(message);
    this.status = status;
    this.param = param;
    this.code = code;
  }
}

function errorResponse(e: ApiError): Response {
  const type = e.status === 401
    ? "authentication_error"
    : e.status === 404
    ? "not_found_error"
    : e.status >= 500
    ? "server_error"
    : "invalid_request_error";
  return Response.json({ error: { message: e.message, type, param: e.param, code: e.code } }, {
    status: e.status,
  });
}

type Json = Record<string, unknown>;

function field<T>(
  body: Json,
  name: string,
  check: (v: unknown) => v is T,
  what: string,
): T | undefined {
  const v = body[name];
  if (v === undefined || v === null) return undefined;
  if (!check(v)) throw new ApiError(400, `'${name}' must be ${what}`, name, "invalid_type");
  return v;
}

const isNum = (v: unknown): v is number => typeof v === "number" && Number.isFinite(v);
const isInt = (v: unknown): v is number => Number.isInteger(v);
const isBool = (v: unknown): v is boolean => typeof v === "boolean";
const isStr = (v: unknown): v is string => typeof v === "string";
const isObject = (v: unknown): v is Json => typeof v === "object" && v !== null && !Array.isArray(v);

function range(v: number | undefined, name: string, lo: number, hi: number): number | undefined {
  if (v !== undefined && (v < lo || v > hi)) {
    throw new ApiError(400, `'${name}' must be in [${lo}, ${hi}] (got ${v})`, name, "invalid_value");
  }
  return v;
}

/** The sampling fields common to both endpoints, validated. */
interface CommonParams {
  model?: string;
  maxTokens?: number;
  temperature: number;
  topP?: number;
  topK?: number;
  stop: string[];
  n: number;
  seed?: number;
  frequencyPenalty?: number;
  presencePenalty?: number;
  stream: boolean;
  /** `stream_options.include_usage`: a last chunk with the usage before `[DONE]`. */
  includeUsage: boolean;
}

function commonParams(body: Json): CommonParams {
  const stopRaw = body.stop;
  let stop: string[] = [];
  if (typeof stopRaw === "string") stop = [stopRaw];
  else if (Array.isArray(stopRaw) && stopRaw.every(isStr) && stopRaw.length <= 4) stop = stopRaw;
  else if (stopRaw !== undefined && stopRaw !== null) {
    throw new ApiError(
      400,
      "'stop' must be a string or an array of at most 4 strings",
      "stop",
      "invalid_type",
    );
  }
  const stream = field(body, "stream", isBool, "a boolean") ?? false;
  const so = field(body, "stream_options", isObject, "an object");
  if (so !== undefined && !stream) {
    throw new ApiError(
      400,
      "'stream_options' is only allowed when 'stream' is true",
      "stream_options",
      "invalid_value",
    );
  }
  const includeUsage = so?.include_usage ?? false;
  if (!isBool(includeUsage)) {
    throw new ApiError(
      400,
      "'stream_options.include_usage' must be a boolean",
      "stream_options.include_usage",
      "invalid_type",
    );
  }
  return {
    model: field(body, "model", isStr, "a string"),
    maxTokens: range(field(body, "max_tokens", isInt, "an integer"), "max_tokens", 1, 1 << 20),
    temperature: range(field(body, "temperature", isNum, "a number"), "temperature", 0, 2) ?? 1,
    topP: range(field(body, "top_p", isNum, "a number"), "top_p", 0, 1),
    topK: range(field(body, "top_k", isInt, "an integer"), "top_k", -1, 1 << 20),
    stop: stop.filter((s) => s !== ""),
    n: range(field(body, "n", isInt, "an integer"), "n", 1, 16) ?? 1,
    seed: field(body, "seed", isInt, "an integer"),
    frequencyPenalty: range(field(body, "frequency_penalty", isNum, "a number"), "frequency_penalty", -2, 2),
    presencePenalty: range(field(body, "presence_penalty", isNum, "a number"), "presence_penalty", -2, 2),
    stream,
    includeUsage,
  };
}

function parseMessages(body: Json): ChatTurn[] {
  const m = body.messages;
  if (!Array.isArray(m) || m.length === 0) {
    throw new ApiError(400, "'messages' must be a non-empty array", "messages", "invalid_type");
  }
  return m.map((x: unknown, i: number) => {
    const o = x as Json | null;
    if (o === null || typeof o !== "object" || !isStr(o.role) || !isStr(o.content)) {
      throw new ApiError(
        400,
        `messages[${i}] needs string 'role' and 'content'`,
        `messages[${i}]`,
        "invalid_type",
      );
    }
    if (!["system", "user", "assistant"].includes(o.role)) {
      throw new ApiError(400, `messages[${i}].role must be system, user or assistant`, `messages[${i}].role`);
    }
    return { role: o.role, content: o.content };
  });
}

/** Incremental text of a token stream, holding back what may still become a stop string. */
class TextStream {
  readonly #codec: ServerCodec;
  readonly #stop: readonly string[];
  readonly tokens: number[] = [];
  emitted = 0; // characters already handed out
  text = "";
  stopped = false;
  constructor(codec: ServerCodec, stop: readonly string[]) {
    this.#codec = codec;
    this.#stop = stop;
  }
  /** Adds a token; returns the newly final text and whether generation should go on. */
  push(token: number): { delta: string; go: boolean } {
    this.tokens.push(token);
    const full = this.#codec.decode(this.tokens);
    const cut = cutAtStop(full, this.#stop);
    this.text = cut.text;
    if (cut.stopped) {
      this.stopped = true;
      return { delta: this.flush(), go: false };
    }
    let safe = full.length - pendingStopPrefix(full, this.#stop);
    if (full.endsWith("\uFFFD")) safe = Math.min(safe, full.length - 1); // an incomplete UTF-8 sequence
    const delta = safe > this.emitted ? full.slice(this.emitted, safe) : "";
    this.emitted = Math.max(this.emitted, safe);
    return { delta, go: true };
  }
  /** The text not yet handed out. */
  flush(): string {
    const d = this.text.slice(this.emitted);
    this.emitted = this.text.length;
    return d;
  }
}

/** The JSON of a request body of at most `limit` bytes (413 beyond it, without reading the rest). */
async function readJsonBody(req: Request, limit: number): Promise<unknown> {
  const tooLarge = () =>
    new ApiError(413, `the request body is larger than ${limit} bytes`, null, "request_too_large");
  if (Number(req.headers.get("content-length") ?? 0) > limit) throw tooLarge();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of req.body ?? []) { // leaving the loop cancels the rest of the upload
    size += chunk.length;
    if (size > limit) throw tooLarge();
    chunks.push(chunk);
  }
  const bytes = new Uint8Array(size);
  let at = 0;
  for (const c of chunks) {
    bytes.set(c, at);
    at += c.length;
  }
  try {
    return JSON.parse(new TextDecoder().decode(bytes));
  } catch (e) {
    throw new ApiError(400, `malformed JSON body: ${(e as Error).message}`, null, "invalid_json");
  }
}

/** Token counts of a response. */
function usageOf(promptTokens: number, results: readonly GenerationResult[]) {
  const completion = results.reduce((a, r) => a + r.tokens.length, 0);
  return {
    prompt_tokens: promptTokens,
    completion_tokens: completion,
    total_tokens: promptTokens + completion,
  };
}

const SSE_HEADERS = { "content-type": "text/event-stream", "cache-control": "no-cache" };

/**
 * The OpenAI-compatible request handler (give it to `Deno.serve`).
 *
 * @example
 * ```ts ignore
 * Deno.serve({ hostname: "127.0.0.1", port: 8000 }, openAiHandler({ engine, codec, template, modelName: "tiny" }));
 * ```
 */
export function openAiHandler(opts: ServerOptions): (req: Request) => Promise<Response> {
  const { engine, codec, template, modelName } = opts;
  const stopIds = template.stopTokens.map((t) => codec.tokenToId(t)).filter((x): x is number =>
    x !== undefined
  );
  const eos = [...stopIds, ...(codec.eosId !== null ? [codec.eosId] : [])];
  const maxBodyBytes = opts.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  // No token covers more characters than the longest token string (the normalizer only lengthens text), so a
  // prompt longer than maxSeq × that cannot fit and is refused without tokenizing it.
  let longestToken = 1;
  for (let id = 0; id < codec.vocabSize; id++) {
    longestToken = Math.max(longestToken, codec.idToToken(id)?.length ?? 0);
  }
  let counter = 0;

  async function complete(body: Json, chat: boolean, abort: AbortController): Promise<Response> {
    const signal = abort.signal; // aborted when a streaming client goes away
    const p = commonParams(body);
    let promptText: string;
    if (chat) {
      promptText = template.prompt(parseMessages(body));
    } else {
      const pr = body.prompt;
      if (isStr(pr)) promptText = pr;
      else if (Array.isArray(pr) && pr.length === 1 && isStr(pr[0])) promptText = pr[0];
      else {throw new ApiError(
          400,
          "'prompt' must be a string (or an array of one string)",
          "prompt",
          "invalid_type",
        );}
    }
    const tooLong = (has: string) =>
      new ApiError(
        400,
        `This model's maximum context length is ${engine.maxSeq} tokens; the prompt has ${has}`,
        chat ? "messages" : "prompt",
        "context_length_exceeded",
      );
    if (promptText.length > engine.maxSeq * longestToken) {
      throw tooLong(`${promptText.length} characters, more than ${engine.maxSeq} tokens can hold`);
    }
    const prompt = codec.encode(promptText, { addBos: true });
    const room = engine.maxSeq - prompt.length;
    if (room < 1) throw tooLong(`${prompt.length}`);
    const maxTokens = Math.min(p.maxTokens ?? opts.defaultMaxTokens ?? 256, room);
    const stop = chat ? [...new Set([...template.stop, ...p.stop])] : p.stop;
    const id = `${chat ? "chatcmpl" : "cmpl"}-${Date.now().toString(36)}${(counter++).toString(36)}`;
    const created = Math.floor(Date.now() / 1000);
    const model = p.model ?? modelName;
    // Unseeded requests sample differently each time (as OpenAI's); a seed makes them reproducible.
    const seed = p.seed ?? crypto.getRandomValues(new Uint32Array(1))[0];
    const job = (i: number, stream: TextStream, onDelta?: (d: string) => void): Promise<GenerationResult> =>
      engine.generate({
        prompt,
        maxTokens,
        seed: seed + i,
        temperature: p.temperature,
        topP: p.topP,
        topK: p.topK,
        frequencyPenalty: p.frequencyPenalty,
        presencePenalty: p.presencePenalty,
        eos,
        signal,
        onToken: (t) => {
          const { delta, go } = stream.push(t);
          if (delta && onDelta) onDelta(delta);
          return go;
        },
      });
    const finish = (r: GenerationResult, s: TextStream): FinishReason => s.stopped ? "stop" : r.finishReason;
    if (!p.stream) {
      const streams = Array.from({ length: p.n }, () => new TextStream(codec, stop));
      const results = await Promise.all(streams.map((s, i) => job(i, s)));
      const choices = results.map((r, i) => {
        const text = streams[i].text;
        return chat
          ? { index: i, message: { role: "assistant", content: text }, finish_reason: finish(r, streams[i]) }
          : { index: i, text, logprobs: null, finish_reason: finish(r, streams[i]) };
      });
      return Response.json({
        id,
        object: chat ? "chat.completion" : "text_completion",
        created,
        model,
        choices,
        usage: usageOf(prompt.length, results),
      });
    }
    const enc = new TextEncoder();
    const object = chat ? "chat.completion.chunk" : "text_completion";
    const body$ = new ReadableStream<Uint8Array>({
      cancel() {
        abort.abort();
      },
      start(controller) {
        const send = (obj: unknown) => {
          try {
            controller.enqueue(enc.encode(`data: ${JSON.stringify(obj)}\n\n`));
          } catch { /* client gone */ }
        };
        const chunk = (i: number, content: string | null, reason: FinishReason | null, role = false) =>
          send({
            id,
            object,
            created,
            model,
            choices: [
              chat
                ? {
                  index: i,
                  delta: { ...(role ? { role: "assistant" } : {}), ...(content !== null ? { content } : {}) },
                  finish_reason: reason,
                }
                : { index: i, text: content ?? "", logprobs: null, finish_reason: reason },
            ],
            ...(p.includeUsage ? { usage: null } : {}), // as OpenAI: set in the last chunk only
          });
        const runs = Array.from({ length: p.n }, async (_, i) => {
          if (chat) chunk(i, "", null, true);
          const s = new TextStream(codec, stop);
          const r = await job(i, s, (d) => chunk(i, d, null));
          const rest = s.flush();
          if (rest) chunk(i, rest, null);
          chunk(i, chat ? null : "", finish(r, s));
          return r;
        });
        Promise.all(runs).then(
          (results) => {
            if (p.includeUsage) {
              send({ id, object, created, model, choices: [], usage: usageOf(prompt.length, results) });
            }
            try {
              controller.enqueue(enc.encode("data: [DONE]\n\n"));
              controller.close();
            } catch { /* client gone */ }
          },
          (e) => {
            send({ error: { message: (e as Error).message, type: "server_error", param: null, code: null } });
            try {
              controller.close();
            } catch { /* client gone */ }
          },
        );
      },
    });
    return new Response(body$, { headers: SSE_HEADERS });
  }

  return async (req: Request): Promise<Response> => {
    try {
      const path = new URL(req.url).pathname.replace(/\/+$/, "");
      if (path === "/health") {
        return Response.json({ status: "ok", running: engine.running, queued: engine.queued });
      }
      if (!path.startsWith("/v1/")) throw new ApiError(404, `no route ${req.method} ${path}`);
      if (opts.apiKey !== undefined && req.headers.get("authorization") !== `Bearer ${opts.apiKey}`) {
        throw new ApiError(
          401,
          "Incorrect or missing API key (send 'Authorization: Bearer KEY')",
          null,
          "invalid_api_key",
        );
      }
      if (path === "/v1/models" && req.method === "GET") {
        return Response.json({
          object: "list",
          data: [{ id: modelName, object: "model", created: 0, owned_by: "meditron" }],
        });
      }
      const chat = path === "/v1/chat/completions";
      if (!chat && path !== "/v1/completions") throw new ApiError(404, `no route ${req.method} ${path}`);
      if (req.method !== "POST") throw new ApiError(405, `${path} takes POST`);
      const body = await readJsonBody(req, maxBodyBytes);
      if (!isObject(body)) throw new ApiError(400, "the body must be a JSON object", null, "invalid_type");
      return await complete(body, chat, new AbortController());
    } catch (e) {
      if (e instanceof ApiError) return errorResponse(e);
      return errorResponse(new ApiError(500, (e as Error).message));
    }
  };
}
