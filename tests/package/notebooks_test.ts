// The example notebooks run headless with Debian's jupyter-nbconvert + jupyter-client and the Deno kernel
// (`deno jupyter --install`), and a notebook whose cell throws fails the run (older Deno kernels reported
// errors as ok, which would make this suite unable to fail).
import assert from "node:assert/strict";
import { basename, join } from "node:path";
import { tempDir } from "../helpers.ts";

const ROOT = new URL("../../", import.meta.url).pathname;

interface Output {
  output_type: string;
  data?: Record<string, string | string[]>;
  text?: string | string[];
}
interface Notebook {
  cells: { cell_type: string; outputs?: Output[] }[];
}

const joined = (s: string | string[] | undefined): string => Array.isArray(s) ? s.join("") : s ?? "";

let installed = false;
async function installKernel(): Promise<void> {
  if (installed) return;
  const r = await new Deno.Command(Deno.execPath(), {
    args: ["jupyter", "--install", "--force"],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(r.code, 0, new TextDecoder().decode(r.stderr));
  installed = true;
}

/** Executes a notebook with nbconvert; returns the exit code, its stderr and the executed notebook. */
async function execute(notebook: string): Promise<{ code: number; stderr: string; nb?: Notebook }> {
  await installKernel();
  using out = tempDir("meditron-nb-");
  let r: Deno.CommandOutput;
  try {
    r = await new Deno.Command("jupyter", {
      args: [
        "nbconvert",
        "--to",
        "notebook",
        "--execute",
        "--ExecutePreprocessor.timeout=300",
        // nbclient waits only 4 s (its default) for a cell's outputs after the cell's reply and then drops
        // them with a warning: on a busy CI machine a display could vanish. Wait longer, and fail loudly.
        "--ExecutePreprocessor.iopub_timeout=60",
        "--ExecutePreprocessor.raise_on_iopub_timeout=True",
        "--output-dir",
        out.path,
        notebook,
      ],
      env: { NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output();
  } catch (e) {
    throw new Error(
      `jupyter is needed (Debian: apt-get install jupyter-nbconvert python3-jupyter-client): ${
        (e as Error).message
      }`,
    );
  }
  const stderr = new TextDecoder().decode(r.stderr);
  const path = join(out.path, basename(notebook));
  const nb = r.code === 0 ? JSON.parse(await Deno.readTextFile(path)) as Notebook : undefined;
  return { code: r.code, stderr, nb };
}

function outputs(nb: Notebook): Output[] {
  return nb.cells.filter((c) => c.cell_type === "code").flatMap((c) => c.outputs ?? []);
}

Deno.test("examples/quickstart.ipynb runs headless: live progress, inline loss plot, answer, eval table", async () => {
  const r = await execute(join(ROOT, "examples/quickstart.ipynb"));
  assert.equal(r.code, 0, r.stderr.slice(-3000));
  const outs = outputs(r.nb!);
  assert.ok(!outs.some((o) => o.output_type === "error"), "no cell failed");
  const progress = outs.filter((o) => o.output_type === "display_data").map((o) =>
    joined(o.data?.["text/plain"])
  );
  assert.ok(
    progress.some((t) => /^step 50\/50 · loss \d+\.\d+ · validation \d+\.\d+/.test(t)),
    `the progress display was updated in place to the last step: ${progress.join(" | ")}`,
  );
  const svg = outs.map((o) => joined(o.data?.["image/svg+xml"])).find((s) => s.length > 0);
  assert.ok(svg && svg.includes("<svg") && svg.includes("quickstart"), "the loss plot is shown inline");
  const table = outs.map((o) => joined(o.data?.["text/markdown"])).find((s) => s.includes("| benchmark |"));
  assert.ok(table, "the evaluation table is shown");
  assert.match(table, /\| demo \(continuation\) \| cloze \| 0 \| 20 \| \d+\.\d \|/);
  const text = outs.map((o) => joined(o.data?.["text/plain"])).join("\n");
  assert.match(text, /loss 10\.\d+ -> \d+\.\d+ after 50 steps/);
  assert.match(
    text,
    /The first-line treatment of/,
    `the generated answer is shown; nbconvert said: ${r.stderr.slice(-2000)}`,
  );
});

Deno.test("examples/data.ipynb runs headless: tokens, an MMIDIDX dataset, samples", async () => {
  const r = await execute(join(ROOT, "examples/data.ipynb"));
  assert.equal(r.code, 0, r.stderr.slice(-3000));
  const outs = outputs(r.nb!);
  assert.ok(!outs.some((o) => o.output_type === "error"), "no cell failed");
  const text = outs.map((o) => joined(o.data?.["text/plain"]) + joined(o.text)).join("\n");
  assert.match(text, /roundTrip: true/);
  assert.match(text, /magic: "MMIDIDX"/);
  assert.match(text, /dtype: "uint16"/);
  assert.match(text, /│ +0 │ +33 │/, "the sample table: 33 tokens (seq + 1) per sample");
});

Deno.test("a notebook with a failing cell fails the headless run", async () => {
  const r = await execute(join(ROOT, "tests/notebooks/failing_canary.ipynb"));
  assert.notEqual(r.code, 0, "nbconvert must exit non-zero");
  assert.match(r.stderr, /canary: this cell fails on purpose/);
  assert.ok(!r.stderr.includes("never reached"), "execution stops at the failing cell");
});
