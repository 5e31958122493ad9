/**
 * Launching one process per rank (DESIGN.md §5): a `deno task pretrain --tp 2 --pp 2 --dp 2` started by hand
 * re-runs itself under `mpirun -n 8`; a process already inside an MPI or Slurm job uses what it finds.
 * Nothing home-made: multi-node runs go through `mpirun --hostfile` or `srun --mpi=pmix`.
 *
 * @module
 */

/** Environment variables that mark a process as one rank of a launch. */
export const RANK_VARIABLES: readonly string[] = [
  "OMPI_COMM_WORLD_RANK",
  "PMI_RANK",
  "PMIX_RANK",
  "SLURM_PROCID",
];

/**
 * Whether this process was started by mpirun/srun (and must not launch again).
 *
 * @example
 * ```ts
 * import { insideLaunch } from "./launcher.ts";
 * if (!insideLaunch()) console.log("a plain process");
 * ```
 */
export function insideLaunch(env: Record<string, string | undefined> = Deno.env.toObject()): boolean {
  return RANK_VARIABLES.some((v) => env[v] !== undefined);
}

/**
 * This process's world rank as its launcher (mpirun, srun, a PMI/PMIx launcher) announces it, before MPI is
 * initialised; `undefined` outside a launch.
 *
 * @example
 * ```ts
 * import { launchRank } from "./launcher.ts";
 * launchRank({ SLURM_PROCID: "3" }); // 3
 * ```
 */
export function launchRank(
  env: Record<string, string | undefined> = Deno.env.toObject(),
): number | undefined {
  const v = RANK_VARIABLES.map((k) => env[k]).find((x) => x !== undefined);
  return v === undefined ? undefined : Number(v);
}

/** Options of {@linkcode mpirunCommand}. */
export interface LaunchOptions {
  /** Number of ranks (tp·pp·dp). */
  ranks: number;
  /** `--hostfile` passed through to mpirun (multi-node). */
  hostfile?: string;
  /** Cores on this machine (oversubscribe when ranks exceed them). */
  cores?: number;
  /** Whether we run as root (OpenMPI refuses without explicit permission). */
  root?: boolean;
  /** Extra raw mpirun arguments. */
  mpiArgs?: string[];
}

/** A command line: program, arguments and extra environment. */
export interface CommandLine {
  /** Program. */
  cmd: string;
  /** Arguments. */
  args: string[];
  /** Environment additions. */
  env: Record<string, string>;
}

/**
 * The mpirun command that runs `program args…` on `ranks` processes: `--oversubscribe` when the ranks exceed
 * the cores, root permission when running as root, `--bind-to none` (threads are ours to place),
 * `--hostfile` passed through, and the MEDITRON_* / OMP_* variables exported to remote ranks.
 *
 * @example
 * ```ts
 * import { mpirunCommand } from "./launcher.ts";
 * const c = mpirunCommand(["deno", "run", "-A", "cli/pretrain.ts"], { ranks: 8, cores: 2, root: true });
 * console.log(c.cmd, c.args.join(" "));
 * ```
 */
export function mpirunCommand(program: string[], opts: LaunchOptions): CommandLine {
  const cores = opts.cores ?? navigator.hardwareConcurrency ?? 1;
  const args = ["-n", String(opts.ranks), "--bind-to", "none"];
  const env: Record<string, string> = {};
  if (opts.ranks > cores && !opts.hostfile) args.push("--oversubscribe");
  if (opts.root) {
    args.push("--allow-run-as-root");
    env.OMPI_ALLOW_RUN_AS_ROOT = "1";
    env.OMPI_ALLOW_RUN_AS_ROOT_CONFIRM = "1";
  }
  if (opts.hostfile) args.push("--hostfile", opts.hostfile);
  for (const name of Object.keys(Deno.env.toObject())) {
    if (/^(MEDITRON_|OMP_|OPENBLAS_|NO_COLOR$|HOME$|PATH$)/.test(name)) args.push("-x", name);
  }
  args.push(...(opts.mpiArgs ?? []), ...program);
  return { cmd: "mpirun", args, env };
}

/**
 * Runs `program` on `ranks` local processes (plainly for one rank, under mpirun with shared-memory transport
 * otherwise) and collects its output: what tests and benchmarks of parallel layouts use.
 *
 * @example
 * ```ts ignore
 * const out = await runRanks([Deno.execPath(), "run", "-A", "worker.ts"], 4);
 * console.log(out.success);
 * ```
 */
export async function runRanks(program: string[], ranks: number): Promise<Deno.CommandOutput> {
  const c = ranks > 1
    ? mpirunCommand(program, { ranks, root: isRoot(), mpiArgs: ["--mca", "btl", "self,vader"] })
    : { cmd: program[0], args: program.slice(1), env: {} };
  return await new Deno.Command(c.cmd, { args: c.args, env: c.env, stdout: "piped", stderr: "piped" })
    .output();
}

/** Options of {@linkcode runUnderMpi}. */
export interface RunUnderMpiOptions extends LaunchOptions {
  /** Logs the line said when a first interrupt is passed on to the ranks. */
  onInterrupt?: (line: string) => void;
}

/** The signals {@linkcode runUnderMpi} passes on to its job. */
const INTERRUPTS = ["SIGINT", "SIGTERM", "SIGUSR2"] as const;

