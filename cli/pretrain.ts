/**
 * `deno task pretrain`: continued pretraining of a Llama-2 model. With no arguments it trains
 * `configs/tiny.yaml` on the embedded demo corpus.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { join } from "node:path";
import { stringify as toYaml } from "yaml";
import { fileURLToPath } from "node:url";
import {
  checkDevice,
  distAbort,
  distAllOk,
  distFinalize,
  distInit,
  NativeModel,
  setNumThreads,
} from "../runtime/mod.ts";
import { insideLaunch, isRoot, runUnderMpi } from "../parallel/launcher.ts";
import {
  ConfigError,
  fitWarmupToSteps,
  loadConfig,
  modelDims,
  optimSettings,
  overrideConfig,
  presetConfig,
  type RunConfig,
  topologyOf,
  type TrainConfig,
  validateConfig,
} from "../models/config.ts";
import {
  checkLayout,
  type CheckpointMeta,
  newestValidCheckpoint,
  readCheckpointMeta,
  resolveCheckpoint,
} from "../models/checkpoint.ts";
import { type BatchSource, train } from "../models/trainer.ts";
import { InMemoryDocuments } from "../data/gpt_dataset.ts";
import { type CorpusDocument, readCorpusJsonl, tokenizeCorpus } from "../data/corpus.ts";
import { Tokenizer } from "../data/tokenizer.ts";
import { BlendedSamples, isIndexedSpec, splitFromValidFraction, SplitSamples } from "../data/blend.ts";
import { conditionsOfSystems, DISCLAIMER, renderCorpus } from "../data/embedded/mod.ts";
import { formatDuration, Progress } from "./progress.ts";
import { failFast, runMain, UsageError } from "./common.ts";
import { plotRun } from "./plot.ts";
import { writeFileAtomic } from "../data/indexed_dataset.ts";
import { stopOnSignals } from "./signals.ts";

const HELP = `Usage: deno task pretrain [options]

Pretrains a Llama-2 model. With no options: configs/tiny.yaml on the embedded demo corpus.
Ctrl-C, SIGTERM or SIGUSR2 finishes the step, writes a checkpoint and exits 0, every rank at the same step (a
second signal kills; one before the first step stops with nothing to write); --resume continues from it. A
job of --tp/--pp/--dp ranks started by this command gets the first signal through a pipe to rank 0 (mpirun
would kill the ranks on SIGINT/SIGTERM), and stops the same way if this command is killed.

Options:
  --config FILE         YAML run config (default: configs/tiny.yaml; with --resume: the checkpoint's)
  --preset NAME         start from a preset instead: tiny, llama2-7b, llama2-13b, llama2-70b
  --data SOURCE         'embedded', a JSONL file of {"text": …} documents, an indexed dataset prefix from
                        'deno task data tokenize|prepare', or a blend "0.3 PREFIX_A 0.7 PREFIX_B" (data.source)
  --systems LIST        organ systems of the embedded corpus, e.g. cardiovascular,respiratory (data.systems;
                        default all): a focused corpus a tiny model learns in minutes (deno task eval demo
                        --systems LIST then asks only about those)
  --steps N             optimizer steps (train.steps); a warmup longer than the run is shortened, with a note
  --seq N               tokens per sequence (train.seq)
  --micro-batch N       sequences per micro-batch (train.micro_batch)
  --grad-accum N        micro-batches per step (train.grad_accum)
  --lr X                peak learning rate (train.lr)
  --seed N              seed of init and data order (train.seed)
  --eval-every N        validation loss every N steps (train.eval_every)
  --save-every N        checkpoint every N steps (train.save_every)
  --threads N           kernel threads, 0 = all cores shared among local ranks (train.threads)
  --tp N, --pp N, --dp N  tensor / pipeline / data parallel sizes (parallel.*); more than one rank re-runs
                        this command under mpirun -n tp*pp*dp unless already inside an MPI or Slurm job
  --distributed-optimizer  ZeRO-1: shard the AdamW state over DP (parallel.distributed_optimizer)
  --device cpu|cuda     where the model runs (parallel.device); cuda needs deno task build --cuda and
                        MEDITRON_LIB=runtime/build-cuda/libmeditron.so
  --recompute none|selective  recompute attention, norms and SwiGLU in backward (parallel.recompute)
  --hostfile FILE       passed to mpirun for multi-node runs
  --set KEY=VALUE       any config key, e.g. --set model.n_layers=2 (repeatable)
  --name NAME           run name (default: the config's name)
  --out DIR             parent of the run directory (default: runs)
  --resume [PATH]       continue from a checkpoint: a run dir, its checkpoints/ or an iter_* dir
                        (default: the run directory of --name/--out); '--resume auto' takes the newest
                        checkpoint whose shards all verify, skipping damaged ones
  --no-verify           skip sha256 verification of checkpoint shards
  --overwrite           start afresh in a run directory that already has checkpoints (deleted once the data
                        and the model are ready; not with --resume)
  --debug               show stack traces on errors
  -h, --help            this help

Examples:
  deno task pretrain
  deno task pretrain --steps 400 --name tiny-long
  deno task pretrain --data corpus.jsonl --set model.n_layers=6
  deno task pretrain --name tiny --resume --steps 300
  deno task pretrain --tp 2 --pp 2 --dp 2 --steps 50 --name tiny-3d
  srun --mpi=pmix -n 16 deno run -A cli/pretrain.ts --config my.yaml --tp 4 --dp 4
`;

const FLAG_KEYS: Record<string, string> = {
  data: "data.source",
  systems: "data.systems",
  steps: "train.steps",
  seq: "train.seq",
  "micro-batch": "train.micro_batch",
  "grad-accum": "train.grad_accum",
  lr: "train.lr",
  seed: "train.seed",
  "eval-every": "train.eval_every",
  "save-every": "train.save_every",
  threads: "train.threads",
  tp: "parallel.tp",
  pp: "parallel.pp",
  dp: "parallel.dp",
  device: "parallel.device",
  recompute: "parallel.recompute",
};

function parse(args: string[]) {
  const { values } = parseArgs({
    args,
    strict: true,
    allowPositionals: false,
    options: {
      config: { type: "string" },
      preset: { type: "string" },
      set: { type: "string", multiple: true },
      name: { type: "string" },
      out: { type: "string", default: "runs" },
      resume: { type: "boolean" },
      "resume-from": { type: "string" },
      "no-verify": { type: "boolean" },
      overwrite: { type: "boolean" },
      "distributed-optimizer": { type: "boolean" },
      hostfile: { type: "string" },
      debug: { type: "boolean" },
      help: { type: "boolean", short: "h" },
      ...Object.fromEntries(Object.keys(FLAG_KEYS).map((k) => [k, { type: "string" as const }])),
    },
  });
  return values;
}

// `--resume PATH` and bare `--resume` both work: rewrite the former to --resume-from.
function normaliseResume(args: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    if (args[i] === "--resume" && i + 1 < args.length && !args[i + 1].startsWith("-")) {
      out.push("--resume-from", args[++i]);
    } else if (args[i].startsWith("--resume=")) out.push("--resume-from", args[i].slice(9));
    else out.push(args[i]);
  }
  return out;
}

/** The run's configuration, with one-line notices of what the command line changed implicitly. */
async function resolveConfig(
  v: ReturnType<typeof parse>,
  resumed?: CheckpointMeta,
): Promise<{ cfg: RunConfig; notices: string[] }> {
  if (v.config && v.preset) throw new UsageError("--config and --preset are exclusive");
  let cfg: RunConfig;
  if (v.config) cfg = await loadConfig(v.config);
  else if (v.preset) cfg = presetConfig(v.preset);
  else if (resumed) cfg = { ...presetConfig("tiny"), ...structuredClone(resumed.config) };
  else cfg = await loadConfig(new URL("../configs/tiny.yaml", import.meta.url).pathname);
  const stepsBefore = cfg.train.steps, setKeys = new Set<string>();
  for (const [flag, key] of Object.entries(FLAG_KEYS)) {
    const value = (v as Record<string, unknown>)[flag];
    if (typeof value === "string") overrideConfig(cfg, key, value);
  }
  for (const kv of v.set ?? []) {
    const eq = kv.indexOf("=");
    if (eq < 1) throw new UsageError(`--set expects KEY=VALUE, got '${kv}'`);
    overrideConfig(cfg, kv.slice(0, eq), kv.slice(eq + 1));
    setKeys.add(kv.slice(0, eq));
  }
  if (v.name) overrideConfig(cfg, "name", v.name);
  if (v["distributed-optimizer"]) overrideConfig(cfg, "parallel.distributed_optimizer", "true");
  // A shorter run (--steps 5, the usual smoke test) shortens a warmup it cannot hold, unless the warmup was set.
  const notices: string[] = [];
  if (cfg.train.steps !== stepsBefore && !setKeys.has("train.warmup_steps")) {
    const note = fitWarmupToSteps(cfg, stepsBefore);
    if (note) notices.push(note);
  }
  validateConfig(cfg, "command line");
  try {
    conditionsOfSystems(cfg.data.systems ?? "all");
  } catch (e) {
    throw new ConfigError(`command line: data.systems: ${(e as Error).message}`);
  }
  return { cfg, notices };
}

