// `deno task data prepare` end to end on the fixture corpora, and pretraining reading the result.
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { loadPrepareConfig, parsePrepareConfig, prepare, type PrepareReport } from "../../data/prepare.ts";
import { IndexedDataset } from "../../data/indexed_dataset.ts";
import { Tokenizer } from "../../data/tokenizer.ts";
import { pretrainData } from "../../cli/pretrain.ts";
import { NativeModel } from "../../runtime/mod.ts";
import {
  modelDims,
  optimSettings,
  overrideConfig,
  presetConfig,
  validateConfig,
} from "../../models/config.ts";
import { train } from "../../models/trainer.ts";
import { tempDir } from "../helpers.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const CLI = join(ROOT, "cli/data.ts");

async function cli(args: string[]) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", CLI, ...args],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

async function jsonlTexts(path: string): Promise<string[]> {
  return (await Deno.readTextFile(path)).trim().split("\n").map((l) => JSON.parse(l).text as string);
}

/** Every run of letters in `text` occurs in `corpus` (runs cut at a window edge are still substrings). */
function assertFromCorpus(text: string, corpus: string, what: string): void {
  const words = text.match(/\p{L}{4,}/gu) ?? [];
  assert.ok(words.length > 3, `${what}: decodes to words (${JSON.stringify(text.slice(0, 80))})`);
  for (const w of words) assert.ok(corpus.includes(w), `${what}: '${w}' is not in the fixture corpus`);
}

