/**
 * Naive float64 reference of the Llama-2 forward pass and loss, written straight from the math.
 *
 * This is the test oracle for the native (C++) kernels, so it is deliberately simple: plain loops,
 * no caching, no fusion, no shared code with the runtime. It is meant for tiny configurations only.
 *
 * Parameters use the Hugging Face `LlamaForCausalLM` names and row-major layouts; a linear layer
 * with weight W of shape [out, in] computes y = x W^T.
 *
 * Forward pass, per sequence of length `seq` (positions p = 0..seq-1):
 *   x = embed[tok]
 *   for each layer:
 *     h = RMSNorm(x) * input_layernorm
 *     q, k, v = h Wq^T, h Wk^T, h Wv^T            (heads of size hd = dim / nHeads)
 *     q, k = RoPE(q, p), RoPE(k, p)               (HF "rotate half" convention)
 *     a = causal softmax(q k^T / sqrt(hd)) v      (GQA: query head h reads kv head floor(h / (nHeads / nKvHeads)))
 *     x = x + a Wo^T
 *     h2 = RMSNorm(x) * post_attention_layernorm
 *     x = x + (silu(h2 Wgate^T) * (h2 Wup^T)) Wdown^T
 *   logits = (RMSNorm(x) * model.norm) lm_head^T
 */

export interface RefConfig {
  dim: number;
  nLayers: number;
  nHeads: number;
  nKvHeads: number;
  ffnDim: number;
  vocabSize: number;
  normEps: number;
  ropeTheta: number;
}

/** Hugging Face LlamaForCausalLM parameter name -> row-major float64 values. */
export type RefParams = Map<string, Float64Array>;

/** Head dimension hd = dim / nHeads, after checking the configuration is consistent. */
export function headDim(cfg: RefConfig): number {
  const ints: (keyof RefConfig)[] = ["dim", "nLayers", "nHeads", "nKvHeads", "ffnDim", "vocabSize"];
  for (const key of ints) {
    const min = key === "nLayers" ? 0 : 1;
    if (!Number.isInteger(cfg[key]) || cfg[key] < min) {
      throw new Error(`RefConfig.${key} must be an integer >= ${min}, got ${cfg[key]}`);
    }
  }
  if (cfg.dim % cfg.nHeads !== 0) throw new Error(`dim ${cfg.dim} not divisible by nHeads ${cfg.nHeads}`);
  if (cfg.nHeads % cfg.nKvHeads !== 0) {
    throw new Error(`nHeads ${cfg.nHeads} not divisible by nKvHeads ${cfg.nKvHeads}`);
  }
  const hd = cfg.dim / cfg.nHeads;
  if (hd % 2 !== 0) throw new Error(`head dim ${hd} must be even for RoPE`);
  if (!(cfg.normEps >= 0)) throw new Error(`normEps must be >= 0, got ${cfg.normEps}`);
  if (!(cfg.ropeTheta > 0)) throw new Error(`ropeTheta must be > 0, got ${cfg.ropeTheta}`);
  return hd;
}

/**
 * Every parameter name -> shape, in Hugging Face `named_parameters()` / state-dict order:
 * embed_tokens; per layer q, k, v, o, gate, up, down, input_layernorm, post_attention_layernorm;
 * model.norm; lm_head.
 */
