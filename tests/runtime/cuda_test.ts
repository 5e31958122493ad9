// `device: "cuda"` selection: a library built without CUDA refuses it with a message naming the rebuild command;
// the CUDA build (runtime/build-cuda, from `deno task build --cuda`) refuses it on a machine without a GPU with
// the CUDA runtime's own reason, and on a GPU machine creates the model and trains a step on it. The CUDA build
// is exercised in a child process, since this process has the default library loaded.
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { buildInfo, checkDevice, MeditronError, NativeModel } from "../../runtime/mod.ts";
import type { ModelDims } from "../../runtime/ffi.ts";
import { TEST_OPTIM } from "../helpers.ts";

const dims: ModelDims = {
  dim: 64,
  nLayers: 2,
  nHeads: 4,
  nKvHeads: 2,
  ffnDim: 96,
  vocabSize: 200,
  maxSeq: 64,
  normEps: 1e-5,
  ropeTheta: 10000,
};
const CUDA_LIB = fileURLToPath(new URL("../../runtime/build-cuda/libmeditron.so", import.meta.url));
const haveCudaLib = await Deno.stat(CUDA_LIB).then((s) => s.isFile, () => false);

Deno.test("device cuda on a library built without CUDA is a MeditronError naming the rebuild", async (t) => {
  if (!(await buildInfo()).includes("cuda=off")) {
    return void (await t.step({ name: "skipped: the loaded library has CUDA", ignore: true, fn: () => {} }));
  }
  // checkDevice says the same before any work (commands call it before they write anything).
  await checkDevice("cpu");
  await assert.rejects(checkDevice("cuda"), /built without CUDA \(rebuild with deno task build --cuda\)/);
  await assert.rejects(
    NativeModel.create(dims, TEST_OPTIM, { seed: 1, initStd: 0.02 }, { tp: 1, pp: 1, dp: 1, device: "cuda" }),
    (e: unknown) =>
      e instanceof MeditronError &&
      /built without CUDA \(rebuild with deno task build --cuda\)/.test(e.message),
  );
  // The same library still creates CPU models, and reports where they run.
  using m = await NativeModel.create(dims, TEST_OPTIM, { seed: 1, initStd: 0.02 }, {
    tp: 1,
    pp: 1,
    dp: 1,
    device: "cpu",
    recompute: "selective",
  });
  assert.equal(m.rank.device, "cpu");
  assert.equal(m.rank.recompute, "selective");
  assert.equal(m.rank.comm, "host"); // the CPU backend's groups are MPI on host buffers
});

// Child: create a CUDA model; print {ok, gpu} or {error}. On a GPU, one training step must give a finite loss
// near ln(vocab) (random init) that matches the CPU backend of the same library within bf16 tolerance.
const CHILD = `
import { NativeModel, buildInfo, checkDevice } from "${
  new URL("../../runtime/mod.ts", import.meta.url).href
}";
const dims = ${JSON.stringify(dims)};
const optim = ${JSON.stringify(TEST_OPTIM)};
const B = 2, T = 32, n = B * T;
const tokens = Int32Array.from({ length: n }, (_, i) => (i * 37 + 11) % dims.vocabSize);
const targets = Int32Array.from({ length: n }, (_, i) => (i * 53 + 5) % dims.vocabSize);
const batch = { tokens, targets, lossMask: new Float32Array(n).fill(1), nMicro: 1, batch: B, seq: T };
const info = await buildInfo();
const check = await checkDevice("cuda").then(() => "ok", (e) => e.message);
try {
  const gpu = await NativeModel.create(dims, optim, { seed: 3, initStd: 0.02 }, { tp: 1, pp: 1, dp: 1, device: "cuda" });
  const cpu = await NativeModel.create(dims, optim, { seed: 3, initStd: 0.02 }, { tp: 1, pp: 1, dp: 1, device: "cpu" });
  const g = await gpu.trainStep(batch), c = await cpu.trainStep(batch);
  console.log(JSON.stringify({ ok: true, info, check, gpu: g.loss, cpu: c.loss }));
} catch (e) {
  console.log(JSON.stringify({ error: String(e?.message ?? e), info, check }));
}
`;

Deno.test({
  name: "CUDA build: device cuda fails clearly without a GPU, and trains like the CPU backend with one" +
    (haveCudaLib ? "" : " (skipped: no runtime/build-cuda/libmeditron.so; deno task build --cuda makes it)"),
  ignore: !haveCudaLib,
  fn: async () => {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["eval", "--no-check", CHILD],
      env: { MEDITRON_LIB: CUDA_LIB },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(out.stdout).trim().split("\n").pop() ?? "";
    assert.ok(out.success, `child failed: ${new TextDecoder().decode(out.stderr)}`);
    const r = JSON.parse(text) as {
      ok?: boolean;
      error?: string;
      info: string;
      check: string;
      gpu?: number;
      cpu?: number;
    };
    assert.match(r.info, /cuda=runtime-/, "the CUDA build reports its runtime");
    if (/devices=0/.test(r.info)) {
      assert.match(r.error ?? "", /no usable CUDA device: cudaGetDeviceCount (failed: |found 0)/);
      assert.equal(r.check, r.error, "checkDevice gives the message model creation gives");
    } else {
      assert.equal(r.check, "ok");
      assert.equal(r.error, undefined, r.error);
      assert.ok(Number.isFinite(r.gpu) && Math.abs(Math.log(dims.vocabSize) - r.gpu!) < 0.5, `loss ${r.gpu}`);
      assert.ok(Math.abs(r.gpu! - r.cpu!) <= 1e-2 * r.cpu!, `cuda loss ${r.gpu} vs cpu ${r.cpu}`);
    }
  },
});
