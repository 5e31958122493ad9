/**
 * The exact Llama-2 tokenizer in pure TypeScript: SentencePiece-BPE semantics, id for id what Hugging Face
 * `tokenizers` produces with the Llama-2 `tokenizer.json`, plus loading of any HF `tokenizer.json` whose
 * model is BPE (Mistral-style or extended vocabularies).
 *
 * Pipeline of {@linkcode Tokenizer.encode}, mirroring HF: added tokens are cut out of the raw text whole;
 * each remaining segment is normalized on its own (for Llama-2: prepend "▁", spaces → "▁"), then optionally
 * pre-tokenized (Metaspace), then run through BPE (merges applied lowest rank first, leftmost first on ties;
 * characters outside the vocabulary fall back to `<0xNN>` byte tokens).
 *
 * @example
 * ```ts
 * import { Tokenizer } from "./tokenizer.ts";
 * const tok = Tokenizer.llama2();
 * tok.encode("Hello world"); // [1, 15043, 3186]
 * tok.decode([1, 15043, 3186]); // "Hello world"
 * ```
 * @module
 */
import llamaTokenizerJs from "llama-tokenizer-js";

// ---------------------------------------------------------------------------------------------------------
// HF tokenizer.json shapes (the subset this module reads and writes)
// ---------------------------------------------------------------------------------------------------------

/**
 * One entry of `added_tokens` in an HF `tokenizer.json`.
 *
 * @example
 * ```ts
 * import type { HFAddedToken } from "./tokenizer.ts";
 * const t: HFAddedToken = {
 *   id: 1, content: "<s>", single_word: false, lstrip: false, rstrip: false, normalized: false, special: true,
 * };
 * ```
 */
export interface HFAddedToken {
  /** Its id (HF reassigns: the model's id if the content is in the vocab, else the next free one). */
  id: number;
  /** The exact text matched in the input. */
  content: string;
  /** Match only when not inside a word. */
  single_word: boolean;
  /** Swallow the whitespace on its left. */
  lstrip: boolean;
  /** Swallow the whitespace on its right. */
  rstrip: boolean;
  /** Match in the normalized text (its content normalized too) instead of the raw input. */
  normalized: boolean;
  /** Dropped by `decode` when skipping special tokens. */
  special: boolean;
}

/**
 * A literal-string pattern, as HF serializes `Replace` patterns.
 *
 * @example
 * ```ts
 * import type { HFStringPattern } from "./tokenizer.ts";
 * const p: HFStringPattern = { String: " " };
 * ```
 */
export interface HFStringPattern {
  /** The literal string. */
  String: string;
}

/**
 * The normalizers this module supports.
 *
 * @example
 * ```ts
 * import type { HFNormalizer } from "./tokenizer.ts";
 * const n: HFNormalizer = { type: "Sequence", normalizers: [{ type: "Prepend", prepend: "▁" }] };
 * ```
 */
export type HFNormalizer =
  | { type: "Sequence"; normalizers: HFNormalizer[] }
  | { type: "Prepend"; prepend: string }
  | { type: "Replace"; pattern: HFStringPattern; content: string };

/**
 * The Metaspace pre-tokenizer (and decoder) of newer Llama/Mistral exports.
 *
 * @example
 * ```ts
 * import type { HFMetaspace } from "./tokenizer.ts";
 * const m: HFMetaspace = { type: "Metaspace", replacement: "▁", prepend_scheme: "first", split: false };
 * ```
 */
export interface HFMetaspace {
  /** Discriminant. */
  type: "Metaspace";
  /** The character spaces become (and that is prepended), normally "▁". */
  replacement: string;
  /** When to prepend it: always, only at the input's start, or never (default `"always"`). */
  prepend_scheme?: "first" | "never" | "always";
  /** Split before every replacement character (default `true`). */
  split?: boolean;
  /** Legacy form of `prepend_scheme`: `false` means `"never"`. */
  add_prefix_space?: boolean;
}

/**
 * The decoders this module supports.
 *
 * @example
 * ```ts
 * import type { HFDecoder } from "./tokenizer.ts";
 * const d: HFDecoder = { type: "Sequence", decoders: [{ type: "ByteFallback" }, { type: "Fuse" }] };
 * ```
 */
export type HFDecoder =
  | { type: "Sequence"; decoders: HFDecoder[] }
  | { type: "Replace"; pattern: HFStringPattern; content: string }
  | { type: "ByteFallback" }
  | { type: "Fuse" }
  | { type: "Strip"; content: string; start: number; stop: number }
  | HFMetaspace;

/**
 * The BPE model section of an HF `tokenizer.json`. Merges are "a b" strings (legacy) or `[a, b]` pairs.
 *
 * @example
 * ```ts
 * import type { HFBpeModel } from "./tokenizer.ts";
 * const m: HFBpeModel = { type: "BPE", vocab: { a: 0, b: 1, ab: 2 }, merges: [["a", "b"]] };
 * ```
 */
export interface HFBpeModel {
  /** Discriminant: only BPE models are supported. */
  type: "BPE";
  /** Must be null or 0 (no BPE dropout). */
  dropout?: number | null;
  /** Token for characters neither in the vocabulary nor covered by byte fallback. */
  unk_token?: string | null;
  /** Must be null or empty (unsupported). */
  continuing_subword_prefix?: string | null;
  /** Must be null or empty (unsupported). */
  end_of_word_suffix?: string | null;
  /** Fuse consecutive unknown characters into one unk token. */
  fuse_unk?: boolean;
  /** Encode characters outside the vocabulary as `<0xNN>` byte tokens. */
  byte_fallback?: boolean;
  /** Emit a whole pre-tokenized piece as one token when it is in the vocabulary. */
  ignore_merges?: boolean;
  /** Token → id. */
  vocab: Record<string, number>;
  /** Merges in rank order (first = applied first). */
  merges: (string | [string, string])[];
}

/**
 * An HF `tokenizer.json` document (fields this module reads; `post_processor` is kept opaque).
 *
 * @example
 * ```ts
 * import type { HFTokenizerJson } from "./tokenizer.ts";
 * const j: HFTokenizerJson = { model: { type: "BPE", vocab: { a: 0 }, merges: [] } };
 * ```
 */
export interface HFTokenizerJson {
  /** Format version ("1.0"). */
  version?: string;
  /** Not interpreted. */
  truncation?: null;
  /** Not interpreted. */
  padding?: null;
  /** Tokens matched whole in the input before BPE. */
  added_tokens?: HFAddedToken[];
  /** Applied to each segment between added tokens. */
  normalizer?: HFNormalizer | null;
  /** Null (Llama-2 legacy) or Metaspace. */
  pre_tokenizer?: HFMetaspace | null;
  /** Null or a `TemplateProcessing` of the form `[special] $A [special]` (gives the BOS/EOS defaults). */
  post_processor?: Record<string, unknown> | null;
  /** How `decode` turns tokens into text. */
  decoder?: HFDecoder | null;
  /** The BPE model. */
  model: HFBpeModel;
}

