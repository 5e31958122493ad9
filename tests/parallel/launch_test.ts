// `deno task pretrain --tp/--pp/--dp` as a user runs it: bad layouts refused before launch, the mpirun
// relaunch with per-rank logs and sharded checkpoints, exact resume on the same layout, and a rank killed
// with SIGKILL taking the job down quickly with the previous checkpoint intact.
import assert from "node:assert/strict";
import { join } from "node:path";
import { createHash } from "node:crypto";
import { readCheckpointMeta, resolveCheckpoint } from "../../models/checkpoint.ts";
import { hasMpirun, tempDir } from "../helpers.ts";
import { runRanks } from "../../parallel/launcher.ts";

const CLI = new URL("../../cli/pretrain.ts", import.meta.url).pathname;
const haveMpirun = await hasMpirun();

function corpus(dir: string): string {
  const path = join(dir, "c.jsonl");
  const lines = Array.from(
    { length: 80 },
    (_, i) =>
      JSON.stringify({
        text: `Case ${i}: community-acquired pneumonia was treated with amoxicillin for five days.`,
      }),
  );
  Deno.writeTextFileSync(path, lines.join("\n") + "\n");
  return path;
}

function args(dir: string, extra: string[]): string[] {
  return [
    "--data",
    corpus(dir),
    "--out",
    dir,
    "--name",
    "par",
    "--seq",
    "32",
    "--micro-batch",
    "2",
    "--grad-accum",
    "2",
    "--eval-every",
    "0",
    "--set",
    "train.warmup_steps=1",
    "--set",
    "model.dim=32",
    "--set",
    "model.ffn_dim=64",
    "--set",
    "model.n_layers=2",
    ...extra,
  ];
}

async function pretrain(a: string[]) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", CLI, ...a],
    stdout: "piped",
    stderr: "piped",
  })
    .output();
  const dec = new TextDecoder();
  return { code: out.code, stderr: dec.decode(out.stderr) + dec.decode(out.stdout) };
}

