/**
 * `bench serve`: throughput of the OpenAI-compatible server (real HTTP on 127.0.0.1) on the tiny model —
 * requests/s and generated tokens/s at 1, 4 and 16 concurrent clients, with continuous batching (16 slots)
 * and one-at-a-time (1 slot) in the same run, and the batching gain.
 *
 * Every request asks for the same number of tokens at temperature 0; a request may end early at EOS, so tokens/s
 * counts the generated tokens each response reports in `usage`.
 *
 * @module
 */
import { setNumThreads } from "../runtime/mod.ts";
import { BatchEngine, openAiHandler } from "../models/server.ts";
import { loadServingModel } from "../cli/serve.ts";
import { benchMain, defineBench } from "./common.ts";

/** One measured configuration. */
export interface ServeFigure {
  /** KV-cache slots of the engine (1: one request at a time). */
  slots: number;
  /** Concurrent clients. */
  clients: number;
  /** Requests completed. */
  requests: number;
  /** Requests per second. */
  requestsPerS: number;
  /** Generated tokens per second. */
  tokensPerS: number;
}

const PROMPTS = [
  "What is the first-line treatment of community-acquired pneumonia?",
  "Which test confirms iron deficiency anemia?",
  "Describe the complications of untreated type 2 diabetes.",
  "What causes a pulmonary embolism?",
];

/** Measures `requests` completions at `clients` concurrency against a server with `slots` slots. */
export async function measure(
  modelPath: string,
  slots: number,
  clients: number,
  requests: number,
  maxTokens: number,
): Promise<ServeFigure> {
  using m = await loadServingModel(modelPath);
  using engine = new BatchEngine(m.model, slots);
  const handler = openAiHandler({ engine, codec: m.tokenizer, template: m.template, modelName: m.name });
  const ready = Promise.withResolvers<number>();
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: (a) => ready.resolve(a.port) },
    handler,
  );
  const url = `http://127.0.0.1:${await ready.promise}/v1/completions`;
  let next = 0, tokens = 0;
  const client = async () => {
    while (next < requests) {
      const i = next++;
      const r = await fetch(url, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ prompt: PROMPTS[i % PROMPTS.length], max_tokens: maxTokens, temperature: 0 }),
      });
      const j = await r.json();
      if (!r.ok) throw new Error(`HTTP ${r.status}: ${JSON.stringify(j)}`);
      tokens += j.usage.completion_tokens;
    }
  };
  const t0 = performance.now();
  await Promise.all(Array.from({ length: clients }, client));
  const s = (performance.now() - t0) / 1000;
  await server.shutdown();
  return { slots, clients, requests, requestsPerS: requests / s, tokensPerS: tokens / s };
}

/** Runs every configuration and prints the table. */
async function run(
  v: { model: string; requests: number; "max-tokens": number; threads: number },
): Promise<void> {
  await setNumThreads(v.threads);
  const requests = v.requests, maxTokens = v["max-tokens"];
  const rows: ServeFigure[] = [];
  for (const clients of [1, 4, 16]) {
    for (const slots of [16, 1]) {
      if (clients === 1 && slots === 1) continue; // the same as 16 slots with one client
      rows.push(await measure(v.model, slots, clients, requests, maxTokens));
    }
  }
  console.log(`server throughput, ${v.model}, ${requests} requests of ${maxTokens} tokens, temperature 0\n`);
  console.log("| clients | slots | requests/s | generated tokens/s | batching gain |");
  console.log("|---:|---:|---:|---:|---:|");
  for (const r of rows) {
    const single = rows.find((x) => x.clients === r.clients && x.slots === 1) ??
      rows.find((x) => x.clients === 1 && x.slots === 16)!;
    const gain = r.slots > 1 ? `${(r.tokensPerS / single.tokensPerS).toFixed(2)}x` : "1.00x (one at a time)";
    console.log(
      `| ${r.clients} | ${r.slots} | ${r.requestsPerS.toFixed(2)} | ${r.tokensPerS.toFixed(1)} | ${gain} |`,
    );
  }
}

/** `deno task bench serve`. */
export const bench = defineBench({
  name: "serve",
  measures:
    `Throughput of the OpenAI-compatible server (real HTTP on 127.0.0.1, /v1/completions at temperature 0):
requests/s and generated tokens/s at 1, 4 and 16 concurrent clients with continuous batching (16 slots), and
the batching gain. A request may end early at EOS: tokens/s counts the tokens each response reports.`,
  peer: "the same server with 1 slot (one request at a time), in the same run",
  options: {
    model: {
      type: "string",
      default: "runs/tiny",
      arg: "PATH",
      help: "model to serve: a run or an HF directory",
    },
    requests: { type: "int", default: 32, min: 1, help: "requests per configuration" },
    "max-tokens": { type: "int", default: 32, min: 1, help: "max_tokens of each request" },
    threads: { type: "int", default: 0, min: 0, help: "kernel threads; 0: all cores" },
  },
  run,
});

if (import.meta.main) await benchMain(bench);
