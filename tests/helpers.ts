// Shared test helpers: closeness checks and small fixtures.
import assert from "node:assert/strict";
import type { OptimSettings } from "../runtime/ffi.ts";

/** |a − b| ≤ rel · max(|a|, |b|, tiny). */
export function assertClose(actual: number, expected: number, rel: number, what = "value"): void {
  const scale = Math.max(Math.abs(actual), Math.abs(expected), 1e-30);
  assert.ok(
    Math.abs(actual - expected) <= rel * scale,
    `${what}: ${actual} vs ${expected} (relative error ${
      (Math.abs(actual - expected) / scale).toExponential(2)
    } > ${rel})`,
  );
}

/** ‖a − b‖₂ / ‖b‖₂ (0 when both are zero). */
export function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length, "length mismatch");
  let num = 0, den = 0;
  for (let i = 0; i < a.length; i++) {
    num += (a[i] - b[i]) ** 2;
    den += b[i] ** 2;
  }
  return den === 0 ? Math.sqrt(num) : Math.sqrt(num / den);
}

/** A valid optimizer configuration for tests. */
export const TEST_OPTIM: OptimSettings = {
  lr: 1e-3,
  minLr: 1e-4,
  warmupSteps: 2,
  decaySteps: 20,
  beta1: 0.9,
  beta2: 0.95,
  eps: 1e-8,
  weightDecay: 0.1,
  gradClip: 1,
};

/** Whether `mpirun` is on PATH (the multi-rank tests need it). */
export async function hasMpirun(): Promise<boolean> {
  return await new Deno.Command("sh", { args: ["-c", "command -v mpirun"], stdout: "null" }).output()
    .then((o) => o.success, () => false);
}

/** A fresh temporary directory removed by `using`. */
export function tempDir(prefix = "meditron-test-"): { path: string } & Disposable {
  const path = Deno.makeTempDirSync({ prefix });
  return { path, [Symbol.dispose]: () => Deno.removeSync(path, { recursive: true }) };
}
