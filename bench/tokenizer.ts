/**
 * Tokenizer benchmark: encode throughput (MB/s of UTF-8 input) of our pure-TypeScript Llama-2 tokenizer
 * against HF's Rust `tokenizers` (npm `@anush008/tokenizers`), on ~5 MB of deterministic English/medical
 * text, single-threaded and with N Deno workers.
 *
 * Run: `deno task bench tokenizer [--mb 5] [--workers 1,2]`
 *
 * @module
 */
import { Tokenizer as HFTokenizer } from "@anush008/tokenizers";
import { llama2TokenizerJson, Tokenizer } from "../data/tokenizer.ts";
import type { TokenizerWorkerRequest, TokenizerWorkerResult } from "../data/tokenizer_worker.ts";
import { benchMain, defineBench } from "./common.ts";

const COMMON =
  ("the of and to in a is that for it as was with be by on not he this are or his from at which but " +
    "have an they one you were her all she there would their we him been has when who will more no if out so said " +
    "what up its about into than them can only other new some could time these two may then do first any my now " +
    "such like our over man me even most made after also did many before must through back years where much your " +
    "way well down should because each just those people how too little state good very make world still own see " +
    "men work long get here between both life being under never day same another know while last might us great old")
    .split(" ");

const MEDICAL =
  ("patient patients diagnosis treatment therapy clinical trial randomized placebo cohort mortality " +
    "morbidity myocardial infarction hypertension diabetes mellitus insulin glucose hemoglobin HbA1c sepsis " +
    "antibiotic amoxicillin vancomycin ceftriaxone pneumonia tuberculosis malaria HIV antiretroviral CD4 " +
    "oncology carcinoma metastasis chemotherapy radiotherapy immunotherapy biopsy histopathology MRI CT " +
    "echocardiography ejection fraction troponin creatinine eGFR dialysis nephropathy retinopathy neuropathy " +
    "stroke thrombolysis anticoagulation warfarin heparin apixaban INR COPD asthma bronchodilator corticosteroid " +
    "pediatric neonatal obstetric preeclampsia gestational postpartum vaccine vaccination immunization " +
    "epidemiology prevalence incidence sensitivity specificity meta-analysis systematic review guideline WHO")
    .split(" ");

const UNITS = ["mg", "mg/dL", "mmol/L", "mmHg", "µg/kg", "mL/min", "°C", "%", "IU", "kg/m²", "bpm"];
const EXTRAS = [
  "café-au-lait",
  "Sjögren",
  "Guillain–Barré",
  "naïve",
  "β-blocker",
  "α-fetoprotein",
  "≥",
  "±",
  "→",
];

/** Deterministic PRNG (mulberry32). */
function rng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function sentence(next: () => number): string {
  const pick = (list: readonly string[]) => list[Math.floor(next() * list.length)];
  const words: string[] = [];
  const length = 6 + Math.floor(next() * 22);
  for (let i = 0; i < length; i++) {
    const r = next();
    if (r < 0.62) words.push(pick(COMMON));
    else if (r < 0.88) words.push(pick(MEDICAL));
    else if (r < 0.95) words.push(`${(next() * 500).toFixed(next() < 0.5 ? 0 : 1)} ${pick(UNITS)}`);
    else if (r < 0.98) words.push(pick(EXTRAS));
    else words.push(`(n = ${Math.floor(next() * 5000)}; p < 0.0${1 + Math.floor(next() * 5)}) [${i}]`);
  }
  const text = words.join(next() < 0.05 ? "  " : " ");
  return text[0].toUpperCase() + text.slice(1) + (next() < 0.1 ? "?" : ".");
}

/** ~`megabytes` MB of documents (paragraphs of sentences), the same on every run. */
function corpus(megabytes: number): string[] {
  const next = rng(42);
  const documents: string[] = [];
  for (let total = 0; total < megabytes * 1e6;) {
    const paragraphs: string[] = [];
    const count = 1 + Math.floor(next() * 8);
    for (let p = 0; p < count; p++) {
      paragraphs.push(Array.from({ length: 2 + Math.floor(next() * 6) }, () => sentence(next)).join(" "));
    }
    const document = paragraphs.join("\n\n");
    documents.push(document);
    total += document.length;
  }
  return documents;
}

interface Row {
  name: string;
  threads: string;
  seconds: number;
  tokens: number;
}

async function timed(run: () => Promise<number> | number): Promise<{ seconds: number; tokens: number }> {
  const start = performance.now();
  const tokens = await run();
  return { seconds: (performance.now() - start) / 1000, tokens };
}

async function hfTokenizer(): Promise<HFTokenizer> {
  const dir = await Deno.makeTempDir({ prefix: "bench_tokenizer_" });
  await Deno.writeTextFile(`${dir}/tokenizer.json`, JSON.stringify(llama2TokenizerJson()));
  const tokenizer = HFTokenizer.fromFile(`${dir}/tokenizer.json`);
  await Deno.remove(dir, { recursive: true });
  return tokenizer;
}

