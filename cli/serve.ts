/**
 * `deno task serve`: an OpenAI-compatible HTTP server (chat and text completions, streaming) with continuous
 * batching, on 127.0.0.1 by default.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { basename } from "node:path";
import { type Device, type NativeModel, setNumThreads } from "../runtime/mod.ts";
import { openAnyModel } from "../models/convert/mod.ts";
import { type ChatTemplate, fitTemplate, promptBudget } from "../models/chat.ts";
import { BatchEngine, DEFAULT_MAX_BODY_BYTES, openAiHandler } from "../models/server.ts";
import { Tokenizer } from "../data/tokenizer.ts";
import { deviceFlag, resolveModelArg, runMain, UsageError } from "./common.ts";

const HELP = `Usage: deno task serve --model RUN|HFDIR [options]

Serves a model over an OpenAI-compatible API: POST /v1/chat/completions, POST /v1/completions (model,
messages/prompt, max_tokens, temperature, top_p, stop, n, seed, frequency_penalty, presence_penalty,
stream), GET /v1/models, GET /health. Requests are decoded together (continuous batching over --slots).

Options:
  --model PATH      native run (dir, checkpoints/ or iter_*), Hugging Face directory, or hub model
                    org/name[@revision] (default runs/tiny)
  --host HOST       listen address (default 127.0.0.1)
  --port N          port (default 8000; 0 picks a free one)
  --slots N         sequences decoded together (default 8)
  --api-key KEY     require 'Authorization: Bearer KEY' on /v1/*
  --template NAME   chatml | medical-one-shot | medical-zero-shot (default: chatml when the vocabulary has
                    <|im_start|>, else medical-one-shot, or medical-zero-shot (no worked example, no
                    default system message) when the context cannot hold them)
  --max-tokens N    default max_tokens (default 256)
  --max-body-mb N   largest request body in MiB; larger ones get 413 (default 4)
  --no-verify       skip sha256 verification of checkpoint shards
  --threads N       kernel threads (default: all cores)
  --device cpu|cuda where the model runs (cuda: deno task build --cuda, MEDITRON_LIB=runtime/build-cuda/…)
  --debug           show stack traces on errors
  -h, --help        this help

Examples:
  deno task serve --model runs/tiny-sft --port 8000
  curl -s localhost:8000/v1/chat/completions -d '{"messages":[{"role":"user","content":"Hi"}],"max_tokens":16}'
`;

/** A model ready to generate: the native model, its tokenizer and chat template. */
export interface ServingModel extends Disposable {
  /** The native model. */
  model: NativeModel;
  /** Its tokenizer. */
  tokenizer: Tokenizer;
  /** Its chat template. */
  template: ChatTemplate;
  /** A name (the run's). */
  name: string;
  /** Set when the default template did not fit the model's context and a shorter one was chosen. */
  notice?: string;
}

/** Options of {@linkcode loadServingModel}. */
export interface ServingOptions {
  /** Chat template name (default: from the vocabulary; see {@linkcode fitTemplate}). */
  template?: string;
  /** What `/v1/models` and the chat banner show (default: the directory's name). */
  name?: string;
  /** Where the model runs (default "cpu"). */
  device?: Device;
  /** Verify the sha256 of every checkpoint shard (default true). */
  verify?: boolean;
  /** Answer length the chat prompts leave room for ({@linkcode promptBudget}; default 256). */
  maxTokens?: number;
  /** System message of the conversations (default: the template's). */
  system?: string;
  /** What the user can change when the template does not fit the context (appended to the error). */
  hint?: string;
}

/** Tokenizer of a vocabulary size (plain or bracket Llama-2, with or without the chat tokens). */
export function tokenizerFor(vocab: number): Tokenizer {
  switch (vocab) {
    case 32000:
      return Tokenizer.llama2();
    case 32002:
      return Tokenizer.llama2({ chatTokens: true });
    case 32012:
      return Tokenizer.llama2({ bracketTokens: true });
    case 32014:
      return Tokenizer.llama2({ bracketTokens: true, chatTokens: true });
    default:
      throw new Error(`vocabulary of ${vocab} tokens: no matching Llama-2 tokenizer`);
  }
}

/**
 * Loads a native run or an HF directory (converted to a temporary native checkpoint first) for generation,
 * with a chat template whose fixed part fits the model's context ({@linkcode fitTemplate}).
 *
 * @example
 * ```ts ignore
 * using m = await loadServingModel("runs/tiny", { verify: false });
 * ```
 */