export function refParamShapes(cfg: RefConfig): Map<string, number[]> {
  const hd = headDim(cfg);
  const { dim, nHeads, nKvHeads, ffnDim, vocabSize } = cfg;
  const shapes = new Map<string, number[]>();
  shapes.set("model.embed_tokens.weight", [vocabSize, dim]);
  for (let i = 0; i < cfg.nLayers; i++) {
    const p = `model.layers.${i}`;
    shapes.set(`${p}.self_attn.q_proj.weight`, [nHeads * hd, dim]);
    shapes.set(`${p}.self_attn.k_proj.weight`, [nKvHeads * hd, dim]);
    shapes.set(`${p}.self_attn.v_proj.weight`, [nKvHeads * hd, dim]);
    shapes.set(`${p}.self_attn.o_proj.weight`, [dim, nHeads * hd]);
    shapes.set(`${p}.mlp.gate_proj.weight`, [ffnDim, dim]);
    shapes.set(`${p}.mlp.up_proj.weight`, [ffnDim, dim]);
    shapes.set(`${p}.mlp.down_proj.weight`, [dim, ffnDim]);
    shapes.set(`${p}.input_layernorm.weight`, [dim]);
    shapes.set(`${p}.post_attention_layernorm.weight`, [dim]);
  }
  shapes.set("model.norm.weight", [dim]);
  shapes.set("lm_head.weight", [vocabSize, dim]);
  return shapes;
}

/** Fetch a parameter and check its length against the expected shape. */
function param(cfg: RefConfig, params: RefParams, name: string): Float64Array {
  const shape = refParamShapes(cfg).get(name);
  if (shape === undefined) throw new Error(`unknown parameter ${name}`);
  const value = params.get(name);
  if (value === undefined) throw new Error(`missing parameter ${name}`);
  const size = shape.reduce((a, b) => a * b, 1);
  if (value.length !== size) {
    throw new Error(`parameter ${name}: expected ${size} values for shape [${shape}], got ${value.length}`);
  }
  return value;
}

/** y[r, o] = sum_i x[r, i] * W[o, i]   (x: [rows, nIn], W: [nOut, nIn], y: [rows, nOut]). */
export function linear(
  x: Float64Array,
  rows: number,
  nIn: number,
  w: Float64Array,
  nOut: number,
): Float64Array {
  const y = new Float64Array(rows * nOut);
  for (let r = 0; r < rows; r++) {
    for (let o = 0; o < nOut; o++) {
      let sum = 0;
      for (let i = 0; i < nIn; i++) sum += x[r * nIn + i] * w[o * nIn + i];
      y[r * nOut + o] = sum;
    }
  }
  return y;
}

/** Row-wise RMSNorm: y = x / sqrt(mean(x^2) + eps) * w. */
export function rmsNorm(
  x: Float64Array,
  rows: number,
  dim: number,
  w: Float64Array,
  eps: number,
): Float64Array {
  const y = new Float64Array(rows * dim);
  for (let r = 0; r < rows; r++) {
    let sumSq = 0;
    for (let i = 0; i < dim; i++) sumSq += x[r * dim + i] * x[r * dim + i];
    const inv = 1 / Math.sqrt(sumSq / dim + eps);
    for (let i = 0; i < dim; i++) y[r * dim + i] = x[r * dim + i] * inv * w[i];
  }
  return y;
}

/**
 * HF rotate-half RoPE, in place, on x: [batch*seq, nH*hd]; position p = row index within its sequence.
 * inv_freq[i] = theta^(-2i/hd); angle = p * inv_freq[i];
 * out[i] = x[i] cos - x[i+hd/2] sin; out[i+hd/2] = x[i+hd/2] cos + x[i] sin   (i < hd/2).
 */
export function rope(
  x: Float64Array,
  batch: number,
  seq: number,
  nH: number,
  hd: number,
  theta: number,
): void {
  const half = hd / 2;
  for (let b = 0; b < batch; b++) {
    for (let p = 0; p < seq; p++) {
      const row = (b * seq + p) * nH * hd;
      for (let h = 0; h < nH; h++) {
        const base = row + h * hd;
        for (let i = 0; i < half; i++) {
          const angle = p * Math.pow(theta, -(2 * i) / hd);
          const cos = Math.cos(angle);
          const sin = Math.sin(angle);
          const x1 = x[base + i];
          const x2 = x[base + i + half];
          x[base + i] = x1 * cos - x2 * sin;
          x[base + i + half] = x2 * cos + x1 * sin;
        }
      }
    }
  }
}

