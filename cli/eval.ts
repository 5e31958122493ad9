/**
 * `deno task eval <benchmark|all>`: evaluates a trained model on MedQA, MedMCQA, PubMedQA, MMLU-medical or the
 * generated demo set with Meditron's protocol; writes `{bench}.json`, a markdown table and the generations
 * JSONL under the run directory's `eval/`.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { basename, dirname, join } from "node:path";
import { Tokenizer } from "../data/tokenizer.ts";
import { conditionsOfSystems } from "../data/embedded/knowledge.ts";
import { parseRepoRef, snapshotDownload, snapshotFiles } from "../data/hub.ts";
import { NativeLanguageModel } from "../models/lm.ts";
import type { Device } from "../runtime/mod.ts";
import {
  type Benchmark,
  BENCHMARK_NAMES,
  type BenchmarkName,
  checkModeFormat,
  EVAL_MODES,
  type EvalMode,
  type EvalOptions,
  type EvalResult,
  evaluate,
  FEWSHOT_SEEDS,
  HUB_BENCHMARK_REPOS,
  hubBenchmarkFiles,
  isBenchmarkName,
  loadBenchmark,
  loadHubBenchmark,
  markdownTable,
  type PromptFormat,
  writeResult,
} from "../eval/mod.ts";
import { Progress } from "./progress.ts";
import { openAnyModel } from "../models/convert/mod.ts";
import {
  deviceFlag,
  hubProgress,
  resolveDatasetArg,
  resolveModelArg,
  runMain,
  UsageError,
} from "./common.ts";

const HELP = `Usage: deno task eval <${[...BENCHMARK_NAMES, "all"].join("|")}> [options]

Evaluates a trained model with Meditron's protocol and writes <run>/eval/{bench}.json, {bench}.md and
{bench}.generations.jsonl. Without --data a benchmark is fetched from its Hugging Face Hub dataset (below; the
output names it) into the hub cache; 'demo' (and 'all' without --data) is the DEMO SET generated from the
embedded knowledge base, offline.

Benchmarks (--data: the files as published, or a hub dataset org/name[@revision]):
  medqa     jind11 .jsonl (test.jsonl, 4_options/phrases_no_exclude_test.jsonl) or its directory, or the
            HF GBaker/MedQA-USMLE-4-options-hf shape; demonstrations from the matching train file
  medmcqa   dev.json (JSON Lines) or its directory; raw 1-based or HF 0-based 'cop' detected
  pubmedqa  directory with ori_pqal.json and test_ground_truth.json (or test_set.json)
  mmlu      MMLU data directory ({subject}_test.csv / {subject}_dev.csv, flat or test/ dev/), 9 medical subjects
  demo      generated from the embedded knowledge base (no --data)
  all       every benchmark: --data DIR holds medqa/, medmcqa/, pubmedqa/, mmlu/ (missing ones are skipped and
            named), or --data hub takes each from its hub dataset below; one table at the end

Hub datasets used without --data:
${Object.entries(HUB_BENCHMARK_REPOS).map(([b, r]) => `  ${b.padEnd(9)} ${r}`).join("\n")}

Options:
  --data PATH|REPO      benchmark file or directory (see above), or a hub dataset org/name[@revision]
  --model RUN|HF|REPO   run directory, checkpoints/ or iter_* directory, a Hugging Face directory, or a hub
                        model org/name[@revision] (default: runs/tiny)
  --shots K             demonstrations per prompt (default 0)
  --seeds A,B,C         few-shot seeds, reported as mean ± std (default ${FEWSHOT_SEEDS.join(",")})
  --mode MODE           ${EVAL_MODES.join(" | ")} (default loglik: score each option letter / yes-no-maybe)
  --samples N           sc-cot samples per question (default 5)
  --temperature X       sc-cot sampling temperature (default 0.8)
  --max-tokens N        generated tokens per answer (default greedy 8, 16 with shots; cot 1024)
  --chat                wrap prompts in <|im_start|>question … <|im_start|>answer (finetuned models)
  --format F            meditron (default) | harness (lm-evaluation-harness prompts: "Question: …\\nA. …\\nAnswer:")
                        | continuation (the harness's "Question: …\\nAnswer:" without options; --mode cloze)
  --limit N             only the first N test questions
  --systems LIST        demo set only: questions (and distractors) about these organ systems, e.g.
                        cardiovascular,respiratory, for a model pretrained with --systems (default all)
  --out DIR             output directory (default: <run>/eval)
  --no-verify           skip sha256 verification of checkpoint shards
  --device cpu|cuda     where the model runs (cuda: deno task build --cuda, MEDITRON_LIB=runtime/build-cuda/…)
  --debug               show stack traces on errors
  -h, --help            this help

Hub: HF_ENDPOINT, HF_TOKEN (gated repositories), HF_HOME / HF_HUB_CACHE (cache), HF_HUB_OFFLINE=1 (cache only).

Examples:
  deno task eval demo
  deno task eval demo --model runs/focus --systems cardiovascular,respiratory --mode cloze --format continuation
  deno task eval medqa --model epfl-llm/meditron-7b
  deno task eval medmcqa --data openlifescienceai/medmcqa --shots 3
  deno task eval all --data hub --model epfl-llm/meditron-7b
  deno task eval medqa --data data/medqa/4_options/phrases_no_exclude_test.jsonl --model runs/tiny
  deno task eval medmcqa --data data/medmcqa --shots 3 --seeds 1234,432,32
  deno task eval pubmedqa --data data/pubmedqa --mode greedy
  deno task eval medqa --data data/medqa --mode sc-cot --samples 5 --temperature 0.8 --chat
  deno task eval all --data data/benchmarks --limit 200
`;

function parse(args: string[]) {
  const { values, positionals } = parseArgs({
    args,
    strict: true,
    allowPositionals: true,
    options: {
      data: { type: "string" },
      model: { type: "string", default: "runs/tiny" },
      shots: { type: "string", default: "0" },
      seeds: { type: "string" },
      mode: { type: "string", default: "loglik" },
      samples: { type: "string" },
      temperature: { type: "string" },
      "max-tokens": { type: "string" },
      chat: { type: "boolean" },
      format: { type: "string", default: "meditron" },
      limit: { type: "string" },
      systems: { type: "string" },
      out: { type: "string" },
      "no-verify": { type: "boolean" },
      device: { type: "string", default: "cpu" },
      debug: { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
  });
  return { values, positionals };
}

function int(flag: string, v: string | undefined, min: number): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) {
    throw new UsageError(`--${flag} must be a whole number ≥ ${min}, got '${v}'`);
  }
  return n;
}

function num(flag: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new UsageError(`--${flag} must be a number ≥ 0, got '${v}'`);
  return n;
}

/** Reads the CLI options into {@linkcode EvalOptions}. */
function evalOptions(values: ReturnType<typeof parse>["values"]): EvalOptions {
  const mode = values.mode as EvalMode;
  if (!EVAL_MODES.includes(mode)) {
    throw new UsageError(`unknown --mode '${values.mode}' (${EVAL_MODES.join(", ")})`);
  }
  const format = values.format as PromptFormat;
  try {
    checkModeFormat(mode, format);
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  const seeds = values.seeds?.split(",").map((s) => int("seeds", s.trim(), 0)!);
  return {
    mode,
    shots: int("shots", values.shots, 0),
    seeds,
    chat: values.chat ?? false,
    format,
    limit: int("limit", values.limit, 1),
    samples: int("samples", values.samples, 1),
    temperature: num("temperature", values.temperature),
    maxTokens: int("max-tokens", values["max-tokens"], 1),
  };
}

/** The run directory of a --model path (a run dir, its checkpoints/, or an iter_* dir). */
function runDirOf(modelPath: string, checkpointDir: string): string {
  const parent = dirname(checkpointDir);
  return basename(parent) === "checkpoints" ? dirname(parent) : modelPath;
}

/** The benchmarks to run and their data paths; `all` without --data is the demo set only. */
async function plan(target: string, data: string | undefined, say: (s: string) => void) {
  const loud = (s: string) => say(`\n${"!".repeat(100)}\n!! ${s}\n${"!".repeat(100)}`);
  if (target !== "all") {
    const name = target as BenchmarkName;
    if (name !== "demo" && data === undefined) {
      const repo = HUB_BENCHMARK_REPOS[name];
      loud(`NO --data GIVEN: evaluating ${name} from the Hugging Face Hub dataset ${repo}`);
      return [{ name, data: repo, hub: true }];
    }
    return [{ name, data }];
  }
  if (data === undefined) {
    loud("NO --data GIVEN: 'all' evaluates only the DEMO SET (generated from the embedded knowledge base)");
    return [{ name: "demo" as BenchmarkName, data: undefined }];
  }
  // "hub" names the hub datasets unless a local directory of that name exists (a path always wins).
  if (data === "hub" && !(await Deno.stat(data).then(() => true, () => false))) {
    loud(
      `--data hub: every benchmark from its Hugging Face Hub dataset (${
        Object.values(HUB_BENCHMARK_REPOS).join(", ")
      })`,
    );
    return BENCHMARK_NAMES.map((name) =>
      name === "demo" ? { name, data: undefined } : { name, data: HUB_BENCHMARK_REPOS[name], hub: true }
    );
  }
  const out: { name: BenchmarkName; data: string | undefined }[] = [];
  for (const name of BENCHMARK_NAMES) {
    if (name === "demo") {
      out.push({ name, data: undefined });
      continue;
    }
    const dir = join(data, name);
    const found = await Deno.stat(dir).then(() => true, () => false);
    if (found) out.push({ name, data: dir });
    else loud(`SKIPPING ${name}: no ${dir}`);
  }
  return out;
}

/**
 * A benchmark from a local path or a hub dataset (`org/name[@rev]`; only the files it needs are fetched);
 * `hub`: `data` is the benchmark's default repository, never a local path.
 */
async function load(
  name: BenchmarkName,
  data: string | undefined,
  log: Progress,
  hub: boolean,
  systems?: string,
): Promise<Benchmark> {
  if (name === "demo" || data === undefined) return await loadBenchmark(name, data, { systems });
  const select = (files: string[]) => hubBenchmarkFiles(name, files);
  const dir = hub
    ? await snapshotDownload(parseRepoRef(data, "dataset")!, { select, ...hubProgress(log) })
    : await resolveDatasetArg(data, select, log).then((r) => r.repo ? r.path : undefined);
  if (dir === undefined) return await loadBenchmark(name, data);
  return await loadHubBenchmark(name, dir, await snapshotFiles(dir), data);
}

/**
 * Opens --model: a native run, an HF directory or a hub model (converted to a temporary native checkpoint).
 * Results of a hub model default to runs/hub--org--name/eval.
 */
async function openEvalModel(arg: string, verify: boolean, device: Device, log: Progress) {
  const path = await resolveModelArg(arg, log);
  const hub = path === arg
    ? undefined
    : join("runs", `hub--${arg.replace(/^hf:\/\//, "").replaceAll("/", "--")}`, "eval");
  const hf = await Deno.stat(join(path, "config.json")).then((s) => s.isFile, () => false);
  if (hf) log.line(`model: converting the Hugging Face checkpoint ${path} for the native runtime`);
  return {
    opened: await openAnyModel(path, { verify, device }),
    outDir: hub ?? (hf ? join(path, "eval") : undefined),
  };
}

async function main(args: string[]): Promise<void> {
  const { values, positionals } = parse(args);
  if (values.help) {
    console.log(HELP);
    return;
  }
  if (positionals.length !== 1) throw new UsageError("name one benchmark (or 'all')");
  const target = positionals[0];
  if (target !== "all" && !isBenchmarkName(target)) {
    throw new UsageError(`unknown benchmark '${target}'; known: ${[...BENCHMARK_NAMES, "all"].join(", ")}`);
  }
  if (target === "demo" && values.data !== undefined) {
    throw new UsageError(
      `the demo set is generated from the embedded knowledge base and takes no --data (got '${values.data}')`,
    );
  }
  const options = evalOptions(values);
  const systems = values.systems;
  if (systems !== undefined) {
    if (target !== "demo") throw new UsageError(`--systems applies to the demo set only, not to ${target}`);
    try {
      conditionsOfSystems(systems);
    } catch (e) {
      throw new UsageError(`--systems: ${(e as Error).message}`);
    }
  }
  const log = new Progress();
  const todo = await plan(target, values.data, (s) => log.line(s));
  const benches: Benchmark[] = [];
  for (const t of todo) benches.push(await load(t.name, t.data, log, "hub" in t, systems));

  const model = await openEvalModel(values.model, !values["no-verify"], deviceFlag(values.device), log);
  const opened = model.opened;
  const ckpt = opened.dir, meta = opened.meta;
  using native = opened.model;
  using lm = new NativeLanguageModel(native);
  const tokenizer = Tokenizer.llama2({ chatTokens: options.chat });
  if (options.chat && lm.vocabSize < 32002) {
    throw new Error(
      `--chat needs the <|im_start|>/<|im_end|> tokens; this model's vocabulary has ${lm.vocabSize}`,
    );
  }
  const outDir = values.out ?? model.outDir ?? join(runDirOf(values.model, ckpt), "eval");
  log.line(`model: ${ckpt} (iteration ${meta.iteration}, context ${native.dims.maxSeq} tokens) -> ${outDir}`);
  if (options.mode === "loglik" && lm.vocabSize < 32002 && benches.some((b) => b.name === "demo")) {
    log.line(
      "note: a model without chat tokens is likely pretrained only: scoring the option letters (loglik) needs " +
        "one that learned the answer format; --mode cloze --format continuation scores each option's text",
    );
  }
  const trainedOn = meta.config.data?.systems ?? "all"; // absent in older checkpoints
  if (trainedOn !== "all" && systems === undefined && benches.some((b) => b.name === "demo")) {
    log.line(
      `note: this model was pretrained on the embedded corpus of ${trainedOn} only; ` +
        `--systems ${trainedOn} asks the demo set about those organ systems alone`,
    );
  }

  // A k-shot run answers every question once per seed.
  const count = (questions: number, seeds: number) =>
    seeds > 1 ? `${questions} questions × ${seeds} seeds` : `${questions} questions`;
  const results: EvalResult[] = [];
  for (const bench of benches) {
    for (const n of bench.notes) log.line(`${bench.name}: ${n}`);
    const started = performance.now();
    const result = await evaluate(bench, lm, tokenizer, {
      ...options,
      maxContext: native.dims.maxSeq,
      onProgress: (done, total, questions) =>
        log.update(
          total > questions
            ? `${bench.name}: ${done}/${total} answers (${count(questions, total / questions)})`
            : `${bench.name}: ${done}/${total} questions`,
        ),
    });
    log.done();
    const secs = (performance.now() - started) / 1000;
    if (result.truncated > 0) {
      log.line(
        `${bench.name}: ${result.truncated} prompts were longer than the model's context and lost their start`,
      );
    }
    const paths = await writeResult(outDir, result);
    log.line(
      `${bench.name}: ${count(result.questions, result.perSeed.length)} in ${secs.toFixed(1)} s; wrote ${
        paths.join(", ")
      }`,
    );
    results.push(result);
  }
  const table = markdownTable(results);
  if (results.length > 1) await Deno.writeTextFile(join(outDir, "summary.md"), table);
  console.log(`\n${table}`);
  if (benches.some((b) => b.name === "demo")) {
    console.log("DEMO SET: a toolkit check on generated questions, not a medical benchmark.");
  }
}

if (import.meta.main) await runMain(main, HELP);