/**
 * A notice when a resumed run's LR schedule differs from its checkpoint's: as in Megatron, the schedule is the
 * new run's, so the learning rate after the checkpoint's iteration may jump.
 */
function scheduleChange(resumed: CheckpointMeta, after: TrainConfig): string | undefined {
  const show = (t: TrainConfig) =>
    `${t.steps} steps, warmup ${t.warmup_steps}, cosine to step ${t.decay_steps || t.steps}`;
  const before = resumed.config.train;
  if (resumed.iteration === 0 || show(before) === show(after)) return undefined;
  return `note: learning-rate schedule changed from the checkpoint's (${show(before)}) to ${show(after)}: ` +
    `from iteration ${resumed.iteration} the learning rate follows the new schedule`;
}

async function loadDocuments(data: RunConfig["data"]): Promise<CorpusDocument[]> {
  if (data.source === "embedded") {
    return renderCorpus({ conditions: conditionsOfSystems(data.systems ?? "all") });
  }
  return await readCorpusJsonl(data.source);
}

/** Training and validation samples of a config, before they become batches. */
interface SampleSources {
  train: BlendedSamples;
  valid?: BlendedSamples;
  state: Record<string, unknown>;
}

// Indexed data (a prefix or a blend 'W1 P1 W2 P2 …'): Megatron split "(1-f),f,0" of each dataset's documents,
// validation from the second part.
async function indexedSamples(cfg: RunConfig): Promise<SampleSources> {
  const t = cfg.train, rows = t.micro_batch * t.grad_accum;
  const common = { seq: t.seq, seed: t.seed, split: splitFromValidFraction(cfg.data.valid_fraction) };
  const train = await BlendedSamples.open(cfg.data.source, {
    ...common,
    numSamples: t.steps * rows * cfg.parallel.dp,
    part: "train",
  });
  const valid = cfg.data.valid_fraction > 0
    ? await BlendedSamples.open(cfg.data.source, { ...common, numSamples: 1, part: "valid" })
    : undefined;
  return { train, valid, state: { source: cfg.data.source, seed: t.seed, seq: t.seq, split: common.split } };
}