Deno.test("data prepare --config configs/gap-replay.yaml runs end to end; pretraining reads the dataset", async () => {
  using dir = tempDir();
  const out = join(dir.path, "gap");
  const r = await cli(["prepare", "--config", "configs/gap-replay.yaml", "--output", out, "--workers", "2"]);
  assert.equal(r.code, 0, r.stderr);
  for (
    const step of [
      "clean guidelines: kept 40 of 43",
      "clean abstracts: kept 104 of 122",
      "combine:",
      "tokenize:",
    ]
  ) {
    assert.ok(r.stderr.includes(step), `${step} in:\n${r.stderr}`);
  }
  assert.ok(!r.stderr.includes("\r"), "plain lines without a TTY");
  const report: PrepareReport = JSON.parse(await Deno.readTextFile(join(out, "gap-replay.prepare.json")));
  assert.equal(report.dataset.prefix, join(out, "gap-replay_text_document"));
  assert.deepEqual(report.clean.guidelines.dropped, { duplicate: 1, not_english: 1, too_short: 1 });
  assert.equal(report.clean.abstracts.dropped.in_papers, 17, "abstracts of full-text papers are dropped");
  assert.equal(report.clean.replay.dropped.not_sampled! > 50, true, "replay is sampled at keep_rate 0.5");
  const { train_documents: nTrain, validation_documents: nValid } = report.dataset;
  assert.equal(nTrain, report.combine.train);
  assert.equal(nValid, report.combine.validationDocs);
  assert.ok(nValid >= 4 && nValid < nTrain / 10, `${nValid} validation documents`);
  assert.equal(report.dataset.vocab_size, 32012);
  assert.match(report.dataset.pretrain, /--set data\.valid_fraction=0\.\d+ --set model\.vocab_size=32012$/);

  // The dataset holds the training documents then the validation documents, each <s> … </s>.
  const tok = Tokenizer.llama2({ bracketTokens: true });
  const trainTexts = await jsonlTexts(join(out, "gap-replay.jsonl"));
  const validTexts = await jsonlTexts(join(out, "gap-replay.validation.jsonl"));
  {
    using ds = IndexedDataset.open(report.dataset.prefix);
    assert.equal(ds.count, nTrain + nValid);
    assert.equal(ds.dtype, "uint16");
    for (const i of [0, nTrain - 1, nTrain, nTrain + nValid - 1]) {
      const text = i < nTrain ? trainTexts[i] : validTexts[i - nTrain];
      assert.deepEqual(
        Array.from(ds.document(i)),
        tok.encode(text, { addBos: true, addEos: true }),
        `document ${i}`,
      );
    }
  }
  const papers = trainTexts.filter((t) => t.includes("[bib_ref]"));
  assert.ok(papers.length > 0, "papers keep their bracket tokens");

  // Pretraining on the prefix: batches decode to fixture text; validation is exactly the validation documents.
  const cfg = presetConfig("tiny");
  for (
    const [k, v] of Object.entries({
      "data.source": join(out, "gap-replay"), // the tokenize output prefix is accepted
      "data.valid_fraction": String(report.dataset.valid_fraction),
      "model.vocab_size": "32012",
      "model.dim": "64",
      "model.n_layers": "2",
      "model.n_heads": "4",
      "model.n_kv_heads": "2",
      "model.ffn_dim": "128",
      "train.seq": "64",
      "train.micro_batch": "4",
      "train.grad_accum": "1",
      "train.steps": "3",
      "train.eval_every": "3",
      "train.eval_batches": "2",
      "train.save_every": "0",
      "train.warmup_steps": "1",
      "train.decay_steps": "3",
    })
  ) overrideConfig(cfg, k, v);
  validateConfig(cfg, "test");
  const logs: string[] = [];
  const data = await pretrainData(cfg, (s) => logs.push(s));
  assert.match(
    logs[0],
    new RegExp(`documents \\[0, ${nTrain}\\).*validation .*documents \\[${nTrain}, ${nTrain + nValid}\\)`),
  );
  const trainCorpus = trainTexts.join("\n"), validCorpus = validTexts.join("\n");
  for (let step = 0; step < 5; step++) {
    const b = data.train(step * 4, 4);
    assert.equal(b.tokens.length, 4 * 64);
    for (let r = 0; r < 4; r++) {
      const row = Array.from(b.tokens.subarray(r * 64, (r + 1) * 64));
      assertFromCorpus(tok.decode(row), trainCorpus, `train row ${step}.${r}`);
    }
    assert.deepEqual(b.targets.subarray(0, 63), b.tokens.subarray(1, 64), "targets are the next tokens");
  }
  const valid = data.valid(4, 2);
  assert.ok(valid.length >= 1);
  for (const b of valid) {
    for (let r = 0; r < 4; r++) {
      assertFromCorpus(
        tok.decode(Array.from(b.tokens.subarray(r * 64, (r + 1) * 64))),
        validCorpus,
        "validation row",
      );
    }
  }
  assert.deepEqual(
    data.train(7, 4).tokens,
    (await pretrainData(cfg, () => {})).train(7, 4).tokens,
    "deterministic",
  );

  // A model whose vocabulary lacks the bracket tokens gets a clear error instead of a native failure.
  const small = structuredClone(cfg);
  overrideConfig(small, "model.vocab_size", "32000");
  const smallData = await pretrainData(small, () => {});
  assert.throws(() => {
    for (let i = 0; i < 10_000; i += 16) smallData.train(i, 16);
  }, /token id 320\d\d .* is outside model\.vocab_size 32000/);

  // Three optimizer steps with validation run on it.
  using model = await NativeModel.create(modelDims(cfg.model), optimSettings(cfg.train), {
    seed: cfg.train.seed,
    initStd: cfg.model.init_std,
  });
  const result = await train({ model, config: cfg, runDir: join(dir.path, "run"), data });
  assert.equal(result.history.length, 3);
  assert.ok(
    result.history.every((m) => Number.isFinite(m.loss) && m.loss > 5 && m.loss < 12),
    "losses near ln(32012)",
  );
});