/**
 * Causal softmax attention with GQA. q: [B*T, nHeads*hd]; k, v: [B*T, nKvHeads*hd]; out: [B*T, nHeads*hd].
 * `segments` [B*T] (packed rows): position t attends only to positions s <= t with the same segment id.
 */
export function attention(
  q: Float64Array,
  k: Float64Array,
  v: Float64Array,
  batch: number,
  seq: number,
  nHeads: number,
  nKvHeads: number,
  hd: number,
  segments?: Int32Array,
): Float64Array {
  const qStride = nHeads * hd;
  const kvStride = nKvHeads * hd;
  const group = nHeads / nKvHeads;
  const scale = 1 / Math.sqrt(hd);
  const out = new Float64Array(batch * seq * qStride);
  const scores = new Float64Array(seq);
  for (let b = 0; b < batch; b++) {
    for (let h = 0; h < nHeads; h++) {
      const kvh = Math.floor(h / group);
      for (let t = 0; t < seq; t++) {
        const qOff = (b * seq + t) * qStride + h * hd;
        // Scores against positions s <= t only (causal), of t's segment when segments are given.
        let first = t;
        while (segments && first > 0 && segments[b * seq + first - 1] === segments[b * seq + t]) first--;
        if (!segments) first = 0;
        let max = -Infinity;
        for (let s = first; s <= t; s++) {
          const kOff = (b * seq + s) * kvStride + kvh * hd;
          let dot = 0;
          for (let d = 0; d < hd; d++) dot += q[qOff + d] * k[kOff + d];
          scores[s] = dot * scale;
          if (scores[s] > max) max = scores[s];
        }
        let denom = 0;
        for (let s = first; s <= t; s++) {
          scores[s] = Math.exp(scores[s] - max);
          denom += scores[s];
        }
        for (let s = first; s <= t; s++) {
          const weight = scores[s] / denom;
          const vOff = (b * seq + s) * kvStride + kvh * hd;
          for (let d = 0; d < hd; d++) out[qOff + d] += weight * v[vOff + d];
        }
      }
    }
  }
  return out;
}

function silu(z: number): number {
  return z / (1 + Math.exp(-z));
}

function checkTokens(name: string, tokens: Int32Array, n: number, vocab: number): void {
  if (tokens.length !== n) throw new Error(`${name}: expected ${n} entries, got ${tokens.length}`);
  for (let i = 0; i < n; i++) {
    if (tokens[i] < 0 || tokens[i] >= vocab) {
      throw new Error(`${name}[${i}] = ${tokens[i]} out of [0, ${vocab})`);
    }
  }
}

/** Logits [batch*seq*vocab] for tokens [batch*seq] (row-major, each row one sequence). */
export function refForward(
  cfg: RefConfig,
  params: RefParams,
  tokens: Int32Array,
  batch: number,
  seq: number,
): Float64Array {
  const hd = headDim(cfg);
  const { dim, nHeads, nKvHeads, ffnDim, vocabSize, normEps } = cfg;
  if (!Number.isInteger(batch) || batch <= 0 || !Number.isInteger(seq) || seq <= 0) {
    throw new Error(`batch and seq must be positive integers, got ${batch}, ${seq}`);
  }
  const rows = batch * seq;
  checkTokens("tokens", tokens, rows, vocabSize);

  const embed = param(cfg, params, "model.embed_tokens.weight");
  let x = new Float64Array(rows * dim);
  for (let r = 0; r < rows; r++) {
    for (let i = 0; i < dim; i++) x[r * dim + i] = embed[tokens[r] * dim + i];
  }

  for (let l = 0; l < cfg.nLayers; l++) {
    const p = (name: string) => param(cfg, params, `model.layers.${l}.${name}`);

    // Attention block.
    const h = rmsNorm(x, rows, dim, p("input_layernorm.weight"), normEps);
    const q = linear(h, rows, dim, p("self_attn.q_proj.weight"), nHeads * hd);
    const k = linear(h, rows, dim, p("self_attn.k_proj.weight"), nKvHeads * hd);
    const v = linear(h, rows, dim, p("self_attn.v_proj.weight"), nKvHeads * hd);
    rope(q, batch, seq, nHeads, hd, cfg.ropeTheta);
    rope(k, batch, seq, nKvHeads, hd, cfg.ropeTheta);
    const a = attention(q, k, v, batch, seq, nHeads, nKvHeads, hd);
    const o = linear(a, rows, nHeads * hd, p("self_attn.o_proj.weight"), dim);
    x = x.map((xi, i) => xi + o[i]);

    // MLP block (SwiGLU).
    const h2 = rmsNorm(x, rows, dim, p("post_attention_layernorm.weight"), normEps);
    const gate = linear(h2, rows, dim, p("mlp.gate_proj.weight"), ffnDim);
    const up = linear(h2, rows, dim, p("mlp.up_proj.weight"), ffnDim);
    const act = gate.map((g, i) => silu(g) * up[i]);
    const down = linear(act, rows, ffnDim, p("mlp.down_proj.weight"), dim);
    x = x.map((xi, i) => xi + down[i]);
  }

  const hf = rmsNorm(x, rows, dim, param(cfg, params, "model.norm.weight"), normEps);
  return linear(hf, rows, dim, param(cfg, params, "lm_head.weight"), vocabSize);
}