/**
 * Thrown for a malformed or unsupported `tokenizer.json`; the message names the offending field.
 *
 * @example
 * ```ts
 * import { Tokenizer, TokenizerJsonError } from "./tokenizer.ts";
 * try { Tokenizer.fromHFJson({}); } catch (e) { console.log(e instanceof TokenizerJsonError); } // true
 * ```
 */
export class TokenizerJsonError extends Error {
  /** Creates the error; `message` says what is wrong, naming the field. */
  constructor(message: string) {
    super(`tokenizer.json: ${message}`);
    this.name = "TokenizerJsonError";
  }
}

// ---------------------------------------------------------------------------------------------------------
// Llama-2 data (vocabulary and merges shipped by npm `llama-tokenizer-js`) and its tokenizer.json
// ---------------------------------------------------------------------------------------------------------

/** The SentencePiece word-boundary marker. */
const META = "▁";
const META_CODE = 0x2581;

/**
 * Meditron's 12 bracket tokens, appended after the Llama-2 vocabulary (ids 32000..32011) when enabled.
 *
 * @example
 * ```ts
 * import { MEDITRON_BRACKET_TOKENS } from "./tokenizer.ts";
 * MEDITRON_BRACKET_TOKENS[0]; // "[bib_ref]"
 * ```
 */
export const MEDITRON_BRACKET_TOKENS: readonly string[] = [
  "[bib_ref]",
  "[/bib_ref]",
  "[fig_ref]",
  "[/fig_ref]",
  "[bib]",
  "[/bib]",
  "[fig]",
  "[/fig]",
  "[table]",
  "[/table]",
  "[formula]",
  "[/formula]",
];

/**
 * The ChatML tokens, appended after the bracket tokens (or right after 32000 without them) when enabled.
 *
 * @example
 * ```ts
 * import { CHAT_TOKENS } from "./tokenizer.ts";
 * CHAT_TOKENS; // ["<|im_start|>", "<|im_end|>"]
 * ```
 */
export const CHAT_TOKENS: readonly string[] = ["<|im_start|>", "<|im_end|>"];

/**
 * Which added tokens the Llama-2 tokenizer carries. Both default to `false` (plain Llama-2, 32000 ids).
 *
 * @example
 * ```ts
 * import { Tokenizer, type Llama2Options } from "./tokenizer.ts";
 * const opts: Llama2Options = { bracketTokens: true, chatTokens: true };
 * Tokenizer.llama2(opts).vocabSize; // 32014
 * ```
 */
export interface Llama2Options {
  /** Append {@linkcode MEDITRON_BRACKET_TOKENS} (not special: kept by `decode`). */
  bracketTokens?: boolean;
  /** Append {@linkcode CHAT_TOKENS} (special: dropped by `decode` unless asked to keep them). */
  chatTokens?: boolean;
}

interface Llama2Data {
  vocab: readonly string[];
  merges: readonly [string, string][];
}

let llama2DataCache: Llama2Data | undefined;

/** Reads the vocabulary (index = id) and the merges (in rank order) that `llama-tokenizer-js` decoded. */
function llama2Data(): Llama2Data {
  if (llama2DataCache) return llama2DataCache;
  const vocab = llamaTokenizerJs.vocabById;
  const ranked = [...llamaTokenizerJs.merges.entries()].sort((x, y) => x[1] - y[1]);
  const merges = ranked.map(([key]): [string, string] => {
    const parts = key.split(" ");
    if (parts.length !== 2) throw new Error(`llama-tokenizer-js: ambiguous merge "${key}"`);
    return [parts[0], parts[1]];
  });
  if (vocab.length !== 32000 || vocab[278] !== "▁the") {
    throw new Error("llama-tokenizer-js: unexpected vocabulary");
  }
  llama2DataCache = { vocab, merges };
  return llama2DataCache;
}

function addedToken(id: number, content: string, special: boolean): HFAddedToken {
  return { id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special };
}

/**
 * Builds the HF `tokenizer.json` of Llama-2 (as in `meta-llama/Llama-2-7b-hf`), with the requested added
 * tokens appended after id 31999. Serialize it with `JSON.stringify` to get a file HF tools load.
 *
 * @example
 * ```ts
 * import { llama2TokenizerJson } from "./tokenizer.ts";
 * const json = llama2TokenizerJson({ chatTokens: true });
 * json.added_tokens?.at(-1)?.id; // 32001
 * Deno.writeTextFileSync("/tmp/tokenizer.json", JSON.stringify(json));
 * ```
 */
export function llama2TokenizerJson(options: Llama2Options = {}): HFTokenizerJson {
  const { vocab, merges } = llama2Data();
  const extra = [
    ...(options.bracketTokens ? MEDITRON_BRACKET_TOKENS.map((t) => ({ content: t, special: false })) : []),
    ...(options.chatTokens ? CHAT_TOKENS.map((t) => ({ content: t, special: true })) : []),
  ];
  return {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: [
      addedToken(0, "<unk>", true),
      addedToken(1, "<s>", true),
      addedToken(2, "</s>", true),
      ...extra.map((t, i) => addedToken(vocab.length + i, t.content, t.special)),
    ],
    normalizer: {
      type: "Sequence",
      normalizers: [
        { type: "Prepend", prepend: META },
        { type: "Replace", pattern: { String: " " }, content: META },
      ],
    },
    pre_tokenizer: null,
    post_processor: {
      type: "TemplateProcessing",
      single: [{ SpecialToken: { id: "<s>", type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } }],
      pair: [
        { SpecialToken: { id: "<s>", type_id: 0 } },
        { Sequence: { id: "A", type_id: 0 } },
        { SpecialToken: { id: "<s>", type_id: 1 } },
        { Sequence: { id: "B", type_id: 1 } },
      ],
      special_tokens: { "<s>": { id: "<s>", ids: [1], tokens: ["<s>"] } },
    },
    decoder: {
      type: "Sequence",
      decoders: [
        { type: "Replace", pattern: { String: META }, content: " " },
        { type: "ByteFallback" },
        { type: "Fuse" },
        { type: "Strip", content: " ", start: 1, stop: 0 },
      ],
    },
    model: {
      type: "BPE",
      dropout: null,
      unk_token: "<unk>",
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: true,
      byte_fallback: true,
      ignore_merges: false,
      vocab: Object.fromEntries(vocab.map((token, id) => [token, id])),
      merges: merges.map(([a, b]): [string, string] => [a, b]),
    },
  };
}

// ---------------------------------------------------------------------------------------------------------
// Validation of an untrusted tokenizer.json
// ---------------------------------------------------------------------------------------------------------

type JsonObject = Record<string, unknown>;

