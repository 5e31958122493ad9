/**
 * Tests of the pure-TypeScript tokenizer, with HF's Rust `tokenizers` (npm `@anush008/tokenizers`) as oracle.
 */
import assert from "node:assert/strict";
import { Tokenizer as HFTokenizer } from "@anush008/tokenizers";
import {
  CHAT_TOKENS,
  type HFAddedToken,
  type HFTokenizerJson,
  type Llama2Options,
  llama2TokenizerJson,
  MEDITRON_BRACKET_TOKENS,
  Tokenizer,
  TokenizerJsonError,
} from "../../data/tokenizer.ts";

const FULL: Llama2Options = { bracketTokens: true, chatTokens: true };

/** Writes `json` to a temp dir and loads it with both tokenizers (ours through `fromFile` too). */
async function pair(json: HFTokenizerJson): Promise<{ ours: Tokenizer; oracle: HFTokenizer }> {
  const dir = await Deno.makeTempDir({ prefix: "tokenizer_test_" });
  const path = `${dir}/tokenizer.json`;
  await Deno.writeTextFile(path, JSON.stringify(json));
  const result = { ours: await Tokenizer.fromFile(path), oracle: HFTokenizer.fromFile(path) };
  await Deno.remove(dir, { recursive: true });
  return result;
}

let llamaPair: Promise<{ ours: Tokenizer; oracle: HFTokenizer }> | undefined;
function llama(): Promise<{ ours: Tokenizer; oracle: HFTokenizer }> {
  return llamaPair ??= pair(llama2TokenizerJson(FULL));
}

/** Checks ids (with and without BOS) and decodes (with and without specials) against the oracle. */
async function assertParity(ours: Tokenizer, oracle: HFTokenizer, texts: string[]): Promise<void> {
  for (const addSpecialTokens of [false, true]) {
    const expected = (await oracle.encodeBatch(texts, { addSpecialTokens })).map((e) => e.getIds());
    const actual = ours.encodeBatch(texts, addSpecialTokens ? {} : { addBos: false, addEos: false });
    texts.forEach((text, i) => assert.deepEqual(actual[i], expected[i], `encode ${JSON.stringify(text)}`));
    for (const skipSpecialTokens of [false, true]) {
      const decoded = await oracle.decodeBatch(expected, skipSpecialTokens);
      expected.forEach((ids, i) => {
        assert.equal(
          ours.decode(ids, { skipSpecialTokens }),
          decoded[i],
          `decode ${JSON.stringify(texts[i])}`,
        );
      });
    }
  }
}

/** Deterministic PRNG (mulberry32). */
function rng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const PIECES: string[][] = [
  [
    "the",
    "patient",
    "Hello",
    "world",
    "grabbed",
    "myocardial",
    "infarction",
    "mg",
    "IV",
    "x",
    "a",
    "ab",
    "ER",
  ],
  [" ", "  ", "   ", "     ", "\t", "\n", "\n\n", "\r\n", " \n "],
  ["é", "café", "naïve", "Ærø", "ß", "ñ", "Ꙋ", "𝔸", "ǅ", "e\u0301", "\u00a0", "\u200b", "\u0000"],
  ["🦙", "👩‍⚕️", "🇨🇭", "💊", "😀😀", "❤️"],
  ["镇", "中文", "日本語", "한국어", "給", "ひらがな"],
  ["0", "42", "3.14159", "2023", "1,000", "-7", "½"],
  [".", ",", "(", ")", "[", "]", "<", ">", "/", "#", "*", "'", '"', "…", "—"],
  [
    "[bib_ref]",
    "[/bib_ref]",
    "[fig]",
    "[table]",
    "[formula]",
    "<|im_start|>",
    "<|im_end|>",
    "<s>",
    "</s>",
    "<unk>",
  ],
];

function randomText(next: () => number, pieces: string[][]): string {
  const length = Math.floor(next() * 24);
  let text = "";
  for (let i = 0; i < length; i++) {
    const group = pieces[Math.floor(next() * pieces.length)];
    text += group[Math.floor(next() * group.length)];
  }
  return text;
}

function randomTexts(seed: number, count: number, pieces: string[][]): string[] {
  const next = rng(seed);
  return Array.from({ length: count }, () => randomText(next, pieces));
}