export async function loadServingModel(path: string, opts: ServingOptions = {}): Promise<ServingModel> {
  const { model, meta } = await openAnyModel(path, { device: opts.device, verify: opts.verify });
  const cfg = meta.config;
  try {
    const tokenizer = tokenizerFor(cfg.model.vocab_size);
    const fit = fitTemplate(cfg.model.vocab_size, opts.template, {
      budget: promptBudget(model.dims.maxSeq, opts.maxTokens ?? 256),
      countTokens: (text) => tokenizer.encode(text, { addBos: true }).length,
      system: opts.system,
      hint: opts.hint,
    });
    return {
      model,
      tokenizer,
      template: fit.template,
      notice: fit.notice,
      name: opts.name ?? (basename(path.replace(/\/+$/, "")) || cfg.name),
      [Symbol.dispose]: () => model.dispose(),
    };
  } catch (e) {
    model.dispose();
    throw e;
  }
}

/** The model flags `chat` and `serve` share. */
export interface ModelFlags {
  /** --model: run, HF directory or hub model. */
  model?: string;
  /** --template. */
  template?: string;
  /** --device. */
  device?: string;
  /** --no-verify. */
  "no-verify"?: boolean;
}

/** Loads the model of `chat`'s or `serve`'s flags (see {@linkcode loadServingModel}). */
export async function loadFlaggedModel(
  v: ModelFlags,
  opts: Pick<ServingOptions, "maxTokens" | "system" | "hint">,
): Promise<ServingModel> {
  const model = v.model ?? "runs/tiny";
  return await loadServingModel(await resolveModelArg(model), {
    ...opts,
    template: v.template,
    name: model,
    device: deviceFlag(v.device),
    verify: !v["no-verify"],
  });
}

/** `Deno.serve`'s error for a taken address, saying which one and what to do. */
function listenError(e: unknown, host: string, port: number): unknown {
  return e instanceof Deno.errors.AddrInUse
    ? new Error(`cannot listen on ${host}:${port}: the address is already in use (choose another --port)`)
    : e;
}

function int(flag: string, v: string | undefined, min: number, dflt: number): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw new UsageError(`--${flag} must be an integer >= ${min}`);
  return n;
}

/** Entry point: serves until SIGINT/SIGTERM. */
export async function main(args: string[]): Promise<void> {
  const { values: v } = parseArgs({
    args,
    strict: true,
    options: {
      model: { type: "string", default: "runs/tiny" },
      host: { type: "string", default: "127.0.0.1" },
      port: { type: "string" },
      slots: { type: "string" },
      "api-key": { type: "string" },
      template: { type: "string" },
      "max-tokens": { type: "string" },
      "max-body-mb": { type: "string" },
      "no-verify": { type: "boolean" },
      threads: { type: "string" },
      device: { type: "string", default: "cpu" },
      debug: { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (v.help) {
    console.log(HELP);
    return;
  }
  await setNumThreads(int("threads", v.threads, 0, 0));
  const host = v.host!, port = int("port", v.port, 0, 8000);
  const slots = int("slots", v.slots, 1, 8), maxTokens = int("max-tokens", v["max-tokens"], 1, 256);
  const maxBodyBytes = int("max-body-mb", v["max-body-mb"], 1, DEFAULT_MAX_BODY_BYTES / 2 ** 20) * 2 ** 20;
  if (port !== 0) {
    try {
      Deno.listen({ hostname: host, port }).close(); // a taken port fails here, before the model loads
    } catch (e) {
      throw listenError(e, host, port);
    }
  }
  using m = await loadFlaggedModel(v, {
    maxTokens,
    hint: "a lower --max-tokens",
  });
  if (m.notice) console.error(`note: ${m.notice}`);
  using engine = new BatchEngine(m.model, slots);
  const handler = openAiHandler({
    engine,
    codec: m.tokenizer,
    template: m.template,
    modelName: m.name,
    apiKey: v["api-key"],
    defaultMaxTokens: maxTokens,
    maxBodyBytes,
  });
  const stop = new AbortController();
  let server: Deno.HttpServer;
  try {
    server = Deno.serve({
      hostname: host,
      port,
      signal: stop.signal,
      onListen: ({ hostname, port }) => {
        // One parseable line: tests and scripts read the port from it.
        console.log(`listening on http://${hostname}:${port} (model ${m.name}, template ${m.template.name})`);
      },
    }, handler);
  } catch (e) {
    throw listenError(e, host, port);
  }
  const quit = () => stop.abort();
  Deno.addSignalListener("SIGINT", quit);
  Deno.addSignalListener("SIGTERM", quit);
  await server.finished;
  Deno.removeSignalListener("SIGINT", quit);
  Deno.removeSignalListener("SIGTERM", quit);
}

if (import.meta.main) await runMain(main, HELP);
