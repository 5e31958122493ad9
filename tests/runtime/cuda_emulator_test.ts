// The CUDA backend without a GPU: `deno task build --cuda-emulator` builds it for the CUDA emulator
// (runtime/src/cuda/emulator.hpp: the same .cu sources, their kernels run as fibers on the CPU), into
// runtime/build-emulate/. CI builds it before the tests; elsewhere these tests are skipped until it is built.
//   - the emulator's own checks (tests/runtime/cuda_emulator_kernels.cu): warp collectives, mma.sync, cp.async,
//     NaN-filled fresh memory, copy kinds, launch limits, and that a deadlock, an exited lane or a missing
//     barrier shows; the emulated NCCL's refusals (host memory, overlaps, another device's stream);
//   - the emulated NCCL (tests/runtime/cuda_emulator_nccl.cpp) on two ranks under mpirun: each collective's
//     values in and out of place, and bootstraps NCCL refuses (a duplicate GPU, different rank counts);
//   - bench/gpu/gpu.ts check --emulated on it: the CUDA backend (both attention paths, packed rows, selective
//     recompute, KV-cache decode) against the CPU backend of the same library, as on a GPU;
//   - bench/gpu/layouts.ts on it: every parallel layout (TP, PP, DP, ZeRO-1, packed) of the CUDA backend
//     against its 1-rank run, one emulated GPU per rank (NCCL, emulated over MPI by
//     runtime/src/cuda/emulator_nccl.cpp); then two of them with the ranks sharing one (the staged communicator).
import assert from "node:assert/strict";
import { join } from "node:path";
import { LIB_NAME, SOURCE_DIR } from "../../runtime/build.ts";
import { hasMpirun, tempDir } from "../helpers.ts";

const BUILD = join(SOURCE_DIR, "build-emulate");
const LIB = join(BUILD, LIB_NAME);
const ROOT = join(SOURCE_DIR, "..");
// deno task test:sanitize preloads the sanitizer runtimes into every child: the emulated library is not built
// for them (and the normal run has already run these tests), so they stay out of it.
const underSanitizers = (Deno.env.get("LD_PRELOAD") ?? "").includes("libasan");
const haveLib = !underSanitizers && await Deno.stat(LIB).then((s) => s.isFile, () => false);
const inCi = Deno.env.get("CI") === "true" && !underSanitizers;

Deno.test({
  name: "CUDA emulator: CI has built it (deno task build --cuda-emulator)",
  ignore: !inCi,
  fn: () => assert.ok(haveLib, `${LIB} is missing: .ci/run builds it before the tests`),
});

/** A CMake cache entry of the emulator's build (the CUDA header directories it found). */
async function cacheEntry(name: string): Promise<string> {
  const cache = await Deno.readTextFile(join(BUILD, "CMakeCache.txt"));
  const m = cache.match(new RegExp(`^${name}:[A-Z]+=(.*)$`, "m"));
  assert.ok(m && m[1], `${name} not in ${BUILD}/CMakeCache.txt`);
  return m[1];
}

/**
 * Compiles a check program (`main`, a C++ source even when named .cu) with the emulator's sources into `exe`:
 * g++, or mpicxx with MEDITRON_MPI for the multi-rank NCCL checks.
 */
async function compileCheck(main: string, exe: string, mpi = false): Promise<void> {
  const inc = [await cacheEntry("MEDITRON_CUBLAS_INCLUDE"), await cacheEntry("MEDITRON_NCCL_INCLUDE")];
  const cc = await run(mpi ? "mpicxx" : "g++", [
    ...["-std=c++17", "-O1", "-fno-strict-aliasing", "-Wall", "-Wno-unknown-pragmas"],
    ...(mpi ? ["-DMEDITRON_MPI"] : []),
    ...["-DMEDITRON_CUDA", "-DMEDITRON_CUDA_EMULATE", "-Iruntime/include", "-Iruntime/src"],
    ...inc.map((d) => `-I${d}`),
    ...["-xc++", main, "-xnone", "runtime/src/cuda/emulator.cpp", "runtime/src/cuda/emulator_nccl.cpp"],
    ...["-o", exe, "-lopenblas"],
  ]);
  assert.ok(cc.ok, `compiling ${main} failed:\n${cc.text}`);
}

/** Runs a command to completion, or kills it after 8 minutes (a hang on the emulated GPU fails the test). */
async function run(cmd: string, args: string[], env: Record<string, string> = {}) {
  const signal = AbortSignal.timeout(8 * 60_000);
  const what = `${cmd} ${args.join(" ")}`;
  const out = await new Deno.Command(cmd, { args, env, stdout: "piped", stderr: "piped", cwd: ROOT, signal })
    .output().catch((e) => {
      throw new Error(signal.aborted ? `${what} did not finish in 8 minutes` : `${what}: ${e}`);
    });
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  assert.ok(!signal.aborted, `${what} did not finish in 8 minutes:\n${text.slice(-3000)}`);
  return { ok: out.success, text, signal: out.signal };
}

