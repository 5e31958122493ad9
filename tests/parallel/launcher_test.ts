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
 * script. Each rank logs to `dir/rank-N`: "up", then rank 0 reads its stdin (the launcher's pipe) and logs
 * "interrupt" (a byte came) or "eof" (the pipe closed); with `obey` it then tells rank 1 to stop too (what the
 * trainer's per-step agreement does) and both log "done" and exit 0; a SIGTERM logs "term".
 */
function mpiJob(dir: string, obey: boolean) {
  const script = join(dir, "rank.sh");
  Deno.writeTextFileSync(
    script,
    `log=${dir}/rank-$OMPI_COMM_WORLD_RANK\n` +
      `trap 'echo term >> $log; exit 143' TERM\n` +
      `echo up >> $log\n` +
      `if [ "$OMPI_COMM_WORLD_RANK" = 0 ]; then\n` +
      `  if IFS= read -r -n 1 c; then echo interrupt >> $log; else echo eof >> $log; fi\n` +
      (obey ? `  touch ${dir}/stop\n` : "") +
      `fi\n` +
      `for i in $(seq 600); do [ -e ${dir}/stop ] && break; sleep 0.05; done\n` +
      `echo done >> $log\n`,
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
  const until = async (rank: number, what: string) => {
    const deadline = Date.now() + 60_000;
    while (!lines(rank).includes(what)) {
      assert.ok(Date.now() < deadline, `rank ${rank} did not log '${what}' within 60 s`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  // What a terminal's Ctrl-C does: SIGINT to every process of the foreground group.
  const groupKill = (sig: string) =>
    new Deno.Command("kill", { args: [`-${sig}`, "--", `-${child.pid}`] }).output();
  // Whatever happens, no rank outlives the test (mpirun runs in its own session).
  const cleanup = {
    [Symbol.dispose]: () => void new Deno.Command("pkill", { args: ["-KILL", "-f", script] }).outputSync(),
  };
  return { child, lines, until, groupKill, cleanup };
}

const LAUNCHER = new URL("../../parallel/launcher.ts", import.meta.url).href;

Deno.test("runUnderMpi: Ctrl-C reaches rank 0 through the pipe only (mpirun would kill the ranks); exit code 0", async () => {
  using dir = tempDir();
  const job = mpiJob(dir.path, true);
  using _ = job.cleanup;
  await job.until(1, "up");
  await job.groupKill("INT");
  const out = await job.child.output();
  const stderr = new TextDecoder().decode(out.stderr);
  assert.equal(out.code, 0, stderr);
  assert.match(stderr, /interrupt: asking the 2 ranks to finish the current step and write a checkpoint/);
  assert.deepEqual(job.lines(0), ["up", "interrupt", "done"]);
  assert.deepEqual(job.lines(1), ["up", "done"]);
});

Deno.test("runUnderMpi: an interrupt before the ranks run waits in the pipe (no rank is killed by it)", async () => {
  using dir = tempDir();
  const job = mpiJob(dir.path, true);
  using _ = job.cleanup;
  // mpirun exists: the launcher's listeners are in (installed as it spawns mpirun); the ranks are starting.
  const deadline = Date.now() + 60_000;
  while (!(await new Deno.Command("pgrep", { args: ["-f", `mpirun .*${dir.path}`] }).output()).success) {
    assert.ok(Date.now() < deadline, "mpirun did not start within 60 s");
    await new Promise((r) => setTimeout(r, 10));
  }
  await job.groupKill("INT");
  const out = await job.child.output();
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  assert.deepEqual(job.lines(0), ["up", "interrupt", "done"]);
});

Deno.test("runUnderMpi: a second SIGUSR2 asks again, a SIGTERM then kills the job; the launcher's end reads as EOF in rank 0", async () => {
  using dir = tempDir();
  const job = mpiJob(dir.path, false); // rank 0 goes on after the interrupt
  using _ = job.cleanup;
  await job.until(1, "up");
  await job.groupKill("USR2");
  await job.until(0, "interrupt");
  await job.groupKill("USR2"); // asks again: not a kill
  await new Promise((r) => setTimeout(r, 300));
  assert.deepEqual(
    [job.lines(0), job.lines(1)],
    [["up", "interrupt"], ["up"]],
    "a second SIGUSR2 kills nothing",
  );
  const t0 = performance.now();
  await job.groupKill("TERM");
  const out = await job.child.output();
  assert.notEqual(out.code, 0);
  assert.ok(performance.now() - t0 < 10_000, "killed, not run to its end");
  assert.ok(!job.lines(1).includes("done"), `rank 1: ${job.lines(1)}`);
  // A launcher that is SIGKILLed: its pipe closes, and rank 0 sees the end.
  using dir2 = tempDir();
  const gone = mpiJob(dir2.path, true);
  using _2 = gone.cleanup;
  await gone.until(1, "up");
  Deno.kill(gone.child.pid, "SIGKILL");
  await gone.child.output();
  await gone.until(0, "done");
  await gone.until(1, "done");
  assert.deepEqual(gone.lines(0), ["up", "eof", "done"]);
});

Deno.test("watchLauncher reads stdin only in rank 0 of a runUnderMpi job", async () => {
  const watch = async (env: Record<string, string>, input: string | null) => {
    const code = `import { watchLauncher } from ${JSON.stringify(LAUNCHER)};\n` +
      `const w = watchLauncher((why) => { console.log(why); w[Symbol.dispose](); }, ${
        JSON.stringify(env)
      });\n` +
      `setTimeout(() => { w[Symbol.dispose](); }, 500);\n`;
    const child = new Deno.Command(Deno.execPath(), { args: ["eval", code], stdin: "piped", stdout: "piped" })
      .spawn();
    const w = child.stdin.getWriter();
    if (input !== null) await w.write(new TextEncoder().encode(input));
    else await w.close();
    const out = await child.output();
    await w.close().catch(() => {});
    return new TextDecoder().decode(out.stdout).trim();
  };
  const job = { MEDITRON_LAUNCHER_PIPE: "1", OMPI_COMM_WORLD_RANK: "0" };
  assert.equal(await watch(job, "\n"), "interrupt");
  assert.equal(await watch(job, null), "ended");
  assert.equal(await watch({ ...job, OMPI_COMM_WORLD_RANK: "1" }, null), "", "another rank");
  assert.equal(await watch({ OMPI_COMM_WORLD_RANK: "0" }, null), "", "a job srun or mpirun started directly");
});