function isObject(v: unknown): v is JsonObject {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function asObject(v: unknown, path: string): JsonObject {
  if (!isObject(v)) throw new TokenizerJsonError(`field "${path}" must be an object`);
  return v;
}

function required(o: JsonObject, key: string, path: string): unknown {
  if (!Object.hasOwn(o, key) || o[key] === undefined) {
    throw new TokenizerJsonError(`missing field "${path}${key}"`);
  }
  return o[key];
}

function asString(v: unknown, path: string): string {
  if (typeof v !== "string") throw new TokenizerJsonError(`field "${path}" must be a string`);
  return v;
}

function asBool(v: unknown, fallback: boolean, path: string): boolean {
  if (v === undefined || v === null) return fallback;
  if (typeof v !== "boolean") throw new TokenizerJsonError(`field "${path}" must be a boolean`);
  return v;
}

function isId(v: unknown): v is number {
  return Number.isInteger(v) && (v as number) >= 0;
}

function asId(v: unknown, path: string): number {
  if (!isId(v)) throw new TokenizerJsonError(`field "${path}" must be a non-negative integer`);
  return v;
}

function asArray(v: unknown, path: string): unknown[] {
  if (!Array.isArray(v)) throw new TokenizerJsonError(`field "${path}" must be an array`);
  return v;
}

function unsupported(path: string, what: unknown): never {
  throw new TokenizerJsonError(`unsupported ${path}: ${JSON.stringify(what)}`);
}

function stringPattern(o: JsonObject, path: string): string {
  const pattern = asObject(required(o, "pattern", path), `${path}pattern`);
  if (!("String" in pattern)) unsupported(`${path}pattern (only String patterns)`, pattern);
  return asString(pattern.String, `${path}pattern.String`);
}

// ---------------------------------------------------------------------------------------------------------
// BPE model: merge table, initial symbols with byte fallback, priority-queue merging, word cache
// ---------------------------------------------------------------------------------------------------------

/** Open-addressing hash map from a pair of token ids to (merge rank, merged token id). */
class MergeTable {
  private readonly left: Int32Array;
  private readonly right: Int32Array;
  readonly rank: Int32Array;
  readonly result: Int32Array;
  private readonly mask: number;

  constructor(count: number) {
    let size = 16;
    while (size < count * 2) size *= 2;
    this.left = new Int32Array(size).fill(-1);
    this.right = new Int32Array(size);
    this.rank = new Int32Array(size);
    this.result = new Int32Array(size);
    this.mask = size - 1;
  }

  private home(a: number, b: number): number {
    const h = Math.imul(a, 0x9e3779b1) ^ Math.imul(b + 0x7f4a7c15, 0x85ebca6b);
    return (h ^ (h >>> 15)) & this.mask;
  }

  /** Inserts or overwrites (a later duplicate merge wins, as in HF). */
  set(a: number, b: number, rank: number, result: number): void {
    let slot = this.home(a, b);
    while (this.left[slot] !== -1 && (this.left[slot] !== a || this.right[slot] !== b)) {
      slot = (slot + 1) & this.mask;
    }
    this.left[slot] = a;
    this.right[slot] = b;
    this.rank[slot] = rank;
    this.result[slot] = result;
  }

  /** The slot of pair (a, b), or -1. */
  find(a: number, b: number): number {
    let slot = this.home(a, b);
    for (;;) {
      const l = this.left[slot];
      if (l === -1) return -1;
      if (l === a && this.right[slot] === b) return slot;
      slot = (slot + 1) & this.mask;
    }
  }
}

/** Heap keys pack (rank, position) so that ordering them orders by rank, then by position. */
const POSITION_SPAN = 2 ** 27;
const DEAD = -1;
const UNRESOLVED = -2;
const WORD_CACHE_MAX_LENGTH = 256;
const FNV_OFFSET = 0x811c9dc5;
const FNV_PRIME = 0x01000193;

/**
 * Word → ids cache keyed by a range of a larger string and its FNV-1a hash of UTF-16 units: lookups neither
 * slice the input nor hash it twice, and keys are copied (a slice would keep the whole document alive).
 * Open addressing over dense entry arrays; cleared when half full, like a bounded cache that never evicts singly.
 */
class WordCache {
  private readonly slots = new Int32Array(1 << 18).fill(-1);
  private readonly mask = (1 << 18) - 1;
  private readonly hashes: number[] = [];
  private readonly keys: Uint16Array[] = [];
  private readonly values: Int32Array[] = [];

  /** The cached ids of `s[start, end)`, or `undefined`. */
  get(s: string, start: number, end: number, hash: number): Int32Array | undefined {
    for (let slot = hash & this.mask;; slot = (slot + 1) & this.mask) {
      const entry = this.slots[slot];
      if (entry === -1) return undefined;
      const key = this.keys[entry];
      if (this.hashes[entry] === hash && key.length === end - start && sameUnits(key, s, start)) {
        return this.values[entry];
      }
    }
  }

  set(s: string, start: number, end: number, hash: number, ids: Int32Array): void {
    if (this.keys.length >= this.slots.length / 2) this.clear();
    let slot = hash & this.mask;
    while (this.slots[slot] !== -1) slot = (slot + 1) & this.mask;
    const key = new Uint16Array(end - start);
    for (let j = 0; j < key.length; j++) key[j] = s.charCodeAt(start + j);
    this.slots[slot] = this.keys.length;
    this.hashes.push(hash);
    this.keys.push(key);
    this.values.push(ids);
  }

  private clear(): void {
    this.slots.fill(-1);
    this.hashes.length = this.keys.length = this.values.length = 0;
  }
}

function sameUnits(key: Uint16Array, s: string, start: number): boolean {
  for (let j = 0; j < key.length; j++) if (key[j] !== s.charCodeAt(start + j)) return false;
  return true;
}

interface BpeConfig {
  vocab: Map<string, number>;
  /** In rank order; `text` is the merged token's string. */
  merges: { a: number; b: number; result: number; text: string }[];
  unkToken: string | null;
  byteFallback: boolean;
  fuseUnk: boolean;
  ignoreMerges: boolean;
}

function utf8Bytes(cp: number, out: number[]): void {
  if (cp < 0x80) out.push(cp);
  else if (cp < 0x800) out.push(0xc0 | (cp >> 6), 0x80 | (cp & 63));
  else if (cp < 0x10000) out.push(0xe0 | (cp >> 12), 0x80 | ((cp >> 6) & 63), 0x80 | (cp & 63));
  else out.push(0xf0 | (cp >> 18), 0x80 | ((cp >> 12) & 63), 0x80 | ((cp >> 6) & 63), 0x80 | (cp & 63));
}

/** Whether splitting before every "▁" that follows a non-"▁" character provably leaves BPE unchanged. */
function metaBoundariesAreSafe(config: BpeConfig): boolean {
  if (!config.vocab.has(META) || config.unkToken?.endsWith(META)) return false;
  const spansBoundary = /[^\u2581]\u2581/;
  return config.merges.every((m) => !spansBoundary.test(m.text));
}

/**
 * The BPE model of HF `tokenizers` (no dropout, no subword prefix/suffix). A symbol spanning a "c▁"
 * boundary (c ≠ "▁") could only come from a merge whose result contains "c▁"; when no merge does, such
 * boundaries never merge, both sides evolve independently, and each word is merged (and cached) alone.
 */
class BpeModel {
  readonly vocab: Map<string, number>;
  readonly tokens: string[];
  readonly unkId: number;
  readonly splitsAtMeta: boolean;
  private readonly merges: MergeTable;
  private readonly byteIds: Int32Array;
  private readonly byteFallback: boolean;
  private readonly fuseUnk: boolean;
  private readonly ignoreMerges: boolean;
  private readonly bmpIds = new Int32Array(0x10000).fill(UNRESOLVED);
  private readonly astralIds = new Map<number, number>();
  private readonly cache = new WordCache();
  private sym = new Int32Array(64);
  private prev = new Int32Array(64);
  private next = new Int32Array(64);
  private heap = new Float64Array(192);
  private readonly bytes: number[] = [];

  constructor(config: BpeConfig) {
    this.vocab = config.vocab;
    this.tokens = [];
    for (const [token, id] of config.vocab) this.tokens[id] = token;
    this.unkId = config.unkToken === null ? -1 : config.vocab.get(config.unkToken)!;
    this.byteFallback = config.byteFallback;
    this.fuseUnk = config.fuseUnk;
    this.ignoreMerges = config.ignoreMerges;
    this.merges = new MergeTable(config.merges.length);
    config.merges.forEach((m, rank) => this.merges.set(m.a, m.b, rank, m.result));
    this.byteIds = new Int32Array(256).map((_, b) => {
      return config.vocab.get(`<0x${b.toString(16).toUpperCase().padStart(2, "0")}>`) ?? -1;
    });
    this.splitsAtMeta = metaBoundariesAreSafe(config);
  }

  /** Appends the ids of one pre-tokenized piece to `out`. */
  tokenize(piece: string, out: number[]): void {
    if (piece.length === 0) return;
    if (this.ignoreMerges) {
      const whole = this.vocab.get(piece);
      if (whole !== undefined) {
        out.push(whole);
        return;
      }
    }
    let start = 0;
    let hash = FNV_OFFSET;
    for (let i = 0; i < piece.length; i++) {
      const unit = piece.charCodeAt(i);
      if (this.splitsAtMeta && unit === META_CODE && i > start && piece.charCodeAt(i - 1) !== META_CODE) {
        this.tokenizeWord(piece, start, i, hash, out);
        start = i;
        hash = FNV_OFFSET;
      }
      hash = Math.imul(hash ^ unit, FNV_PRIME);
    }
    this.tokenizeWord(piece, start, piece.length, hash, out);
  }

  /** BPE of the word `s[start, end)` (whose hash is given), through the cache when it is short. */
  private tokenizeWord(s: string, start: number, end: number, hash: number, out: number[]): void {
    const cacheable = end - start < WORD_CACHE_MAX_LENGTH;
    const hit = cacheable ? this.cache.get(s, start, end, hash) : undefined;
    if (hit) {
      for (let i = 0; i < hit.length; i++) out.push(hit[i]);
      return;
    }
    const first = out.length;
    this.mergeAll(this.initialSymbols(s, start, end), out);
    if (cacheable) this.cache.set(s, start, end, hash, Int32Array.from(out.slice(first)));
  }

  private charId(cp: number): number {
    if (cp < 0x10000) {
      const known = this.bmpIds[cp];
      if (known !== UNRESOLVED) return known;
      return (this.bmpIds[cp] = this.vocab.get(String.fromCharCode(cp)) ?? -1);
    }
    let id = this.astralIds.get(cp);
    if (id === undefined) this.astralIds.set(cp, id = this.vocab.get(String.fromCodePoint(cp)) ?? -1);
    return id;
  }

  private ensureCapacity(n: number): void {
    if (this.sym.length >= n) return;
    const size = Math.max(n, this.sym.length * 2);
    const grown = new Int32Array(size);
    grown.set(this.sym);
    this.sym = grown;
    this.prev = new Int32Array(size);
    this.next = new Int32Array(size);
    this.heap = new Float64Array(size * 3);
  }

  /** Byte-fallback ids of one character into `sym` at `n`; returns the new count, or -1 if a byte is missing. */
  private pushBytes(cp: number, n: number): number {
    const bytes = this.bytes;
    bytes.length = 0;
    utf8Bytes(cp, bytes);
    for (const b of bytes) if (this.byteIds[b] < 0) return -1;
    this.ensureCapacity(n + bytes.length);
    for (const b of bytes) this.sym[n++] = this.byteIds[b];
    return n;
  }

  private pushSymbol(id: number, n: number): number {
    this.ensureCapacity(n + 1);
    this.sym[n] = id;
    return n + 1;
  }

  /** HF `merge_word` before merging: one symbol per character, byte fallback, then (fused) unk. */
  private initialSymbols(s: string, start: number, end: number): number {
    let n = 0;
    let pendingUnk = false;
    for (let i = start; i < end;) {
      let cp = s.codePointAt(i)!;
      i += cp > 0xffff ? 2 : 1;
      if (cp >= 0xd800 && cp <= 0xdfff) cp = 0xfffd; // a lone surrogate reaches Rust as U+FFFD
      const id = this.charId(cp);
      if (id >= 0) {
        if (pendingUnk) n = this.pushSymbol(this.unkId, n);
        pendingUnk = false;
        n = this.pushSymbol(id, n);
        continue;
      }
      if (this.byteFallback) {
        const withBytes = this.pushBytes(cp, n);
        if (withBytes >= 0) {
          n = withBytes;
          continue;
        }
      }
      if (this.unkId < 0) continue; // HF drops the character when there is no unk token
      if (pendingUnk && !this.fuseUnk) n = this.pushSymbol(this.unkId, n);
      pendingUnk = true;
    }
    return pendingUnk ? this.pushSymbol(this.unkId, n) : n;
  }

  private heapPush(size: number, key: number): number {
    const heap = this.heap;
    let i = size;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (heap[parent] <= key) break;
      heap[i] = heap[parent];
      i = parent;
    }
    heap[i] = key;
    return size + 1;
  }

  /** Removes the minimum (read it at `heap[0]` before calling); returns the new size. */
  private heapPop(size: number): number {
    const heap = this.heap;
    const last = heap[--size];
    let i = 0;
    for (;;) {
      let child = 2 * i + 1;
      if (child >= size) break;
      if (child + 1 < size && heap[child + 1] < heap[child]) child++;
      if (heap[child] >= last) break;
      heap[i] = heap[child];
      i = child;
    }
    heap[i] = last;
    return size;
  }

  private queuePair(left: number, right: number, size: number): number {
    const slot = this.merges.find(this.sym[left], this.sym[right]);
    return slot < 0 ? size : this.heapPush(size, this.merges.rank[slot] * POSITION_SPAN + left);
  }

  /** HF `Word::merge_all`: repeatedly applies the lowest-(rank, position) valid merge; appends the result. */
  private mergeAll(n: number, out: number[]): void {
    if (n >= POSITION_SPAN) throw new RangeError(`word of ${n} symbols is too long for BPE`);
    const { sym, prev, next } = this;
    for (let i = 0; i < n; i++) {
      prev[i] = i - 1;
      next[i] = i + 1 < n ? i + 1 : -1;
    }
    let size = 0;
    for (let i = 0; i + 1 < n; i++) size = this.queuePair(i, i + 1, size);
    while (size > 0) {
      const key = this.heap[0];
      size = this.heapPop(size);
      const rank = Math.floor(key / POSITION_SPAN);
      const pos = key - rank * POSITION_SPAN;
      const right = next[pos];
      if (sym[pos] === DEAD || right === -1) continue;
      const slot = this.merges.find(sym[pos], sym[right]);
      if (slot < 0 || this.merges.rank[slot] !== rank) continue; // stale queue entry
      sym[pos] = this.merges.result[slot];
      sym[right] = DEAD;
      const after = next[right];
      next[pos] = after;
      if (after !== -1) prev[after] = pos;
      if (prev[pos] !== -1) size = this.queuePair(prev[pos], pos, size);
      if (after !== -1) size = this.queuePair(pos, after, size);
    }
    for (let i = n > 0 ? 0 : -1; i !== -1; i = next[i]) out.push(sym[i]);
  }
}

