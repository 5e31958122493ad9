/**
 * `deno task bench sft-packing`: one SFT epoch with padded batches (one example per row, padded to the batch's
 * longest rounded up to 16) next to the same epoch with packed rows (whole examples first-fit into rows of
 * `seq` tokens, segment ids in the attention), on the same model, data and thread count in the same run.
 * Reports time per epoch, useful tokens/s (example tokens, i.e. not padding, and assistant tokens, i.e. loss
 * weight > 0) and the packed/padded speedup.
 *
 * Two sets, both generated from the embedded knowledge base: `demo` is the project's instruction set (the demo
 * train questions as Meditron prompt/gold rows: every example about 230 tokens, so there is little padding to
 * remove), `mixed` adds short fact questions and long "write a guideline/abstract/textbook section" answers
 * (rendered documents) to it, the long-tailed length mix of real SFT data.
 *
 * First, the attention kernel alone: forward + backward of one T = 2048 row cut into 8 segments of 256, with
 * segment ids vs plain causal attention over the whole row (skipped key tiles: at most 1/8 of the causal work).
 *
 * @module
 */
import { attentionBackward, attentionForward, NativeModel, setNumThreads } from "../runtime/mod.ts";
import { modelDims, optimSettings, presetConfig } from "../models/config.ts";
import { Tokenizer } from "../data/tokenizer.ts";
import { type ChatMessage, parseSftRow, SftDataset, type SftTokens, tokenizeChat } from "../data/sft.ts";
import { CONDITIONS, renderDocument, TEMPLATE_NAMES } from "../data/embedded/mod.ts";
import { demoSftRows } from "../cli/data_sft.ts";
import { benchMain, defineBench } from "./common.ts";

/** Short fact questions and long document requests about each condition of the knowledge base. */
export function mixedConversations(): ChatMessage[][] {
  const out: ChatMessage[][] = [];
  CONDITIONS.forEach((c, i) => {
    const facts: [string, string][] = [
      [`What is the first-line treatment of ${c.name}?`, `${c.firstLineTreatment}.`],
      [`Which test comes first when ${c.name} is suspected?`, `${c.firstLineTest}.`],
      [`Name a classic complication of ${c.name}.`, `${c.complication}.`],
    ];
    const [q, a] = facts[i % facts.length];
    out.push([{ role: "user", content: q }, { role: "assistant", content: a }]);
    const template = TEMPLATE_NAMES[i % TEMPLATE_NAMES.length];
    out.push([
      { role: "user", content: `Write a ${template.replace("-", " ")} about ${c.name}.` },
      { role: "assistant", content: renderDocument(c, template, 1000 + i) },
    ]);
  });
  return out;
}

/**
 * Median seconds of attention forward + backward on [1, T, 8 heads, 64]: plain causal, and with `segments` equal
 * segments, the two alternating.
 */
async function attentionSeconds(T: number, segments: number, reps: number): Promise<[number, number]> {
  const H = 8, hd = 64, n = T * H * hd;
  const x = Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.37));
  const causal = { B: 1, T, H, KVH: H, hd };
  const packed = {
    ...causal,
    segmentIds: Int32Array.from({ length: T }, (_, t) => Math.floor(t * segments / T)),
  };
  const times: [number[], number[]] = [[], []];
  for (let r = 0; r <= reps; r++) {
    for (const [i, s] of [causal, packed].entries()) {
      const t0 = performance.now();
      const { out, lse } = await attentionForward(x, x, x, s);
      await attentionBackward(x, x, x, out, lse, x, s);
      if (r > 0) times[i].push((performance.now() - t0) / 1000); // the first round warms up
    }
  }
  const median = (t: number[]) => t.sort((a, b) => a - b)[t.length >> 1];
  return [median(times[0]), median(times[1])];
}

/** What one epoch of one mode measured. */
interface EpochResult {
  seconds: number;
  steps: number;
  computed: number; // token positions computed (padding included)
  exampleTokens: number; // positions holding an example's token
  assistantTokens: number; // positions with a loss weight > 0
  loss: number; // token-weighted mean over the epoch (lr 0: the same in both modes up to rounding)
}

/** One epoch of one mode, run a step at a time (so that the two modes' steps can be interleaved). */
class EpochRun {
  readonly res: EpochResult = {
    seconds: 0,
    steps: 0,
    computed: 0,
    exampleTokens: 0,
    assistantTokens: 0,
    loss: 0,
  };
  #weight = 0;
  #next = 0;
  readonly #samples: number;
  readonly #steps: number;

  private constructor(
    readonly model: NativeModel,
    readonly ds: SftDataset,
    readonly rows: number,
  ) {
    this.#samples = ds.rowsInEpoch(0);
    this.#steps = Math.ceil(this.#samples / rows);
    this.res.exampleTokens = ds.tokens - ds.size; // inputs: every id but the last of each example
  }

  static async create(examples: SftTokens[], pack: boolean, seq: number, rows: number): Promise<EpochRun> {
    const cfg = presetConfig("tiny");
    const dims = { ...modelDims(cfg.model), vocabSize: 32002, maxSeq: seq };
    // lr 0: the timing of a real step (AdamW runs), parameters unchanged, so both modes see the same model.
    const model = await NativeModel.create(dims, optimSettings({ ...cfg.train, lr: 0, min_lr: 0 }), {
      seed: 1,
      initStd: cfg.model.init_std,
    });
    const ds = new SftDataset(examples, { seq, seed: 1, pack });
    if (ds.size === 0) {
      model.dispose();
      throw new Error(`no example keeps an assistant token within seq ${seq} + 1 tokens: raise --seq`);
    }
    const run = new EpochRun(model, ds, rows);
    await run.#train(0); // warm-up (allocations), not timed
    return run;
  }

