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
import { parseArgs } from "node:util";
import { setNumThreads } from "../runtime/mod.ts";
import { BatchEngine, openAiHandler } from "../models/server.ts";
import { loadServingModel } from "../cli/serve.ts";

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

/** Entry point: `deno task bench serve [--model runs/tiny] [--requests 32] [--max-tokens 32]`. */
export async function main(args: string[]): Promise<void> {
  const { values: v } = parseArgs({
    args,
    strict: true,
    options: {
      model: { type: "string", default: "runs/tiny" },
      requests: { type: "string", default: "32" },
      "max-tokens": { type: "string", default: "32" },
      threads: { type: "string", default: "0" },
    },
  });
  await setNumThreads(Number(v.threads));
  const requests = Number(v.requests), maxTokens = Number(v["max-tokens"]);
  const rows: ServeFigure[] = [];
  for (const clients of [1, 4, 16]) {
    for (const slots of [16, 1]) {
      if (clients === 1 && slots === 1) continue; // the same as 16 slots with one client
      rows.push(await measure(v.model!, slots, clients, requests, maxTokens));
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

if (import.meta.main) await main(Deno.args);
