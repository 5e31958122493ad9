/**
 * `deno task convert <hf-to-native|native-to-hf|reshard|inspect|pth-to-hf>`: weights in and out of the
 * Hugging Face ecosystem, between parallel layouts, and out of PyTorch/Meta files without Python. Errors are
 * one line (stack traces with `--debug`); every command has `--help` with examples; outputs appear only when
 * complete (built in a temp directory, then renamed).
 *
 * @module
 */
import { parseArgs } from "node:util";
import { dirname, normalize } from "node:path";
import { type Llama2Options, llama2TokenizerJson } from "../data/tokenizer.ts";
import { readCheckpointMeta } from "../models/checkpoint.ts";
import {
  formatInspection,
  hfToNative,
  inspect,
  nativeToHf,
  pthToHf,
  reshard,
} from "../models/convert/mod.ts";
import type { WriteDtype } from "../models/safetensors.ts";
import type { TrainConfig } from "../models/config.ts";
import { resolveModelArg, runMain, runSubcommand, UsageError } from "./common.ts";
import { formatDuration, Progress } from "./progress.ts";

const HELP = `Usage: deno task convert <command> [options]

Move weights between Hugging Face directories, native (tp, pp)-sharded checkpoints and PyTorch/Meta files.

Commands:
  hf-to-native   HF LlamaForCausalLM directory (safetensors or .bin) → native run directory
  native-to-hf   native run → HF directory (config.json, sharded safetensors + index, tokenizer files)
  reshard        native run → native run with another tp/pp/dp/ZeRO-1 layout (optimizer state included)
  pth-to-hf      Meta consolidated.NN.pth directory → HF directory (shards merged, Q/K un-permuted)
  inspect        tensor names, shapes, dtypes, sizes and parameter count of a file or directory

Run 'deno task convert <command> --help' for the options of a command.

Examples:
  deno task convert hf-to-native --in Llama-2-7b-hf --out runs/llama2-7b --tp 2
  deno task convert reshard --in runs/llama2-7b --out runs/llama2-7b-tp1 --tp 1 --pp 1
  deno task convert native-to-hf --in runs/meditron-7b --out export/meditron-7b --dtype bf16
  deno task convert inspect export/meditron-7b
`;

const HELP_HF_TO_NATIVE = `Usage: deno task convert hf-to-native --in DIR --out RUN [options]

Reads config.json and the weights (model.safetensors[.index.json] or pytorch_model*.bin), widens bf16/fp16 to
fp32, pads the vocabulary for TP, and writes RUN/checkpoints/iter_0000000 (zero AdamW state, step 0) that
'deno task pretrain --resume RUN' continues with Meditron's pretraining settings for the model's size (the
llama2-* preset of the same shape, else llama2-7b's; train.seq at most max_position_embeddings) and
'deno task finetune --init RUN' finetunes. config.json, generation_config.json and tokenizer files go to RUN/hf/.

Options:
  --in DIR|REPO              Hugging Face model directory, or a hub model org/name[@revision] fetched into
                             the hub cache (safetensors, config, tokenizer files) (required)
  --out RUN                  new run directory (must not exist or be empty) (required)
  --tp N, --pp N, --dp N     layout to write (default 1 each)
  --distributed-optimizer    write ZeRO-1 optimizer chunks (one per dp rank)
  --add-tokens N             grow the vocabulary by N tokens (new rows = mean of the existing rows)
  --debug                    stack traces on errors

Examples:
  deno task convert hf-to-native --in Llama-2-7b-hf --out runs/llama2-7b
  deno task convert hf-to-native --in meditron-7b --out runs/sft --tp 2 --add-tokens 2
  deno task convert hf-to-native --in epfl-llm/meditron-7b --out runs/meditron-7b
`;

