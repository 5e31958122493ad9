// Every parallel layout equals the 1-rank run: per-step losses, grad norms and final parameters within 1e-5
// relative (fp32), on a GQA model with 4 micro-batches per step, a partial loss mask and clipping that clips.
import assert from "node:assert/strict";
import { assemble, OPTIM, type RankOut, runLayout } from "./worker.ts";
import { hasMpirun, relErr } from "../helpers.ts";

const haveMpirun = await hasMpirun();

const STEPS = 5;
let baseline: { losses: number[]; norms: number[]; params: Map<string, Float64Array> } | undefined;
async function reference(nMicro: number, packed = false) {
  const [o] = await runLayout(1, 1, 1, false, STEPS, nMicro, packed ? ["packed"] : []);
  return { losses: o.losses, norms: o.norms, params: assemble([o]) };
}

function assertEqualRuns(outs: RankOut[], ref: NonNullable<typeof baseline>, what: string): void {
  for (const o of outs) {
    assert.equal(o.rank.comm, "host", what); // CPU ranks: MPI on host buffers
    for (let s = 0; s < STEPS; s++) {
      assert.ok(
        Math.abs(o.losses[s] - ref.losses[s]) <= 1e-5 * Math.abs(ref.losses[s]),
        `${what} step ${s + 1} loss ${o.losses[s]} vs ${ref.losses[s]}`,
      );
      assert.ok(
        Math.abs(o.norms[s] - ref.norms[s]) <= 1e-5 * Math.abs(ref.norms[s]),
        `${what} step ${s + 1} grad norm ${o.norms[s]} vs ${ref.norms[s]}`,
      );
    }
  }
  const params = assemble(outs);
  assert.deepEqual([...params.keys()].sort(), [...ref.params.keys()].sort());
  for (const [name, t] of ref.params) {
    const err = relErr(params.get(name)!, t);
    assert.ok(err <= 1e-5, `${what} ${name}: relative error ${err.toExponential(2)}`);
  }
}

const LAYOUTS: [number, number, number][] = [];
for (const dp of [1, 2]) for (const tp of [1, 2]) for (const pp of [1, 2]) LAYOUTS.push([tp, pp, dp]);

Deno.test({
  name: "DP × TP × PP ∈ {1,2}³: 5 steps equal the 1-rank run (GQA, 4 micro-batches, partial mask, clipping)",
  ignore: !haveMpirun,
  fn: async (t) => {
    baseline = await reference(4);
    assert.ok(
      baseline.norms.every((n) => n > OPTIM.gradClip),
      `every step must clip: norms ${baseline.norms}`,
    );
    assert.ok(baseline.losses[STEPS - 1] < baseline.losses[0], "the loss moves");
    for (const [tp, pp, dp] of LAYOUTS) {
      if (tp * pp * dp === 1) continue;
      await t.step(`tp ${tp} pp ${pp} dp ${dp}`, async () => {
        assertEqualRuns(await runLayout(tp, pp, dp, false, STEPS, 4), baseline!, `tp${tp} pp${pp} dp${dp}`);
      });
    }
  },
});

Deno.test({
  name: "PP = 4 with 8 micro-batches, and ZeRO-1 equal plain DP (and the 1-rank run)",
  ignore: !haveMpirun,
  fn: async () => {
    const ref8 = await reference(8);
    assertEqualRuns(await runLayout(1, 4, 1, false, STEPS, 8), ref8, "pp4 m8");
    assertEqualRuns(await runLayout(1, 1, 2, true, STEPS, 8), ref8, "dp2 zero1");
    assertEqualRuns(await runLayout(2, 1, 2, true, STEPS, 8), ref8, "tp2 dp2 zero1");
  },
});

Deno.test({
  name: "packed rows (segment ids) through TP 2 × PP 2 × DP 2 equal the 1-rank run",
  ignore: !haveMpirun,
  fn: async () => {
    const packed = await reference(4, true);
    const plain = baseline ?? await reference(4);
    assert.ok(
      packed.losses.some((l, s) => Math.abs(l - plain.losses[s]) > 1e-3 * Math.abs(l)),
      `segment ids must change the losses: ${packed.losses} vs ${plain.losses}`,
    );
    assertEqualRuns(await runLayout(2, 2, 2, false, STEPS, 4, ["packed"]), packed, "packed tp2 pp2 dp2");
  },
});