function parseBpeModel(value: unknown): BpeConfig {
  const model = asObject(value, "model");
  const type = required(model, "type", "model.");
  if (type !== "BPE") unsupported("model.type (only BPE)", type);
  if (model.dropout !== undefined && model.dropout !== null && model.dropout !== 0) {
    unsupported("model.dropout", model.dropout);
  }
  for (const key of ["continuing_subword_prefix", "end_of_word_suffix"]) {
    if (model[key] !== undefined && model[key] !== null && model[key] !== "") {
      unsupported(`model.${key}`, model[key]);
    }
  }
  const vocabJson = asObject(required(model, "vocab", "model."), "model.vocab");
  const vocab = new Map<string, number>();
  for (const [token, id] of Object.entries(vocabJson)) {
    vocab.set(token, isId(id) ? id : asId(id, `model.vocab[${JSON.stringify(token)}]`));
  }
  const merges = asArray(required(model, "merges", "model."), "model.merges")
    .filter((m) => !(typeof m === "string" && m.startsWith("#version"))) // as HF's legacy merges reader
    .map((m, i) => parseMerge(m, i, vocab));
  const unk = model.unk_token === undefined || model.unk_token === null
    ? null
    : asString(model.unk_token, "model.unk_token");
  if (unk !== null && !vocab.has(unk)) {
    throw new TokenizerJsonError(`field "model.unk_token": ${unk} not in vocab`);
  }
  return {
    vocab,
    merges,
    unkToken: unk,
    byteFallback: asBool(model.byte_fallback, false, "model.byte_fallback"),
    fuseUnk: asBool(model.fuse_unk, false, "model.fuse_unk"),
    ignoreMerges: asBool(model.ignore_merges, false, "model.ignore_merges"),
  };
}