// Documents tokenized here (the embedded corpus or a JSONL file): a seeded document split, training documents
// first and validation last, so each split is a contiguous range of the same sample index as indexed data.
async function tokenizedSamples(cfg: RunConfig, log: (s: string) => void): Promise<SampleSources> {
  const t0 = performance.now();
  const docs = await loadDocuments(cfg.data);
  const corpus = tokenizeCorpus(docs, Tokenizer.llama2(), cfg.data.valid_fraction, cfg.train.seed);
  const systems = cfg.data.systems ?? "all";
  log(
    `data: ${cfg.data.source}${
      systems === "all" ? "" : ` (${systems})`
    }: ${docs.length} documents, ${corpus.tokens} tokens ` +
      `(${corpus.train.length} train / ${corpus.valid.length} validation documents), tokenized in ` +
      `${((performance.now() - t0) / 1000).toFixed(1)}s`,
  );
  const ordered = [...corpus.train, ...corpus.valid].map((i) => corpus.docs[i]);
  const store = new InMemoryDocuments(ordered);
  const nTrain = corpus.train.length, t = cfg.train;
  const part = (first: number, end: number, seed: number) =>
    BlendedSamples.of([{
      name: cfg.data.source,
      weight: 1,
      samples: new SplitSamples(store, { seq: t.seq, seed, first, end, name: cfg.data.source }),
    }]);
  return {
    train: part(0, nTrain, t.seed),
    valid: corpus.valid.length ? part(nTrain, ordered.length, t.seed + 1) : undefined,
    state: {
      source: cfg.data.source,
      ...(systems === "all" ? {} : { systems }),
      seed: t.seed,
      seq: t.seq,
      valid_fraction: cfg.data.valid_fraction,
    },
  };
}

