/**
 * Supervised-finetuning data: chat rows (`{"messages": [{"role", "content"}, …]}` or Meditron's
 * `{"prompt", "gold"}` pairs), rendered with the template `<|im_start|>{role}\n{content}<|im_end|>\n` per
 * message (no BOS/EOS unless asked, as Meditron), tokenized with a per-token loss weight, and batched.
 *
 * Loss weights: every token of an assistant message — its header `<|im_start|>assistant\n`, the content,
 * `<|im_end|>` and the newline after it — weighs 1; every other token weighs `promptLossWeight` (default 0);
 * padding weighs 0. The weight of a token applies to the position that predicts it.
 *
 * Truncation policy: an example longer than `seq + 1` tokens keeps its first `seq + 1` tokens (the end is
 * cut, so the prompt survives and the answer may be cut); an example left without any assistant token is
 * dropped and counted ({@linkcode SftDataset.dropped}).
 *
 * Batching: each batch is padded to its longest example rounded up to a multiple of 16 (Meditron), capped at
 * `seq`; rows are drawn from a seeded permutation per epoch, a pure function of the number of consumed
 * examples (exact resume).
 *
 * Packing (`pack: true`): each epoch's permutation is packed first-fit into rows of `seq` input positions —
 * whole examples only, never split — with a segment id per token, so the native attention keeps each example
 * to itself and restarts its RoPE positions (a packed row computes what its examples would as separate rows).
 * A sample is then a packed row: batches are a pure function of the number of consumed rows.
 *
 * @module
 */

/** One message of a conversation. */
export interface ChatMessage {
  /** `system`, `user`, `assistant` (or Meditron's `question` / `answer`). */
  role: string;
  /** Message text. */
  content: string;
}

/** Roles whose tokens are trained on (loss weight 1). */
export const ASSISTANT_ROLES: readonly string[] = ["assistant", "answer"];

/** The chat-template special tokens. */
export const IM_START = "<|im_start|>";
/** End of a message. */
export const IM_END = "<|im_end|>";

/**
 * Parses one SFT row: `{"messages": [...]}` or `{"prompt": …, "gold": …}` (roles `question` / `answer`).
 * Throws naming `where` on anything else.
 *
 * @example
 * ```ts
 * import { parseSftRow } from "./sft.ts";
 * parseSftRow({ prompt: "Q?", gold: "B" }, "x:1");
 * // [{ role: "question", content: "Q?" }, { role: "answer", content: "B" }]
 * ```
 */
export function parseSftRow(row: unknown, where: string): ChatMessage[] {
  if (row === null || typeof row !== "object" || Array.isArray(row)) {
    throw new Error(`${where}: an SFT row must be an object with 'messages' or 'prompt' and 'gold'`);
  }
  const r = row as Record<string, unknown>;
  if ("messages" in r) {
    if (!Array.isArray(r.messages) || r.messages.length === 0) {
      throw new Error(`${where}: 'messages' must be a non-empty array`);
    }
    return r.messages.map((m: unknown, i: number): ChatMessage => {
      const msg = m as Record<string, unknown> | null;
      if (msg === null || typeof msg !== "object" || typeof msg.role !== "string" || msg.role === "") {
        throw new Error(`${where}: messages[${i}] needs a string 'role'`);
      }
      if (typeof msg.content !== "string") {
        throw new Error(`${where}: messages[${i}] needs a string 'content'`);
      }
      return { role: msg.role, content: msg.content };
    });
  }
  if (typeof r.prompt === "string" && typeof r.gold === "string") {
    return [{ role: "question", content: r.prompt }, { role: "answer", content: r.gold }];
  }
  throw new Error(`${where}: an SFT row needs 'messages', or string 'prompt' and 'gold'`);
}

/**
 * Renders one message with the template `<|im_start|>{role}\n{content}<|im_end|>\n`.
 *
 * @example
 * ```ts
 * import { renderMessage } from "./sft.ts";
 * renderMessage({ role: "user", content: "Hi" }); // "<|im_start|>user\nHi<|im_end|>\n"
 * ```
 */