/** One merge, "a b" or [a, b]; the error path is only built on failure (this runs for every merge). */
function parseMerge(m: unknown, index: number, vocab: Map<string, number>): BpeConfig["merges"][number] {
  const pair = typeof m === "string" ? m.split(" ") : m;
  const path = () => `model.merges[${index}]`;
  if (
    !Array.isArray(pair) || pair.length !== 2 || typeof pair[0] !== "string" || typeof pair[1] !== "string"
  ) {
    throw new TokenizerJsonError(`field "${path()}" must be "a b" or [a, b] (strings)`);
  }
  const idOf = (token: string): number => {
    const id = vocab.get(token);
    if (id === undefined) {
      throw new TokenizerJsonError(`field "${path()}": token ${JSON.stringify(token)} not in vocab`);
    }
    return id;
  };
  const text = pair[0] + pair[1];
  return { a: idOf(pair[0]), b: idOf(pair[1]), result: idOf(text), text };
}

// ---------------------------------------------------------------------------------------------------------
// Added tokens: matched whole (leftmost-longest) before normalization, or after it when `normalized`
// ---------------------------------------------------------------------------------------------------------

interface AddedTokenSpec {
  id: number;
  content: string;
  singleWord: boolean;
  lstrip: boolean;
  rstrip: boolean;
  normalized: boolean;
  special: boolean;
}

/** A piece of text between added tokens (`id` -1, to be tokenized) or one matched added token. */
interface Segment {
  text: string;
  start: number;
  id: number;
}

function isWhitespace(cp: number): boolean {
  return (cp >= 0x09 && cp <= 0x0d) || cp === 0x20 || cp === 0x85 || cp === 0xa0 || cp === 0x1680 ||
    (cp >= 0x2000 && cp <= 0x200a) || cp === 0x2028 || cp === 0x2029 || cp === 0x202f || cp === 0x205f ||
    cp === 0x3000;
}

/** Rust regex `\w` (Unicode). */
const WORD_CHAR = /^[\p{Alphabetic}\p{M}\p{Nd}\p{Pc}\p{Join_Control}]$/u;

function codePointBefore(text: string, i: number): number {
  const low = text.charCodeAt(i - 1);
  if (i >= 2 && low >= 0xdc00 && low <= 0xdfff) return text.codePointAt(i - 2)!;
  return low;
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\/-]/g, "\\$&");
}

/** HF `AddedVocabulary::find_matches` over one set of patterns. */
class AddedTokenSplitter {
  private readonly pattern: RegExp | null;
  private readonly byContent = new Map<string, AddedTokenSpec>();

  constructor(tokens: AddedTokenSpec[], patternOf: (t: AddedTokenSpec) => string) {
    for (const t of tokens) {
      const p = patternOf(t);
      if (p !== "" && !this.byContent.has(p)) this.byContent.set(p, t);
    }
    const alternatives = [...this.byContent.keys()].sort((x, y) => y.length - x.length).map(escapeRegExp);
    this.pattern = alternatives.length === 0 ? null : new RegExp(alternatives.join("|"), "gu");
  }

  split(text: string, base: number): Segment[] {
    if (this.pattern === null) return [{ text, start: base, id: -1 }];
    const segments: Segment[] = [];
    let offset = 0;
    this.pattern.lastIndex = 0;
    for (let m = this.pattern.exec(text); m !== null; m = this.pattern.exec(text)) {
      const token = this.byContent.get(m[0])!;
      let start = m.index;
      let stop = start + m[0].length;
      if (token.singleWord && !this.standsAlone(text, start, stop)) continue;
      if (token.lstrip) {
        while (start > offset && isWhitespace(codePointBefore(text, start))) start--;
      }
      if (token.rstrip) {
        while (stop < text.length && isWhitespace(text.charCodeAt(stop))) stop++;
      }
      if (offset < start) segments.push({ text: text.slice(offset, start), start: base + offset, id: -1 });
      segments.push({ text: text.slice(start, stop), start: base + start, id: token.id });
      offset = stop;
    }
    if (offset < text.length) segments.push({ text: text.slice(offset), start: base + offset, id: -1 });
    return segments;
  }