Deno.test("prepare configs: unknown keys and bad values name the file and the key", async () => {
  const base = await loadPrepareConfig(join(ROOT, "configs/gap-replay.yaml"));
  assert.deepEqual(base.sources.map((s) => s.kind), ["guidelines", "papers", "abstracts", "replay"]);
  assert.equal(base.sources[3].options.keep_rate, 0.5);
  const ok = { sources: [{ kind: "replay", input: "r.jsonl", options: { keep_rate: 0.1 } }] };
  const cases: [unknown, RegExp][] = [
    [{ ...ok, outputs: "x" }, /c\.yaml: unknown key 'outputs'/],
    [{ ...ok, tokenize: { append_eos: true } }, /c\.yaml: unknown key 'tokenize\.append_eos'/],
    [
      { sources: [{ kind: "replay", input: "r", options: { keeprate: 1 } }] },
      /unknown key 'sources\[0\]\.options\.keeprate'/,
    ],
    [
      { sources: [{ kind: "replay", input: "r" }] },
      /sources\[0\]\.options\.keep_rate must be a number in \[0, 1\]/,
    ],
    [
      { sources: [{ kind: "pubmed", input: "r" }] },
      /sources\[0\]\.kind must be one of guidelines, abstracts, papers, replay/,
    ],
    [{ sources: [] }, /c\.yaml: sources must be a non-empty list/],
    [{ ...ok, workers: 0 }, /c\.yaml: workers must be an integer in \[1, 256\]/],
    [{ ...ok, split: { guidelines: 0.05 } }, /split\.guidelines: no source has subset 'guidelines'/],
    [{ sources: [ok.sources[0], ok.sources[0]] }, /sources\[1\]: subset 'replay' given twice/],
    [
      { sources: [{ kind: "abstracts", input: "a", options: { exclude_papers: true } }] },
      /sources\[0\]\.options\.exclude_papers: there is no papers source/,
    ],
    [{ ...ok, name: "a b" }, /name may hold only letters/],
  ];
  for (const [doc, pattern] of cases) assert.throws(() => parsePrepareConfig(doc, "c.yaml"), pattern);
  using dir = tempDir();
  const bad = join(dir.path, "bad.yaml");
  await Deno.writeTextFile(bad, "sources: [\n");
  await assert.rejects(() => loadPrepareConfig(bad), /bad\.yaml: invalid YAML/);
  await Deno.writeTextFile(
    bad,
    "sources:\n  - kind: replay\n    input: /nonexistent.jsonl\n    options: {keep_rate: 1}\n",
  );
  const r = await cli(["prepare", "--config", bad, "--output", join(dir.path, "o")]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /^error: .*bad\.yaml: source 'replay': cannot read \/nonexistent\.jsonl/);
  assert.ok(!r.stderr.includes("    at "), "no stack trace without --debug");
});

Deno.test("data CLI: help on every command, one-line errors, inspect", async () => {
  for (const command of ["", "clean", "combine", "tokenize", "prepare", "inspect"]) {
    const r = await cli(command ? [command, "--help"] : ["--help"]);
    assert.equal(r.code, 0, `${command}: ${r.stderr}`);
    assert.match(r.stdout, /^Usage: deno task data/, command);
    assert.ok(r.stdout.includes("Examples:"), `${command} --help has examples`);
  }
  const bad = await cli(["tokenise"]);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /^error: unknown command 'tokenise'/);
  using dir = tempDir();
  const input = join(dir.path, "c.jsonl");
  await Deno.writeTextFile(
    input,
    '{"text": "Aspirin inhibits platelet aggregation."}\n{"text": "Metformin."}\n',
  );
  const t = await cli([
    "tokenize",
    "--input",
    input,
    "--output-prefix",
    join(dir.path, "c"),
    "--workers",
    "1",
    "--append-eod",
  ]);
  assert.equal(t.code, 0, t.stderr);
  assert.match(t.stderr, /tokenize: 2 documents, \d+ tokens \(uint16\)/);
  const i = await cli(["inspect", join(dir.path, "c"), "--tokens", "12"]);
  assert.equal(i.code, 0, i.stderr);
  assert.match(i.stdout, /documents: +2\n/);
  assert.match(i.stdout, /dtype: +uint16/);
  assert.match(i.stdout, /text: +"<s> Aspirin inhibits platelet/);
  const missing = await cli(["inspect", join(dir.path, "nope")]);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /^error: .*nope\.idx: no such indexed dataset/);
  const debug = await cli(["inspect", join(dir.path, "nope"), "--debug"]);
  assert.ok(debug.stderr.includes("    at "), "--debug shows the stack");
});

Deno.test("prepare: a missing or unreadable source input fails before any work, naming the file and the config", async () => {
  using dir = tempDir();
  const replay = join(dir.path, "replay.jsonl");
  await Deno.writeTextFile(replay, '{"text": "general text"}\n');
  const out = join(dir.path, "out");
  for (const missing of [join(dir.path, "nope.jsonl"), dir.path]) {
    const config = parsePrepareConfig({
      sources: [
        { kind: "replay", input: replay, options: { keep_rate: 1 } },
        { kind: "guidelines", input: missing, options: {} },
      ],
    }, "two.yaml");
    await assert.rejects(
      prepare({ ...config, output: out }),
      (e: Error) => {
        assert.ok(
          e.message.startsWith(`two.yaml: source 'guidelines': cannot read ${missing} (`),
          e.message,
        );
        return true;
      },
    );
    assert.ok(!existsSync(out), "nothing written: the first source was not cleaned, no OUTPUT/clean/");
  }
});
