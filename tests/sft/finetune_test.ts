// SFT end to end through the CLIs: pretrain a small model, finetune it on the demo instruction set (the demo
// train split in Meditron's prompt/gold chat format), and compare chat-format accuracy with the pretrained
// model (its vocabulary grown with <|im_start|>/<|im_end|> as finetuning does).
import assert from "node:assert/strict";
import { join } from "node:path";
import { main as pretrain } from "../../cli/pretrain.ts";
import { loadInit, main as finetune, parseSftConfig, sftVocab } from "../../cli/finetune.ts";
import { demoSftRows } from "../../cli/data_sft.ts";
import { NativeLanguageModel } from "../../models/lm.ts";
import { loadCheckpoint, readCheckpointMeta, resolveCheckpoint } from "../../models/checkpoint.ts";
import { nativeToHf } from "../../models/convert/mod.ts";
import { assertClose } from "../helpers.ts";
import { presetConfig } from "../../models/config.ts";
import { NativeModel } from "../../runtime/mod.ts";
import { type Benchmark, demoQuestions, evaluate } from "../../eval/mod.ts";
import { modelDims, optimSettings } from "../../models/config.ts";
import { saveInitModel } from "./fixtures.ts";

const quiet = async <T>(f: () => Promise<T>): Promise<T> => {
  const log = console.log, error = console.error;
  console.log = () => {};
  try {
    return await f();
  } finally {
    console.log = log;
    console.error = error;
  }
};

Deno.test("configs/sft.yaml: Meditron's SFT hyperparameters", async () => {
  const path = new URL("../../configs/sft.yaml", import.meta.url).pathname;
  const { sft, run } = parseSftConfig(await Deno.readTextFile(path), path);
  const t = run.train;
  assert.deepEqual([t.lr, t.min_lr, t.weight_decay, t.grad_clip, t.beta1, t.beta2, t.eps], [
    2e-5,
    2e-6,
    0.1,
    1,
    0.9,
    0.95,
    1e-5,
  ]);
  assert.equal(t.micro_batch * t.grad_accum, 64);
  assert.deepEqual(sft, { epochs: 3, warmup_ratio: 0.1, prompt_loss_weight: 0, bos: false, pack: false });
  assert.equal(parseSftConfig("sft:\n  pack: true\n", "x.yaml").sft.pack, true);
  assert.throws(() => parseSftConfig("sft:\n  epoch: 3\n", "x.yaml"), /unknown key 'sft.epoch'/);
  assert.throws(() => parseSftConfig("train:\n  lr: high\n", "x.yaml"), /train.lr/);
});

Deno.test("demo SFT rows are the eval prompts with letter golds", () => {
  const rows = demoSftRows(), train = demoQuestions().train;
  assert.equal(rows.length, train.length);
  assert.ok(rows[0].prompt.endsWith("The answer is:\n"));
  assert.equal(rows[0].gold, "ABCD"[train[0].answer]);
});