async function hfSequential(hf: HFTokenizer, documents: string[]): Promise<number> {
  let tokens = 0;
  for (const document of documents) tokens += (await hf.encode(document)).getLength();
  return tokens;
}

function ask(worker: Worker, message: unknown, transfer: Transferable[] = []): Promise<unknown> {
  return new Promise((resolve, reject) => {
    worker.onmessage = (event) => resolve(event.data);
    worker.onerror = (event) => reject(new Error(event.message));
    worker.postMessage(message, transfer);
  });
}

/** Encodes `documents` on `count` workers, each pulling the next chunk when done; returns the token count. */
async function workersEncode(workers: Worker[], documents: string[], chunk = 32): Promise<number> {
  let nextIndex = 0;
  let tokens = 0;
  await Promise.all(workers.map(async (worker) => {
    while (nextIndex < documents.length) {
      const request: TokenizerWorkerRequest = {
        texts: documents.slice(nextIndex, nextIndex += chunk),
        options: {},
      };
      const result = (await ask(worker, request)) as TokenizerWorkerResult;
      tokens += result.ids.length; // not `tokens += await ...`: that would read `tokens` before awaiting
    }
  }));
  return tokens;
}

async function startWorkers(count: number): Promise<Worker[]> {
  const url = new URL("../data/tokenizer_worker.ts", import.meta.url);
  const workers = Array.from({ length: count }, () => new Worker(url, { type: "module" }));
  await Promise.all(workers.map((worker) => ask(worker, { llama2: {} })));
  return workers;
}

function printTable(rows: Row[], bytes: number): void {
  const baseline = rows.find((r) => r.name.startsWith("HF"))!;
  const rate = (r: Row) => bytes / 1e6 / r.seconds;
  console.log(`\n${(bytes / 1e6).toFixed(2)} MB UTF-8, ${baseline.tokens} tokens\n`);
  console.log("| tokenizer                        | threads | MB/s   | × HF (1 thread) |");
  console.log("| -------------------------------- | ------- | ------ | --------------- |");
  for (const r of rows) {
    const ratio = (rate(r) / rate(baseline)).toFixed(2);
    console.log(
      `| ${r.name.padEnd(32)} | ${r.threads.padEnd(7)} | ${rate(r).toFixed(2).padStart(6)} | ${
        ratio.padStart(15)
      } |`,
    );
  }
}

/**
 * Runs the benchmark and prints a table of MB/s per tokenizer and thread count, with the ratio to HF's Rust
 * tokenizer on one thread. Token counts are checked equal across all runs.
 */
async function run(
  { mb: megabytes, workers: workerCounts }: { mb: number; workers: number[] },
): Promise<void> {
  const documents = corpus(megabytes);
  const bytes = documents.reduce((sum, d) => sum + new TextEncoder().encode(d).length, 0);
  const warmup = documents.slice(0, Math.ceil(documents.length / 20));
  const rows: Row[] = [];

  const hf = await hfTokenizer();
  await hfSequential(hf, warmup);
  rows.push({
    name: "HF tokenizers (Rust, napi)",
    threads: "1",
    ...await timed(() => hfSequential(hf, documents)),
  });
  const batch = await timed(async () =>
    (await hf.encodeBatch(documents)).reduce((n, e) => n + e.getLength(), 0)
  );
  rows.push({ name: "HF tokenizers encodeBatch", threads: "all", ...batch });

  const ours = Tokenizer.llama2();
  ours.encodeBatch(warmup);
  const single = await timed(() => ours.encodeBatch(documents).reduce((n, ids) => n + ids.length, 0));
  rows.push({ name: "ours (TypeScript)", threads: "1", ...single });

  for (const count of workerCounts) {
    const workers = await startWorkers(count);
    await workersEncode(workers, warmup);
    rows.push({
      name: "ours, Deno workers",
      threads: String(count),
      ...await timed(() => workersEncode(workers, documents)),
    });
    workers.forEach((w) => w.terminate());
  }
  const mismatch = rows.find((r) => r.tokens !== rows[0].tokens);
  if (mismatch) {
    throw new Error(`token count differs: ${mismatch.name} ${mismatch.tokens} vs ${rows[0].tokens}`);
  }
  printTable(rows, bytes);
}

/** `deno task bench tokenizer`. */
export const bench = defineBench({
  name: "tokenizer",
  measures:
    `Encode throughput (MB/s of UTF-8 input) of our pure-TypeScript Llama-2 tokenizer, on one thread and with
--workers Deno workers, on ~--mb MB of deterministic English/medical text; token counts must agree.`,
  peer:
    "HF tokenizers (Rust, npm @anush008/tokenizers) on the same text: one document at a time and encodeBatch",
  options: {
    mb: { type: "number", default: 5, min: 0.01, help: "MB of text to encode" },
    workers: { type: "ints", default: [1, 2], min: 1, help: "Deno worker counts to run ours with" },
  },
  run,
});

if (import.meta.main) await benchMain(bench);
