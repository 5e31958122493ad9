/**
 * `deno task build`: builds runtime/build/libmeditron.so with CMake (incremental). When OpenBLAS, CMake or a
 * compiler is missing it names the Debian package; running as root with apt-get available, it installs
 * the packages itself and retries.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { join } from "node:path";
import { buildNative, cudaDefines, MissingDependencyError, SOURCE_DIR } from "../runtime/build.ts";
import { runMain } from "./common.ts";

const HELP = `Usage: deno task build [--sanitize] [--cuda] [--cuda-emulator] [--verbose]

Builds the native library into runtime/build/ (or runtime/build-sanitize/ with --sanitize).
Missing system packages are installed with apt-get when running as root; otherwise they are named.
--cuda builds the CUDA backend too (bf16, cuBLAS, NCCL; --device cuda) into runtime/build-cuda/: the
machine's CUDA toolkit is used when it has one, else the CUDA 13 PyPI wheels are installed into
~/.cache/meditron/cuda13 (about 1.4 GB; compiling and linking need no GPU). Use it with
MEDITRON_LIB=runtime/build-cuda/libmeditron.so.
--cuda-emulator builds the same CUDA backend for the CPU into runtime/build-emulate/: its kernels run on
an emulated GPU (runtime/src/cuda/emulator.hpp; slow, tiny shapes only), which is how the tests check the
CUDA code without a GPU. It needs only the CUDA headers (the same toolchain as --cuda).

Examples:
  deno task build
  deno task build --verbose
  deno task build --cuda
  deno task build --cuda-emulator
`;

async function aptInstall(packages: string[]): Promise<boolean> {
  const isRoot = Deno.uid?.() === 0;
  const hasApt = await new Deno.Command("sh", { args: ["-c", "command -v apt-get"], stdout: "null" }).output()
    .then((o) => o.success, () => false);
  if (!isRoot || !hasApt) return false;
  console.error(`build: installing ${packages.join(" ")} with apt-get…`);
  const env = { DEBIAN_FRONTEND: "noninteractive" };
  const update = await new Deno.Command("apt-get", { args: ["update", "-qq"], env }).output();
  if (!update.success) return false;
  const install = await new Deno.Command("apt-get", { args: ["install", "-y", "-qq", ...packages], env })
    .output();
  return install.success;
}

async function main(args: string[]): Promise<void> {
  const v = parseArgs({
    args,
    options: {
      sanitize: { type: "boolean" },
      verbose: { type: "boolean" },
      cuda: { type: "boolean" },
      "cuda-emulator": { type: "boolean" },
      debug: { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
  }).values;
  if (v.help) return console.log(HELP);
  const emulator = v["cuda-emulator"] ?? false;
  if ([v.cuda, v.sanitize, emulator].filter(Boolean).length > 1) {
    throw new Error("--cuda, --cuda-emulator and --sanitize are separate builds: pass one of them");
  }
  const buildDir = join(
    SOURCE_DIR,
    v.sanitize ? "build-sanitize" : v.cuda ? "build-cuda" : emulator ? "build-emulate" : "build",
  );
  const defines = v.sanitize
    ? { MEDITRON_SANITIZE: "ON", CMAKE_BUILD_TYPE: "RelWithDebInfo" }
    : v.cuda
    ? await cudaDefines()
    : emulator
    ? { ...await cudaDefines(), MEDITRON_CUDA_EMULATE: "ON" }
    : undefined;
  for (let attempt = 0;; attempt++) {
    try {
      const lib = await buildNative({ buildDir, defines, verbose: v.verbose });
      console.error(`build: ${lib}`);
      return;
    } catch (e) {
      if (!(e instanceof MissingDependencyError) || attempt > 0 || !(await aptInstall(e.packages))) throw e;
    }
  }
}

if (import.meta.main) await runMain(main, HELP);
