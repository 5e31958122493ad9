// The mpirun command line: oversubscription, root permission, hostfile, and launch detection.
import assert from "node:assert/strict";
import { insideLaunch, launchRank, mpirunCommand } from "../../parallel/launcher.ts";

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
