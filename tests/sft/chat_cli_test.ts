// The chat CLI driven through stdin: streamed answers equal direct generation with the same template and
// history; /reset and /system; Ctrl-C stops a generation and the program goes on.
import assert from "node:assert/strict";
import { join } from "node:path";
import { NativeModel } from "../../runtime/mod.ts";
import { NativeLanguageModel } from "../../models/lm.ts";
import { resolveCheckpoint, saveCheckpoint } from "../../models/checkpoint.ts";
import { modelDims, presetConfig, type RunConfig } from "../../models/config.ts";
import { CHATML, type ChatTurn, MEDICAL_ONE_SHOT, MEDICAL_ZERO_SHOT } from "../../models/chat.ts";
import { Tokenizer } from "../../data/tokenizer.ts";
import { tempDir, TEST_OPTIM } from "../helpers.ts";

const CHAT = new URL("../../cli/chat.ts", import.meta.url).pathname;

function config(vocab: number, maxSeq: number): RunConfig {
  const cfg = presetConfig("tiny");
  cfg.model = {
    ...cfg.model,
    dim: 32,
    n_layers: 2,
    n_heads: 4,
    n_kv_heads: 2,
    ffn_dim: 64,
    vocab_size: vocab,
  };
  cfg.model.max_seq = maxSeq;
  cfg.train.seq = 64;
  return cfg;
}

async function makeRun(dir: string, vocab: number, maxSeq: number): Promise<NativeModel> {
  const cfg = config(vocab, maxSeq);
  const model = await NativeModel.create(modelDims(cfg.model), TEST_OPTIM, { seed: 21, initStd: 0.3 });
  await saveCheckpoint(dir, model, cfg, { iteration: 0, consumedSamples: 0, data: {} });
  return model;
}

async function answer(model: NativeModel, tok: Tokenizer, prompt: string, max: number, stop: string[]) {
  using lm = new NativeLanguageModel(model, 2);
  const eos = [tok.tokenToId("<|im_end|>"), tok.eosId].filter((x): x is number => typeof x === "number");
  const ids: number[] = [];
  for await (const id of lm.generate(tok.encode(prompt, { addBos: true }), { maxTokens: max, eos })) {
    if (eos.includes(id)) break;
    ids.push(id);
    const text = tok.decode(ids);
    const cut = stop.map((s) => text.indexOf(s)).filter((i) => i >= 0);
    if (cut.length) return text.slice(0, Math.min(...cut));
  }
  return tok.decode(ids);
}

async function runChat(args: string[], input: string) {
  const p = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", CHAT, ...args],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const w = p.stdin.getWriter();
  await w.write(new TextEncoder().encode(input));
  await w.close();
  const o = await p.output();
  return {
    code: o.code,
    stdout: new TextDecoder().decode(o.stdout),
    stderr: new TextDecoder().decode(o.stderr),
  };
}

