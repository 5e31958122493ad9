// `deno task bench` (bench/main.ts, bench/common.ts): every benchmark answers --help with its usage and starts
// no work; an unknown or malformed option is one `error:` line and exit 1, never a stack trace. The benchmarks
// themselves are not run here (they take minutes).
import assert from "node:assert/strict";
import { BENCHES, benchHelpFor } from "../../bench/main.ts";
import { benchHelp, parseBenchArgs } from "../../bench/common.ts";
import { UsageError } from "../../cli/common.ts";

const MAIN = new URL("../../bench/main.ts", import.meta.url).pathname;

/** `deno run -A bench/main.ts ...args` (what `deno task bench` runs, less the build). */
async function bench(args: string[]) {
  const t0 = performance.now();
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", MAIN, ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return {
    code: out.code,
    stdout: dec.decode(out.stdout),
    stderr: dec.decode(out.stderr),
    seconds: (performance.now() - t0) / 1000,
  };
}

/** One `error:` line first, no stack frame, a pointer to --help; nothing on stdout (no work started). */
function assertUsageError(r: Awaited<ReturnType<typeof bench>>, pattern: RegExp): void {
  assert.equal(r.code, 1, r.stderr);
  assert.equal(r.stdout, "", "no work may start");
  const lines = r.stderr.trimEnd().split("\n");
  assert.match(lines[0], pattern);
  assert.equal(lines.filter((l) => l.startsWith("error:")).length, 1, r.stderr);
  assert.ok(!lines.some((l) => /^\s+at /.test(l)), `stack trace:\n${r.stderr}`);
  assert.ok(!/Uncaught|TypeError/.test(r.stderr), r.stderr);
  assert.match(r.stderr, /--help/);
}

Deno.test("bench without a name or with --help lists every benchmark, one line each", async () => {
  for (const args of [[], ["--help"]]) {
    const r = await bench(args);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^Usage: deno task bench NAME/);
    for (const [name, b] of Object.entries(BENCHES)) {
      assert.ok(r.stdout.includes(`  ${name.padEnd(18)} ${b.about}`));
    }
  }
});

Deno.test("bench with an unknown name: one error line naming the known ones", async () => {
  assertUsageError(
    await bench(["no-such-bench"]),
    /^error: unknown benchmark 'no-such-bench' \(benchmarks: train-cpu,/,
  );
  assertUsageError(await bench(["constructor"]), /^error: unknown benchmark 'constructor'/);
});

for (const name of Object.keys(BENCHES)) {
  Deno.test(`bench ${name} --help prints its usage and nothing else, quickly`, async () => {
    const r = await bench([name, "--help"]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, "");
    assert.match(r.stdout, new RegExp(`^Usage: deno task bench ${name} `));
    // Exactly the help: a benchmark that started would print its header (and take far longer).
    assert.equal(r.stdout, `${await benchHelpFor(name)}\n`);
    assert.ok(r.seconds < 30, `${name} --help took ${r.seconds.toFixed(1)} s`);
  });

  Deno.test(`bench ${name} with an unknown option: one error line, exit 1, no work`, async () => {
    assertUsageError(await bench([name, "--bogus"]), /^error: Unknown option '--bogus'/);
  });
}

Deno.test("each declared benchmark: its name is its key, its help shows every option with its default", async () => {
  for (const [name, entry] of Object.entries(BENCHES)) {
    const mod = await entry.load();
    if (!("bench" in mod)) continue; // reads its own arguments (bench/gpu/gpu.ts)
    assert.equal(mod.bench.name, name);
    const help = benchHelp(mod.bench);
    assert.match(help, /\n\nPeer: \S/);
    for (const [flag, o] of Object.entries(mod.bench.options)) {
      const line = help.split("\n").find((l) => l.startsWith(`  --${flag} `) || l === `  --${flag}`);
      assert.ok(line, `${name}: --${flag} missing from the help`);
      if (o.type !== "boolean" && o.default !== undefined) assert.match(line, /\(default [^)]+\)$/);
    }
    assert.ok(help.split("\n").every((l) => l.length <= 120), `${name}: a help line is too long`);
  }
});

Deno.test("malformed values are one error line before any work", async () => {
  assertUsageError(
    await bench(["train-cpu", "--steps", "abc"]),
    /^error: --steps must be an integer >= 1 \(got 'abc'\)$/,
  );
  assertUsageError(
    await bench(["train-cpu", "--steps"]),
    /^error: Option '--steps <value>' argument missing/,
  );
  assertUsageError(await bench(["attention-memory", "4096"]), /^error: Unexpected argument '4096'/);
  assertUsageError(await bench(["sft-packing", "--sets", "demo,x"]), /^error: --sets: unknown 'x'/);
});

Deno.test("parseBenchArgs: defaults, kinds, ranges and choices", () => {
  const options = {
    steps: { type: "int", default: 5, min: 1, help: "" },
    rate: { type: "number", default: 0.5, min: 0, max: 1, help: "" },
    workers: { type: "ints", default: [1, 2], min: 1, help: "" },
    sets: { type: "choices", default: ["a"], choices: ["a", "b"], help: "" },
    dir: { type: "string", help: "" },
    model: { type: "string", default: "runs/tiny", help: "" },
    save: { type: "boolean", help: "" },
  } as const;
  assert.deepEqual(parseBenchArgs(options, []), {
    steps: 5,
    rate: 0.5,
    workers: [1, 2],
    sets: ["a"],
    dir: undefined,
    model: "runs/tiny",
    save: false,
  });
  const v = parseBenchArgs(options, [
    ...["--steps", "7", "--rate", "1", "--workers", "4,8", "--sets", "b,a", "--dir", "/x", "--save"],
  ]);
  assert.deepEqual(v, {
    steps: 7,
    rate: 1,
    workers: [4, 8],
    sets: ["b", "a"],
    dir: "/x",
    model: "runs/tiny",
    save: true,
  });
  const bad: [string[], RegExp][] = [
    [["--steps", "0"], /--steps must be an integer >= 1 \(got '0'\)/],
    [["--steps", "2.5"], /--steps must be an integer/],
    [["--steps", ""], /--steps must be an integer/],
    [["--rate", "1.5"], /--rate must be a number in \[0, 1\]/],
    [["--workers", "2,"], /--workers must be an integer >= 1 \(got ''\)/],
    [["--sets", "c"], /--sets: unknown 'c' \(choices: a, b\)/],
    [
      ["--nope"],
      /Unknown option '--nope' \(options: --steps, --rate, --workers, --sets, --dir, --model, --save\)/,
    ],
    [["--save=1"], /'--save' does not take an argument/],
    [["extra"], /Unexpected argument 'extra'/],
  ];
  for (const [args, message] of bad) {
    assert.throws(
      () => parseBenchArgs(options, args),
      (e: unknown) => e instanceof UsageError && message.test(e.message),
    );
  }
});
