/**
 * Deterministic random parameters and tokens for the float64 reference, plus float32 conversions.
 */

import { type RefConfig, type RefParams, refParamShapes } from "./llama_f64.ts";

/**
 * Deterministic PRNG (SplitMix32-seeded sfc32), uniform doubles in [0, 1) with 53 random bits.
 * Identical sequences on every platform for the same seed.
 */
export class Rng {
  #a: number;
  #b: number;
  #c: number;
  #d: number;
  #spare: number | null = null;

  constructor(seed: number) {
    let s = seed >>> 0;
    const splitmix = () => {
      s = (s + 0x9e3779b9) >>> 0;
      let z = s;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.#a = splitmix();
    this.#b = splitmix();
    this.#c = splitmix();
    this.#d = splitmix();
    for (let i = 0; i < 16; i++) this.nextU32();
  }

  /** Next uniform 32-bit unsigned integer (sfc32). */
  nextU32(): number {
    const t = (((this.#a + this.#b) >>> 0) + this.#d) >>> 0;
    this.#d = (this.#d + 1) >>> 0;
    this.#a = this.#b ^ (this.#b >>> 9);
    this.#b = (this.#c + (this.#c << 3)) >>> 0;
    this.#c = ((this.#c << 21) | (this.#c >>> 11)) >>> 0;
    this.#c = (this.#c + t) >>> 0;
    return t;
  }

  /** Uniform double in [0, 1). */
  uniform(): number {
    const hi = this.nextU32() >>> 5; // 27 bits
    const lo = this.nextU32() >>> 6; // 26 bits
    return (hi * 67108864 + lo) / 9007199254740992;
  }

  /** Uniform integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.uniform() * n);
  }

  /** Standard normal (Box-Muller). */
  normal(): number {
    if (this.#spare !== null) {
      const v = this.#spare;
      this.#spare = null;
      return v;
    }
    const u1 = 1 - this.uniform(); // (0, 1]
    const u2 = this.uniform();
    const r = Math.sqrt(-2 * Math.log(u1));
    this.#spare = r * Math.sin(2 * Math.PI * u2);
    return r * Math.cos(2 * Math.PI * u2);
  }
}

export interface RandomParamsOptions {
  /** Standard deviation of the noise around 1 for the RMSNorm weights (default 0.1). */
  normNoise?: number;
  /** Round every value to the nearest float32 so f32 and f64 code see identical parameters (default true). */
  f32Exact?: boolean;
}

function isNormWeight(name: string): boolean {
  return name.endsWith("layernorm.weight") || name === "model.norm.weight";
}

/**
 * Random parameters for every tensor of refParamShapes(cfg), filled in HF order from one stream:
 * matrices ~ N(0, std^2); RMSNorm weights ~ 1 + N(0, normNoise^2) so their gradients are exercised.
 * By default values are float32-representable (see RandomParamsOptions.f32Exact).
 */
export function randomParams(
  cfg: RefConfig,
  seed: number,
  std = 0.02,
  opts: RandomParamsOptions = {},
): RefParams {
  const normNoise = opts.normNoise ?? 0.1;
  const f32Exact = opts.f32Exact ?? true;
  const rng = new Rng(seed);
  const params: RefParams = new Map();
  for (const [name, shape] of refParamShapes(cfg)) {
    const size = shape.reduce((a, b) => a * b, 1);
    const values = new Float64Array(size);
    const norm = isNormWeight(name);
    for (let i = 0; i < size; i++) {
      const v = norm ? 1 + normNoise * rng.normal() : std * rng.normal();
      values[i] = f32Exact ? Math.fround(v) : v;
    }
    params.set(name, values);
  }
  return params;
}

/** Random token ids in [0, vocab), deterministic in seed. */
export function randomTokens(vocab: number, n: number, seed: number): Int32Array {
  const rng = new Rng(seed);
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) out[i] = rng.int(vocab);
  return out;
}

/** Convert to float32 maps (values rounded to nearest float32), preserving order. */
export function toFloat32(params: RefParams): Map<string, Float32Array> {
  const out = new Map<string, Float32Array>();
  for (const [name, values] of params) out.set(name, Float32Array.from(values));
  return out;
}

/** Convert float32 maps back to float64 reference params (exact), preserving order. */
export function fromFloat32(params: Map<string, Float32Array>): RefParams {
  const out: RefParams = new Map();
  for (const [name, values] of params) out.set(name, Float64Array.from(values));
  return out;
}

/** Deep copy of reference params. */
export function cloneParams(params: RefParams): RefParams {
  const out: RefParams = new Map();
  for (const [name, values] of params) out.set(name, values.slice());
  return out;
}