/** Set (to 1) in the ranks of a {@linkcode runUnderMpi} job: rank 0's stdin is the launching command's pipe. */
const LAUNCHER_PIPE = "MEDITRON_LAUNCHER_PIPE";

/**
 * Runs `program` under mpirun and resolves to its exit code (the job's: non-zero when any rank failed).
 * Throws a clear error when mpirun is not installed.
 *
 * Interrupts: mpirun answers SIGINT or SIGTERM by killing every rank within a second, which leaves no time for
 * a checkpoint. So the job runs in its own session (a terminal's Ctrl-C reaches this process, not mpirun), and
 * mpirun's stdin is a pipe from here, which mpirun passes on to rank 0 ({@linkcode watchLauncher}). The first
 * SIGINT, SIGTERM or SIGUSR2 here writes a byte into it, which the training ranks take as "finish the step,
 * write a checkpoint, exit 0" (rank 0 reads it, the per-step agreement tells the others; written before rank 0
 * watches, it waits in the pipe, so an early interrupt is not lost, and kills no rank that has no handler
 * yet). A second SIGINT or SIGTERM sends mpirun SIGTERM: the job is killed; a third has its default effect
 * here (a repeated SIGUSR2 only asks again, as in the ranks). And when this process ends however it ends
 * (SIGKILL, a closed terminal's SIGHUP), the pipe closes, and rank 0 asks for the same graceful stop.
 *
 * @example
 * ```ts ignore
 * import { isRoot, runUnderMpi } from "./launcher.ts";
 * const code = await runUnderMpi([Deno.execPath(), "run", "-A", "cli/pretrain.ts"], {
 *   ranks: 4,
 *   root: isRoot(),
 *   onInterrupt: (s) => console.error(s),
 * });
 * ```
 */
export async function runUnderMpi(program: string[], opts: RunUnderMpiOptions): Promise<number> {
  const c = mpirunCommand(program, {
    ...opts,
    mpiArgs: ["-x", `${LAUNCHER_PIPE}=1`, ...(opts.mpiArgs ?? [])],
  });
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command(c.cmd, { args: c.args, env: c.env, stdin: "piped", detached: true }).spawn();
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new Error(
        `${opts.ranks} ranks need mpirun, which is not installed (Debian: apt-get install openmpi-bin)`,
      );
    }
    throw e;
  }
  const pipe = child.stdin.getWriter(); // held open: closed when this process ends
  let interrupts = 0;
  const listeners = new Map(INTERRUPTS.map((sig) => [sig, () => onSignal(sig)]));
  const stopListening = () => {
    for (const [sig, f] of listeners) Deno.removeSignalListener(sig, f);
    listeners.clear();
  };
  const onSignal = (sig: Deno.Signal) => {
    if (interrupts > 0 && sig === "SIGUSR2") return; // SIGUSR2 only ever asks (stopOnSignals)
    if (++interrupts === 1) {
      opts.onInterrupt?.(
        `interrupt: asking the ${opts.ranks} ranks to finish the current step and write a checkpoint ` +
          `(signal again to kill the job)`,
      );
      pipe.write(new Uint8Array([10])).catch(() => {}); // a broken pipe: the job has just ended
      return;
    }
    stopListening(); // a third signal has its default effect on this process
    try {
      child.kill("SIGTERM");
    } catch {
      // the job has just ended
    }
  };
  for (const [sig, f] of listeners) Deno.addSignalListener(sig, f);
  try {
    return (await child.status).code;
  } finally {
    stopListening();
    await pipe.close().catch(() => {}); // mpirun is gone: the pipe may be broken
  }
}

/** Why {@linkcode watchLauncher} asks the job to stop. */
export type LauncherStop = "interrupt" | "ended";

/**
 * In rank 0 of a job that {@linkcode runUnderMpi} started, calls `onStop` once: with "interrupt" when the
 * launching command passes on an interrupt (a byte in the pipe it holds to rank 0's stdin), with "ended" when
 * it has ended (the pipe closes). Elsewhere (another rank, a job srun or mpirun started directly, one process)
 * it does nothing and never touches stdin. Disposing the result stops watching.
 *
 * @example
 * ```ts ignore
 * import { watchLauncher } from "./launcher.ts";
 * using _ = watchLauncher((why) => console.error(`stopping: ${why}`));
 * ```
 */
export function watchLauncher(
  onStop: (why: LauncherStop) => void,
  env: Record<string, string | undefined> = Deno.env.toObject(),
): Disposable {
  if (env[LAUNCHER_PIPE] !== "1" || launchRank(env) !== 0) return { [Symbol.dispose]: () => {} };
  const reader = Deno.stdin.readable.getReader();
  let watching = true;
  (async () => {
    let why: LauncherStop = "ended";
    try {
      const r = await reader.read();
      if (!r.done) why = "interrupt";
    } catch {
      // a closed stdin reads as the end too
    }
    if (watching) onStop(why);
  })();
  return {
    [Symbol.dispose]: () => {
      watching = false;
      reader.cancel().catch(() => {});
    },
  };
}

/** Whether this process runs as root (OpenMPI needs to be told). */
export function isRoot(): boolean {
  return Deno.uid?.() === 0;
}