Deno.test("chat CLI (finetuned, <|im_start|> template): history, /system, /reset through stdin", async () => {
  const dir = await Deno.makeTempDir();
  try {
    using model = await makeRun(join(dir, "run"), 32002, 256);
    const tok = Tokenizer.llama2({ chatTokens: true });
    const r = await runChat(
      ["--model", join(dir, "run"), "--max-tokens", "6"],
      "Hello doctor\nI have a cough\n/system Be brief.\n/reset\nHello doctor\n/quit\nignored\n",
    );
    assert.equal(r.code, 0, r.stderr);
    const h: ChatTurn[] = [{ role: "user", content: "Hello doctor" }];
    const a1 = await answer(model, tok, CHATML.prompt(h), 6, []);
    h.push({ role: "assistant", content: a1.trim() }, { role: "user", content: "I have a cough" });
    const a2 = await answer(model, tok, CHATML.prompt(h), 6, []);
    const a3 = await answer(
      model,
      tok,
      CHATML.prompt([
        { role: "system", content: "Be brief." },
        { role: "user", content: "Hello doctor" },
      ]),
      6,
      [],
    );
    assert.notEqual(a1, a3); // the system message changes the prompt, so the check can fail
    assert.equal(r.stdout, `assistant> ${a1}\nassistant> ${a2}\nassistant> ${a3}\n`);
    assert.match(r.stderr, /template chatml/);
    assert.match(r.stderr, /history cleared/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("chat CLI (pretrained): Meditron's medical one-shot template", async () => {
  const dir = await Deno.makeTempDir();
  try {
    using model = await makeRun(join(dir, "run"), 32000, 1024);
    const tok = Tokenizer.llama2();
    const r = await runChat(["--model", join(dir, "run"), "--max-tokens", "5"], "Hi\n");
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /template medical-one-shot/);
    const prompt = MEDICAL_ONE_SHOT.prompt([{ role: "user", content: "Hi" }]);
    assert.ok(
      prompt.includes("\n### User: What happens if listeria is left untreated?\n### Assistant: If listeria"),
    );
    assert.equal(r.stdout, `assistant> ${await answer(model, tok, prompt, 5, [...MEDICAL_ONE_SHOT.stop])}\n`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("chat CLI: Ctrl-C stops a generation, not the program", async () => {
  const dir = await Deno.makeTempDir();
  try {
    using _model = await makeRun(join(dir, "run"), 32002, 4096);
    const p = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", CHAT, "--model", join(dir, "run"), "--max-tokens", "4000"],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const w = p.stdin.getWriter();
    await w.write(new TextEncoder().encode("Tell me everything about anemia\n"));
    const reader = p.stdout.getReader();
    let seen = "";
    while (!seen.includes("assistant> ") || seen.length < 20) {
      const { value, done } = await reader.read();
      if (done) break;
      seen += new TextDecoder().decode(value);
    }
    p.kill("SIGINT");
    await new Promise((r) => setTimeout(r, 300));
    await w.write(new TextEncoder().encode("/reset\n/quit\n"));
    await w.close();
    while (true) {
      const { value, done } = await reader.read();
      if (done) break;
      seen += new TextDecoder().decode(value);
    }
    const status = await p.status;
    const stderr = new TextDecoder().decode(await new Response(p.stderr).arrayBuffer());
    assert.equal(status.code, 0, stderr);
    assert.match(stderr, /\[stopped\]/);
    assert.match(stderr, /history cleared/); // the program went on after the interrupt
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("chat CLI (pretrained, 256-token context): falls back to medical-zero-shot, said once", async () => {
  using tmp = tempDir();
  const dir = tmp.path;
  using model = await makeRun(join(dir, "run"), 32000, 256);
  const tok = Tokenizer.llama2();
  const q = "What is the first-line treatment of asthma?";
  const r = await runChat(["--model", join(dir, "run"), "--max-tokens", "16"], `${q}\n${q}\n`);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(
    r.stderr.match(/using medical-zero-shot \(no worked example, no default system message\) instead/g)
      ?.length,
    1,
    r.stderr,
  );
  assert.match(r.stderr, /medical-one-shot template takes \d+ tokens before the message/);
  assert.match(r.stderr, /template medical-zero-shot, context 256 tokens/);
  const h: ChatTurn[] = [{ role: "user", content: q }];
  const a1 = await answer(model, tok, MEDICAL_ZERO_SHOT.prompt(h), 16, [...MEDICAL_ZERO_SHOT.stop]);
  h.push({ role: "assistant", content: a1.trim() }, { role: "user", content: q });
  const a2 = await answer(model, tok, MEDICAL_ZERO_SHOT.prompt(h), 16, [...MEDICAL_ZERO_SHOT.stop]);
  assert.equal(r.stdout, `assistant> ${a1}\nassistant> ${a2}\n`);
});

Deno.test("chat CLI: a named template that cannot fit is refused at start-up; all-failed pipe exits 1", async () => {
  using tmp = tempDir();
  const dir = tmp.path;
  using _model = await makeRun(join(dir, "run"), 32000, 256);
  const named = await runChat(["--model", join(dir, "run"), "--template", "medical-one-shot"], "Hi\n");
  assert.equal(named.code, 1);
  assert.match(
    named.stderr,
    /^error: the medical-one-shot template takes \d+ tokens before the message \(system message and worked example\), but prompts may hold 128; try --template medical-zero-shot, a shorter --system \('' for none\) or a lower --max-tokens/,
  );
  assert.equal(named.stdout, "");
  const long = await runChat(
    ["--model", join(dir, "run"), "--max-tokens", "4"],
    `${"word ".repeat(300)}\n`,
  );
  assert.equal(long.code, 1);
  assert.match(long.stderr, /the message is too long for the model's 256-token context/);
  assert.match(
    long.stderr,
    /error: no message was answered: it was too long for the model's 256-token context/,
  );
});

Deno.test("chat CLI: --no-verify opens a run whose shard fails its sha256 check", async () => {
  using tmp = tempDir();
  const dir = tmp.path;
  using _model = await makeRun(join(dir, "run"), 32002, 256);
  const ck = await resolveCheckpoint(join(dir, "run"));
  const f = join(ck, "optim-tp00-pp00-dp00.safetensors");
  const bytes = Deno.readFileSync(f);
  bytes[bytes.length - 1] ^= 1;
  Deno.writeFileSync(f, bytes);
  const refused = await runChat(["--model", join(dir, "run"), "--max-tokens", "2"], "Hi\n");
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, /sha256 mismatch .*use --no-verify to skip/);
  const r = await runChat(["--model", join(dir, "run"), "--max-tokens", "2", "--no-verify"], "Hi\n");
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^assistant> /);
});
