/**
 * Next-token sampling: greedy, temperature, top-k, top-p (nucleus), and OpenAI-style frequency and presence
 * penalties, from a seeded generator so that a seed reproduces a generation.
 *
 * @module
 */

/** How the next token is drawn. */
export interface SamplingOptions {
  /** 0 (default) picks the argmax; otherwise logits are divided by it before the softmax. */
  temperature?: number;
  /** Keep only the k most likely tokens (0 or undefined: all). */
  topK?: number;
  /** Keep the smallest set of most likely tokens whose probability reaches p (1 or undefined: all). */
  topP?: number;
  /** Subtract penalty × count of the token among those generated so far (Meditron used 1.0). */
  frequencyPenalty?: number;
  /** Subtract penalty once from every token generated so far. */
  presencePenalty?: number;
}

/**
 * A seeded generator of uniforms in [0, 1) (sfc32 seeded through splitmix32).
 *
 * @example
 * ```ts
 * import { seededRandom } from "./sampling.ts";
 * const r = seededRandom(7);
 * console.log(r() === seededRandom(7)()); // true
 * ```
 */
export function seededRandom(seed: number): () => number {
  let s = seed >>> 0;
  const split = () => {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    return (z ^ (z >>> 16)) >>> 0;
  };
  let a = split(), b = split(), c = split(), d = split();
  return () => {
    const t = (((a + b) >>> 0) + d) >>> 0;
    d = (d + 1) >>> 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) >>> 0;
    c = ((c << 21) | (c >>> 11)) >>> 0;
    c = (c + t) >>> 0;
    return t / 4294967296;
  };
}

/**
 * Applies the frequency and presence penalties in place: logit[t] −= f·count(t) + p·[count(t) > 0].
 *
 * @example
 * ```ts
 * import { applyPenalties } from "./sampling.ts";
 * const l = new Float32Array([1, 1]);
 * applyPenalties(l, new Map([[0, 2]]), { frequencyPenalty: 1 });
 * console.log(l[0]); // -1
 * ```
 */
export function applyPenalties(logits: Float32Array, counts: Map<number, number>, o: SamplingOptions): void {
  const f = o.frequencyPenalty ?? 0, p = o.presencePenalty ?? 0;
  if (f === 0 && p === 0) return;
  for (const [token, count] of counts) logits[token] -= f * count + (count > 0 ? p : 0);
}

/** Index of the largest value (the first on ties). */
export function argmax(x: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < x.length; i++) if (x[i] > x[best]) best = i;
  return best;
}

/**
 * The probabilities sampling draws from, after temperature, top-k and top-p, as (token, probability) pairs
 * in decreasing probability (renormalised).
 *
 * @example
 * ```ts
 * import { candidates } from "./sampling.ts";
 * console.log(candidates(new Float32Array([0, 5, 1]), { temperature: 1, topK: 2 }).map((c) => c.token)); // [1, 2]
 * ```
 */
export function candidates(logits: ArrayLike<number>, o: SamplingOptions): { token: number; p: number }[] {
  const temperature = o.temperature ?? 0;
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) max = Math.max(max, logits[i]);
  const all: { token: number; p: number }[] = [];
  for (let i = 0; i < logits.length; i++) {
    all.push({ token: i, p: Math.exp((logits[i] - max) / temperature) });
  }
  all.sort((x, y) => y.p - x.p || x.token - y.token);
  let kept = o.topK && o.topK > 0 ? all.slice(0, o.topK) : all;
  const total = kept.reduce((a, c) => a + c.p, 0);
  const topP = o.topP ?? 1;
  if (topP < 1) {
    let mass = 0, n = 0;
    while (n < kept.length && mass < topP * total) mass += kept[n++].p;
    kept = kept.slice(0, Math.max(1, n));
  }
  const z = kept.reduce((a, c) => a + c.p, 0);
  return kept.map((c) => ({ token: c.token, p: c.p / z }));
}

/**
 * Draws the next token: the argmax at temperature 0, else a draw from {@linkcode candidates}.
 *
 * @example
 * ```ts
 * import { sampleToken, seededRandom } from "./sampling.ts";
 * console.log(sampleToken(new Float32Array([0, 3, 1]), {}, seededRandom(1))); // 1
 * ```
 */
export function sampleToken(logits: Float32Array, o: SamplingOptions, rand: () => number): number {
  if (!(o.temperature && o.temperature > 0)) return argmax(logits);
  const c = candidates(logits, o);
  let u = rand();
  for (const { token, p } of c) {
    if ((u -= p) < 0) return token;
  }
  return c[c.length - 1].token;
}