export function renderMessage(m: ChatMessage): string {
  return `${IM_START}${m.role}\n${m.content}${IM_END}\n`;
}

/**
 * Renders a conversation (the concatenation of {@linkcode renderMessage}).
 *
 * @example
 * ```ts
 * import { renderChat } from "./sft.ts";
 * renderChat([{ role: "question", content: "Q" }, { role: "answer", content: "A" }]);
 * // "<|im_start|>question\nQ<|im_end|>\n<|im_start|>answer\nA<|im_end|>\n"
 * ```
 */
export function renderChat(messages: readonly ChatMessage[]): string {
  return messages.map(renderMessage).join("");
}

/** What SFT tokenization needs of a tokenizer (the project's `Tokenizer` with `chatTokens: true` fits). */
export interface SftCodec {
  /** Text to ids. */
  encode(text: string, options?: { addBos?: boolean; addEos?: boolean }): number[];
  /** Id of an added token, `undefined` when absent. */
  tokenToId(token: string): number | undefined;
}

/** Options of {@linkcode tokenizeChat}. */
export interface SftTokenizeOptions {
  /** Loss weight of non-assistant tokens (default 0). */
  promptLossWeight?: number;
  /** Prepend BOS (default false, as Meditron). */
  addBos?: boolean;
  /** Roles trained on (default {@linkcode ASSISTANT_ROLES}). */
  assistantRoles?: readonly string[];
}

/** A tokenized example: ids and the loss weight of each id. */
export interface SftTokens {
  /** Token ids. */
  ids: number[];
  /** Loss weight of predicting `ids[i]` (weights[0] is never used: nothing predicts the first token). */
  weights: number[];
}

/**
 * Tokenizes a conversation whole (so SentencePiece sees the same text as at inference) and assigns each token
 * the weight of the message it belongs to; messages are found at their `<|im_start|>` tokens. Message texts
 * may not contain the template's special tokens.
 *
 * @example
 * ```ts
 * import { Tokenizer } from "./tokenizer.ts";
 * import { tokenizeChat } from "./sft.ts";
 * const t = tokenizeChat(Tokenizer.llama2({ chatTokens: true }), [
 *   { role: "user", content: "Hi" },
 *   { role: "assistant", content: "Hello" },
 * ]);
 * console.log(t.ids[0], t.weights.at(-1)); // 32000 1
 * ```
 */
export function tokenizeChat(
  codec: SftCodec,
  messages: readonly ChatMessage[],
  options: SftTokenizeOptions = {},
): SftTokens {
  const start = codec.tokenToId(IM_START), end = codec.tokenToId(IM_END);
  if (start === undefined || end === undefined) {
    throw new Error(`the tokenizer lacks ${IM_START} / ${IM_END} (Tokenizer.llama2({ chatTokens: true }))`);
  }
  for (const m of messages) {
    if (m.content.includes(IM_START) || m.content.includes(IM_END) || m.role.includes("\n")) {
      throw new Error(`message of role '${m.role}' contains a chat-template token or a newline in its role`);
    }
  }
  const other = options.promptLossWeight ?? 0;
  if (!(other >= 0 && Number.isFinite(other))) {
    throw new Error(`promptLossWeight must be >= 0 (got ${other})`);
  }
  const roles = options.assistantRoles ?? ASSISTANT_ROLES;
  const ids = codec.encode(renderChat(messages), { addBos: options.addBos ?? false, addEos: false });
  const weights: number[] = new Array(ids.length);
  let message = -1;
  for (let i = 0; i < ids.length; i++) {
    if (ids[i] === start) message++;
    const m = messages[message];
    weights[i] = m !== undefined && roles.includes(m.role) ? 1 : other;
  }
  if (message !== messages.length - 1) {
    throw new Error(`found ${message + 1} ${IM_START} tokens for ${messages.length} messages`);
  }
  return { ids, weights };
}

