/**
 * `deno task data <clean|combine|tokenize|prepare|inspect>`: the GAP-Replay data pipeline from the command
 * line. Errors are one line (stack traces with `--debug`); every command has `--help` with examples.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { cleanCommand, combineCommand } from "../data/clean/mod.ts";
import {
  HELP_TOKENIZE,
  parseTokenizeArgs,
  tokenizeJsonl,
  type TokenizeProgress,
} from "../data/tokenize_job.ts";
import { HELP_PREPARE, prepare, prepareConfigFromArgs } from "../data/prepare.ts";
import { IndexedDataset } from "../data/indexed_dataset.ts";
import { Tokenizer } from "../data/tokenizer.ts";
import { formatDuration, Progress } from "./progress.ts";
import { resolveDatasetArg, runMain, runSubcommand, UsageError } from "./common.ts";
import { snapshotFiles } from "../data/hub.ts";
import { sftFromBenchmark } from "./data_sft.ts";

const HELP = `Usage: deno task data <command> [options]

The GAP-Replay data pipeline: clean the sources as Meditron did, combine them with a validation split,
tokenize into Megatron indexed datasets (.bin/.idx) that pretraining reads (deno task pretrain --data).

Commands:
  clean      clean one source: guidelines | abstracts | papers | replay (JSONL in, JSONL out)
  combine    combine cleaned sources into train and validation JSONL with a subset field
  tokenize   JSONL → PREFIX_text_document.{bin,idx}, parallel, streaming, input order kept
  prepare    all of the above from a YAML config (default: configs/gap-replay.yaml)
  inspect    documents, tokens, dtype and the first tokens (decoded) of an indexed dataset
  sft-from-benchmark  SFT JSONL ({"prompt","gold"}) from a benchmark's train split (medqa|medmcqa|pubmedqa, --cot)

Run 'deno task data <command> --help' for the options of a command.

Examples:
  deno task data prepare
  deno task data clean --source guidelines --input raw/guidelines.jsonl --output clean/guidelines.jsonl
  deno task data tokenize --input corpus.jsonl --output-prefix data/gap --workers 8 --append-eod
  deno task data inspect runs/data/gap-replay/gap-replay_text_document
`;

const HELP_INSPECT = `Usage: deno task data inspect PREFIX [options]

Prints what an indexed dataset holds: documents, tokens, dtype, document lengths, and the first tokens of
a document with their decoding. PREFIX may name PREFIX.idx, PREFIX.bin or the tokenize output prefix.

Options:
  --doc I           document to show (default 0)
  --tokens N        tokens to show (default 48)
  --tokenizer FILE  decode with this HF tokenizer.json (default: Llama-2 with Meditron's bracket tokens)
  --debug           show stack traces on errors
  -h, --help        this help

Examples:
  deno task data inspect runs/data/gap-replay/gap-replay_text_document
  deno task data inspect data/pubmed --doc 12 --tokens 200
`;

const mb = (bytes: number): string => `${(bytes / 1e6).toFixed(1)} MB`;

function tokenizeProgress(progress: Progress, label: string): (p: TokenizeProgress) => void {
  return (p) => {
    const rate = p.bytes / 1e6 / Math.max(p.seconds, 1e-9);
    const eta = rate > 0 ? (p.totalBytes - p.bytes) / 1e6 / rate : Infinity;
    progress.update(
      `${label}: ${mb(p.bytes)} / ${mb(p.totalBytes)}  ${rate.toFixed(2)} MB/s  ETA ${
        formatDuration(eta)
      }  ` +
        `${p.documents} documents  ${p.tokens} tokens`,
    );
  };
}

async function tokenize(args: string[]): Promise<void> {
  if (args.includes("--help") || args.includes("-h")) return console.log(HELP_TOKENIZE);
  const options = parseTokenizeArgs(args);
  const progress = new Progress();
  const r = await tokenizeJsonl({ ...options, onProgress: tokenizeProgress(progress, "tokenize") });
  progress.done();
  progress.line(
    `tokenize: ${r.documents} documents, ${r.tokens} tokens (${r.dtype}) → ${r.prefix}.{bin,idx} in ` +
      `${r.seconds.toFixed(1)}s (${r.mbPerSecond.toFixed(2)} MB/s, ${r.workers} workers` +
      `${r.skippedEmpty ? `, ${r.skippedEmpty} empty texts skipped` : ""}` +
      `${
        r.invalidUtf8Lines ? `, ${r.invalidUtf8Lines} lines had invalid UTF-8 (replaced with U+FFFD)` : ""
      })`,
  );
}

async function prepareCmd(args: string[]): Promise<void> {
  if (args.includes("--help") || args.includes("-h")) return console.log(HELP_PREPARE);
  const config = await prepareConfigFromArgs(args);
  const progress = new Progress();
  const r = await prepare(config, {
    log: (line) => progress.line(line),
    onTokenizeProgress: tokenizeProgress(progress, "tokenize"),
  });
  progress.done();
  progress.line(
    `prepare: ${r.dataset.train_documents} train + ${r.dataset.validation_documents} validation documents, ` +
      `${r.dataset.tokens} tokens → ${r.dataset.prefix}.{bin,idx} in ${r.seconds.toFixed(1)}s ` +
      `(${r.mb_per_second.toFixed(2)} MB/s of raw input)`,
  );
  progress.line(`report: ${config.output}/${config.name}.prepare.json`);
  progress.line(`train on it: ${r.dataset.pretrain}`);
}

async function inspect(args: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args,
    strict: true,
    allowPositionals: true,
    options: {
      doc: { type: "string", default: "0" },
      tokens: { type: "string", default: "48" },
      tokenizer: { type: "string" },
      debug: { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) return console.log(HELP_INSPECT);
  if (positionals.length !== 1) throw new UsageError("inspect needs exactly one PREFIX");
  const doc = Number(values.doc), count = Number(values.tokens);
  if (!Number.isInteger(doc) || doc < 0) throw new UsageError(`--doc must be a non-negative integer`);
  if (!Number.isInteger(count) || count < 1) throw new UsageError(`--tokens must be a positive integer`);
  using ds = IndexedDataset.open(positionals[0]);
  if (doc >= ds.count) throw new Error(`${ds.prefix}: document ${doc} out of range (${ds.count} documents)`);
  const tok = values.tokenizer
    ? await Tokenizer.fromFile(values.tokenizer)
    : Tokenizer.llama2({ bracketTokens: true });
  let min = Infinity, max = 0;
  for (const n of ds.sizes) {
    min = Math.min(min, n);
    max = Math.max(max, n);
  }
  const ids = Array.from(ds.slice(doc, 0, Math.min(count, ds.length(doc))));
  console.log(`dataset:    ${ds.prefix}.{bin,idx}`);
  console.log(`dtype:      ${ds.dtype}`);
  console.log(`documents:  ${ds.count}`);
  console.log(`tokens:     ${ds.tokens} (${mb(ds.binBytes)} .bin)`);
  console.log(
    `doc length: min ${ds.count ? min : 0}, mean ${
      (ds.tokens / Math.max(ds.count, 1)).toFixed(1)
    }, max ${max}`,
  );
  console.log(`document ${doc}: ${ds.length(doc)} tokens; first ${ids.length}:`);
  console.log(`  ids:  ${ids.join(" ")}`);
  console.log(`  text: ${JSON.stringify(tok.decode(ids, { skipSpecialTokens: false }))}`);
}

/**
 * `data clean` with `--input` naming a hub dataset: `hf://datasets/org/name[@rev]/FILE.jsonl`, or `org/name[@rev]`
 * when the repository holds exactly one `.jsonl` file; replaced by the cached file's path.
 */
