// The mpirun command line: oversubscription, root permission, hostfile, and launch detection; interrupts.
import assert from "node:assert/strict";
import { join } from "node:path";
import { insideLaunch, launchRank, mpirunCommand } from "../../parallel/launcher.ts";
import { tempDir } from "../helpers.ts";

Deno.test("mpirun flags follow ranks, cores, root and hostfile", () => {
  const a = mpirunCommand(["deno", "run", "x.ts"], { ranks: 8, cores: 2, root: true });
  assert.equal(a.cmd, "mpirun");
  assert.deepEqual(a.args.slice(0, 4), ["-n", "8", "--bind-to", "none"]);
  assert.ok(a.args.includes("--oversubscribe"));
  assert.ok(a.args.includes("--allow-run-as-root"));
  assert.equal(a.env.OMPI_ALLOW_RUN_AS_ROOT_CONFIRM, "1");
  assert.deepEqual(a.args.slice(-3), ["deno", "run", "x.ts"]);
  const b = mpirunCommand(["deno"], { ranks: 2, cores: 4, root: false, hostfile: "hosts" });
  assert.ok(!b.args.includes("--oversubscribe") && !b.args.includes("--allow-run-as-root"));
  assert.deepEqual(b.args.slice(b.args.indexOf("--hostfile"), b.args.indexOf("--hostfile") + 2), [
    "--hostfile",
    "hosts",
  ]);
});

Deno.test("a rank of an MPI or Slurm job is recognised and does not launch again", () => {
  assert.equal(insideLaunch({}), false);
  assert.equal(insideLaunch({ OMPI_COMM_WORLD_RANK: "3" }), true);
  assert.equal(insideLaunch({ SLURM_PROCID: "0" }), true);
  assert.equal(insideLaunch({ PMI_RANK: "1" }), true);
  assert.equal(launchRank({}), undefined);
  assert.equal(launchRank({ OMPI_COMM_WORLD_RANK: "3" }), 3);
  assert.equal(launchRank({ SLURM_PROCID: "0" }), 0);
});

/**
 * runUnderMpi in a child Deno process (its own process group, as a shell's foreground job) running a bash rank
 * script that logs the signals it gets to `dir/rank-N`. `onUsr1` is what a rank does on SIGUSR2.
 */
function mpiJob(dir: string, onUsr1: "exit 0" | "true") {
  const script = join(dir, "rank.sh");
  Deno.writeTextFileSync(
    script,
    `log=${dir}/rank-$OMPI_COMM_WORLD_RANK\n` +
      `trap 'echo usr2 >> $log; ${onUsr1}' USR2\n` +
      `trap 'echo term >> $log; exit 143' TERM\n` +
      `echo up >> $log\n` +
      `for i in $(seq 300); do sleep 0.1; done\n`,
  );
  const code = `import { isRoot, runUnderMpi } from ${JSON.stringify(LAUNCHER)};\n` +
    `Deno.exit(await runUnderMpi(["bash", ${JSON.stringify(script)}], { ranks: 2, root: isRoot(), ` +
    `mpiArgs: ["--mca", "btl", "self,vader"], onInterrupt: (s) => console.error(s) }));\n`;
  const child = new Deno.Command(Deno.execPath(), {
    args: ["eval", code],
    stdout: "null",
    stderr: "piped",
    detached: true,
  }).spawn();
  const lines = (r: number) => {
    try {
      return Deno.readTextFileSync(join(dir, `rank-${r}`)).trim().split("\n");
    } catch {
      return [];
    }
  };
  const until = async (what: string) => {
    const deadline = Date.now() + 60_000;
    while (![0, 1].every((r) => lines(r).includes(what))) {
      assert.ok(Date.now() < deadline, `the ranks did not log '${what}' within 60 s`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  // What a terminal's Ctrl-C does: SIGINT to every process of the foreground group.
  const groupKill = (sig: string) =>
    new Deno.Command("kill", { args: [`-${sig}`, "--", `-${child.pid}`] }).output();
  return { child, lines, until, groupKill };
}

const LAUNCHER = new URL("../../parallel/launcher.ts", import.meta.url).href;

Deno.test("runUnderMpi: Ctrl-C reaches the ranks as SIGUSR2 only (mpirun would kill them); the job's exit code is returned", async () => {
  using dir = tempDir();
  const job = mpiJob(dir.path, "exit 0");
  await job.until("up");
  await job.groupKill("INT");
  const out = await job.child.output();
  const stderr = new TextDecoder().decode(out.stderr);
  assert.equal(out.code, 0, stderr);
  assert.match(stderr, /interrupt: asking the 2 ranks to finish the current step and write a checkpoint/);
  for (const r of [0, 1]) assert.deepEqual(job.lines(r), ["up", "usr2"], `rank ${r}`);
});

Deno.test("runUnderMpi: a second interrupt kills the job", async () => {
  using dir = tempDir();
  const job = mpiJob(dir.path, "true"); // ranks that go on after SIGUSR2
  await job.until("up");
  await job.groupKill("INT");
  await job.until("usr2");
  const t0 = performance.now();
  await job.groupKill("TERM");
  const out = await job.child.output();
  assert.notEqual(out.code, 0);
  assert.ok(performance.now() - t0 < 10_000, "killed, not run to its end");
  for (const r of [0, 1]) assert.deepEqual(job.lines(r).slice(0, 2), ["up", "usr2"], `rank ${r}`);
});