/** `p`, or a failure naming `what` after `ms` (a stop that never comes fails the test instead of hanging it). */
async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not end within ${ms / 1000} s`)), ms);
  });
  try {
    return await Promise.race([p, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** Whatever happens, no process of a test in `dir` outlives it (mpirun and its ranks run in their own session). */
function killAllOf(dir: string): Disposable {
  return {
    [Symbol.dispose]: () => void new Deno.Command("pkill", { args: ["-KILL", "-f", dir] }).outputSync(),
  };
}

/** The 4 rank processes of the job launched by `launcher` in `dir`: deno running the CLI, not mpirun. */
async function ranksOf(dir: string, launcher: number): Promise<number[]> {
  const ps = await new Deno.Command("pgrep", {
    args: ["-f", `^${Deno.execPath()} run -A ${CLI}.*${dir}`],
    stdout: "piped",
  }).output();
  const ranks = new TextDecoder().decode(ps.stdout).trim().split("\n").map(Number).filter((p) =>
    p !== launcher
  );
  assert.equal(ranks.length, 4, `expected the 4 ranks, found ${ranks}`);
  return ranks;
}

// The numbers of each step (timings excluded).
function metrics(dir: string): { step: number; loss: number; lr: number; grad_norm: number }[] {
  return Deno.readTextFileSync(join(dir, "par", "metrics.jsonl")).trim().split("\n").map((l) => {
    const { step, loss, lr, grad_norm } = JSON.parse(l);
    return { step, loss, lr, grad_norm };
  });
}

Deno.test("bad layouts are refused before launch with one line", async () => {
  using dir = tempDir();
  for (
    const [flags, msg] of [
      [["--tp", "3"], /model.n_heads \(4\) is not divisible by parallel.tp \(3\)/],
      [["--pp", "3"], /model.n_layers \(2\) is not divisible by parallel.pp \(3\)/],
      [["--tp", "4"], /model.n_kv_heads \(2\) is not divisible by parallel.tp \(4\)/],
      [["--dp", "0"], /parallel.dp must be a positive integer/],
    ] as const
  ) {
    const r = await pretrain(args(dir.path, [...flags, "--steps", "2"]));
    assert.equal(r.code, 1);
    assert.match(r.stderr, msg);
    assert.ok(!r.stderr.includes("mpirun"), "refused before any launch");
  }
});

Deno.test({
  name: "tp 2 × dp 2 with ZeRO-1 under mpirun: rank logs, sharded checkpoint, exact resume",
  ignore: !haveMpirun,
  fn: async () => {
    using dir = tempDir();
    const full = await pretrain(
      args(dir.path, [
        "--tp",
        "2",
        "--dp",
        "2",
        "--distributed-optimizer",
        "--steps",
        "6",
        "--save-every",
        "3",
      ]),
    );
    assert.equal(full.code, 0, full.stderr.slice(-3000));
    const logs = [...Deno.readDirSync(join(dir.path, "par", "logs"))].map((e) => e.name).sort();
    assert.deepEqual(logs, ["rank-00.log", "rank-01.log", "rank-02.log", "rank-03.log"]);
    const ckpt = join(dir.path, "par", "checkpoints", "iter_0000003");
    const files = [...Deno.readDirSync(ckpt)].map((e) => e.name).sort();
    assert.deepEqual(files, [
      "meta.json",
      "model-tp00-pp00.safetensors",
      "model-tp01-pp00.safetensors",
      "optim-tp00-pp00-dp00.safetensors",
      "optim-tp00-pp00-dp01.safetensors",
      "optim-tp01-pp00-dp00.safetensors",
      "optim-tp01-pp00-dp01.safetensors",
    ]);
    const straight = metrics(dir.path);
    // Resume from iteration 3 on the same layout: steps 4–6 must repeat bit for bit.
    Deno.writeTextFileSync(join(dir.path, "par", "checkpoints", "latest"), "iter_0000003\n");
    const resumed = await pretrain(
      args(dir.path, ["--tp", "2", "--dp", "2", "--distributed-optimizer", "--steps", "6", "--resume"]),
    );
    assert.equal(resumed.code, 0, resumed.stderr.slice(-3000));
    assert.match(resumed.stderr, /resumed from .*iter_0000003/);
    assert.deepEqual(metrics(dir.path), straight);
    // A different layout is refused with a pointer to the reshard tool.
    const other = await pretrain(args(dir.path, ["--tp", "2", "--dp", "1", "--steps", "8", "--resume"]));
    assert.notEqual(other.code, 0);
    assert.match(other.stderr, /written with tp=2 pp=1 dp=2 zero1=true, this run is tp=2 pp=1 dp=1/);
  },
});

Deno.test({
  name: "kill -9 of one rank mid-run: the job exits non-zero within 30 s and the last checkpoint is intact",
  ignore: !haveMpirun,
  fn: async () => {
    using dir = tempDir();
    using _ = killAllOf(dir.path);
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        CLI,
        ...args(dir.path, ["--pp", "2", "--dp", "2", "--steps", "100000", "--save-every", "2"]),
      ],
      stdout: "null",
      stderr: "piped",
    }).spawn();
    const latest = join(dir.path, "par", "checkpoints", "latest");
    const deadline = Date.now() + 120_000;
    while (!(await Deno.stat(latest).then(() => true, () => false))) {
      assert.ok(Date.now() < deadline, "no checkpoint appeared");
      await new Promise((r) => setTimeout(r, 200));
    }
    const ranks = await ranksOf(dir.path, child.pid);
    const killedAt = Date.now();
    Deno.kill(ranks[3], "SIGKILL");
    const status = await within(child.status, 120_000, "the job after kill -9 of a rank");
    const seconds = (Date.now() - killedAt) / 1000;
    await child.stderr.cancel();
    assert.notEqual(status.code, 0);
    assert.ok(seconds < 30, `the job took ${seconds} s to go down`);
    // The checkpoint `latest` names is complete: meta.json lists every shard with a matching sha256.
    const ckpt = await resolveCheckpoint(join(dir.path, "par"));
    const meta = await readCheckpointMeta(ckpt);
    assert.equal(Object.keys(meta.shards).length, 4); // model pp0/pp1 + optim pp0/pp1 (dp replicas share)
    for (const [file, want] of Object.entries(meta.shards)) {
      const got = createHash("sha256").update(Deno.readFileSync(join(ckpt, file))).digest("hex");
      assert.equal(got, want.sha256, file);
    }
    assert.ok(
      ![...Deno.readDirSync(join(dir.path, "par", "checkpoints"))].some((e) =>
        e.name.endsWith(".tmp") && e.name.includes(`${meta.iteration}`)
      ),
    );
    // ... and it loads: resume for two more steps on the same layout.
    const resumed = await pretrain(
      args(dir.path, ["--pp", "2", "--dp", "2", "--steps", String(meta.iteration + 2), "--resume"]),
    );
    assert.equal(resumed.code, 0, resumed.stderr.slice(-2000));
  },
});

Deno.test({
  name: "distAllOk under mpirun: one rank's failure is seen by every rank (what checkpoints agree on)",
  ignore: !haveMpirun,
  fn: async () => {
    const lib = new URL("../../runtime/mod.ts", import.meta.url).href;
    const code = `import { distAllOk, distFinalize, distInit } from "${lib}";