/** Builds the training/validation batch source of a config. */
export async function pretrainData(cfg: RunConfig, log: (s: string) => void): Promise<BatchSource> {
  const t0 = performance.now();
  const indexed = isIndexedSpec(cfg.data.source);
  const { train, valid, state } = indexed ? await indexedSamples(cfg) : await tokenizedSamples(cfg, log);
  if (indexed) {
    const describe = (s: BlendedSamples) =>
      s.parts.map((p) =>
        `${p.name}${s.parts.length > 1 ? ` (weight ${p.weight.toFixed(3)})` : ""}: documents ` +
        `[${p.samples.first}, ${p.samples.end}), ${p.samples.tokensPerEpoch} tokens`
      ).join("; ");
    log(
      `data: train ${describe(train)}${valid ? `; validation ${describe(valid)}` : ""}; indices ready in ` +
        `${((performance.now() - t0) / 1000).toFixed(1)}s`,
    );
  }
  const batch = (samples: BlendedSamples, first: number, n: number) => {
    const b = samples.batch(first, n);
    for (const ids of [b.tokens, b.targets]) {
      for (const id of ids) {
        if (id >= cfg.model.vocab_size) {
          throw new Error(
            `${cfg.data.source}: token id ${id} (samples ${first}..${first + n - 1}) is outside ` +
              `model.vocab_size ${cfg.model.vocab_size}: set model.vocab_size to the tokenizer's size ` +
              `(Llama-2 with Meditron's bracket tokens: 32012)`,
          );
        }
      }
    }
    return b;
  };
  return {
    train: (consumed, n) => batch(train, consumed, n),
    valid: (n, count) =>
      valid
        ? Array.from(
          { length: Math.min(count, Math.floor(valid.samplesPerEpoch / n)) || 1 },
          (_, i) => batch(valid, i * n, n),
        )
        : [],
    state,
  };
}

/** A line sink for one rank: rank 0 draws progress on stderr; every rank appends to logs/rank-XX.log. */
class RankLog {
  readonly progress: Progress | undefined;
  readonly #file: Deno.FsFile | undefined;
  readonly #enc = new TextEncoder();
  constructor(rank: number, logDir: string | undefined) {
    this.progress = rank === 0 ? new Progress() : undefined;
    if (logDir) {
      Deno.mkdirSync(logDir, { recursive: true });
      const path = join(logDir, `rank-${String(rank).padStart(2, "0")}.log`);
      this.#file = Deno.openSync(path, { append: true, create: true });
    }
  }
  /** A line on rank 0's terminal and in the rank's log file. */
  line(s: string): void {
    this.progress?.line(s);
    this.record(s);
  }
  /** A line in the rank's log file only (multi-rank runs). */
  record(s: string): void {
    this.#file?.writeSync(this.#enc.encode(`${new Date().toISOString()} ${s}\n`));
  }
  close(): void {
    this.progress?.done();
    this.#file?.close();
  }
}

