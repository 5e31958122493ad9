/**
 * The one interface conversion reads weights through, whatever the file format (safetensors, sharded
 * safetensors, PyTorch pickles): list the tensors, read one at a time as fp32.
 *
 * @module
 */

/** Name, shape and stored dtype of a tensor in a source. */
export interface TensorInfo {
  /** Tensor name. */
  name: string;
  /** Shape. */
  shape: number[];
  /** Stored dtype in safetensors spelling (`F32`, `BF16`, `F16`, …). */
  dtype: string;
}

/**
 * Weights readable one tensor at a time.
 *
 * @example
 * ```ts ignore
 * import type { TensorSource } from "./source.ts";
 * async function total(src: TensorSource): Promise<number> {
 *   let s = 0;
 *   for (const t of src.list()) s += (await src.read(t.name)).length;
 *   return s;
 * }
 * ```
 */
export interface TensorSource extends Disposable {
  /** Every tensor, in storage order. */
  list(): TensorInfo[];
  /** Reads one tensor as fp32 (16-bit floats widened exactly). */
  read(name: string): Promise<Float32Array<ArrayBuffer>>;
}