Deno.test({
  name: "CUDA emulator: warp collectives, mma.sync, cp.async and launch checks; broken kernels fail",
  ignore: !haveLib,
  fn: async () => {
    using dir = tempDir("mt-emu-");
    const exe = join(dir.path, "kernels");
    await compileCheck("tests/runtime/cuda_emulator_kernels.cu", exe);
    // The default schedule, then the adversarial one (reverse order, cp.async landing at once).
    // Two emulated GPUs, for the NCCL checks of a stream on the other one.
    const schedules: Record<string, string>[] = [
      {},
      { MEDITRON_CUDA_EMULATE_ORDER: "reverse", MEDITRON_CUDA_EMULATE_CPASYNC: "eager" },
    ];
    for (const env of schedules) {
      const r = await run(exe, [], { ...env, MEDITRON_CUDA_EMULATE_GPUS: "2" });
      const lines = r.text.trim().split("\n");
      assert.ok(r.ok, `${JSON.stringify(env)}:\n${r.text}`);
      assert.equal(lines.filter((l) => l.startsWith("PASS ")).length, 28, r.text);
    }
    // A read that a missing __syncthreads leaves unordered gives different values in the two orders.
    const fwd = await run(exe, ["race"]),
      rev = await run(exe, ["race"], { MEDITRON_CUDA_EMULATE_ORDER: "reverse" });
    assert.ok(fwd.ok && rev.ok, fwd.text + rev.text);
    assert.equal(fwd.text.trim(), "race 7");
    assert.notEqual(rev.text.trim(), "race 7", "the reverse order should read before the write");
    // A thread over its 128 KiB of stack faults on the guard page below it (not a silent overwrite).
    const overflow = await run(exe, ["overflow"]);
    assert.equal(overflow.signal, "SIGSEGV", overflow.text);
  },
});

Deno.test({
  name: "CUDA emulator: the CUDA backend matches the CPU backend (bench/gpu/gpu.ts check --emulated)",
  ignore: !haveLib,
  fn: async () => {
    using dir = tempDir("mt-emu-");
    const out = join(dir.path, "check.json");
    const r = await run(Deno.execPath(), [
      "run",
      "-A",
      "bench/gpu/gpu.ts",
      "check",
      "--emulated",
      "--out",
      out,
    ], {
      MEDITRON_LIB: LIB,
    });
    assert.ok(r.ok, r.text.split("\n").filter((l) => !l.includes("grad cosine per tensor")).join("\n"));
    const { checks } = JSON.parse(await Deno.readTextFile(out)) as {
      checks: { name: string; ok: boolean; detail: string }[];
    };
    // 10 model configurations × 5 checks, 2 decode checks; every one passes on the emulated GPU.
    assert.equal(checks.length, 52, checks.map((c) => c.name).join("\n"));
    const failed = checks.filter((c) => !c.ok);
    assert.deepEqual(failed, []);
    assert.ok(
      checks.some((c) =>
        /packed, T 72, tensor attention \(reverse order, eager cp\.async\): grad cosine/.test(c.name)
      ),
    );
  },
});

const haveMpirun = await hasMpirun();

Deno.test({
  name:
    "CUDA emulator: the emulated NCCL on two ranks gives each collective's values and refuses bad bootstraps",
  ignore: !haveLib || !haveMpirun,
  fn: async () => {
    using dir = tempDir("mt-emu-");
    const exe = join(dir.path, "nccl");
    await compileCheck("tests/runtime/cuda_emulator_nccl.cpp", exe, true);
    const r = await run("mpirun", ["-n", "2", "--oversubscribe", exe], {
      MEDITRON_CUDA_EMULATE_GPUS: "2",
      OMPI_ALLOW_RUN_AS_ROOT: "1",
      OMPI_ALLOW_RUN_AS_ROOT_CONFIRM: "1",
    });
    assert.ok(r.ok, r.text);
    const passed = r.text.split("\n").filter((l) => l.startsWith("PASS "));
    // 7 exchanges and 4 refusals on each rank; the received message on rank 1.
    assert.equal(passed.filter((l) => l.startsWith("PASS rank 0:")).length, 11, r.text);
    assert.equal(passed.filter((l) => l.startsWith("PASS rank 1:")).length, 12, r.text);
  },
});

Deno.test({
  name: "CUDA emulator: every parallel layout equals the 1-rank CUDA run (bench/gpu/layouts.ts)",
  ignore: !haveLib || !haveMpirun,
  fn: async () => {
    using dir = tempDir("mt-emu-");
    const out = join(dir.path, "layouts.json");
    // Every rank on its own emulated GPU (NCCL for TP, DP and PP), then two layouts on one (staged).
    for (
      const [gpus, only, n, comm] of [["4", ".", 10, "nccl"], [
        "1",
        "packed|tp2 pp1 dp2",
        2,
        "staged",
      ]] as const
    ) {
      const r = await run(Deno.execPath(), [
        "run",
        "-A",
        "bench/gpu/layouts.ts",
        "--out",
        out,
        "--only",
        only,
      ], {
        MEDITRON_LIB: LIB,
        MEDITRON_CUDA_EMULATE_GPUS: gpus,
        OMPI_ALLOW_RUN_AS_ROOT: "1",
        OMPI_ALLOW_RUN_AS_ROOT_CONFIRM: "1",
      });
      assert.ok(r.ok, r.text);
      const { device, rows } = JSON.parse(await Deno.readTextFile(out)) as {
        device: string;
        rows: { layout: string; comm: string; pass: boolean }[];
      };
      assert.equal(device, "cuda");
      assert.equal(rows.length, n, r.text);
      assert.deepEqual(rows.filter((x) => !x.pass), []);
      for (const x of rows) assert.equal(x.comm, comm, x.layout);
    }
  },
});
