/**
 * `deno task test:sanitize`: builds libmeditron with AddressSanitizer + UBSan (runtime/build-sanitize/) and
 * runs the native-facing tests against it. Deno itself is not instrumented, so the sanitizer runtimes are
 * preloaded; leak detection is off (V8 keeps its heap until exit) and any report fails the run.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { join } from "node:path";
import { buildNative, SOURCE_DIR } from "../runtime/build.ts";
import { runMain } from "./common.ts";

/**
 * The default test paths: the tests that call into the library in this process or a child, including the
 * MPI ranks of every parallel layout and the C ABI fuzz pass. Left out: tests/parallel/launch_test.ts (its
 * SIGKILL test hangs with the sanitizer runtimes preloaded into mpirun) and the 5-minute demo-knowledge test,
 * whose kernels the others already run.
 */
export const SANITIZE_TESTS: readonly string[] = [
  "tests/runtime",
  "tests/models",
  "tests/cli",
  "tests/sft",
  "tests/parallel/layouts_test.ts",
  "tests/fuzz",
  "tests/eval/cli_test.ts",
];

const HELP = `Usage: deno task test:sanitize [TEST_PATH…]

Builds the native library with -fsanitize=address,undefined and runs the native-facing tests with the
sanitizer runtimes preloaded (MPI ranks inherit them). Any report fails. The default paths:
  ${SANITIZE_TESTS.join("\n  ")}

Examples:
  deno task test:sanitize
  deno task test:sanitize tests/runtime/attention_test.ts
`;

async function gccRuntime(name: string): Promise<string> {
  const out = await new Deno.Command("gcc", { args: [`-print-file-name=${name}`], stdout: "piped" }).output();
  const path = new TextDecoder().decode(out.stdout).trim();
  if (!out.success || !path.startsWith("/")) {
    throw new Error(`gcc does not know ${name} (apt-get install gcc)`);
  }
  return path;
}

async function main(args: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { help: { type: "boolean", short: "h" }, debug: { type: "boolean" } },
  });
  if (values.help) return console.log(HELP);
  const lib = await buildNative({
    buildDir: join(SOURCE_DIR, "build-sanitize"),
    defines: { MEDITRON_SANITIZE: "ON", CMAKE_BUILD_TYPE: "RelWithDebInfo" },
  });
  const preload = [await gccRuntime("libasan.so"), await gccRuntime("libubsan.so")].join(" ");
  const env = {
    MEDITRON_LIB: lib,
    LD_PRELOAD: preload,
    ASAN_OPTIONS: "detect_leaks=0:handle_segv=0:allow_user_segv_handler=1:halt_on_error=1:abort_on_error=1",
    UBSAN_OPTIONS: "print_stacktrace=1:halt_on_error=1",
  };
  const paths = positionals.length ? positionals : [...SANITIZE_TESTS];
  console.error(`sanitize: ${lib} with ${preload}; testing ${paths.join(" ")}`);
  const status = await new Deno.Command(Deno.execPath(), { args: ["test", "-A", ...paths], env }).spawn()
    .status;
  if (!status.success) throw new Error(`tests under the sanitizers failed (exit ${status.code})`);
}

if (import.meta.main) await runMain(main, HELP);
