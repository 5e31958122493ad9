/**
 * Data pipeline benchmark: throughput of `data tokenize` (MB/s of JSONL input, 1 and N workers, worker
 * start-up included, and in steady state) and of `data prepare` end to end (clean → combine → tokenize) on
 * the GAP-Replay fixture corpora replicated with distinct ids and texts.
 *
 * Run: `deno run -A bench/prepare.ts [--mb 64] [--workers 1,2] [--copies 20] [--repeat 2]` (each figure is
 * the best of `repeat` runs: the machine may be shared).
 *
 * @module
 */
import { join } from "node:path";
import { tokenizeJsonl, type TokenizeProgress, type TokenizeReport } from "../data/tokenize_job.ts";
import { loadPrepareConfig, prepare, type PrepareReport } from "../data/prepare.ts";
import { mulberry32 } from "../data/gpt_dataset.ts";
import { benchMain, defineBench } from "./common.ts";

const ROOT = new URL("../", import.meta.url).pathname;

/** ~`mb` MB of JSONL documents: sentences of the fixture corpora, shuffled, with numbers. */
async function syntheticCorpus(path: string, mb: number): Promise<number> {
  const fixtures = join(ROOT, "tests/data/fixtures/gap-replay");
  const sentences: string[] = [];
  for (const file of ["guidelines.jsonl", "abstracts.jsonl", "replay.jsonl"]) {
    for (const line of (await Deno.readTextFile(join(fixtures, file))).trim().split("\n")) {
      const r = JSON.parse(line) as Record<string, string>;
      sentences.push(...String(r.raw_text ?? r.abstract ?? r.text).split(/(?<=\.)\s+/));
    }
  }
  const rand = mulberry32(42);
  const enc = new TextEncoder();
  using f = await Deno.open(path, { write: true, create: true, truncate: true });
  let bytes = 0;
  for (let doc = 0; bytes < mb * 1e6; doc++) {
    const n = 5 + Math.floor(rand() * 60);
    const text = Array.from({ length: n }, () => sentences[Math.floor(rand() * sentences.length)]).join(" ");
    const line = enc.encode(JSON.stringify({ id: doc, text: `${doc}. ${text}` }) + "\n");
    await f.write(line);
    bytes += line.length;
  }
  return bytes;
}

/** The fixture corpora copied `copies` times with distinct ids and texts, and a config over them. */
async function scaledFixtures(dir: string, copies: number): Promise<number> {
  const fixtures = join(ROOT, "tests/data/fixtures/gap-replay");
  let bytes = 0;
  for (const file of ["guidelines.jsonl", "abstracts.jsonl", "papers.jsonl", "replay.jsonl"]) {
    const lines = (await Deno.readTextFile(join(fixtures, file))).trim().split("\n");
    const out: string[] = [];
    for (let c = 0; c < copies; c++) {
      for (const line of lines) {
        const r = JSON.parse(line) as Record<string, unknown>;
        if (typeof r.corpusid === "number") r.corpusid += c * 1_000_000;
        if (typeof r.raw_text === "string") r.raw_text = `Edition ${c}.\n${r.raw_text}`;
        if (typeof r.abstract === "string") r.abstract = `Cohort ${c}. ${r.abstract}`;
        if (typeof r.text === "string") r.text = `Part ${c}. ${r.text}`;
        out.push(JSON.stringify(r));
      }
    }
    const text = out.join("\n") + "\n";
    bytes += new TextEncoder().encode(text).length;
    await Deno.writeTextFile(join(dir, file), text);
  }
  return bytes;
}

/** The fastest of `repeat` runs. */
async function best<T extends { seconds: number }>(
  repeat: number,
  run: (i: number) => Promise<T>,
): Promise<T> {
  let fastest: T | undefined;
  for (let i = 0; i < repeat; i++) {
    const r = await run(i);
    if (!fastest || r.seconds < fastest.seconds) fastest = r;
  }
  return fastest!;
}

/** Runs the benchmark and prints the figures. */
async function run(
  { mb, workers: counts, copies, repeat }: { mb: number; workers: number[]; copies: number; repeat: number },
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "meditron-bench-prepare-" });
  try {
    const input = join(dir, "corpus.jsonl");
    const bytes = await syntheticCorpus(input, mb);
    const cores = navigator.hardwareConcurrency;
    console.log(`tokenize: ${(bytes / 1e6).toFixed(1)} MB of JSONL, Llama-2 tokenizer, ${cores} cores`);
    for (const workers of counts) {
      // Steady state: from the first written batch (workers started, caches warm) to the end.
      let first: TokenizeProgress | undefined;
      const r: TokenizeReport & { steady: number } = await best(repeat, async () => {
        first = undefined;
        const run = await tokenizeJsonl({
          input,
          outputPrefix: join(dir, `w${workers}`),
          workers,
          appendEod: true,
          onProgress: (p) => first ??= p,
        });
        return { ...run, steady: (bytes - first!.bytes) / 1e6 / (run.seconds - first!.seconds) };
      });
      console.log(
        `  ${workers} worker${workers > 1 ? "s" : " "}: ${r.mbPerSecond.toFixed(2)} MB/s end to end ` +
          `(${r.seconds.toFixed(1)} s for ${r.tokens} tokens, start-up included), ` +
          `${r.steady.toFixed(2)} MB/s after the first batch`,
      );
    }
    const src = join(dir, "fixtures");
    await Deno.mkdir(src);
    const raw = await scaledFixtures(src, copies);
    const config = await loadPrepareConfig(join(ROOT, "configs/gap-replay.yaml"));
    for (const s of config.sources) s.input = join(src, s.input.split("/").at(-1)!);
    const workers = Math.max(...counts);
    const r: PrepareReport = await best(
      repeat,
      (i) => prepare({ ...config, output: join(dir, `prepared${i}`), workers }),
    );
    const clean = Object.values(r.clean).reduce((a, c) => a + c.seconds, 0);
    console.log(
      `prepare: ${
        (raw / 1e6).toFixed(1)
      } MB of raw sources (fixtures x${copies}) -> ${r.dataset.tokens} tokens in ` +
        `${r.seconds.toFixed(1)} s = ${
          r.mb_per_second.toFixed(2)
        } MB/s end to end (${workers} workers; clean ` +
        `${clean.toFixed(1)} s, combine ${r.combine.seconds.toFixed(1)} s, tokenize ${
          r.tokenize.seconds.toFixed(1)
        } s)`,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** `deno task bench prepare`. */
export const bench = defineBench({
  name: "prepare",
  measures:
    `Throughput of \`data tokenize\` (MB/s of JSONL input with the Llama-2 tokenizer, for each worker count: end to
end with worker start-up, and in steady state) on a synthetic corpus, and of \`data prepare\` end to end
(clean, combine, tokenize) on the GAP-Replay fixture corpora replicated with distinct ids and texts. Each
figure is the best of --repeat runs (the machine may be shared).`,
  peer: "none outside: 1 worker next to N workers of the same job, and each stage's share of prepare",
  options: {
    mb: { type: "number", default: 64, min: 0.01, help: "MB of synthetic JSONL to tokenize" },
    workers: {
      type: "ints",
      default: [1, 2],
      min: 1,
      help: "worker counts to tokenize with; prepare uses the largest",
    },
    copies: { type: "int", default: 20, min: 1, help: "copies of the fixture corpora for prepare" },
    repeat: { type: "int", default: 2, min: 1, help: "runs of each figure; the fastest is reported" },
  },
  run,
});

if (import.meta.main) await benchMain(bench);