  private standsAlone(text: string, start: number, stop: number): boolean {
    const wordBefore = start > 0 && WORD_CHAR.test(String.fromCodePoint(codePointBefore(text, start)));
    const wordAfter = stop < text.length && WORD_CHAR.test(String.fromCodePoint(text.codePointAt(stop)!));
    return !wordBefore && !wordAfter;
  }
}

function parseAddedTokens(value: unknown, model: BpeModel): AddedTokenSpec[] {
  if (value === undefined || value === null) return [];
  let nextId = model.vocab.size;
  const assigned = new Map<string, number>();
  return asArray(value, "added_tokens").map((entry, i) => {
    const path = `added_tokens[${i}]`;
    const t = asObject(entry, path);
    const content = asString(required(t, "content", `${path}.`), `${path}.content`);
    const declared = asId(required(t, "id", `${path}.`), `${path}.id`);
    const id = assigned.get(content) ?? model.vocab.get(content) ?? nextId++;
    if (id !== declared) {
      throw new TokenizerJsonError(`field "${path}.id" is ${declared} but HF tokenizers assigns ${id}`);
    }
    assigned.set(content, id);
    return {
      id,
      content,
      singleWord: asBool(t.single_word, false, `${path}.single_word`),
      lstrip: asBool(t.lstrip, false, `${path}.lstrip`),
      rstrip: asBool(t.rstrip, false, `${path}.rstrip`),
      normalized: asBool(t.normalized, true, `${path}.normalized`),
      special: asBool(t.special, false, `${path}.special`),
    };
  });
}

// ---------------------------------------------------------------------------------------------------------
// Normalizer, pre-tokenizer, decoder
// ---------------------------------------------------------------------------------------------------------

type Normalize = (text: string) => string;

function parseNormalizer(value: unknown, path: string): Normalize[] {
  if (value === undefined || value === null) return [];
  const n = asObject(value, path);
  const type = required(n, "type", `${path}.`);
  switch (type) {
    case "Sequence":
      return asArray(required(n, "normalizers", `${path}.`), `${path}.normalizers`)
        .flatMap((child, i) => parseNormalizer(child, `${path}.normalizers[${i}]`));
    case "Prepend": {
      const prepend = asString(required(n, "prepend", `${path}.`), `${path}.prepend`);
      return [(s) => s.length === 0 ? s : prepend + s];
    }
    case "Replace": {
      const from = stringPattern(n, `${path}.`);
      const to = asString(required(n, "content", `${path}.`), `${path}.content`);
      return [(s) => s.replaceAll(from, to)];
    }
    default:
      return unsupported(`${path}.type`, type);
  }
}

interface Metaspace {
  replacement: string;
  prependScheme: "first" | "never" | "always";
  split: boolean;
}

function parseMetaspace(n: JsonObject, path: string): Metaspace {
  const replacement = asString(required(n, "replacement", `${path}.`), `${path}.replacement`);
  const scheme = n.prepend_scheme ?? "always";
  if (scheme !== "first" && scheme !== "never" && scheme !== "always") {
    unsupported(`${path}.prepend_scheme`, scheme);
  }
  const prependScheme = n.add_prefix_space === false ? "never" : scheme;
  return { replacement, prependScheme, split: asBool(n.split, true, `${path}.split`) };
}

function parsePreTokenizer(value: unknown): Metaspace | null {
  if (value === undefined || value === null) return null;
  const p = asObject(value, "pre_tokenizer");
  const type = required(p, "type", "pre_tokenizer.");
  if (type !== "Metaspace") unsupported("pre_tokenizer.type (only Metaspace)", type);
  return parseMetaspace(p, "pre_tokenizer");
}

/** HF `Metaspace::pre_tokenize` on one normalized segment. */
function metaspacePieces(m: Metaspace, text: string, atInputStart: boolean): string[] {
  let s = text.replaceAll(" ", m.replacement);
  const prepend = m.prependScheme === "always" || (m.prependScheme === "first" && atInputStart);
  if (prepend && !s.startsWith(m.replacement)) s = m.replacement + s;
  if (!m.split) return [s];
  const pieces: string[] = [];
  let start = 0;
  for (let i = s.indexOf(m.replacement, 1); i !== -1; i = s.indexOf(m.replacement, i + 1)) {
    pieces.push(s.slice(start, i));
    start = i;
  }
  pieces.push(s.slice(start));
  return pieces;
}

type DecodeStep = (tokens: string[]) => string[];

const strictUtf8 = new TextDecoder("utf-8", { fatal: true });

/** HF `ByteFallback` decoder: runs of `<0xNN>` become their UTF-8 text, or one "�" per byte if invalid. */
function byteFallbackStep(tokens: string[]): string[] {
  const out: string[] = [];
  const bytes: number[] = [];
  const flush = () => {
    if (bytes.length === 0) return;
    try {
      out.push(strictUtf8.decode(new Uint8Array(bytes)));
    } catch {
      for (let i = 0; i < bytes.length; i++) out.push("\ufffd");
    }
    bytes.length = 0;
  };
  for (const token of tokens) {
    if (/^<0x[0-9A-Fa-f]{2}>$/.test(token)) {
      bytes.push(parseInt(token.slice(3, 5), 16));
      continue;
    }
    flush();
    out.push(token);
  }
  flush();
  return out;
}

function stripStep(content: string, start: number, stop: number): DecodeStep {
  return (tokens) =>
    tokens.map((token) => {
      const chars = Array.from(token);
      let from = 0;
      while (from < start && from < chars.length && chars[from] === content) from++;
      let to = chars.length;
      while (chars.length - to < stop && to > from && chars[to - 1] === content) to--;
      return chars.slice(from, to).join("");
    });
}

function metaspaceDecodeStep(m: Metaspace): DecodeStep {
  return (tokens) =>
    tokens.map((token, i) => {
      const replaced = i === 0 && m.prependScheme !== "never" ? "" : " ";
      return token.replaceAll(m.replacement, replaced);
    });
}

function parseDecoder(value: unknown, path: string): DecodeStep[] {
  if (value === undefined || value === null) return [];
  const d = asObject(value, path);
  const type = required(d, "type", `${path}.`);
  switch (type) {
    case "Sequence":
      return asArray(required(d, "decoders", `${path}.`), `${path}.decoders`)
        .flatMap((child, i) => parseDecoder(child, `${path}.decoders[${i}]`));
    case "Replace": {
      const from = stringPattern(d, `${path}.`);
      const to = asString(required(d, "content", `${path}.`), `${path}.content`);
      return [(tokens) => tokens.map((t) => t.replaceAll(from, to))];
    }
    case "ByteFallback":
      return [byteFallbackStep];
    case "Fuse":
      return [(tokens) => [tokens.join("")]];
    case "Strip": {
      const content = asString(required(d, "content", `${path}.`), `${path}.content`);
      const start = asId(required(d, "start", `${path}.`), `${path}.start`);
      return [stripStep(content, start, asId(required(d, "stop", `${path}.`), `${path}.stop`))];
    }
    case "Metaspace":
      return [metaspaceDecodeStep(parseMetaspace(d, path))];
    default:
      return unsupported(`${path}.type`, type);
  }
}

