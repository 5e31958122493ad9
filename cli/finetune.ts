/**
 * `deno task finetune`: supervised finetuning of a pretrained model on chat-formatted data with Meditron's
 * hyperparameters (`configs/sft.yaml`), the loss on assistant tokens only (see `data/sft.ts`).
 *
 * @module
 */
import { parseArgs } from "node:util";
import { join, resolve } from "node:path";
import { stringify as toYaml } from "yaml";
import { fileURLToPath } from "node:url";
import { distAbort, distAllOk, distFinalize, distInit, NativeModel, setNumThreads } from "../runtime/mod.ts";
import { checkDevice } from "../runtime/library.ts";
import { insideLaunch, isRoot, launchRank, runUnderMpi } from "../parallel/launcher.ts";
import {
  type ModelConfig,
  modelDims,
  optimSettings,
  overrideConfig,
  parseConfig,
  parseYamlMapping,
  readConfigText,
  type RunConfig,
  topologyOf,
  validateConfig,
} from "../models/config.ts";
import {
  type CheckpointMeta,
  loadCheckpoint,
  readCheckpointMeta,
  resolveCheckpoint,
} from "../models/checkpoint.ts";
import {
  buildAtomically,
  growVocab,
  hfToNative,
  NativeCheckpointReader,
  parseHfConfig,
  writeNativeCheckpoint,
} from "../models/convert/mod.ts";
import { type BatchSource, train } from "../models/trainer.ts";
import { Tokenizer } from "../data/tokenizer.ts";
import {
  type ChatMessage,
  parseSftRow,
  readSftJsonl,
  SftDataset,
  type SftTokens,
  tokenizeChat,
} from "../data/sft.ts";
import { demoSftRows } from "./data_sft.ts";
import { formatDuration, Progress } from "./progress.ts";
import { failFast, resolveModelArg, runMain, UsageError } from "./common.ts";
import { stopOnSignals } from "./signals.ts";
import { writeFileAtomic } from "../data/indexed_dataset.ts";

const HELP = `Usage: deno task finetune --init RUN|HFDIR --data FILE.jsonl|demo [options]

Supervised finetuning with Meditron's hyperparameters (configs/sft.yaml: lr 2e-5 -> 2e-6 cosine, warmup 10%,
wd 0.1, clip 1, betas (0.9, 0.95), eps 1e-5, 3 epochs, global batch 64). Rows are {"messages": [{"role",
"content"}, ...]} or {"prompt", "gold"}; each message is rendered "<|im_start|>{role}\\n{content}<|im_end|>\\n".
The loss is on assistant/answer messages only (header and <|im_end|> included). <|im_start|> and <|im_end|>
are added to the vocabulary when the initial model lacks them (new rows: the mean of the existing ones).
Batches are padded to their longest example rounded up to 16 tokens (at most train.seq); longer examples keep
their first train.seq+1 tokens, and those left without an assistant token are dropped (counted). With --pack
(sft.pack) whole examples are packed first-fit into rows of train.seq tokens instead, each attending only to
itself (segment ids in the attention, RoPE restarting per example): the same loss, fewer padding tokens.
Ctrl-C, SIGTERM or SIGUSR2 finishes the step, writes a checkpoint and exits 0, every rank at the same step (a
second signal kills; one before the first step stops with nothing to write); --resume RUN continues from it.

Options:
  --init PATH|REPO      the model to start from: a native run (dir, checkpoints/ or iter_*), a hub model
                        org/name[@revision], or a Hugging Face
                        directory (converted into <run>/init first)
  --data SOURCE         SFT JSONL, or 'demo': the demo set's train questions in Meditron's prompt/gold format
                        (with --resume: default the checkpoint's)
  --config FILE         YAML (default: configs/sft.yaml; with --resume: the checkpoint's settings); keys
                        train.*, sft.{epochs,warmup_ratio,prompt_loss_weight,bos,pack}
  --epochs N            passes over the data (sft.epochs)
  --steps N             optimizer steps instead of the epochs' count (with --resume: default the run's)
  --lr X, --min-lr X    peak and final learning rate
  --seq N               longest training sequence (train.seq, capped at the model's max_seq)
  --micro-batch N, --grad-accum N   global batch = micro-batch x grad-accum
  --prompt-loss-weight X  loss weight of non-assistant tokens (default 0)
  --pack                pack several whole examples per row of train.seq tokens (sft.pack; a step then
                        trains on micro-batch x grad-accum packed rows)
  --bos                 prepend BOS to every example (default: no, as Meditron)
  --seed N              data order seed
  --threads N           kernel threads (0: all cores)
  --set KEY=VALUE       any train.* key (repeatable)
  --name NAME           run name (default sft)
  --out DIR             parent of the run directory (default runs)
  --overwrite           replace an existing run directory's checkpoints
  --no-verify           skip the sha256 check of the initial model's or the resumed checkpoint's shards
  --resume PATH         continue from a checkpoint of a finetuning run (run dir, checkpoints/ or iter_*) with
                        its model, data and settings (flags given override them; not with --init)
  --debug               show stack traces on errors
  -h, --help            this help

  --tp N, --pp N, --dp N  parallel layout; more than one rank re-runs this command under mpirun -n tp*pp*dp
                        (the initial model is first written in that layout to <run>/init)
  --distributed-optimizer  ZeRO-1 over DP
  --device cpu|cuda     where the model runs (cuda: deno task build --cuda, MEDITRON_LIB=runtime/build-cuda/…)
  --recompute none|selective  activation recomputation in backward
  --hostfile FILE       passed to mpirun

Examples:
  deno task finetune --init runs/tiny --data demo --name tiny-sft --lr 1e-3 --micro-batch 8 --grad-accum 1
  deno task finetune --init Llama-2-7b-hf --data medqa_sft.jsonl --name meditron-7b-medqa
  deno task finetune --init runs/tiny --data demo --name tiny-sft-tp2 --tp 2 --dp 2 --lr 1e-3
`;

