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
import { type ChatTemplate, templateFor } from "../models/chat.ts";
import { BatchEngine, openAiHandler } from "../models/server.ts";
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
  --template NAME   chatml | medical-one-shot (default: chatml when the vocabulary has <|im_start|>)
  --max-tokens N    default max_tokens (default 256)
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
 * Loads a native run or an HF directory (converted to a temporary native checkpoint first) for generation;
 * `name` is what `/v1/models` and the chat banner show (default: the directory's name).
 *
 * @example
 * ```ts ignore
 * using m = await loadServingModel("runs/tiny");
 * ```
 */
export async function loadServingModel(
  path: string,
  template?: string,
  name?: string,
  device: Device = "cpu",
): Promise<ServingModel> {
  const { model, meta } = await openAnyModel(path, { device });
  const cfg = meta.config;
  try {
    return {
      model,
      tokenizer: tokenizerFor(cfg.model.vocab_size),
      template: templateFor(cfg.model.vocab_size, template),
      name: name ?? (basename(path.replace(/\/+$/, "")) || cfg.name),
      [Symbol.dispose]: () => model.dispose(),
    };
  } catch (e) {
    model.dispose();
    throw e;
  }
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
  using m = await loadServingModel(
    await resolveModelArg(v.model!),
    v.template,
    v.model,
    deviceFlag(v.device),
  );
  using engine = new BatchEngine(m.model, int("slots", v.slots, 1, 8));
  const handler = openAiHandler({
    engine,
    codec: m.tokenizer,
    template: m.template,
    modelName: m.name,
    apiKey: v["api-key"],
    defaultMaxTokens: int("max-tokens", v["max-tokens"], 1, 256),
  });
  const stop = new AbortController();
  const server = Deno.serve({
    hostname: v.host,
    port: int("port", v.port, 0, 8000),
    signal: stop.signal,
    onListen: ({ hostname, port }) => {
      // One parseable line: tests and scripts read the port from it.
      console.log(`listening on http://${hostname}:${port} (model ${m.name}, template ${m.template.name})`);
    },
  }, handler);
  const quit = () => stop.abort();
  Deno.addSignalListener("SIGINT", quit);
  Deno.addSignalListener("SIGTERM", quit);
  await server.finished;
  Deno.removeSignalListener("SIGINT", quit);
  Deno.removeSignalListener("SIGTERM", quit);
}

if (import.meta.main) await runMain(main, HELP);
