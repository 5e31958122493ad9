// Deterministic fake language models for the evaluation tests (no native library): a bigram model whose
// scores can be brute-forced, and a scripted model that "answers" by reading its prompt.
import type { GenerateOptions, LanguageModel, ScoredContinuation } from "../../models/lm.ts";
import { mulberry32 } from "../../data/embedded/render.ts";

/** Pseudo-random logit in [0, 1) for the bigram (prev → next). */
function hashLogit(prev: number, next: number): number {
  let h = Math.imul(prev + 0x9e3779b9, 0x85ebca6b) ^ Math.imul(next + 0x7f4a7c15, 0xc2b2ae35);
  h = Math.imul(h ^ (h >>> 13), 0x27d4eb2f);
  return ((h ^ (h >>> 16)) >>> 0) / 4294967296;
}

/**
 * A bigram model over token ids: logit(prev → next) = hash in [0, 1) + bonus[next]. `score` is computed the
 * slow obvious way; `sequenceLogprob` lets a test brute-force the same numbers independently.
 */
export class BigramModel implements LanguageModel {
  readonly vocabSize: number;
  readonly bonus: Map<number, number>;
  scoreCalls = 0;

  constructor(vocabSize: number, bonus: Map<number, number> = new Map()) {
    this.vocabSize = vocabSize;
    this.bonus = bonus;
  }

  logits(prev: number): Float64Array {
    const l = new Float64Array(this.vocabSize);
    for (let v = 0; v < this.vocabSize; v++) l[v] = hashLogit(prev, v) + (this.bonus.get(v) ?? 0);
    return l;
  }

  logprob(prev: number, next: number): number {
    const l = this.logits(prev);
    let max = -Infinity;
    for (const x of l) max = Math.max(max, x);
    let sum = 0;
    for (const x of l) sum += Math.exp(x - max);
    return l[next] - max - Math.log(sum);
  }

  /** Σ_{i ≥ from} log p(ids[i] | ids[i-1]). */
  sequenceLogprob(ids: number[], from: number): number {
    let s = 0;
    for (let i = Math.max(1, from); i < ids.length; i++) s += this.logprob(ids[i - 1], ids[i]);
    return s;
  }

  score(context: number[], continuations: number[][]): Promise<ScoredContinuation[]> {
    this.scoreCalls++;
    return Promise.resolve(continuations.map((c) => {
      const all = [...context, ...c];
      let greedy = true;
      for (let i = context.length; i < all.length; i++) {
        const l = this.logits(all[i - 1]);
        if (l.some((x) => x > l[all[i]])) greedy = false;
      }
      return { logprob: this.sequenceLogprob(all, context.length), tokens: c.length, greedy };
    }));
  }

  async *generate(prompt: number[], o: GenerateOptions): AsyncIterable<number> {
    const rand = mulberry32(o.seed ?? 0);
    let prev = prompt[prompt.length - 1];
    const out: number[] = [];
    for (let n = 0; n < o.maxTokens; n++) {
      const l = this.logits(prev);
      let next = 0;
      if (!o.temperature) {
        for (let v = 1; v < l.length; v++) if (l[v] > l[next]) next = v;
      } else {
        const p = Array.from(l, (x) => Math.exp(x / o.temperature!));
        let u = rand() * p.reduce((a, b) => a + b, 0);
        while (next < p.length - 1 && u > p[next]) u -= p[next++];
      }
      out.push(next);
      yield next;
      prev = next;
      if (o.eos?.includes(next)) return;
      if (o.stop && o.decode && o.stop.some((s) => o.decode!(out).includes(s))) return;
      await Promise.resolve();
    }
  }
}

/** What a scripted model says, given the decoded prompt and the sampling seed. */
export type Script = (prompt: string, seed: number, temperature: number) => string;

/** Tokenizes `script(prompt)` and streams it, honouring maxTokens, eos and stop strings like a real model. */
export class ScriptedModel implements LanguageModel {
  readonly vocabSize = 32000;
  readonly prompts: string[] = [];
  readonly options: GenerateOptions[] = [];

  constructor(
    private readonly codec: {
      encode(t: string, o?: { addBos?: boolean }): number[];
      decode(ids: number[]): string;
    },
    private readonly script: Script,
  ) {}

  score(): Promise<ScoredContinuation[]> {
    return Promise.reject(new Error("ScriptedModel only generates"));
  }

  async *generate(prompt: number[], o: GenerateOptions): AsyncIterable<number> {
    const text = this.codec.decode(prompt);
    this.prompts.push(text);
    this.options.push(o);
    const ids = this.codec.encode(this.script(text, o.seed ?? 0, o.temperature ?? 0), { addBos: false });
    const out: number[] = [];
    for (const id of ids.slice(0, o.maxTokens)) {
      out.push(id);
      yield id;
      if (o.eos?.includes(id)) return;
      if (o.stop && o.decode && o.stop.some((s) => o.decode!(out).includes(s))) return;
      await Promise.resolve();
    }
  }
}
