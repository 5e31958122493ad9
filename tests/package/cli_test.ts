// The command-line experience: every task of deno.json has a description and a --help with usage and
// examples (subcommands too), and output to a pipe carries no terminal escape codes even with colour allowed.
import assert from "node:assert/strict";
import { join } from "node:path";
import { tempDir } from "../helpers.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const config = JSON.parse(await Deno.readTextFile(join(ROOT, "deno.json"))) as {
  tasks: Record<string, { description?: string; command: string }>;
};
// Tasks that run a tool rather than a script of this project.
const TOOL_TASKS = new Set(["test"]);
// Tasks whose first argument is a subcommand with its own --help.
const SUBCOMMANDS: Record<string, string[]> = {
  data: ["clean", "combine", "tokenize", "prepare", "inspect"],
  convert: ["hf-to-native", "native-to-hf", "reshard", "pth-to-hf", "inspect"],
};

/** Runs a script with stdout/stderr piped (not a TTY) and NO_COLOR removed from the environment. */
async function runScript(script: string, args: string[], cwd = ROOT) {
  const env = Deno.env.toObject();
  delete env.NO_COLOR;
  const r = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", join(ROOT, script), ...args],
    cwd,
    env,
    clearEnv: true,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: r.code, stdout: dec.decode(r.stdout), stderr: dec.decode(r.stderr) };
}

function scriptOf(task: string): string {
  const m = config.tasks[task].command.match(/^deno run -A (\S+\.ts)$/);
  assert.ok(m, `task '${task}' runs a project script: ${config.tasks[task].command}`);
  return m[1];
}

Deno.test("every task in deno.json has a description", () => {
  for (const [name, task] of Object.entries(config.tasks)) {
    assert.ok((task.description ?? "").length > 20, `task '${name}' has a description`);
  }
  assert.ok("plot" in config.tasks, "the plot task is listed");
});

for (const task of Object.keys(config.tasks).filter((t) => !TOOL_TASKS.has(t))) {
  Deno.test(`deno task ${task} --help: usage and examples, exit 0, no escape codes`, async () => {
    const script = scriptOf(task);
    for (const sub of [undefined, ...(SUBCOMMANDS[task] ?? [])]) {
      const r = await runScript(script, sub ? [sub, "--help"] : ["--help"]);
      const what = `deno task ${task}${sub ? ` ${sub}` : ""} --help`;
      assert.equal(r.code, 0, `${what}: ${r.stderr}`);
      assert.match(r.stdout, new RegExp(`^Usage: deno task ${task}${sub ? ` ${sub}` : ""}\\b`), what);
      assert.match(r.stdout, /\nExamples?:\n {2}\S/, `${what} shows examples`);
      assert.ok(!(r.stdout + r.stderr).includes("\x1b"), `${what}: no escape codes`);
    }
  });
}

Deno.test("long tasks print plain progress lines without escape codes when not on a TTY", async () => {
  using dir = tempDir();
  const corpus = join(dir.path, "c.jsonl");
  const lines = Array.from(
    { length: 200 },
    (_, i) => JSON.stringify({ text: `Document ${i}: aspirin inhibits cyclooxygenase ${i} times.` }),
  );
  await Deno.writeTextFile(corpus, lines.join("\n") + "\n");
  const tok = await runScript("cli/data.ts", [
    "tokenize",
    "--input",
    corpus,
    "--output-prefix",
    join(dir.path, "c"),
    "--workers",
    "1",
  ]);
  assert.equal(tok.code, 0, tok.stderr);
  assert.ok((tok.stdout + tok.stderr).trim().length > 0, "it reports what it did");
  assert.ok(!(tok.stdout + tok.stderr).includes("\x1b"), `tokenize: no escape codes:\n${tok.stderr}`);
  await Deno.stat(join(dir.path, "c_text_document.idx"));

  const pre = await runScript("cli/pretrain.ts", [
    ...["--data", corpus, "--steps", "3", "--seq", "16", "--micro-batch", "2", "--grad-accum", "1"],
    ...["--set", "train.warmup_steps=1", "--set", "model.n_layers=1", "--set", "model.ffn_dim=64"],
    ...["--name", "nt", "--out", dir.path],
  ]);
  assert.equal(pre.code, 0, pre.stderr);
  assert.match(pre.stderr, /step 3\/3 loss/, "plain progress lines");
  assert.ok(
    !pre.stderr.includes("\x1b") && !pre.stderr.includes("\r"),
    `pretrain: no escape codes:\n${pre.stderr}`,
  );
});