const VARIED_TEXT = [
  "",
  " ",
  "Hello world",
  "  leading spaces and trailing spaces   ",
  "The patient (58 y/o, ♀) presented with acute myocardial infarction; troponin I = 12.4 ng/mL.",
  "Ibuprofen 400 mg q6h PRN — max 3,200 mg/day.\n\n\tTabs\tand\nnewlines\r\n",
  "Unicode: café, naïve, Zürich, São Paulo, Ærøskøbing, Łódź, İstanbul, ǅemal.",
  "Emoji: 🦙🧬💊👩‍⚕️🇨🇭 and CJK: 心肌梗死 是 一种 疾病。日本語のテキスト。한국어 텍스트.",
  "Numbers 0 1 22 333 4444 55555 3.14159 1e-9 0x1F 100%",
  "Meditron [bib_ref]Smith 2020[/bib_ref] see [fig_ref]Fig. 1[/fig_ref] [table]x[/table] [formula]E=mc²[/formula]",
  "<|im_start|>user\nWhat is sepsis?<|im_end|>\n<|im_start|>assistant\nA life-threatening...<|im_end|>",
  "<s>literal specials</s> and <unk>",
  "           grabbed",
  "ax\n####\nboo",
  "a".repeat(300) + " " + "▁".repeat(40) + " end",
].join("\n");

Deno.test("llama2: known ids", () => {
  const tok = Tokenizer.llama2();
  assert.equal(tok.tokenToId("▁the"), 278);
  assert.equal(tok.idToToken(15043), "▁Hello");
  assert.deepEqual(tok.encode("Hello world"), [1, 15043, 3186]);
  assert.deepEqual(tok.encode("Hello world", { addBos: false, addEos: true }), [15043, 3186, 2]);
  assert.deepEqual(tok.encode(""), [1]);
  assert.deepEqual(tok.encode("", { addBos: false }), []);
  assert.equal(tok.bosId, 1);
  assert.equal(tok.eosId, 2);
  assert.equal(tok.unkId, 0);
  assert.equal(tok.vocabSize, 32000);
  assert.equal(tok.splitsWords, true);
});