async function cleanWithHub(args: string[]): Promise<unknown> {
  const i = args.findIndex((a) => a === "--input" || a.startsWith("--input="));
  if (i < 0) return await cleanCommand(args);
  const inline = args[i].startsWith("--input=");
  const value = inline ? args[i].slice(8) : args[i + 1];
  if (value === undefined) return await cleanCommand(args);
  const jsonl = (files: string[]) => files.filter((f) => f.endsWith(".jsonl"));
  const r = await resolveDatasetArg(value, jsonl);
  let path = r.path;
  if (r.repo && r.repo.path === undefined) {
    const found = jsonl(await snapshotFiles(r.path));
    if (found.length !== 1) {
      throw new UsageError(
        `--input ${value}: the hub dataset has ${found.length} .jsonl files (${
          found.join(", ") || "none"
        }); ` +
          `name one as hf://datasets/${r.repo.id}/FILE`,
      );
    }
    path = `${r.path}/${found[0]}`;
  }
  const out = [...args];
  if (inline) out[i] = `--input=${path}`;
  else out[i + 1] = path;
  return await cleanCommand(out);
}

const COMMANDS: Record<string, (args: string[]) => Promise<unknown>> = {
  clean: cleanWithHub,
  combine: combineCommand,
  tokenize,
  prepare: prepareCmd,
  inspect,
  "sft-from-benchmark": sftFromBenchmark,
};

/**
 * Entry point: dispatches to a command (`--debug` is handled here and not passed on).
 *
 * @example
 * ```ts
 * import { main } from "./data.ts";
 * await main(["inspect", "--help"]);
 * ```
 */
export async function main(rawArgs: string[]): Promise<void> {
  await runSubcommand(rawArgs, COMMANDS, HELP);
}

if (import.meta.main) await runMain(main, HELP);