/**
 * Reads SFT JSONL (one row a line; blank lines skipped).
 *
 * @example
 * ```ts ignore
 * const rows = await readSftJsonl("sft.jsonl");
 * ```
 */
export async function readSftJsonl(path: string): Promise<ChatMessage[][]> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    throw new Error(`${path}: cannot read SFT data (${(e as Error).message})`);
  }
  const out: ChatMessage[][] = [];
  text.split("\n").forEach((line, i) => {
    if (!line.trim()) return;
    let row: unknown;
    try {
      row = JSON.parse(line);
    } catch (e) {
      throw new Error(`${path}:${i + 1}: invalid JSON (${(e as Error).message})`);
    }
    out.push(parseSftRow(row, `${path}:${i + 1}`));
  });
  return out;
}

/** A padded batch: `rows × seq` inputs, next-token targets and loss weights. */
export interface SftBatch {
  /** Inputs `[rows·seq]`. */
  tokens: Int32Array;
  /** Targets `[rows·seq]`. */
  targets: Int32Array;
  /** Loss weights `[rows·seq]` (0 on padding). */
  lossMask: Float32Array;
  /**
   * Packed batches only: the example of each token within its row `[rows·seq]` (0, 1, …; each padding token
   * its own id after those, so padding attends only to itself).
   */
  segmentIds?: Int32Array;
  /** Tokens per row of this batch. */
  seq: number;
}

// Lays rows of examples out back to back: row length = the longest row's input count rounded up to
// `multiple`, capped at `maxSeq` (an example's inputs are its ids but the last, cut at `maxSeq`).
function layoutRows(
  rows: readonly (readonly SftTokens[])[],
  maxSeq: number,
  padId: number,
  multiple: number,
  segments: boolean,
): SftBatch {
  const inputs = (e: SftTokens) => Math.min(e.ids.length - 1, maxSeq);
  const longest = Math.max(1, ...rows.map((r) => r.reduce((a, e) => a + inputs(e), 0)));
  if (longest > maxSeq) throw new Error(`a packed row holds ${longest} tokens, more than seq ${maxSeq}`);
  const seq = Math.min(maxSeq, Math.ceil(longest / multiple) * multiple);
  const n = rows.length * seq;
  const tokens = new Int32Array(n).fill(padId), targets = new Int32Array(n).fill(padId);
  const lossMask = new Float32Array(n);
  const segmentIds = segments ? new Int32Array(n) : undefined;
  rows.forEach((row, r) => {
    let at = r * seq;
    row.forEach((e, k) => {
      const len = inputs(e);
      for (let t = 0; t < len; t++, at++) {
        tokens[at] = e.ids[t];
        targets[at] = e.ids[t + 1];
        lossMask[at] = e.weights[t + 1];
        if (segmentIds) segmentIds[at] = k;
      }
    });
    for (let id = row.length; segmentIds && at < (r + 1) * seq; at++, id++) segmentIds[at] = id;
  });
  return { tokens, targets, lossMask, seq, ...(segmentIds ? { segmentIds } : {}) };
}

/**
 * Pads examples into one batch: length = the longest example's `ids.length − 1` rounded up to a multiple of
 * `multiple` (16), capped at `maxSeq`; padding has input `padId`, target `padId` and weight 0.
 *
 * @example
 * ```ts
 * import { padBatch } from "./sft.ts";
 * const b = padBatch([{ ids: [5, 6, 7], weights: [0, 0, 1] }], 128, 0);
 * console.log(b.seq, [...b.lossMask.subarray(0, 3)]); // 16 [0, 1, 0]
 * ```
 */
export function padBatch(
  examples: readonly SftTokens[],
  maxSeq: number,
  padId: number,
  multiple = 16,
): SftBatch {
  return layoutRows(examples.map((e) => [e]), maxSeq, padId, multiple, false);
}

