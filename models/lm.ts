/**
 * The language-model interface evaluation and serving use — log-likelihood scoring of continuations and
 * streaming generation — and its implementation on the native model with a KV cache.
 *
 * @module
 */
import { KvCache } from "../runtime/kv.ts";
import type { NativeModel } from "../runtime/model.ts";
import { applyPenalties, sampleToken, type SamplingOptions, seededRandom } from "./sampling.ts";

/** Options of {@linkcode LanguageModel.generate}. */
export interface GenerateOptions extends SamplingOptions {
  /** Most tokens to generate. */
  maxTokens: number;
  /** Seed of the sampler (default 0). */
  seed?: number;
  /** Stop when the decoded generation contains one of these (needs `decode`). */
  stop?: string[];
  /** Stop after one of these token ids (it is yielded). */
  eos?: number[];
  /** Turns ids into text, for stop strings. */
  decode?: (ids: number[]) => string;
}

/** Score of one continuation. */
export interface ScoredContinuation {
  /** Σ log p(continuation tokens | context). */
  logprob: number;
  /** Number of continuation tokens. */
  tokens: number;
  /** Whether every continuation token is the argmax (lm-evaluation-harness's is_greedy). */
  greedy: boolean;
}

/** What evaluation and serving need from a model. */
export interface LanguageModel {
  /** Vocabulary size. */
  readonly vocabSize: number;
  /** Σ log p(continuation | context) for each continuation, sharing the context's prefill. */
  score(context: number[], continuations: number[][]): Promise<ScoredContinuation[]>;
  /** Streams generated token ids. */
  generate(prompt: number[], options: GenerateOptions): AsyncIterable<number>;
}

/** log p(token) under softmax(logits[offset, offset + V)). */
export function logSoftmaxAt(logits: Float32Array, offset: number, V: number, token: number): number {
  let max = -Infinity;
  for (let i = 0; i < V; i++) max = Math.max(max, logits[offset + i]);
  let sum = 0;
  for (let i = 0; i < V; i++) sum += Math.exp(logits[offset + i] - max);
  return logits[offset + token] - max - Math.log(sum);
}

function isArgmax(logits: Float32Array, offset: number, V: number, token: number): boolean {
  const v = logits[offset + token];
  for (let i = 0; i < V; i++) if (logits[offset + i] > v) return false;
  return true;
}

/**
 * {@linkcode LanguageModel} over a native model (one rank). Slot 0 of its KV cache holds the prompt or
 * context; scoring copies the context into one slot per continuation and runs all continuations in one
 * batched call.
 *
 * @example
 * ```ts ignore
 * const lm = new NativeLanguageModel(model);
 * for await (const id of lm.generate([1, 450], { maxTokens: 8 })) console.log(id);
 * ```
 */
export class NativeLanguageModel implements LanguageModel, Disposable {
  readonly #model: NativeModel;
  readonly #slots: number;
  #kv: KvCache | undefined;

  /** `slots`: sequences decoded together (continuations scored per batch). */
  constructor(model: NativeModel, slots = 16) {
    this.#model = model;
    this.#slots = Math.max(2, slots);
  }

  /** Vocabulary size. */
  get vocabSize(): number {
    return this.#model.dims.vocabSize;
  }

  get #cache(): KvCache {
    this.#kv ??= KvCache.create(this.#model, this.#slots, this.#model.dims.maxSeq);
    return this.#kv;
  }

  /** Scores continuations; contexts must be non-empty. */
  async score(context: number[], continuations: number[][]): Promise<ScoredContinuation[]> {
    if (context.length === 0) throw new Error("score: the context must hold at least one token (e.g. BOS)");
    const kv = this.#cache, V = this.vocabSize;
    kv.reset(0);
    const last = await kv.decode(
      context.map(() => 0),
      context,
      context.map((_, i) => i === context.length - 1),
    );
    const out: ScoredContinuation[] = [];
    for (let first = 0; first < continuations.length; first += this.#slots - 1) {
      const group = continuations.slice(first, first + this.#slots - 1);
      const seq: number[] = [], tok: number[] = [], want: boolean[] = [];
      group.forEach((c, g) => {
        if (c.length < 2) return; // one-token continuations are scored from the context's last logits alone
        kv.copy(0, g + 1, context.length);
        c.forEach((t, j) => {
          seq.push(g + 1);
          tok.push(t);
          want.push(j < c.length - 1); // the last token's logits predict nothing we score
        });
      });
      const logits = tok.length ? await kv.decode(seq, tok, want) : new Float32Array(0);
      let row = 0;
      for (const c of group) {
        let logprob = 0, greedy = true;
        for (let j = 0; j < c.length; j++) {
          const [src, off] = j === 0 ? [last, 0] : [logits, (row + j - 1) * V];
          logprob += logSoftmaxAt(src, off, V, c[j]);
          greedy &&= isArgmax(src, off, V, c[j]);
        }
        row += Math.max(0, c.length - 1);
        out.push({ logprob, tokens: c.length, greedy });
      }
    }
    return out;
  }

  /** Streams tokens: prefill, then one decode step per token. */
  async *generate(prompt: number[], o: GenerateOptions): AsyncGenerator<number> {
    if (prompt.length === 0) throw new Error("generate: the prompt must hold at least one token (e.g. BOS)");
    const kv = this.#cache, maxSeq = this.#model.dims.maxSeq;
    kv.reset(0);
    const rand = seededRandom(o.seed ?? 0);
    const counts = new Map<number, number>(), generated: number[] = [];
    let logits = await kv.decode(prompt.map(() => 0), prompt, prompt.map((_, i) => i === prompt.length - 1));
    for (let n = 0; n < o.maxTokens && prompt.length + n < maxSeq; n++) {
      applyPenalties(logits, counts, o);
      const token = sampleToken(logits, o, rand);
      counts.set(token, (counts.get(token) ?? 0) + 1);
      generated.push(token);
      yield token;
      if (o.eos?.includes(token)) return;
      if (o.stop?.length && o.decode) {
        const text = o.decode(generated);
        if (o.stop.some((s) => text.includes(s))) return;
      }
      if (n + 1 < o.maxTokens && prompt.length + n + 1 < maxSeq) logits = await kv.decode([0], [token]);
    }
  }

  /** Frees the KV cache. */
  [Symbol.dispose](): void {
    this.#kv?.dispose();
    this.#kv = undefined;
  }
}