/** SFT-only keys of the YAML (`sft:` section). */
export interface SftSettings {
  /** Passes over the data. */
  epochs: number;
  /** Warmup steps as a fraction of the steps. */
  warmup_ratio: number;
  /** Loss weight of non-assistant tokens. */
  prompt_loss_weight: number;
  /** Prepend BOS to each example. */
  bos: boolean;
  /** Pack several whole examples per row (segment ids keep them apart). */
  pack: boolean;
}

// Meditron's finetuning hyperparameters: the defaults under the YAML's train section.
const SFT_TRAIN = {
  lr: 2e-5,
  min_lr: 2e-6,
  beta1: 0.9,
  beta2: 0.95,
  eps: 1e-5,
  weight_decay: 0.1,
  grad_clip: 1.0,
  micro_batch: 4,
  grad_accum: 16,
  warmup_steps: 0,
  eval_every: 0,
  save_every: 0,
};

/** The default finetuning configuration. */
const SFT_YAML = new URL("../configs/sft.yaml", import.meta.url).pathname;

const DEFAULT_SFT: SftSettings = {
  epochs: 3,
  warmup_ratio: 0.1,
  prompt_loss_weight: 0,
  bos: false,
  pack: false,
};

/**
 * Parses an SFT YAML: the `sft:` section is checked here, the rest is a run config (`preset` defaults to
 * `llama2-7b` so a long `train.seq` validates; the architecture is later replaced by the initial model's).
 *
 * @example
 * ```ts
 * import { parseSftConfig } from "./finetune.ts";
 * const { sft, run } = parseSftConfig("train:\n  lr: 1.0e-5\nsft:\n  epochs: 2\n", "inline.yaml");
 * console.log(sft.epochs, run.train.lr); // 2 0.00001
 * ```
 */
export function parseSftConfig(text: string, where: string): { sft: SftSettings; run: RunConfig } {
  const { sft: raw, ...rest } = parseYamlMapping(text, where);
  const sft = sftSection(raw, where);
  const train = rest.train;
  if (train !== undefined && (train === null || typeof train !== "object" || Array.isArray(train))) {
    throw new UsageError(`${where}: 'train' must be a mapping`);
  }
  const merged = { ...rest, train: { ...SFT_TRAIN, ...(train as Record<string, unknown> | undefined) } };
  const run = parseConfig(toYaml({ preset: "llama2-7b", ...merged }), where);
  return { sft, run };
}