/** Entry point. */
export async function main(rawArgs: string[]): Promise<void> {
  const v = parse(normaliseResume(rawArgs));
  if (v.help) {
    console.log(HELP);
    return;
  }
  const resumeRequested = v.resume || v["resume-from"] !== undefined;
  if (resumeRequested && v.overwrite) {
    throw new UsageError("--resume continues a run's checkpoints and --overwrite deletes them: pass one");
  }
  let resumeDir: string | undefined;
  if (resumeRequested) {
    const from = v["resume-from"] ?? join(v.out!, v.name ?? "tiny");
    resumeDir = from === "auto"
      ? await newestValidCheckpoint(
        join(v.out!, v.name ?? "tiny"),
        (dir, why) => console.error(`resume auto: skipping ${dir} (${why})`),
      )
      : await resolveCheckpoint(from);
  }
  const resumed = resumeDir ? await readCheckpointMeta(resumeDir) : undefined;
  // Validates the layout too (the checkpoint's included): bad layouts never launch.
  const { cfg, notices } = await resolveConfig(v, resumed);
  if (resumeDir && resumed) {
    const par = cfg.parallel;
    checkLayout(resumeDir, resumed, { tp: par.tp, pp: par.pp, dp: par.dp, zero1: par.distributed_optimizer });
    const change = scheduleChange(resumed, cfg.train);
    if (change) notices.push(change);
  }
  await checkDevice(cfg.parallel.device ?? "cpu"); // before anything is written or launched
  const runDir = join(v.out!, cfg.name);
  const fresh = !(await Deno.stat(runDir).then(() => true, () => false));
  const par = cfg.parallel, ranks = par.tp * par.pp * par.dp;
  const launched = insideLaunch();
  if (!launched || Deno.env.get("MEDITRON_LAUNCHED") === undefined) {
    // Checks that a launcher (or a single process) makes once, before any rank starts.
    const hasCheckpoints = await Deno.stat(join(runDir, "checkpoints", "latest")).then(
      () => true,
      () => false,
    );
    if (hasCheckpoints && !resumeRequested && !v.overwrite) {
      throw new UsageError(
        `${runDir} already has checkpoints: pass --resume to continue, --overwrite to start afresh, or --name NEW`,
      );
    }
  }
  if (ranks > 1 && !launched) {
    // Re-run this very command on tp·pp·dp ranks.
    const program = [
      Deno.execPath(),
      "run",
      "-A",
      fileURLToPath(import.meta.url),
      ...rawArgs, // --overwrite included: rank 0 deletes the old checkpoints once the data and model are ready
    ];
    Deno.env.set("MEDITRON_LAUNCHED", "1");
    const code = await runUnderMpi(program, {
      ranks,
      hostfile: v.hostfile,
      root: isRoot(),
      onInterrupt: (s) => console.error(s),
    });
    if (code !== 0) {
      throw new Error(`the ${ranks}-rank job failed (exit code ${code}); see ${join(runDir, "logs")}`);
    }
    return;
  }
  const dist = await distInit();
  if (dist.size !== ranks) {
    throw new Error(
      `parallel.tp x pp x dp = ${ranks} ranks, but this job has ${dist.size} (check mpirun -n / srun -n)`,
    );
  }
  const log = new RankLog(dist.rank, ranks > 1 ? join(runDir, "logs") : undefined);
  try {
    // SIGINT (Ctrl-C), SIGTERM (preemption), SIGUSR2 (kill -USR2 of mpirun, srun --signal) and the launcher's
    // pipe finish the current step, write a checkpoint and exit 0, on every rank at the same step; a second
    // signal kills. Listening from here on: a request while the data and model load stops before step one.
    using stop = stopOnSignals((s) => log.line(s));
    await pretrainRank({
      cfg,
      runDir,
      fresh,
      resumeDir,
      v,
      rank: dist.rank,
      ranks,
      log,
      notices,
      stop: stop.signal,
    });
  } finally {
    log.close();
  }
}

/** One rank's run: its configuration, run directory, checkpoint to resume, flags, rank, rank count and log. */
interface RankRun {
  cfg: RunConfig;
  runDir: string;
  /** The run directory did not exist before this command. */
  fresh: boolean;
  resumeDir: string | undefined;
  v: ReturnType<typeof parse>;
  rank: number;
  ranks: number;
  log: RankLog;
  /** One-line notices of the configuration, logged by rank 0. */
  notices: string[];
  /** Aborted by a stop request (stopOnSignals). */
  stop: AbortSignal;
}