const { rank } = await distInit();
const votes = [await distAllOk(rank !== 1), await distAllOk(true), await distAllOk(rank !== 0)];
console.log(\`rank \${rank}: \${votes.join(" ")}\`);
distFinalize();`;
    const out = await runRanks([Deno.execPath(), "eval", code], 3);
    const text = new TextDecoder().decode(out.stdout);
    assert.ok(out.success, new TextDecoder().decode(out.stderr));
    assert.deepEqual(text.trim().split("\n").sort(), [
      "rank 0: false true false",
      "rank 1: false true false",
      "rank 2: false true false",
    ]);
  },
});

Deno.test({
  name:
    "Ctrl-C of the launcher, SIGTERM to one rank only, SIGKILL of the launcher: all ranks stop after one step",
  ignore: !haveMpirun,
  fn: async () => {
    using dir = tempDir();
    using _ = killAllOf(dir.path);
    const run = join(dir.path, "par");
    const metricsLines = () =>
      Deno.readTextFile(join(run, "metrics.jsonl")).then((t) => t.trim().split("\n").length, () => 0);
    const start = async (resume: boolean) => {
      const more = ["--pp", "2", "--dp", "2", "--steps", "100000", "--save-every", "0"];
      const child = new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", CLI, ...args(dir.path, [...more, ...(resume ? ["--resume"] : [])])],
        stdout: "piped",
        stderr: "piped",
        detached: true, // its own process group, as a shell's foreground job
      }).spawn();
      const output = child.output(); // read while it runs
      const from = await metricsLines();
      const deadline = Date.now() + 120_000;
      while ((await metricsLines()) < from + 2) {
        assert.ok(Date.now() < deadline, "no training steps appeared");
        await new Promise((r) => setTimeout(r, 100));
      }
      return { child, output };
    };
    // Each rank's log says where it stopped; all must name the same iteration, the one `latest` names.
    const stoppedAt = () => {
      const at = [0, 1, 2, 3].map((r) => {
        const log = Deno.readTextFileSync(join(run, "logs", `rank-0${r}.log`));
        return Number([...log.matchAll(/stopped at iteration (\d+) on request/g)].at(-1)?.[1]);
      });
      assert.ok(at.every((i) => i === at[0] && i > 0), `ranks stopped at ${at}`);
      assert.equal(
        Deno.readTextFileSync(join(run, "checkpoints", "latest")).trim(),
        `iter_${String(at[0]).padStart(7, "0")}`,
      );
      return at[0];
    };
    // 1. A terminal's Ctrl-C: SIGINT to the launching command's process group.
    const a = await start(false);
    await new Deno.Command("kill", { args: ["-INT", "--", `-${a.child.pid}`] }).output();
    const outA = await within(a.output, 180_000, "the job after Ctrl-C");
    const dec = new TextDecoder();
    assert.equal(outA.code, 0, dec.decode(outA.stderr).slice(-3000));
    assert.match(dec.decode(outA.stderr), /interrupt: asking the 4 ranks to finish the current step/);
    assert.doesNotMatch(dec.decode(outA.stderr), /inspector|Debugger/, "no Deno inspector (SIGUSR1) opened");
    const first = stoppedAt();
    // 2. Resumed; then SIGTERM to one rank only (a scheduler signalling the tasks one by one).
    const b = await start(true);
    const ranks = await ranksOf(dir.path, b.child.pid);
    Deno.kill(ranks[2], "SIGTERM");
    const outB = await within(b.output, 180_000, "the job after SIGTERM to one rank");
    assert.equal(outB.code, 0, dec.decode(outB.stderr).slice(-3000));
    const second = stoppedAt();
    assert.ok(second >= first + 2, `stopped at ${first}, then ${second}`);
    // 3. Resumed; then the launching command is SIGKILLed: its job (in mpirun's own session) sees the pipe to
    // rank 0 close, and stops the same way instead of training on unwatched.
    const c = await start(true);
    Deno.kill(c.child.pid, "SIGKILL");
    // The pipes close when mpirun and the ranks have exited.
    const outC = await within(c.output, 180_000, "the job after SIGKILL of its launcher");
    assert.equal(outC.signal, "SIGKILL");
    assert.match(dec.decode(outC.stderr), /the launching command has ended: finishing the current step/);
    const third = stoppedAt();
    assert.ok(third >= second + 2, `stopped at ${second}, then ${third}`);
    const steps = Deno.readTextFileSync(join(run, "metrics.jsonl")).trim().split("\n").map((l) =>
      JSON.parse(l).step
    );
    assert.deepEqual(steps, Array.from({ length: third }, (_, i) => i + 1));
  },
});
