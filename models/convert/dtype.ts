/**
 * Scalar conversions between fp32 and the 16-bit float formats: widening is exact, narrowing rounds to
 * nearest, ties to even (what PyTorch's `.to(torch.bfloat16)` / `.half()` do); NaN stays NaN, overflow to ±inf.
 *
 * @module
 */

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/**
 * bf16 bits → fp32 value (exact).
 *
 * @example
 * ```ts
 * import { bf16ToF32 } from "./dtype.ts";
 * console.log(bf16ToF32(0x3f80)); // 1
 * ```
 */
export function bf16ToF32(bits: number): number {
  u32[0] = (bits & 0xffff) << 16;
  return f32[0];
}

/**
 * fp32 value → bf16 bits, round-to-nearest-even.
 *
 * @example
 * ```ts
 * import { f32ToBf16 } from "./dtype.ts";
 * console.log(f32ToBf16(1).toString(16)); // 3f80
 * ```
 */
export function f32ToBf16(value: number): number {
  f32[0] = value;
  const x = u32[0];
  if ((x & 0x7f800000) === 0x7f800000 && (x & 0x7fffff) !== 0) return ((x >>> 16) | 0x40) & 0xffff; // quiet NaN
  return ((x + 0x7fff + ((x >>> 16) & 1)) >>> 16) & 0xffff;
}

/**
 * fp16 bits → fp32 value (exact, subnormals included).
 *
 * @example
 * ```ts
 * import { f16ToF32 } from "./dtype.ts";
 * console.log(f16ToF32(0x3c00)); // 1
 * ```
 */
export function f16ToF32(bits: number): number {
  const s = bits & 0x8000 ? -1 : 1, e = (bits >> 10) & 0x1f, m = bits & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

/**
 * fp32 value → fp16 bits, round-to-nearest-even (subnormals, overflow to ±inf, NaN kept).
 *
 * @example
 * ```ts
 * import { f32ToF16 } from "./dtype.ts";
 * console.log(f32ToF16(1).toString(16)); // 3c00
 * ```
 */
export function f32ToF16(value: number): number {
  f32[0] = value;
  const x = u32[0];
  const sign = (x >>> 16) & 0x8000;
  const e = (x >>> 23) & 0xff;
  let m = x & 0x7fffff;
  if (e === 0xff) return sign | 0x7c00 | (m ? 0x200 : 0);
  const exp = e - 127 + 15;
  if (exp >= 31) return sign | 0x7c00;
  if (exp <= 0) {
    if (exp < -10) return sign; // rounds to zero (below half the smallest subnormal)
    m |= 0x800000;
    const shift = 14 - exp; // 24-bit significand → 10-bit subnormal field
    const half = 1 << (shift - 1);
    const rest = m & ((1 << shift) - 1);
    let r = m >>> shift;
    if (rest > half || (rest === half && (r & 1))) r++;
    return sign | r;
  }
  let r = (exp << 10) | (m >>> 13);
  const rest = m & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && (r & 1))) r++; // may carry into the exponent (→ inf): correct
  return sign | r;
}