async function pretrainRank(run: RankRun): Promise<void> {
  const { cfg, runDir, rank, ranks, log } = run;
  if (rank === 0) { for (const note of run.notices) log.line(note); }
  if (cfg.data.source === "embedded" && rank === 0) log.line(`note: ${DISCLAIMER}`);
  await setNumThreads(
    ranks > 1 && cfg.train.threads === 0
      ? Math.max(1, Math.floor(navigator.hardwareConcurrency / ranks))
      : cfg.train.threads,
  );
  const data = await pretrainData(cfg, (s) => log.line(s));
  const par = cfg.parallel;
  // The first step's samples are checked before anything is written: a vocabulary mismatch shows there.
  data.train(0, cfg.train.micro_batch * cfg.train.grad_accum * par.dp);
  using model = await NativeModel.create(modelDims(cfg.model), optimSettings(cfg.train), {
    seed: cfg.train.seed,
    initStd: cfg.model.init_std,
  }, topologyOf(par));
  try {
    // One rank's error takes the job down here, before `model` is freed (see failFast).
    await failFast(
      ranks,
      () => trainRank(model, data, run),
      distAbort,
      (s) => log.record(s), // failFast prints the error itself
    );
  } finally {
    // A new run that failed or was stopped before its first step (config.yaml is written then) leaves no
    // directory behind.
    const has = (f: string) => Deno.stat(join(runDir, f)).then(() => true, () => false);
    if (run.fresh && ranks === 1 && !(await has("config.yaml")) && !(await has("checkpoints"))) {
      await Deno.remove(runDir, { recursive: true }).catch(() => {});
    }
  }
}

/** The training of one rank, with its model. */
async function trainRank(model: NativeModel, data: BatchSource, run: RankRun): Promise<void> {
  const { cfg, runDir, resumeDir, v, rank, ranks, log } = run;
  const par = cfg.parallel;
  const t = cfg.train, r = model.rank;
  let stepsDone = 0; // by this invocation
  log.line(
    `model: ${(model.numParams / 1e6).toFixed(2)}M parameters on rank ${rank} (tp ${r.tpRank}/${r.tp}, ` +
      `pp ${r.ppRank}/${r.pp}, dp ${r.dpRank}/${r.dp}, layers ${r.firstLayer}..${
        r.firstLayer + r.numLayers - 1
      }; ${r.device}${ranks > 1 ? `, TP/DP/PP over ${r.comm}` : ""}); ` +
      `global batch ${
        t.micro_batch * t.grad_accum * par.dp
      } x ${t.seq} tokens; ${t.steps} steps -> ${runDir}`,
  );
  const result = await train({
    model,
    config: cfg,
    runDir,
    data,
    resume: resumeDir,
    verify: !v["no-verify"],
    signal: run.stop,
    sync: { allOk: distAllOk },
    onNotice: (s) => log.line(s),
    overwrite: v.overwrite, // the old checkpoints go at the first step, once the data and model are ready
    onStep: async (m, total) => {
      // The model, the checkpoint and the data all worked: the run's configuration is now its own.
      if (rank === 0 && stepsDone++ === 0) {
        await writeFileAtomic(join(runDir, "config.yaml"), new TextEncoder().encode(toYaml(cfg)));
      }
      const val = m.val_loss !== undefined ? ` val ${m.val_loss.toFixed(4)}` : "";
      const text = `step ${m.step}/${total} loss ${m.loss.toFixed(4)}${val} lr ${m.lr.toExponential(2)} ` +
        `gnorm ${m.grad_norm.toFixed(3)} ${Math.round(m.tokens_per_s)} tok/s ETA ${formatDuration(m.eta_s)}`;
      if (m.val_loss !== undefined) log.line(text);
      else log.progress?.update(text, m.step === total);
    },
  });
  log.progress?.done();
  const h = result.history;
  if (h.length) {
    const tps = h.reduce((a, m) => a + m.tokens_per_s, 0) / h.length;
    const lastVal = h.findLast((m) => m.val_loss !== undefined)?.val_loss;
    log.line(
      `done: loss ${h[0].loss.toFixed(4)} -> ${h.at(-1)!.loss.toFixed(4)}` +
        (lastVal !== undefined ? `, validation ${lastVal.toFixed(4)}` : "") +
        `, ${Math.round(tps)} tokens/s; metrics ${
          join(runDir, "metrics.jsonl")
        }, checkpoint ${result.checkpoint}`,
    );
  }
  if (rank === 0 && h.length) await plotRun(runDir, (s) => log.line(s));
}

if (import.meta.main) {
  // One rank failing takes the whole MPI job down (MPI_Abort) instead of leaving the others blocked.
  await runMain(main, HELP, { onError: () => insideLaunch() && distAbort(1), onExit: distFinalize });
}
