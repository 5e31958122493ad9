/**
 * Growing the vocabulary for added tokens (SFT's `<|im_start|>`, `<|im_end|>`): the new rows of
 * `embed_tokens` and `lm_head` are initialised to the MEAN of the existing rows. The mean keeps a new token's
 * input embedding in the distribution the model has seen and gives its logit the average logit, so the new
 * token starts neither dominant nor impossible (Hewitt, "Initializing new word embeddings", 2021).
 * Megatron-LLM instead copied the last row, which ties the new token to an arbitrary one. AdamW moments of
 * the new rows start at zero.
 *
 * @module
 */
import type { ModelConfig } from "../config.ts";

/** The embedding-shaped parameters that grow with the vocabulary. */
export const VOCAB_PARAMS: readonly string[] = ["model.embed_tokens.weight", "lm_head.weight"];

/**
 * Appends `add` rows to a `[rows, cols]` matrix, each the mean (in float64) of the existing rows.
 *
 * @example
 * ```ts
 * import { growRowsWithMean } from "./resize.ts";
 * const m = growRowsWithMean(new Float32Array([1, 2, 3, 6]), 2, 2, 1);
 * console.log([...m]); // [1, 2, 3, 6, 2, 4]
 * ```
 */
export function growRowsWithMean(data: Float32Array, rows: number, cols: number, add: number): Float32Array {
  if (data.length !== rows * cols) {
    throw new Error(`matrix has ${data.length} values, expected ${rows}×${cols}`);
  }
  const mean = new Float64Array(cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) mean[c] += data[r * cols + c];
  const out = new Float32Array((rows + add) * cols);
  out.set(data);
  for (let r = rows; r < rows + add; r++) for (let c = 0; c < cols; c++) out[r * cols + c] = mean[c] / rows;
  return out;
}

/**
 * Wraps full-tensor readers of a model with vocabulary `m.vocab_size` into readers of the model grown by
 * `add` tokens (parameters: mean rows; moments: zero rows); returns the grown architecture too.
 *
 * @example
 * ```ts ignore
 * const grown = growVocab(model, 2, { param: (n) => src.param(n) });
 * ```
 */
export function growVocab(
  m: ModelConfig,
  add: number,
  read: {
    param(name: string): Promise<Float32Array>;
    moment?(name: string, kind: "exp_avg" | "exp_avg_sq"): Promise<Float32Array>;
  },
): {
  model: ModelConfig;
  param(name: string): Promise<Float32Array>;
  moment?(name: string, kind: "exp_avg" | "exp_avg_sq"): Promise<Float32Array>;
} {
  if (!Number.isInteger(add) || add < 0) throw new Error(`--add-tokens must be an integer >= 0 (got ${add})`);
  const model = { ...m, vocab_size: m.vocab_size + add };
  const param = async (name: string) => {
    const data = await read.param(name);
    return VOCAB_PARAMS.includes(name) && add ? growRowsWithMean(data, m.vocab_size, m.dim, add) : data;
  };
  const moment = read.moment;
  return {
    model,
    param,
    moment: moment && (async (name, kind) => {
      const data = await moment(name, kind);
      if (!VOCAB_PARAMS.includes(name) || !add) return data;
      const out = new Float32Array(model.vocab_size * m.dim);
      out.set(data);
      return out;
    }),
  };
}