/** Per-token cross-entropy -log softmax(logits)[target], with a stable log-sum-exp. */
export function crossEntropy(logits: Float64Array, offset: number, vocab: number, target: number): number {
  let max = -Infinity;
  for (let j = 0; j < vocab; j++) max = Math.max(max, logits[offset + j]);
  let sum = 0;
  for (let j = 0; j < vocab; j++) sum += Math.exp(logits[offset + j] - max);
  return max + Math.log(sum) - logits[offset + target];
}

/**
 * Weighted mean cross-entropy: sum(mask * ce) / sum(mask) over all batch*seq positions.
 * Positions with mask 0 are skipped entirely (their target may be anything, e.g. -100).
 * Returns 0 when sum(mask) is 0.
 */
export function refLoss(
  cfg: RefConfig,
  params: RefParams,
  tokens: Int32Array,
  targets: Int32Array,
  lossMask: Float32Array | Float64Array,
  batch: number,
  seq: number,
): number {
  const rows = batch * seq;
  const vocab = cfg.vocabSize;
  if (targets.length !== rows) throw new Error(`targets: expected ${rows} entries, got ${targets.length}`);
  if (lossMask.length !== rows) throw new Error(`lossMask: expected ${rows} entries, got ${lossMask.length}`);
  const logits = refForward(cfg, params, tokens, batch, seq);
  let weighted = 0;
  let total = 0;
  for (let r = 0; r < rows; r++) {
    const m = lossMask[r];
    if (m === 0) continue;
    if (targets[r] < 0 || targets[r] >= vocab) throw new Error(`targets[${r}] = ${targets[r]} out of range`);
    weighted += m * crossEntropy(logits, r * vocab, vocab, targets[r]);
    total += m;
  }
  return total === 0 ? 0 : weighted / total;
}

/**
 * Central finite difference d f / d x[index] = (f(x + h e_i) - f(x - h e_i)) / (2h), restoring x[index]
 * afterwards (also on exceptions). The divisor is the actual (rounded) step between the two points.
 */
export function finiteDiffGrad(f: () => number, x: Float64Array, index: number, h = 1e-6): number {
  if (!Number.isInteger(index) || index < 0 || index >= x.length) {
    throw new Error(`index ${index} out of [0, ${x.length})`);
  }
  const orig = x[index];
  try {
    const plus = orig + h;
    const minus = orig - h;
    x[index] = plus;
    const fPlus = f();
    x[index] = minus;
    const fMinus = f();
    return (fPlus - fMinus) / (plus - minus);
  } finally {
    x[index] = orig;
  }
}