// The `sft` section of a YAML (or of a checkpoint's data state) over the defaults, checked.
function sftSection(raw: unknown, where: string): SftSettings {
  const sft = { ...DEFAULT_SFT };
  if (raw !== undefined) {
    if (raw === null || typeof raw !== "object" || Array.isArray(raw)) {
      throw new UsageError(`${where}: 'sft' must be a mapping`);
    }
    for (const [k, v] of Object.entries(raw)) {
      if (!(k in sft)) throw new UsageError(`${where}: unknown key 'sft.${k}' (known: ${Object.keys(sft)})`);
      const key = k as keyof SftSettings;
      if (typeof v !== typeof sft[key]) {
        throw new UsageError(`${where}: 'sft.${k}' must be a ${typeof sft[key]}`);
      }
      (sft as Record<string, unknown>)[key] = v;
    }
  }
  checkSft(sft, where);
  return sft;
}

// Reads and parses an SFT YAML file; errors name the file, as loadConfig's do.
async function loadSftConfig(path: string): Promise<{ sft: SftSettings; run: RunConfig }> {
  return parseSftConfig(await readConfigText(path), path);
}

/** The data state of a finetuning checkpoint (meta.json `data`): what `--resume` continues with. */
interface SftState {
  /** `--data`. */
  source: string;
  /** Data order seed. */
  seed: number;
  /** Examples kept. */
  examples: number;
  /** Longest training sequence (the checkpoint's train.seq is the length of its last batch). */
  seq: number;
  /** The SFT settings. */
  sft: SftSettings;
}

// A finetuning checkpoint's settings: its run config, train.seq and SFT settings from its data state.
// Checkpoints of earlier versions recorded neither the longest sequence (their train.seq is the length of the
// last batch) nor bos, prompt_loss_weight and warmup_ratio: those come from configs/sft.yaml, with a notice.
async function resumedSettings(
  dir: string,
  meta: CheckpointMeta,
): Promise<{ sft: SftSettings; run: RunConfig; notice?: string }> {
  const state = meta.data as Partial<SftState> & { epochs?: number; pack?: boolean };
  // Checkpoints of earlier versions recorded only sft.epochs and sft.pack.
  const saved = state.sft ??
    (typeof state.epochs === "number" ? { epochs: state.epochs, pack: state.pack ?? false } : undefined);
  if (saved === undefined) {
    throw new UsageError(
      `${dir} is not a finetuning checkpoint (no SFT settings in its meta.json): start one with --init`,
    );
  }
  const run = structuredClone(meta.config);
  if (typeof state.seq === "number" && state.sft !== undefined) {
    run.train.seq = state.seq;
    return { sft: sftSection(saved, join(dir, "meta.json")), run };
  }
  const defaults = await loadSftConfig(SFT_YAML);
  run.train.seq = Math.min(defaults.run.train.seq, run.model.max_seq);
  const sft = { ...defaults.sft, ...saved };
  return {
    sft: sftSection(sft, join(dir, "meta.json")),
    run,
    notice:
      `note: ${join(dir, "meta.json")} predates recorded finetuning settings: train.seq ${run.train.seq}, ` +
      `bos ${sft.bos}, prompt_loss_weight ${sft.prompt_loss_weight} and warmup_ratio ${sft.warmup_ratio} are ` +
      `configs/sft.yaml's; pass --seq, --bos or --prompt-loss-weight if the run used others`,
  };
}

function checkSft(s: SftSettings, where: string): void {
  if (!(s.epochs > 0)) throw new UsageError(`${where}: sft.epochs must be > 0`);
  if (!(s.warmup_ratio >= 0 && s.warmup_ratio < 1)) {
    throw new UsageError(`${where}: sft.warmup_ratio in [0, 1)`);
  }
  if (!(s.prompt_loss_weight >= 0)) throw new UsageError(`${where}: sft.prompt_loss_weight must be >= 0`);
}