const HELP_NATIVE_TO_HF = `Usage: deno task convert native-to-hf --in RUN --out DIR [options]

Writes a directory transformers loads as LlamaForCausalLM: config.json, generation_config.json,
model-0000i-of-0000n.safetensors + model.safetensors.index.json, tokenizer files (the run's own from import,
else the Llama-2 tokenizer), added_tokens.json for tokens beyond the base vocabulary.

Options:
  --in RUN                   run directory, its checkpoints/ or an iter_* directory (required)
  --out DIR                  new output directory (required)
  --dtype bf16|fp16|fp32     stored dtype (default: the imported model's, else bf16; round-to-nearest-even)
  --shard-size SIZE          largest shard, e.g. 5GB, 500MB (default 5GB)
  --tokenizer llama2|llama2-chat|none   tokenizer to write when the run has none (default: the one of the
                             model's vocabulary size: 32000 llama2, 32002 llama2-chat, 32012/32014 the same
                             with Meditron's bracket tokens)
  --no-verify                skip the sha256 check of the source shards
  --debug                    stack traces on errors

Examples:
  deno task convert native-to-hf --in runs/meditron-7b --out export/meditron-7b
  deno task convert native-to-hf --in runs/tiny/checkpoints/iter_0000200 --out export/tiny --dtype fp32
`;

const HELP_RESHARD =
  `Usage: deno task convert reshard --in RUN --out RUN2 [--tp N] [--pp N] [--dp N] [options]

Streams one tensor at a time from any (tp, pp, dp, ZeRO-1) layout to another; AdamW moments, step, iteration
and data position are kept, so 'deno task pretrain --resume RUN2 --tp N --pp N' continues exactly. A new --dp
rescales train.grad_accum so the global batch (micro_batch x grad_accum x dp) stays the same; a note says when
it cannot, and which --micro-batch/--grad-accum would keep it.

Options:
  --in RUN                      run directory, its checkpoints/ or an iter_* directory (required)
  --out RUN2                    new run directory (required)
  --tp N, --pp N, --dp N        target layout (default: the source's)
  --distributed-optimizer       write ZeRO-1 chunks;  --no-distributed-optimizer: per-parameter state
  --add-tokens N                grow the vocabulary by N tokens (new rows = mean of the existing rows)
  --no-verify                   skip the sha256 check of the source shards
  --debug                       stack traces on errors

Examples:
  deno task convert reshard --in runs/7b-tp4 --out runs/7b-tp1 --tp 1 --pp 1
  deno task convert reshard --in runs/7b --out runs/7b-z1 --dp 8 --distributed-optimizer
`;

const HELP_PTH = `Usage: deno task convert pth-to-hf --in DIR --out DIR [options]

Reads Meta's params.json + consolidated.NN.pth (no Python needed), merges the model-parallel shards,
permutes Q/K from interleaved RoPE to HF rotate-half and writes an HF directory (tokenizer.model copied).

Options:
  --in DIR                   directory with params.json and consolidated.*.pth (required)
  --out DIR                  new output directory (required)
  --dtype bf16|fp16|fp32     stored dtype (default: the checkpoint's)
  --shard-size SIZE          largest shard (default 5GB)
  --max-seq N                max_position_embeddings (default 4096, Llama-2)
  --debug                    stack traces on errors

Examples:
  deno task convert pth-to-hf --in llama-2-7b --out Llama-2-7b-hf
  deno task convert hf-to-native --in Llama-2-7b-hf --out runs/llama2-7b
`;

const HELP_INSPECT = `Usage: deno task convert inspect FILE|DIR

Lists tensor names, dtypes, shapes and sizes, and the parameter count, of a .safetensors file, a .bin/.pth
file, an HF directory, a Meta directory or a native checkpoint (run dir, checkpoints/ or iter_* dir).

Examples:
  deno task convert inspect Llama-2-7b-hf
  deno task convert inspect runs/tiny
  deno task convert inspect llama-2-7b/consolidated.00.pth
`;

function positiveInt(v: string | undefined, flag: string): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new UsageError(`${flag} must be a positive integer (got '${v}')`);
  return n;
}

function nonNegativeInt(v: string | undefined, flag: string): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new UsageError(`${flag} must be an integer >= 0 (got '${v}')`);
  return n;
}

function dtypeOf(v: string | undefined): WriteDtype | undefined {
  if (v === undefined) return undefined;
  const d =
    ({ bf16: "BF16", bfloat16: "BF16", fp16: "F16", float16: "F16", fp32: "F32", float32: "F32" } as const)[
      v.toLowerCase() as "bf16"
    ];
  if (!d) throw new UsageError(`--dtype must be bf16, fp16 or fp32 (got '${v}')`);
  return d;
}

function need(v: string | undefined, flag: string): string {
  if (!v) throw new UsageError(`${flag} is required`);
  return v;
}

