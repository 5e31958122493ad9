/**
 * Segment ids of packed rows: several examples share one row of `seq` tokens, each token carrying the id of its
 * example. The native attention lets a token attend only to earlier tokens of its own segment, and RoPE
 * positions restart at 0 where a segment starts, so a packed row computes what its examples would as separate
 * rows. Ids must not decrease along a row (a new example starts where the id changes).
 *
 * @module
 */

/**
 * Throws an Error naming `name` unless `ids` holds `rows·seq` ids that never decrease along a row of `seq`.
 *
 * @example
 * ```ts
 * import { checkSegmentIds } from "./segments.ts";
 * checkSegmentIds("segmentIds", Int32Array.from([0, 0, 1, 1, 0, 1, 1, 2]), 2, 4); // ok: two rows of 4
 * ```
 */
export function checkSegmentIds(name: string, ids: Int32Array, rows: number, seq: number): void {
  if (ids.length !== rows * seq) {
    throw new Error(`${name} has ${ids.length} elements, expected ${rows} rows × ${seq} = ${rows * seq}`);
  }
  for (let i = 0; i < ids.length; i++) {
    if (i % seq !== 0 && ids[i] < ids[i - 1]) {
      throw new Error(
        `${name}: row ${Math.floor(i / seq)} position ${i % seq} has id ${ids[i]} after ${
          ids[i - 1]
        }; segment ids must not decrease along a row`,
      );
    }
  }
}