/** Tokenizer matching a vocabulary: plain or bracket Llama-2 plus the chat tokens; how many rows to add. */
export function sftVocab(vocab: number): { tokenizer: Tokenizer; add: number } {
  switch (vocab) {
    case 32000:
      return { tokenizer: Tokenizer.llama2({ chatTokens: true }), add: 2 };
    case 32002:
      return { tokenizer: Tokenizer.llama2({ chatTokens: true }), add: 0 };
    case 32012:
      return { tokenizer: Tokenizer.llama2({ bracketTokens: true, chatTokens: true }), add: 2 };
    case 32014:
      return { tokenizer: Tokenizer.llama2({ bracketTokens: true, chatTokens: true }), add: 0 };
    default:
      throw new Error(`vocabulary of ${vocab} tokens: expected a Llama-2 one (32000, 32002, 32012 or 32014)`);
  }
}

/** Loads a native checkpoint into a new single-rank model, growing the vocabulary by `add` rows. */
export async function loadInit(
  ckptDir: string,
  run: RunConfig,
  add: number,
  verify = true,
): Promise<{ model: NativeModel; config: RunConfig }> {
  using reader = await NativeCheckpointReader.open(ckptDir, { verify });
  const grown = growVocab(reader.model, add, { param: (n) => reader.param(n) });
  const config: RunConfig = { ...run, model: grown.model };
  const model = await NativeModel.create(modelDims(config.model), optimSettings(config.train), {
    seed: config.train.seed,
    initStd: config.model.init_std,
  });
  try {
    for (const p of model.params()) model.write(p.name, await grown.param(p.name));
  } catch (e) {
    model.dispose();
    throw e;
  }
  return { model, config };
}