  /** Fraction of the epoch done. */
  get progress(): number {
    return this.res.steps / this.#steps;
  }

  async #train(first: number) {
    const b = this.ds.batch(first, Math.min(this.rows, this.#samples - first));
    return { b, r: await this.model.trainStep({ ...b, nMicro: 1, batch: b.tokens.length / b.seq }) };
  }

  /** Runs and times the next step. */
  async step(): Promise<void> {
    const t0 = performance.now();
    const { b, r } = await this.#train(this.#next);
    this.res.seconds += (performance.now() - t0) / 1000;
    this.#next += this.rows;
    this.res.steps++;
    this.res.computed += b.tokens.length;
    this.res.assistantTokens += b.lossMask.reduce((a, w) => a + (w > 0 ? 1 : 0), 0);
    this.#weight += r.nTokens;
    this.res.loss += (r.loss * r.nTokens - this.res.loss * r.nTokens) / this.#weight; // running weighted mean
  }
}

/**
 * Both modes' epochs with their steps interleaved (the one further behind goes next), so that a change in the
 * machine's load during the run falls on both alike.
 */
async function epochs(
  examples: SftTokens[],
  seq: number,
  rows: number,
): Promise<{ padded: EpochResult; packed: EpochResult }> {
  const padded = await EpochRun.create(examples, false, seq, rows);
  const packed = await EpochRun.create(examples, true, seq, rows);
  try {
    while (padded.progress < 1 || packed.progress < 1) {
      await (padded.progress <= packed.progress && padded.progress < 1 ? padded : packed).step();
    }
    return { padded: padded.res, packed: packed.res };
  } finally {
    padded.model.dispose();
    packed.model.dispose();
  }
}

/** Runs the benchmark and prints the table. */
async function run(
  { seq, rows, threads, sets: names }: { seq: number; rows: number; threads: number; sets: string[] },
): Promise<void> {
  await setNumThreads(threads);
  const tok = Tokenizer.llama2({ chatTokens: true });
  const demo = demoSftRows().map((r, i) => parseSftRow(r, `demo#${i}`));
  const sets: Record<string, ChatMessage[][]> = { demo, mixed: [...demo, ...mixedConversations()] };
  console.log(
    `sft-packing: tiny model (dim 128, 4 layers, vocab 32002), seq ${seq}, ${rows} rows per step, ${threads} ` +
      `threads; one epoch padded vs packed, their steps interleaved`,
  );
  const [causal, packed] = await attentionSeconds(2048, 8, 5);
  console.log(
    `\nattention kernel, T 2048, 8 heads × 64, fwd+bwd: 8 segments of 256 ${
      (packed * 1e3).toFixed(1)
    } ms vs ` +
      `causal over the row ${(causal * 1e3).toFixed(1)} ms: ${(causal / packed).toFixed(2)}x faster (score ` +
      `entries: ${(2048 * 2049 / 2 / (8 * 256 * 257 / 2)).toFixed(2)}x fewer)`,
  );
  for (const name of names) {
    const conv = sets[name];
    if (!conv) throw new Error(`unknown set '${name}' (known: ${Object.keys(sets)})`);
    const examples = conv.map((c) => tokenizeChat(tok, c));
    const lengths = examples.map((e) => e.ids.length).sort((a, b) => a - b);
    console.log(
      `\n${name}: ${examples.length} examples, tokens min ${lengths[0]} / median ${
        lengths[lengths.length >> 1]
      } / max ${lengths.at(-1)}`,
    );
    const { padded, packed } = await epochs(examples, seq, rows);
    for (const [mode, r] of [["padded", padded], ["packed", packed]] as const) {
      console.log(
        `  ${mode}  ${r.seconds.toFixed(2).padStart(7)} s/epoch  ${String(r.steps).padStart(4)} steps  ` +
          `${String(r.computed).padStart(7)} positions (${
            (100 * (1 - r.exampleTokens / r.computed)).toFixed(1).padStart(4)
          }% padding)  ${(r.exampleTokens / r.seconds).toFixed(0).padStart(6)} example tok/s  ${
            (r.assistantTokens / r.seconds).toFixed(0).padStart(5)
          } assistant tok/s  mean loss ${r.loss.toFixed(3)}`,
      );
    }
    console.log(`  speedup packed/padded: ${(padded.seconds / packed.seconds).toFixed(2)}x (time per epoch)`);
  }
}

/** `deno task bench sft-packing`. */
export const bench = defineBench({
  name: "sft-packing",
  measures:
    `One SFT epoch of a tiny model (dim 128, 4 layers) with packed rows (whole examples first-fit into rows of
--seq tokens, segment ids in the attention): time per epoch, useful tokens/s (example and assistant tokens)
and the speedup, on the demo instruction set and on a long-tailed mix (short facts, long documents). First,
the attention kernel alone: T = 2048 cut into 8 segments of 256 with segment ids vs causal over the row.`,
  peer:
    "the same epoch with padded batches (one example per row), same model, data and threads, steps interleaved",
  options: {
    seq: { type: "int", default: 512, min: 16, help: "tokens per row" },
    rows: { type: "int", default: 8, min: 1, help: "rows per step" },
    threads: { type: "int", default: 2, min: 1, help: "kernel threads" },
    sets: {
      type: "choices",
      default: ["demo", "mixed"],
      choices: ["demo", "mixed"],
      help: "SFT sets to run",
    },
  },
  run,
});

if (import.meta.main) await benchMain(bench);