/** The special tokens HF's `TemplateProcessing` puts around a single sequence ("<s> $A" → leading 1). */
interface SingleTemplate {
  leading: number | null;
  trailing: number | null;
}

function templateSpecialId(item: JsonObject, specials: JsonObject, path: string): number {
  const name = asString(required(asObject(item.SpecialToken, path), "id", `${path}.`), `${path}.id`);
  const entry = asObject(
    required(specials, name, "post_processor.special_tokens."),
    "post_processor.special_tokens",
  );
  const ids = asArray(required(entry, "ids", `post_processor.special_tokens.${name}.`), "ids");
  if (ids.length !== 1) unsupported(`post_processor.special_tokens.${name}.ids (only one id)`, ids);
  return asId(ids[0], `post_processor.special_tokens.${name}.ids[0]`);
}

/** Reads `post_processor`: none, or a `TemplateProcessing` of the form `[special] $A [special]`. */
function parsePostProcessor(value: unknown): SingleTemplate {
  if (value === undefined || value === null) return { leading: null, trailing: null };
  const p = asObject(value, "post_processor");
  const type = required(p, "type", "post_processor.");
  if (type !== "TemplateProcessing") unsupported("post_processor.type (only TemplateProcessing)", type);
  const specials = asObject(p.special_tokens ?? {}, "post_processor.special_tokens");
  const single = asArray(required(p, "single", "post_processor."), "post_processor.single")
    .map((item, i) => asObject(item, `post_processor.single[${i}]`));
  const sequence = single.findIndex((item) => "Sequence" in item);
  if (sequence < 0 || sequence > 1 || single.length - sequence > 2) {
    unsupported("post_processor.single (only [special] $A [special])", single);
  }
  const specialAt = (i: number) => templateSpecialId(single[i], specials, `post_processor.single[${i}]`);
  return {
    leading: sequence === 1 ? specialAt(0) : null,
    trailing: sequence + 1 < single.length ? specialAt(sequence + 1) : null,
  };
}

// ---------------------------------------------------------------------------------------------------------
// Tokenizer
// ---------------------------------------------------------------------------------------------------------

/**
 * Options of {@linkcode Tokenizer.encode}.
 *
 * @example
 * ```ts
 * import { Tokenizer, type EncodeOptions } from "./tokenizer.ts";
 * const opts: EncodeOptions = { addBos: true, addEos: true };
 * Tokenizer.llama2().encode("hi", opts); // [1, 7251, 2]
 * ```
 */
export interface EncodeOptions {
  /** Prepend the BOS id. Default: whether the post-processor does (Llama-2: `true`). */
  addBos?: boolean;
  /** Append the EOS id. Default: whether the post-processor does (Llama-2: `false`). */
  addEos?: boolean;
}

/**
 * Options of {@linkcode Tokenizer.decode}.
 *
 * @example
 * ```ts
 * import { Tokenizer, type DecodeOptions } from "./tokenizer.ts";
 * const opts: DecodeOptions = { skipSpecialTokens: false };
 * Tokenizer.llama2().decode([1, 7251], opts); // "<s> hi"
 * ```
 */
export interface DecodeOptions {
  /** Drop special tokens (`<s>`, `</s>`, `<unk>`, chat tokens) from the output (default `true`). */
  skipSpecialTokens?: boolean;
}

/**
 * Which tokens of a `tokenizer.json` are BOS and EOS, when not those its post-processor adds.
 *
 * @example
 * ```ts
 * import type { SpecialTokenNames } from "./tokenizer.ts";
 * const names: SpecialTokenNames = { bosToken: "<s>", eosToken: "</s>" };
 * ```
 */
export interface SpecialTokenNames {
  /** Default: the token the post-processor puts first, else `"<s>"`. */
  bosToken?: string;
  /** Default: the token the post-processor puts last, else `"</s>"`. */
  eosToken?: string;
}

/**
 * A BPE tokenizer with HF `tokenizers` semantics: the Llama-2 one ({@linkcode Tokenizer.llama2}) or any
 * BPE `tokenizer.json` ({@linkcode Tokenizer.fromHFJson}, {@linkcode Tokenizer.fromFile}).
 *
 * @example
 * ```ts
 * import { Tokenizer } from "./tokenizer.ts";
 * const tok = Tokenizer.llama2({ bracketTokens: true });
 * tok.encode("[bib]x", { addBos: false }); // [32004, 921]
 * tok.tokenToId("▁the"); // 278
 * ```
 */
export class Tokenizer {
  /** Id of the beginning-of-sequence token, or `null` if the vocabulary has none. */
  readonly bosId: number | null;
  /** Id of the end-of-sequence token, or `null` if the vocabulary has none. */
  readonly eosId: number | null;
  /** Id of the unknown token, or `null` if the model has none. */
  readonly unkId: number | null;
  /** Diagnostic: whether BPE runs word by word (merges provably never cross a "▁" word start). */
  readonly splitsWords: boolean;
  private readonly model: BpeModel;
  private readonly added: Map<number, AddedTokenSpec>;
  private readonly addedByContent: Map<string, number>;
  private readonly rawSplitter: AddedTokenSplitter;
  private readonly normalizedSplitter: AddedTokenSplitter;
  private readonly normalizers: Normalize[];
  private readonly preTokenizer: Metaspace | null;
  private readonly decodeSteps: DecodeStep[] | null;
  private readonly template: SingleTemplate;

  private constructor(json: unknown, names: SpecialTokenNames) {
    const root = asObject(json, "(root)");
    this.model = new BpeModel(parseBpeModel(required(root, "model", "")));
    this.normalizers = parseNormalizer(root.normalizer, "normalizer");
    this.preTokenizer = parsePreTokenizer(root.pre_tokenizer);
    const decoder = root.decoder;
    this.decodeSteps = decoder === undefined || decoder === null ? null : parseDecoder(decoder, "decoder");
    const addedTokens = parseAddedTokens(root.added_tokens, this.model);
    this.added = new Map(addedTokens.map((t) => [t.id, t]));
    this.addedByContent = new Map(addedTokens.map((t) => [t.content, t.id]));
    this.rawSplitter = new AddedTokenSplitter(addedTokens.filter((t) => !t.normalized), (t) => t.content);
    this.normalizedSplitter = new AddedTokenSplitter(
      addedTokens.filter((t) => t.normalized),
      (t) => this.normalize(t.content),
    );
    this.template = parsePostProcessor(root.post_processor);
    this.bosId = this.specialId(names.bosToken, this.template.leading, "<s>");
    this.eosId = this.specialId(names.eosToken, this.template.trailing, "</s>");
    this.unkId = this.model.unkId < 0 ? null : this.model.unkId;
    this.splitsWords = this.model.splitsAtMeta;
  }