Deno.test("llama2: decode round-trips text", () => {
  const tok = Tokenizer.llama2(FULL);
  for (const text of VARIED_TEXT.split("\n").filter((t) => !/[\[<▁]/.test(t))) {
    assert.equal(tok.decode(tok.encode(text)), text);
  }
  // As in HF: the text after an added token is normalized on its own, so it gets a dummy-prefix "▁" too.
  assert.deepEqual(tok.encode("[bib]x", { addBos: false }), [32004, 921]);
  assert.equal(tok.decode([32004, 921]), "[bib] x");
  assert.equal(tok.decode([1, 15043, 3186], { skipSpecialTokens: false }), "<s> Hello world");
  assert.throws(() => tok.decode([99999]), RangeError);
});

Deno.test("llama2: byte fallback for characters outside the vocabulary", () => {
  const tok = Tokenizer.llama2();
  assert.equal(tok.tokenToId("🦙"), undefined);
  assert.deepEqual(tok.encode("🦙", { addBos: false }), [29871, 243, 162, 169, 156]); // ▁ <0xF0><0x9F><0xA6><0x99>
  assert.equal(tok.idToToken(243), "<0xF0>");
  assert.equal(tok.decode([29871, 243, 162, 169, 156]), "🦙");
  assert.equal(tok.decode([243, 162]), "\ufffd\ufffd"); // truncated UTF-8: one U+FFFD per byte, as HF
});

Deno.test("llama2: added tokens on and off", () => {
  const plain = Tokenizer.llama2();
  const brackets = Tokenizer.llama2({ bracketTokens: true });
  const chat = Tokenizer.llama2({ chatTokens: true });
  const full = Tokenizer.llama2(FULL);
  assert.equal(brackets.vocabSize, 32012);
  assert.equal(chat.vocabSize, 32002);
  assert.equal(full.vocabSize, 32014);
  MEDITRON_BRACKET_TOKENS.forEach((t, i) => assert.equal(full.tokenToId(t), 32000 + i));
  CHAT_TOKENS.forEach((t, i) => {
    assert.equal(full.tokenToId(t), 32012 + i);
    assert.equal(chat.tokenToId(t), 32000 + i);
    assert.equal(brackets.tokenToId(t), undefined);
  });
  assert.deepEqual(brackets.encode("[bib]x", { addBos: false }), [32004, 921]);
  assert.ok(plain.encode("[bib]x", { addBos: false }).length > 2);
  assert.equal(plain.tokenToId("[bib]"), undefined);
  assert.deepEqual(chat.encode("<|im_start|>hi<|im_end|>", { addBos: false }), [32000, 7251, 32001]);
  assert.equal(full.decode(full.encode("[fig]<|im_end|>")), "[fig]"); // chat tokens are special
});

Deno.test("llama2: parity with HF tokenizers on a varied text", async () => {
  const { ours, oracle } = await llama();
  await assertParity(ours, oracle, [VARIED_TEXT, ...VARIED_TEXT.split("\n")]);
  for (const options of [{}, { bracketTokens: true }, { chatTokens: true }]) {
    const other = await pair(llama2TokenizerJson(options));
    await assertParity(other.ours, other.oracle, [VARIED_TEXT]);
  }
});

Deno.test("llama2: parity with HF tokenizers on 4000 random strings", async () => {
  const { ours, oracle } = await llama();
  await assertParity(ours, oracle, randomTexts(20240607, 4000, PIECES));
});

Deno.test("llama2: parity on a long document (word splitting vs whole-text BPE)", async () => {
  const { ours, oracle } = await llama();
  const document = randomTexts(7, 3000, PIECES.slice(0, 7)).join(" ");
  await assertParity(ours, oracle, [document]);
});

// ---------------------------------------------------------------------------------------------------------
// A small hand-built BPE tokenizer.json exercising the HF features Llama-2 does not use
// ---------------------------------------------------------------------------------------------------------

function added(id: number, content: string, flags: Partial<HFAddedToken> = {}): HFAddedToken {
  const base = { single_word: false, lstrip: false, rstrip: false, normalized: false, special: false };
  return { id, content, ...base, ...flags };
}

/** Vocab: specials, (optionally) the 256 byte tokens, some characters, and the results of `merges`. */
function customJson(options: {
  byteFallback: boolean;
  merges: [string, string][];
  legacyMerges?: boolean;
  ignoreMerges?: boolean;
  extraTokens?: string[];
  metaspace?: { prepend_scheme: "first" | "always" | "never"; split: boolean };
}): HFTokenizerJson {
  const tokens = ["<unk>", "<s>", "</s>"];
  if (options.byteFallback) {
    for (let b = 0; b < 256; b++) tokens.push(`<0x${b.toString(16).toUpperCase().padStart(2, "0")}>`);
  }
  tokens.push(..."▁abcdehlotxyé中".split(""));
  for (const [a, b] of options.merges) if (!tokens.includes(a + b)) tokens.push(a + b);
  tokens.push(...options.extraTokens ?? []);
  const next = tokens.length;
  const normalizer = {
    type: "Sequence" as const,
    normalizers: [
      { type: "Prepend" as const, prepend: "▁" },
      { type: "Replace" as const, pattern: { String: " " }, content: "▁" },
    ],
  };
  return {
    added_tokens: [
      added(0, "<unk>", { special: true }),
      added(1, "<s>", { special: true }),
      added(2, "</s>", { special: true }),
      added(next, "<mask>", { lstrip: true, special: true }),
      added(next + 1, "cat", { rstrip: true }),
      added(next + 2, "yo", { single_word: true }),
      added(next + 3, "hey", { normalized: true }),
    ],
    normalizer: options.metaspace ? null : normalizer,
    pre_tokenizer: options.metaspace ? { type: "Metaspace", replacement: "▁", ...options.metaspace } : null,
    decoder: options.metaspace ? { type: "Metaspace", replacement: "▁", ...options.metaspace } : {
      type: "Sequence",
      decoders: [
        { type: "Replace", pattern: { String: "▁" }, content: " " },
        { type: "ByteFallback" },
        { type: "Fuse" },
        { type: "Strip", content: " ", start: 1, stop: 0 },
      ],
    },
    model: {
      type: "BPE",
      unk_token: "<unk>",
      fuse_unk: true,
      byte_fallback: options.byteFallback,
      ignore_merges: options.ignoreMerges ?? false,
      vocab: Object.fromEntries(tokens.map((t, i) => [t, i])),
      merges: options.legacyMerges ? options.merges.map(([a, b]) => `${a} ${b}`) : options.merges,
    },
  };
}

const CUSTOM_MERGES: [string, string][] = [
  ["▁", "t"],
  ["h", "e"],
  ["▁t", "he"],
  ["b", "c"],
  ["a", "b"],
  ["ab", "c"],
  ["a", "bc"],
  ["▁", "▁"],
  ["▁▁", "▁▁"],
  ["▁", "a"],
  ["l", "o"],
  ["lo", "l"],
  ["x", "x"],
  ["xx", "x"],
];

const CUSTOM_PIECES: string[][] = [
  ["a", "b", "c", "abc", "the", "lol", "xxx", "x", "hello", "é", "中", "q", "Z", "🦙"],
  [" ", "  ", "    ", "\n"],
  ["<mask>", "cat", "yo", "hey", "<s>", "</s>"],
];

Deno.test("custom tokenizer.json: parity with HF (pairs, legacy merges, unk, byte fallback)", async () => {
  const fixed = [
    "",
    "the cat  sat",
    "abc abcabc  bca",
    "yo yoyo yo! hey they",
    " <mask> x  <mask>",
    "qqZ 🦙 é中",
  ];
  for (const byteFallback of [true, false]) {
    for (const legacyMerges of [false, true]) {
      const { ours, oracle } = await pair(customJson({ byteFallback, legacyMerges, merges: CUSTOM_MERGES }));
      assert.equal(ours.splitsWords, true);
      await assertParity(ours, oracle, [...fixed, ...randomTexts(99, 500, CUSTOM_PIECES)]);
    }
  }
});

Deno.test("custom tokenizer.json: a merge across a word start falls back to whole-text BPE", async () => {
  const merges: [string, string][] = [...CUSTOM_MERGES, ["x", "▁"], ["x▁", "a"], ["c", "▁▁"]];
  const { ours, oracle } = await pair(customJson({ byteFallback: true, merges }));
  assert.equal(ours.splitsWords, false);
  await assertParity(ours, oracle, ["x a xx a abc  abc", ...randomTexts(5, 500, CUSTOM_PIECES)]);
});

Deno.test("custom tokenizer.json: ignore_merges looks whole pieces up first", async () => {
  const extraTokens = ["▁cab", "▁xxx▁x", "▁▁▁"];
  const json = customJson({ byteFallback: true, merges: CUSTOM_MERGES, ignoreMerges: true, extraTokens });
  const { ours, oracle } = await pair(json);
  assert.deepEqual(ours.encode("xxx x", { addBos: false }), [ours.tokenToId("▁xxx▁x")]);
  await assertParity(ours, oracle, ["cab", "xxx x", "  ", "cab cab", ...randomTexts(3, 300, CUSTOM_PIECES)]);
});

Deno.test("custom tokenizer.json: Metaspace pre-tokenizer and decoder", async () => {
  for (const prepend_scheme of ["first", "always", "never"] as const) {
    for (const split of [false, true]) {
      const json = customJson({
        byteFallback: true,
        merges: CUSTOM_MERGES,
        metaspace: { prepend_scheme, split },
      });
      const { ours, oracle } = await pair(json);
      await assertParity(ours, oracle, [
        "the  cat",
        " abc",
        "<s>abc",
        ...randomTexts(11, 300, CUSTOM_PIECES),
      ]);
    }
  }
});

Deno.test("tokenizer_worker: encodes off the main thread", async () => {
  const worker = new Worker(new URL("../../data/tokenizer_worker.ts", import.meta.url), { type: "module" });
  const reply = (message: unknown) =>
    new Promise<unknown>((resolve) => {
      worker.onmessage = (e) => resolve(e.data);
      worker.postMessage(message);
    });
  try {
    assert.deepEqual(await reply({ llama2: { bracketTokens: true } }), { ready: true });
    const result = await reply({ texts: ["Hello world", "[bib]x"], options: { addBos: false } });
    assert.deepEqual(result, { ids: Int32Array.of(15043, 3186, 32004, 921), lengths: Int32Array.of(2, 2) });
  } finally {
    worker.terminate();
  }
});

Deno.test("malformed tokenizer.json: errors name the field", async () => {
  const good = customJson({ byteFallback: false, merges: CUSTOM_MERGES });
  const cases: [unknown, RegExp][] = [
    [{}, /missing field "model"/],
    [{ ...good, model: { ...good.model, vocab: undefined } }, /missing field "model\.vocab"/],
    [{ ...good, model: { ...good.model, merges: undefined } }, /missing field "model\.merges"/],
    [{ ...good, model: { ...good.model, type: "WordPiece" } }, /model\.type/],
    [{ ...good, model: { ...good.model, merges: [["a", "zz"]] } }, /"model\.merges\[0\]".*"zz" not in vocab/],
    [{ ...good, model: { ...good.model, merges: ["a b c"] } }, /"model\.merges\[0\]"/],
    [{ ...good, model: { ...good.model, vocab: { a: "0" } } }, /"model\.vocab\["a"\]"/],
    [{ ...good, model: { ...good.model, unk_token: "<oov>" } }, /"model\.unk_token"/],
    [{ ...good, added_tokens: [{ id: 0 }] }, /missing field "added_tokens\[0\]\.content"/],
    [{ ...good, added_tokens: [added(999, "<unk>")] }, /"added_tokens\[0\]\.id" is 999/],
    [{ ...good, normalizer: { type: "NFKC" } }, /normalizer\.type/],
    [
      { ...good, normalizer: { type: "Sequence", normalizers: [{ type: "Prepend" }] } },
      /"normalizer\.normalizers\[0\]\.prepend"/,
    ],
    [{ ...good, decoder: { type: "Replace", pattern: { Regex: "x" }, content: "" } }, /decoder\.pattern/],
  ];
  for (const [json, message] of cases) {
    assert.throws(
      () => Tokenizer.fromHFJson(json),
      (e: unknown) => e instanceof TokenizerJsonError && message.test(e.message),
    );
  }
  const dir = await Deno.makeTempDir({ prefix: "tokenizer_test_" });
  await Deno.writeTextFile(`${dir}/tokenizer.json`, "{ not json");
  await assert.rejects(Tokenizer.fromFile(`${dir}/tokenizer.json`), TokenizerJsonError);
  await Deno.remove(dir, { recursive: true });
});