/** A progress sink counting finished pieces (shards or tensors) with the elapsed time. */
function counter(what: string): { tick: (name: string) => void; done: () => void } {
  const p = new Progress(5), t0 = performance.now();
  let n = 0;
  return {
    tick(name) {
      n++;
      p.update(`${what}: ${n} done (${name}), ${formatDuration((performance.now() - t0) / 1000)} elapsed`);
    },
    done() {
      p.done();
      console.error(`${what}: done in ${formatDuration((performance.now() - t0) / 1000)}`);
    },
  };
}

const LAYOUT_OPTIONS = {
  in: { type: "string" },
  out: { type: "string" },
  tp: { type: "string" },
  pp: { type: "string" },
  dp: { type: "string" },
  "add-tokens": { type: "string" },
  "distributed-optimizer": { type: "boolean" },
  "no-distributed-optimizer": { type: "boolean" },
  "no-verify": { type: "boolean" },
  help: { type: "boolean", short: "h" },
} as const;

async function hfToNativeCmd(args: string[]): Promise<void> {
  const { values: v } = parseArgs({ args, options: LAYOUT_OPTIONS, strict: true });
  if (v.help) return console.log(HELP_HF_TO_NATIVE);
  const inDir = await resolveModelArg(need(v.in, "--in")), out = need(v.out, "--out");
  const tp = positiveInt(v.tp, "--tp") ?? 1, pp = positiveInt(v.pp, "--pp") ?? 1;
  const c = counter("hf-to-native: shards");
  const ck = await hfToNative(inDir, out, {
    tp,
    pp,
    dp: positiveInt(v.dp, "--dp"),
    zero1: v["distributed-optimizer"] ?? false,
    addTokens: nonNegativeInt(v["add-tokens"], "--add-tokens"),
    progress: c.tick,
  });
  c.done();
  console.log(`wrote ${ck}\n${continueHint(out, (await readCheckpointMeta(ck)).config.train)}`);
}

/** How to continue from an imported run `out`, with the training settings its checkpoint carries. */
function continueHint(out: string, t: TrainConfig): string {
  const parent = normalize(dirname(out));
  const outFlag = parent === "runs" ? "" : ` --out ${parent}`;
  return `continue pretraining: deno task pretrain --resume ${out}${outFlag} --data YOUR_DATA (its settings: ` +
    `lr ${t.lr} -> ${t.min_lr}, warmup ${t.warmup_steps}, ${t.steps} steps, seq ${t.seq}, micro_batch ` +
    `${t.micro_batch} x grad_accum ${t.grad_accum}; change them with --steps, --lr, --seq, --set train.KEY=V)\n` +
    `or finetune: deno task finetune --init ${out} --data FILE.jsonl`;
}

async function reshardCmd(args: string[]): Promise<void> {
  const { values: v } = parseArgs({ args, options: LAYOUT_OPTIONS, strict: true });
  if (v.help) return console.log(HELP_RESHARD);
  const c = counter("reshard: shards");
  const ck = await reshard(need(v.in, "--in"), need(v.out, "--out"), {
    tp: positiveInt(v.tp, "--tp"),
    pp: positiveInt(v.pp, "--pp"),
    dp: positiveInt(v.dp, "--dp"),
    zero1: v["distributed-optimizer"] ? true : v["no-distributed-optimizer"] ? false : undefined,
    addTokens: nonNegativeInt(v["add-tokens"], "--add-tokens"),
    verify: !v["no-verify"],
    progress: c.tick,
  });
  c.done();
  console.log(`wrote ${ck}`);
}

const TOKENIZER_CHOICES: Readonly<Record<string, Llama2Options>> = {
  llama2: {},
  "llama2-chat": { chatTokens: true },
};

// The Llama-2 tokenizer of each vocabulary size this toolkit makes: base, with the chat tokens finetune adds,
// with Meditron's bracket tokens (GAP-Replay), with both.
const TOKENIZER_OF_VOCAB: Readonly<Record<number, Llama2Options>> = {
  32000: {},
  32002: { chatTokens: true },
  32012: { bracketTokens: true },
  32014: { bracketTokens: true, chatTokens: true },
};

/** The tokenizer of `--tokenizer`: its files, or undefined for `none`. */
function chosenTokenizer(choice: string): Record<string, string> | undefined {
  if (choice === "none") return undefined;
  const options = TOKENIZER_CHOICES[choice];
  if (!options) throw new UsageError(`--tokenizer must be llama2, llama2-chat or none (got '${choice}')`);
  return tokenizerFiles(options);
}