/**
 * Packs rows of several whole examples each into one batch with segment ids: each row holds its examples back
 * to back (inputs = ids but the last; they must fit in `maxSeq` together), then padding (input and target
 * `padId`, weight 0). Row length as {@linkcode padBatch}: the fullest row rounded up to `multiple`, capped at
 * `maxSeq`.
 *
 * @example
 * ```ts
 * import { packBatch } from "./sft.ts";
 * const b = packBatch([[{ ids: [5, 6, 7], weights: [0, 1, 1] }, { ids: [8, 9], weights: [0, 1] }]], 8, 0, 8);
 * console.log([...b.tokens], [...b.segmentIds!]); // [5, 6, 8, 0, 0, 0, 0, 0] [0, 0, 1, 2, 3, 4, 5, 6]
 * ```
 */
export function packBatch(
  rows: readonly (readonly SftTokens[])[],
  maxSeq: number,
  padId: number,
  multiple = 16,
): SftBatch {
  return layoutRows(rows, maxSeq, padId, multiple, true);
}

/**
 * First-fit bin packing: item i (of `lengths[i]` ≤ `capacity`) goes to the first row, in creation order, with
 * room left for it, else to a new row. Returns each row's item indices in placement order. O(n log n) (a max
 * tree over the rows' free space).
 *
 * @example
 * ```ts
 * import { firstFit } from "./sft.ts";
 * console.log(firstFit([6, 5, 4, 2, 3], 10)); // [[0, 2], [1, 3, 4]]
 * ```
 */
export function firstFit(lengths: readonly number[], capacity: number): number[][] {
  let size = 1;
  while (size < lengths.length) size *= 2;
  const free = new Float64Array(2 * size).fill(capacity); // the most free space of any row under each node
  const rows: number[][] = [];
  lengths.forEach((len, i) => {
    if (!(len >= 0 && len <= capacity)) {
      throw new Error(`item ${i} of length ${len} exceeds the capacity ${capacity}`);
    }
    let node = 1;
    while (node < size) node = free[2 * node] >= len ? 2 * node : 2 * node + 1;
    const row = node - size; // leftmost row with room: an open one, or the first unopened (= rows.length)
    if (row === rows.length) rows.push([]);
    rows[row].push(i);
    free[node] -= len;
    for (node >>= 1; node >= 1; node >>= 1) free[node] = Math.max(free[2 * node], free[2 * node + 1]);
  });
  return rows;
}

/** Options of {@linkcode SftDataset}. */
export interface SftDatasetOptions {
  /** Longest training sequence (inputs per row). */
  seq: number;
  /** Seed of the per-epoch shuffles. */
  seed: number;
  /** Padding id (default 0, Llama-2's `<unk>`). */
  padId?: number;
  /** Pack whole examples into rows of `seq` tokens with segment ids (default false: one example per row). */
  pack?: boolean;
}

/** A multiply-with-shift PRNG (mulberry32) for the epoch permutations. */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Tokenized SFT examples (truncated to `seq + 1` tokens, dropping those left without assistant tokens) and
 * batches over seeded epoch permutations.
 *
 * @example
 * ```ts
 * import { SftDataset } from "./sft.ts";
 * const ds = new SftDataset([{ ids: [1, 2, 3], weights: [0, 1, 1] }], { seq: 64, seed: 1 });
 * console.log(ds.size, ds.batch(0, 2).seq); // 1 16
 * ```
 */
export class SftDataset {
  readonly #examples: SftTokens[];
  readonly #opts: Required<SftDatasetOptions>;
  readonly #perms = new Map<number, Uint32Array>();
  readonly #packs = new Map<number, number[][]>(); // epoch → rows of example indices
  readonly #epochStart: number[] = [0]; // first packed row of each epoch computed so far
  /** Examples dropped because truncation left them without an assistant token. */
  readonly dropped: number;
  /** Examples that were truncated (and kept). */
  readonly truncated: number;