  /**
   * The Llama-2 tokenizer (vocabulary and merges from npm `llama-tokenizer-js`), optionally with Meditron's
   * added tokens. Same ids as HF `tokenizers` on {@linkcode llama2TokenizerJson} with the same options.
   *
   * @example
   * ```ts
   * import { Tokenizer } from "./tokenizer.ts";
   * Tokenizer.llama2({ chatTokens: true }).tokenToId("<|im_start|>"); // 32000
   * ```
   */
  static llama2(options: Llama2Options = {}): Tokenizer {
    return new Tokenizer(llama2TokenizerJson(options), {});
  }

  /**
   * Loads a parsed HF `tokenizer.json` whose model is BPE. Throws {@linkcode TokenizerJsonError} naming the
   * field when it is malformed or uses an unsupported component.
   *
   * @example
   * ```ts
   * import { Tokenizer } from "./tokenizer.ts";
   * const tok = Tokenizer.fromHFJson({ model: { type: "BPE", vocab: { a: 0, b: 1, ab: 2 }, merges: ["a b"] } });
   * tok.encode("ab"); // [2]
   * ```
   */
  static fromHFJson(json: unknown, names: SpecialTokenNames = {}): Tokenizer {
    return new Tokenizer(json, names);
  }

  /**
   * Reads and loads an HF `tokenizer.json` file (see {@linkcode Tokenizer.fromHFJson}).
   *
   * @example
   * ```ts
   * import { Tokenizer } from "./tokenizer.ts";
   * const tok = await Tokenizer.fromFile("/models/mistral-7b/tokenizer.json");
   * ```
   */
  static async fromFile(path: string, names: SpecialTokenNames = {}): Promise<Tokenizer> {
    const text = await Deno.readTextFile(path);
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (e) {
      throw new TokenizerJsonError(`${path} is not valid JSON (${(e as Error).message})`);
    }
    return new Tokenizer(json, names);
  }

  /**
   * Number of ids (largest id + 1, added tokens included): the embedding-table size this tokenizer needs.
   *
   * @example
   * ```ts
   * import { Tokenizer } from "./tokenizer.ts";
   * Tokenizer.llama2().vocabSize; // 32000
   * ```
   */
  get vocabSize(): number {
    let size = this.model.tokens.length;
    for (const id of this.added.keys()) size = Math.max(size, id + 1);
    return size;
  }

  /**
   * The token string of an id (added tokens first, as HF), or `undefined`.
   *
   * @example
   * ```ts
   * import { Tokenizer } from "./tokenizer.ts";
   * Tokenizer.llama2().idToToken(278); // "▁the"
   * ```
   */
  idToToken(id: number): string | undefined {
    return this.added.get(id)?.content ?? this.model.tokens[id];
  }

  /**
   * The id of a token string (added tokens first, as HF), or `undefined`.
   *
   * @example
   * ```ts
   * import { Tokenizer } from "./tokenizer.ts";
   * Tokenizer.llama2().tokenToId("▁Hello"); // 15043
   * ```
   */
  tokenToId(token: string): number | undefined {
    return this.addedByContent.get(token) ?? this.model.vocab.get(token);
  }

  /**
   * Encodes text to ids exactly as HF `tokenizers` does (BOS/EOS by default as its post-processor adds them).
   *
   * @example
   * ```ts
   * import { Tokenizer } from "./tokenizer.ts";
   * Tokenizer.llama2().encode("Hello world"); // [1, 15043, 3186]
   * ```
   */
  encode(text: string, options: EncodeOptions = {}): number[] {
    const out: number[] = [];
    if (options.addBos ?? this.template.leading !== null) out.push(this.required(this.bosId, "BOS"));
    for (const segment of this.rawSplitter.split(text, 0)) {
      if (segment.id >= 0) out.push(segment.id);
      else this.encodeSegment(segment, out);
    }
    if (options.addEos ?? this.template.trailing !== null) out.push(this.required(this.eosId, "EOS"));
    return out;
  }

  /**
   * Encodes several texts (sequentially, in this thread).
   *
   * @example
   * ```ts
   * import { Tokenizer } from "./tokenizer.ts";
   * Tokenizer.llama2().encodeBatch(["Hello", "world"], { addBos: false }); // [[15043], [3186]]
   * ```
   */
  encodeBatch(texts: readonly string[], options: EncodeOptions = {}): number[][] {
    return texts.map((text) => this.encode(text, options));
  }

  /**
   * Decodes ids to text with the tokenizer's decoder (Llama-2: "▁" → space, byte tokens → UTF-8, one leading
   * space stripped). Throws a `RangeError` for an id outside the vocabulary.
   *
   * @example
   * ```ts
   * import { Tokenizer } from "./tokenizer.ts";
   * Tokenizer.llama2().decode([1, 15043, 3186]); // "Hello world"
   * ```
   */
  decode(ids: readonly number[], options: DecodeOptions = {}): string {
    const skipSpecial = options.skipSpecialTokens ?? true;
    const tokens: string[] = [];
    for (const id of ids) {
      const token = this.idToToken(id);
      if (token === undefined) throw new RangeError(`token id ${id} is not in the vocabulary`);
      if (!(skipSpecial && this.added.get(id)?.special)) tokens.push(token);
    }
    if (this.decodeSteps === null) return tokens.join(" ");
    return this.decodeSteps.reduce((acc, step) => step(acc), tokens).join("");
  }

  /** The id of a named token, else of the post-processor's, else of the conventional name. */
  private specialId(name: string | undefined, fromTemplate: number | null, fallback: string): number | null {
    if (name !== undefined) return this.tokenToId(name) ?? null;
    return fromTemplate ?? this.tokenToId(fallback) ?? null;
  }

  /** `id`, or an error saying that the tokenizer lacks `what`. */
  private required(id: number | null, what: string): number {
    if (id === null) throw new Error(`this tokenizer has no ${what} token`);
    return id;
  }

  /** Applies the normalizer chain. */
  private normalize(text: string): string {
    return this.normalizers.reduce((s, n) => n(s), text);
  }

  /** Normalizes, splits on normalized added tokens, pre-tokenizes and BPE-encodes one raw segment. */
  private encodeSegment(segment: Segment, out: number[]): void {
    for (const part of this.normalizedSplitter.split(this.normalize(segment.text), segment.start)) {
      if (part.id >= 0) {
        out.push(part.id);
      } else if (part.text.length === 0) {
        continue; // HF drops empty splits before pre-tokenization
      } else if (this.preTokenizer === null) {
        this.model.tokenize(part.text, out);
      } else {
        for (const piece of metaspacePieces(this.preTokenizer, part.text, part.start === 0)) {
          this.model.tokenize(piece, out);
        }
      }
    }
  }
}