Deno.test({
  name: "SFT on the demo instruction set lifts chat-format (greedy) demo accuracy over the pretrained model",
  sanitizeResources: false,
  fn: async () => {
    const out = await Deno.makeTempDir({ prefix: "sft-test-" });
    try {
      const small = ["--set", "model.dim=64", "--set", "model.n_layers=2", "--set", "model.ffn_dim=192"];
      await quiet(() =>
        pretrain([
          "--steps",
          "40",
          "--seq",
          "64",
          "--micro-batch",
          "8",
          "--grad-accum",
          "1",
          "--eval-every",
          "0",
          "--save-every",
          "0",
          "--lr",
          "3e-3",
          ...small,
          "--name",
          "pre",
          "--out",
          out,
        ])
      );
      await quiet(() =>
        finetune([
          "--init",
          join(out, "pre"),
          "--data",
          "demo",
          "--name",
          "sft",
          "--out",
          out,
          "--lr",
          "2e-3",
          "--min-lr",
          "2e-4",
          "--micro-batch",
          "8",
          "--grad-accum",
          "1",
          "--epochs",
          "2",
          "--bos",
        ])
      );
      const cfg = presetConfig("tiny");
      const pre = await loadInit(await resolveCheckpoint(join(out, "pre")), cfg, sftVocab(32000).add);
      using preModel = pre.model;
      const sftCkpt = await resolveCheckpoint(join(out, "sft"));
      using sftModel = await NativeModel.create(modelDims(pre.config.model), optimSettings(cfg.train), {
        seed: 0,
        initStd: 0.02,
      });
      await loadCheckpoint(sftCkpt, sftModel);
      const tokenizer = sftVocab(32002).tokenizer;
      const test = demoQuestions().test.slice(0, 200);
      // Meditron evaluates finetuned models by generation: greedy answers in the chat format, letters extracted.
      const run = async (m: NativeModel) => {
        using lm = new NativeLanguageModel(m);
        const bench: Benchmark = { name: "demo", test, train: [], notes: [], demosBySubject: false };
        const r = await evaluate(bench, lm, tokenizer, { mode: "greedy", chat: true, maxContext: 256 });
        return r.perSeed[0].metrics;
      };
      const before = await run(preModel), after = await run(sftModel);
      console.log(
        `held-out demo questions, chat format, greedy: accuracy ${before.accuracy.toFixed(3)} -> ` +
          `${
            after.accuracy.toFixed(3)
          }, parseable ${before.parseable}/${before.n} -> ${after.parseable}/${after.n}`,
      );
      // The finetuned model answers in the trained format (template, loss mask and eval agree) ...
      assert.ok(after.parseable >= 0.95 * after.n, `parseable ${after.parseable}/${after.n}`);
      // ... which lifts accuracy over the pretrained model in the chat format.
      assert.ok(after.accuracy >= before.accuracy + 0.1, `accuracy ${before.accuracy} -> ${after.accuracy}`);
    } finally {
      await Deno.remove(out, { recursive: true });
    }
  },
});

Deno.test({
  name: "finetune --init HFDIR: converted, vocabulary grown by the chat tokens with mean rows, then trained",
  sanitizeResources: false,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "sft-hf-" });
    const log = console.log;
    try {
      const cfg = await saveInitModel(join(dir, "pre"));
      await nativeToHf(join(dir, "pre"), join(dir, "hf"), { dtype: "F32" });
      // The grown model at initialisation: new rows are the mean of the old ones.
      const grown = await loadInit(await resolveCheckpoint(join(dir, "pre")), cfg, 2);
      using g = grown.model;
      const emb = g.read("model.embed_tokens.weight"), d = cfg.model.dim;
      for (const c of [0, 7, 31]) {
        let mean = 0;
        for (let r = 0; r < 32000; r++) mean += emb[r * d + c];
        assertClose(emb[32001 * d + c], mean / 32000, 1e-5, `new row, column ${c}`);
      }
      const data = join(dir, "sft.jsonl");
      await Deno.writeTextFile(
        data,
        [
          { messages: [{ role: "user", content: "Hi" }, { role: "assistant", content: "Hello." }] },
          { prompt: "Best test for anemia?", gold: "CBC" },
          { messages: [{ role: "system", content: "Brief." }, { role: "user", content: "Fever?" }] }, // no answer
        ].map((r) => JSON.stringify(r)).join("\n"),
      );
      console.log = () => {};
      await finetune([
        "--init",
        join(dir, "hf"),
        "--data",
        data,
        "--name",
        "ft",
        "--out",
        dir,
        "--steps",
        "2",
        "--micro-batch",
        "2",
        "--grad-accum",
        "1",
        "--lr",
        "1e-3",
      ]);
      console.log = log;
      const meta = await readCheckpointMeta(await resolveCheckpoint(join(dir, "ft")));
      assert.equal(meta.config.model.vocab_size, 32002);
      assert.equal(meta.iteration, 2);
      const metrics = (await Deno.readTextFile(join(dir, "ft", "metrics.jsonl"))).trim().split("\n");
      assert.equal(metrics.length, 2);
      assert.ok(Number.isFinite(JSON.parse(metrics[1]).loss));
    } finally {
      console.log = log;
      await Deno.remove(dir, { recursive: true });
    }
  },
});