  /** Truncates and filters `examples`. */
  constructor(examples: readonly SftTokens[], options: SftDatasetOptions) {
    this.#opts = { padId: 0, pack: false, ...options };
    const keep: SftTokens[] = [];
    let dropped = 0, truncated = 0;
    for (const e of examples) {
      const cut = e.ids.length > options.seq + 1;
      const ids = cut ? e.ids.slice(0, options.seq + 1) : e.ids;
      const weights = cut ? e.weights.slice(0, options.seq + 1) : e.weights;
      if (ids.length < 2 || !weights.slice(1).some((w) => w > 0)) {
        dropped++;
        continue;
      }
      if (cut) truncated++;
      keep.push({ ids, weights });
    }
    this.#examples = keep;
    this.dropped = dropped;
    this.truncated = truncated;
  }

  /** Examples kept. */
  get size(): number {
    return this.#examples.length;
  }

  /** Tokens of all kept examples. */
  get tokens(): number {
    return this.#examples.reduce((a, e) => a + e.ids.length, 0);
  }

  #perm(epoch: number): Uint32Array {
    let p = this.#perms.get(epoch);
    if (!p) {
      const rand = mulberry32(this.#opts.seed * 1000003 + epoch);
      p = Uint32Array.from({ length: this.size }, (_, i) => i);
      for (let i = p.length - 1; i > 0; i--) {
        const j = Math.floor(rand() * (i + 1));
        [p[i], p[j]] = [p[j], p[i]];
      }
      this.#perms.set(epoch, p);
    }
    return p;
  }

  /** The example at global sample index `i` (epoch ⌊i/size⌋, shuffled within the epoch). */
  example(i: number): SftTokens {
    if (this.size === 0) throw new Error("the SFT dataset is empty");
    const epoch = Math.floor(i / this.size);
    return this.#examples[this.#perm(epoch)[i % this.size]];
  }

  /** Whether a sample is a packed row of several examples (`pack` option). */
  get packed(): boolean {
    return this.#opts.pack;
  }

  /** Epoch `epoch`'s permutation packed first-fit into rows of `seq` inputs (example indices per row). */
  #packing(epoch: number): number[][] {
    let rows = this.#packs.get(epoch);
    if (!rows) {
      const perm = this.#perm(epoch);
      const lengths = Array.from(perm, (i) => this.#examples[i].ids.length - 1);
      rows = firstFit(lengths, this.#opts.seq).map((row) => row.map((k) => perm[k]));
      this.#packs.set(epoch, rows);
    }
    return rows;
  }

  /** Packed rows of epoch `epoch` (examples per epoch when not packing). */
  rowsInEpoch(epoch: number): number {
    return this.#opts.pack ? this.#packing(epoch).length : this.size;
  }

  /** Samples (packed rows, or examples) in the first `epochs` passes, a fractional last pass pro rata. */
  samplesIn(epochs: number): number {
    let total = 0, e = 0;
    for (; e + 1 <= epochs; e++) total += this.rowsInEpoch(e);
    return total + (epochs - e) * (epochs > e ? this.rowsInEpoch(e) : 0);
  }

  /** The packed row at global sample index `i` (epochs back to back): its examples in row order. */
  packedRow(i: number): SftTokens[] {
    if (this.size === 0) throw new Error("the SFT dataset is empty");
    const starts = this.#epochStart;
    while (starts.at(-1)! <= i) starts.push(starts.at(-1)! + this.#packing(starts.length - 1).length);
    let epoch = starts.length - 2;
    while (starts[epoch] > i) epoch--;
    return this.#packing(epoch)[i - starts[epoch]].map((k) => this.#examples[k]);
  }

  /** The batch of samples `first … first + rows − 1`: padded examples, or packed rows with segment ids. */
  batch(first: number, rows: number): SftBatch {
    const { seq, padId } = this.#opts;
    if (this.#opts.pack) {
      return packBatch(Array.from({ length: rows }, (_, r) => this.packedRow(first + r)), seq, padId);
    }
    const ex = Array.from({ length: rows }, (_, r) => this.example(first + r));
    return padBatch(ex, seq, padId);
  }
}