function parse(args: string[]) {
  return parseArgs({
    args,
    strict: true,
    allowPositionals: false,
    options: {
      init: { type: "string" },
      data: { type: "string" },
      config: { type: "string" },
      epochs: { type: "string" },
      steps: { type: "string" },
      lr: { type: "string" },
      "min-lr": { type: "string" },
      seq: { type: "string" },
      "micro-batch": { type: "string" },
      "grad-accum": { type: "string" },
      "prompt-loss-weight": { type: "string" },
      bos: { type: "boolean" },
      pack: { type: "boolean" },
      seed: { type: "string" },
      threads: { type: "string" },
      set: { type: "string", multiple: true },
      name: { type: "string" },
      out: { type: "string", default: "runs" },
      overwrite: { type: "boolean" },
      "no-verify": { type: "boolean" },
      resume: { type: "string" },
      tp: { type: "string" },
      pp: { type: "string" },
      dp: { type: "string" },
      device: { type: "string" },
      recompute: { type: "string" },
      "distributed-optimizer": { type: "boolean" },
      hostfile: { type: "string" },
      debug: { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
  }).values;
}

const isHfDir = (p: string) => Deno.stat(join(p, "config.json")).then((s) => s.isFile, () => false);

/**
 * Writes the initial model of a finetuning run as a native checkpoint in `initDir` for the run's layout:
 * `init` (a native run or an HF directory) with the vocabulary grown by the chat tokens when it lacks them
 * (new rows: the mean of the existing ones). Returns the checkpoint directory.
 */
export async function prepareInit(
  init: string,
  initDir: string,
  run: RunConfig,
  verify = true,
): Promise<string> {
  const par = run.parallel;
  const topology = { tp: par.tp, pp: par.pp, dp: par.dp, zero1: par.distributed_optimizer };
  await Deno.remove(initDir, { recursive: true }).catch(() => {});
  if (await isHfDir(init)) {
    const hf = JSON.parse(await Deno.readTextFile(join(init, "config.json"))) as { vocab_size?: number };
    return await hfToNative(init, initDir, { ...topology, addTokens: sftVocab(Number(hf.vocab_size)).add });
  }
  using reader = await NativeCheckpointReader.open(await resolveCheckpoint(init), { verify });
  const grown = growVocab(reader.model, sftVocab(reader.model.vocab_size).add, {
    param: (n) => reader.param(n),
  });
  const config: RunConfig = {
    ...run,
    model: grown.model,
    train: { ...run.train, seq: Math.min(run.train.seq, grown.model.max_seq) },
    parallel: { ...par },
  };
  validateConfig(config, init);
  // Written aside and renamed: a failure (a corrupt shard of `init`) leaves no partial initDir.
  await buildAtomically(initDir, (tmp) =>
    writeNativeCheckpoint(tmp, {
      config,
      topology,
      iteration: 0,
      consumedSamples: 0,
      data: {},
      step: 0,
    }, { param: grown.param }));
  return await resolveCheckpoint(initDir);
}

// The architecture of the model at `path` (a native run or checkpoint, or an HF directory) as finetuning
// trains it: the vocabulary grown by the chat tokens it lacks. Reads configurations only.
async function grownModelConfig(path: string): Promise<ModelConfig> {
  const hfConfig = join(path, "config.json");
  const model = await isHfDir(path)
    ? parseHfConfig(await Deno.readTextFile(hfConfig), hfConfig).model
    : (await readCheckpointMeta(await resolveCheckpoint(path))).config.model;
  return { ...model, vocab_size: model.vocab_size + sftVocab(model.vocab_size).add };
}

/** The examples of a finetuning run, tokenized and truncated. */
interface SftData {
  /** Conversations read. */
  conversations: number;
  /** The examples kept. */
  dataset: SftDataset;
}

// Reads, tokenizes and truncates the data of a run to `train.seq` tokens; an error if no example is left.
async function loadSftData(source: string, sft: SftSettings, run: RunConfig): Promise<SftData> {
  const { tokenizer } = sftVocab(run.model.vocab_size);
  const conversations: ChatMessage[][] = source === "demo"
    ? demoSftRows().map((r, i) => parseSftRow(r, `demo#${i}`))
    : await readSftJsonl(source);
  const tokens = conversations.map((c) =>
    tokenizeChat(tokenizer, c, { promptLossWeight: sft.prompt_loss_weight, addBos: sft.bos })
  );
  const t = run.train;
  const dataset = new SftDataset(tokens, { seq: t.seq, seed: t.seed, pack: sft.pack });
  if (dataset.size === 0) throw new Error(noExampleLeft(source, tokens, t.seq, run.model.max_seq));
  return { conversations: conversations.length, dataset };
}

// Why no example is left: none has an assistant message, or --seq cuts every one off before its first
// assistant token (SftDataset keeps an example whose first assistant token, at index i >= 1, is within
// seq + 1 tokens: seq >= i).
function noExampleLeft(source: string, tokens: readonly SftTokens[], seq: number, maxSeq: number): string {
  const firsts = tokens.map((e) => e.weights.findIndex((w, i) => i > 0 && w > 0)).filter((i) => i > 0);
  if (firsts.length === 0) {
    return `${source}: no example with an assistant message (${tokens.length} conversations)`;
  }
  const need = firsts.reduce((a, b) => Math.min(a, b));
  const advice = need <= maxSeq
    ? `pass --seq ${need} or more (the model's max_seq is ${maxSeq})`
    : `the model's max_seq is ${maxSeq}: shorten the prompts`;
  return `${source}: every example was dropped: train.seq ${seq} (--seq) cuts off every assistant reply ` +
    `(${firsts.length} examples have one; the earliest starts at token ${need}); ${advice}`;
}

const exists = (p: string) => Deno.stat(p).then(() => true, () => false);

// The run's settings: on --resume the checkpoint's (unless --config names a file), otherwise --config or
// configs/sft.yaml; then the flags over them.
async function resolveSettings(
  v: ReturnType<typeof parse>,
  resumed: { dir: string; meta: CheckpointMeta } | undefined,
): Promise<{ sft: SftSettings; run: RunConfig }> {
  const { sft, run, notice } = resumed && v.config === undefined
    ? await resumedSettings(resumed.dir, resumed.meta)
    : { ...await loadSftConfig(v.config ?? SFT_YAML), notice: undefined };
  if (notice) console.error(notice);
  const num = (flag: string, s: string | undefined): number | undefined => {
    if (s === undefined) return undefined;
    const n = Number(s);
    if (s.trim() === "" || !Number.isFinite(n) || n < 0) {
      throw new UsageError(`--${flag} must be a number >= 0`);
    }
    return n;
  };
  sft.epochs = num("epochs", v.epochs) ?? sft.epochs;
  sft.prompt_loss_weight = num("prompt-loss-weight", v["prompt-loss-weight"]) ?? sft.prompt_loss_weight;
  if (v.bos) sft.bos = true;
  if (v.pack) sft.pack = true;
  checkSft(sft, "command line");
  const flags: [string | undefined, string][] = [
    [v.lr, "train.lr"],
    [v["min-lr"], "train.min_lr"],
    [v.seq, "train.seq"],
    [v["micro-batch"], "train.micro_batch"],
    [v["grad-accum"], "train.grad_accum"],
    [v.seed, "train.seed"],
    [v.threads, "train.threads"],
    [v.tp, "parallel.tp"],
    [v.pp, "parallel.pp"],
    [v.dp, "parallel.dp"],
    [v.device, "parallel.device"],
    [v.recompute, "parallel.recompute"],
  ];
  for (const [value, key] of flags) if (value !== undefined) overrideConfig(run, key, value);
  if (v["distributed-optimizer"]) overrideConfig(run, "parallel.distributed_optimizer", "true");
  for (const kv of v.set ?? []) {
    const eq = kv.indexOf("=");
    if (eq < 1 || !kv.startsWith("train.")) {
      throw new UsageError(`--set expects train.KEY=VALUE, got '${kv}'`);
    }
    overrideConfig(run, kv.slice(0, eq), kv.slice(eq + 1));
  }
  run.name = v.name ?? run.name;
  validateConfig(run, "command line");
  return { sft, run };
}

/** Entry point. */
export async function main(rawArgs: string[]): Promise<void> {
  const v = parse(rawArgs);
  if (v.help) {
    console.log(HELP);
    return;
  }
  if (v.init !== undefined && v.resume !== undefined) {
    throw new UsageError(
      "--init and --resume are exclusive: --resume continues a finetuning run with its own model, --init " +
        "starts a new run",
    );
  }
  if (!v.init && !v.resume) throw new UsageError("--init RUN|HFDIR (or --resume PATH) is required");
  const resume = v.resume ? await resolveCheckpoint(v.resume) : undefined;
  const resumed = resume ? { dir: resume, meta: await readCheckpointMeta(resume) } : undefined;
  const { sft, run } = await resolveSettings(v, resumed);
  const source = v.data ?? (resumed?.meta.data as Partial<SftState> | undefined)?.source;
  if (source === undefined) throw new UsageError("--data FILE.jsonl|demo is required");
  await checkDevice(run.parallel.device ?? "cpu"); // before the init checkpoint is converted or anything written
  const steps = v.steps === undefined ? undefined : Number(v.steps);
  if (steps !== undefined && !(Number.isInteger(steps) && steps >= 1)) {
    throw new UsageError(`--steps must be a positive integer, got '${v.steps}'`);
  }
  const runDir = join(v.out!, run.name), initDir = join(runDir, "init");
  const par = run.parallel, ranks = par.tp * par.pp * par.dp;
  const launched = insideLaunch();
  // Started by srun/mpirun directly (not re-run by this command under mpirun): world rank 0 prepares the run
  // while the other ranks wait for it (distAllOk below), before they read the initial checkpoint. MPI starts
  // first, so that an error of rank 0 while it prepares takes the whole job down (MPI_Abort in runMain).
  const direct = launched && Deno.env.get("MEDITRON_LAUNCHED") === undefined && !resume;
  if (direct) await distInit();
  if (direct && launchRank() !== 0) await distAllOk(true);
  // Once, before any rank starts: the run directory and the initial checkpoint in the run's layout.
  const prepare = !resume && (!launched || (direct && launchRank() === 0));
  const hasCheckpoints = prepare && await exists(join(runDir, "checkpoints", "latest"));
  if (hasCheckpoints && !v.overwrite) {
    throw new UsageError(
      `${runDir} already has checkpoints: pass --resume ${runDir} to continue, --overwrite to start afresh, ` +
        `or --name NEW`,
    );
  }
  // Everything is checked before anything is written: the initial model's configuration, the data.
  const init = resume ?? (prepare ? await resolveModelArg(v.init!) : initDir);
  run.model = await grownModelConfig(init);
  const t = run.train;
  t.seq = Math.min(t.seq, run.model.max_seq);
  const data = await loadSftData(source, sft, run);
  const rows = t.micro_batch * t.grad_accum * par.dp;
  t.steps = steps ??
    (resumed && v.epochs === undefined
      ? resumed.meta.config.train.steps
      : Math.max(1, Math.ceil(data.dataset.samplesIn(sft.epochs) / rows)));
  t.decay_steps = t.steps;
  t.warmup_steps = Math.round(sft.warmup_ratio * t.steps);
  t.eval_every = 0; // batches change length: no fixed validation batches
  validateConfig(run, "finetune");
  if (resumed && t.steps <= resumed.meta.iteration) {
    throw new UsageError(
      `${resume} is at step ${resumed.meta.iteration} of ${t.steps}: pass --steps N (N > ` +
        `${resumed.meta.iteration}) to train further`,
    );
  }
  if (prepare) {
    const fresh = !(await exists(runDir));
    try {
      console.error(`init: ${v.init} -> ${initDir} (tp ${par.tp}, pp ${par.pp}, dp ${par.dp})`);
      await prepareInit(init, initDir, run, !v["no-verify"]);
    } catch (e) {
      if (fresh) await Deno.remove(runDir, { recursive: true }).catch(() => {}); // nothing half-written
      throw e;
    }
    if (direct) await distAllOk(true); // the other ranks may read the initial checkpoint now
  }
  if (ranks > 1 && !launched) {
    const program = [Deno.execPath(), "run", "-A", fileURLToPath(import.meta.url), ...rawArgs];
    Deno.env.set("MEDITRON_LAUNCHED", "1");
    const code = await runUnderMpi(program, {
      ranks,
      hostfile: v.hostfile,
      root: isRoot(),
      onInterrupt: (s) => console.error(s),
    });
    if (code !== 0) throw new Error(`the ${ranks}-rank job failed (exit code ${code})`);
    return;
  }
  const dist = await distInit();
  if (dist.size !== ranks) {
    throw new Error(`parallel.tp x pp x dp = ${ranks} ranks, but this job has ${dist.size}`);
  }
  const start = resume ?? await resolveCheckpoint(initDir);
  const verify = !v["no-verify"];
  await finetuneRank({
    source,
    sft,
    config: run,
    data,
    runDir,
    start,
    resume,
    verify,
    overwrite: v.overwrite ?? false,
    rank: dist.rank,
    ranks,
  });
}

/** One rank's finetuning: its data, settings, run directory and starting checkpoint, rank and rank count. */
interface RankRun {
  source: string;
  sft: SftSettings;
  /** The run configuration, `train.steps` and the model included. */
  config: RunConfig;
  data: SftData;
  runDir: string;
  /** The checkpoint the model starts from: the run's init, or `resume`. */
  start: string;
  /** The checkpoint to continue (optimizer state and data position included). */
  resume?: string;
  /** Verify the sha256 of the checkpoint's shards. */
  verify: boolean;
  /** --overwrite: the run's old checkpoints are deleted at the first step (not when resuming). */
  overwrite: boolean;
  rank: number;
  ranks: number;
}

async function finetuneRank(r: RankRun): Promise<void> {
  const { source, sft, config, data: { dataset }, runDir, rank, ranks } = r;
  const log = rank === 0 ? new Progress() : undefined;
  // SIGTERM / Ctrl-C / SIGUSR2 / the launcher's pipe: finish the step, write a checkpoint, exit 0, every rank at
  // the same step; from here on, so that a request while the model loads stops before the first step.
  using stop = stopOnSignals((s) => log?.line(s));
  const t = config.train;
  await setNumThreads(
    ranks > 1 && t.threads === 0 ? Math.max(1, Math.floor(navigator.hardwareConcurrency / ranks)) : t.threads,
  );
  const rows = t.micro_batch * t.grad_accum * config.parallel.dp;
  log?.line(
    `data: ${source}: ${r.data.conversations} conversations, ${dataset.size} kept (${dataset.truncated} ` +
      `truncated, ${dataset.dropped} dropped: no assistant token within ${
        t.seq + 1
      } tokens), ${dataset.tokens} tokens${
        sft.pack ? `; packed into ${dataset.rowsInEpoch(0)} rows of ${t.seq} tokens (epoch 1)` : ""
      }`,
  );
  using model = await NativeModel.create(modelDims(config.model), optimSettings(t), {
    seed: t.seed,
    initStd: config.model.init_std,
  }, topologyOf(config.parallel));
  // One rank's error takes the job down here, before `model` is freed (see failFast).
  await failFast(ranks, async () => {
    if (!r.resume) {
      await loadCheckpoint(r.start, model, { verify: r.verify });
      model.step = 0; // a fresh optimizer
    }
    if (rank === 0) {
      await Deno.mkdir(runDir, { recursive: true });
      await writeFileAtomic(
        join(runDir, "config.yaml"),
        new TextEncoder().encode(toYaml({ ...config, sft })),
      );
    }
    log?.line(
      `model: ${(model.numParams / 1e6).toFixed(2)}M parameters per rank from ${r.start} (vocabulary ` +
        `${config.model.vocab_size}); ${t.steps} steps of ${rows} ${
          sft.pack ? "packed rows" : "examples"
        } (≤ ${t.seq} tokens), lr ${t.lr} -> ` +
        `${t.min_lr}, warmup ${t.warmup_steps}, ${ranks} rank(s) -> ${runDir}`,
    );
    // The trainer reads train.seq for each step after asking for the batch: each batch sets its own length
    // (all ranks of a pipeline / tensor group draw the same samples, hence the same length). The checkpoints
    // record the longest (`seq` of the data state) for --resume.
    const maxSeq = t.seq;
    // The data path is recorded absolute: --resume defaults to it from any working directory.
    const data = source === "demo" ? source : resolve(source);
    const state: SftState = { source: data, seed: t.seed, examples: dataset.size, seq: maxSeq, sft };
    const batches: BatchSource = {
      train: (consumed, n) => {
        const b = dataset.batch(consumed, n);
        t.seq = b.seq;
        return b;
      },
      valid: () => [],
      state: { ...state }, // a Record for the checkpoint's data state
    };
    try {
      const result = await train({
        model,
        config,
        runDir,
        data: batches,
        resume: r.resume,
        verify: r.verify,
        signal: stop.signal,
        sync: { allOk: distAllOk },
        onNotice: (s) => log?.line(s),
        overwrite: r.overwrite, // the old checkpoints go at the first step, once the model is loaded
        onStep: (m, total) => {
          log?.update(
            `step ${m.step}/${total} loss ${m.loss.toFixed(4)} lr ${m.lr.toExponential(2)} gnorm ` +
              `${m.grad_norm.toFixed(3)} ${Math.round(m.tokens_per_s)} tok/s ETA ${formatDuration(m.eta_s)}`,
            m.step === total,
          );
        },
      });
      log?.done();
      const h = result.history;
      if (h.length) {
        const [first, last] = [h[0].loss.toFixed(4), h.at(-1)!.loss.toFixed(4)];
        log?.line(`done: loss ${first} -> ${last}; checkpoint ${result.checkpoint}`);
      }
    } finally {
      t.seq = maxSeq;
    }
  }, distAbort);
}

if (import.meta.main) {
  await runMain(main, HELP, { onError: () => insideLaunch() && distAbort(1), onExit: distFinalize });
}