/** The default tokenizer: the one of the model's vocabulary size. */
function tokenizerOfVocab(vocabSize: number): Record<string, string> {
  const options = TOKENIZER_OF_VOCAB[vocabSize];
  if (!options) {
    throw new UsageError(
      `the model's vocabulary has ${vocabSize} tokens, not a Llama-2 tokenizer's (32000, 32002 with chat ` +
        `tokens, 32012/32014 with bracket tokens) and the run has no tokenizer files: pass --tokenizer ` +
        `llama2|llama2-chat|none`,
    );
  }
  return tokenizerFiles(options);
}

function tokenizerFiles(options: Llama2Options): Record<string, string> {
  return {
    "tokenizer.json": JSON.stringify(llama2TokenizerJson(options)),
    "tokenizer_config.json": JSON.stringify(
      {
        tokenizer_class: "LlamaTokenizerFast",
        bos_token: "<s>",
        eos_token: "</s>",
        unk_token: "<unk>",
        add_bos_token: true,
        add_eos_token: false,
        clean_up_tokenization_spaces: false,
      },
      null,
      2,
    ) + "\n",
  };
}

async function nativeToHfCmd(args: string[]): Promise<void> {
  const { values: v } = parseArgs({
    args,
    options: {
      in: { type: "string" },
      out: { type: "string" },
      dtype: { type: "string" },
      "shard-size": { type: "string" },
      tokenizer: { type: "string" },
      "no-verify": { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
    strict: true,
  });
  if (v.help) return console.log(HELP_NATIVE_TO_HF);
  const c = counter("native-to-hf: tensors");
  const files = await nativeToHf(need(v.in, "--in"), need(v.out, "--out"), {
    dtype: dtypeOf(v.dtype),
    shardSize: v["shard-size"] ?? "5GB",
    tokenizerFiles: v.tokenizer === undefined ? tokenizerOfVocab : chosenTokenizer(v.tokenizer),
    progress: c.tick,
    verify: !v["no-verify"],
  });
  c.done();
  console.log(`wrote ${v.out}: ${files.join(", ")}`);
}

async function pthToHfCmd(args: string[]): Promise<void> {
  const { values: v } = parseArgs({
    args,
    options: {
      in: { type: "string" },
      out: { type: "string" },
      dtype: { type: "string" },
      "shard-size": { type: "string" },
      "max-seq": { type: "string" },
      help: { type: "boolean", short: "h" },
    },
    strict: true,
  });
  if (v.help) return console.log(HELP_PTH);
  const c = counter("pth-to-hf: tensors");
  const files = await pthToHf(need(v.in, "--in"), need(v.out, "--out"), {
    dtype: dtypeOf(v.dtype),
    shardSize: v["shard-size"] ?? "5GB",
    maxSeq: positiveInt(v["max-seq"], "--max-seq"),
    progress: c.tick,
  });
  c.done();
  console.log(`wrote ${v.out}: ${files.join(", ")}`);
}

async function inspectCmd(args: string[]): Promise<void> {
  const { values: v, positionals } = parseArgs({
    args,
    options: { help: { type: "boolean", short: "h" } },
    allowPositionals: true,
    strict: true,
  });
  if (v.help) return console.log(HELP_INSPECT);
  if (positionals.length !== 1) throw new UsageError("inspect takes exactly one FILE or DIR");
  const r = await inspect(positionals[0]);
  console.log(formatInspection(r));
}

const COMMANDS: Record<string, (args: string[]) => Promise<void>> = {
  "hf-to-native": hfToNativeCmd,
  "native-to-hf": nativeToHfCmd,
  reshard: reshardCmd,
  "pth-to-hf": pthToHfCmd,
  inspect: inspectCmd,
};

/**
 * Entry point: dispatches to a command (`--debug` is handled here and not passed on).
 *
 * @example
 * ```ts
 * import { main } from "./convert.ts";
 * await main(["inspect", "--help"]);
 * ```
 */
export async function main(rawArgs: string[]): Promise<void> {
  await runSubcommand(rawArgs, COMMANDS, HELP);
}

if (import.meta.main) await runMain(main, HELP);
