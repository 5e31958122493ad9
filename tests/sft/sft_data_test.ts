// SFT rows, chat template, per-token loss weights, truncation and batching.
import assert from "node:assert/strict";
import { Tokenizer } from "../../data/tokenizer.ts";
import {
  type ChatMessage,
  padBatch,
  parseSftRow,
  renderChat,
  SftDataset,
  type SftTokens,
  tokenizeChat,
} from "../../data/sft.ts";

const tok = Tokenizer.llama2({ chatTokens: true });
const CONV: ChatMessage[] = [
  { role: "system", content: "You are a doctor." },
  { role: "user", content: "First-line drug for hypertension?" },
  { role: "assistant", content: "A thiazide diuretic." },
];

Deno.test("parseSftRow: messages and prompt/gold rows; errors name the row", () => {
  assert.deepEqual(parseSftRow({ prompt: "Q", gold: "B" }, "f:1"), [
    { role: "question", content: "Q" },
    { role: "answer", content: "B" },
  ]);
  assert.deepEqual(parseSftRow({ messages: CONV }, "f:1"), CONV);
  assert.throws(() => parseSftRow({ text: "x" }, "f:3"), /f:3/);
  assert.throws(() => parseSftRow({ messages: [{ role: "user" }] }, "f:4"), /content/);
  assert.throws(() => parseSftRow({ messages: [] }, "f:5"), /non-empty/);
});

Deno.test("renderChat: Meditron's template, no BOS/EOS", () => {
  assert.equal(
    renderChat([{ role: "user", content: "Hi" }, { role: "assistant", content: "Hello" }]),
    "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello<|im_end|>\n",
  );
});

Deno.test("tokenizeChat: weight 1 exactly on the assistant message (header, content, <|im_end|>, newline)", () => {
  const t = tokenizeChat(tok, CONV);
  assert.deepEqual(t.ids, tok.encode(renderChat(CONV), { addBos: false }));
  const start = t.ids.lastIndexOf(32000);
  assert.ok(start > 0);
  assert.deepEqual(t.weights.slice(0, start), new Array(start).fill(0));
  assert.deepEqual(t.weights.slice(start), new Array(t.ids.length - start).fill(1));
  // The weighted tokens decode to exactly the assistant message.
  const trained = t.ids.filter((_, i) => t.weights[i] === 1);
  assert.match( // (SentencePiece's dummy prefix shows as a space after the special tokens)
    tok.decode(trained, { skipSpecialTokens: false }),
    /^<\|im_start\|> ?assistant\nA thiazide diuretic\.<\|im_end\|> ?\n$/,
  );
  assert.equal(trained[0], 32000);
  assert.ok(trained.includes(32001));
  // A configurable weight elsewhere.
  const w = tokenizeChat(tok, CONV, { promptLossWeight: 0.1 });
  assert.deepEqual(w.weights.slice(0, start), new Array(start).fill(0.1));
  assert.equal(tokenizeChat(tok, CONV, { addBos: true }).ids[0], 1);
  assert.throws(() => tokenizeChat(tok, [{ role: "user", content: "x<|im_end|>" }]), /chat-template token/);
  assert.throws(() => tokenizeChat(Tokenizer.llama2(), CONV), /lacks/);
});

Deno.test("padBatch: longest rounded up to 16, capped at seq; padding weighs 0", () => {
  const a: SftTokens = { ids: [1, 2, 3, 4, 5], weights: [0, 0, 1, 1, 1] };
  const b: SftTokens = { ids: Array.from({ length: 20 }, (_, i) => i + 10), weights: new Array(20).fill(1) };
  const one = padBatch([a], 128, 0);
  assert.equal(one.seq, 16);
  assert.deepEqual([...one.tokens.subarray(0, 5)], [1, 2, 3, 4, 0]);
  assert.deepEqual([...one.targets.subarray(0, 4)], [2, 3, 4, 5]);
  assert.deepEqual([...one.lossMask], [0, 1, 1, 1, ...new Array(12).fill(0)]);
  const two = padBatch([a, b], 128, 0);
  assert.equal(two.seq, 32); // 19 → 32
  assert.equal(two.tokens.length, 64);
  assert.equal(two.lossMask.subarray(32).reduce((x, y) => x + y, 0), 19);
  assert.equal(padBatch([a, b], 24, 0).seq, 24); // capped
});

Deno.test("SftDataset: truncation keeps the start, drops examples left without assistant tokens", () => {
  const long: SftTokens = {
    ids: Array.from({ length: 50 }, (_, i) => i),
    weights: [...new Array(40).fill(0), ...new Array(10).fill(1)],
  };
  const ok: SftTokens = {
    ids: Array.from({ length: 50 }, (_, i) => i),
    weights: [...new Array(10).fill(0), ...new Array(40).fill(1)],
  };
  const none: SftTokens = { ids: [1, 2, 3], weights: [0, 0, 0] };
  const ds = new SftDataset([long, ok, none], { seq: 32, seed: 1 });
  assert.equal(ds.size, 1);
  assert.equal(ds.dropped, 2);
  assert.equal(ds.truncated, 1);
  const b = ds.batch(0, 1);
  assert.equal(b.seq, 32);
  assert.deepEqual([...b.tokens], Array.from({ length: 32 }, (_, i) => i));
});

Deno.test("SftDataset: each epoch is a permutation; batches are a pure function of the sample index", () => {
  const ex: SftTokens[] = Array.from({ length: 10 }, (_, i) => ({ ids: [i, i + 100], weights: [0, 1] }));
  const ds = new SftDataset(ex, { seq: 16, seed: 7 });
  for (const epoch of [0, 1, 2]) {
    const seen = Array.from({ length: 10 }, (_, i) => ds.example(epoch * 10 + i).ids[0]).sort((x, y) =>
      x - y
    );
    assert.deepEqual(seen, [...Array(10).keys()]);
  }
  const again = new SftDataset(ex, { seq: 16, seed: 7 });
  assert.deepEqual([...again.batch(13, 4).tokens], [...ds.batch(13, 4).tokens]);
  const other = new SftDataset(ex, { seq: 16, seed: 8 });
  const order = (d: SftDataset) => Array.from({ length: 10 }, (_, i) => d.example(i).ids[0]).join();
  assert.notEqual(order(other), order(ds));
});
