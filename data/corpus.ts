/**
 * Corpus documents (`{"text": …, "source": …, "id": …}` JSON Lines, extra fields kept) and the pretraining
 * token documents built from them: each document tokenized as `<s> text </s>`, split into train/validation
 * by a seeded draw per document.
 *
 * @module
 */
import { mulberry32 } from "./gpt_dataset.ts";

/** One corpus document. */
export interface CorpusDocument {
  /** The text. */
  text: string;
  /** Where it came from (guidelines, abstracts, papers, replay, …). */
  source?: string;
  /** Identifier. */
  id?: string;
}

/**
 * Parses JSON Lines of corpus documents; a malformed line or a missing/non-string `text` is an error
 * naming the file and line.
 *
 * @example
 * ```ts
 * import { parseCorpusJsonl } from "./corpus.ts";
 * const docs = parseCorpusJsonl('{"text": "Aspirin inhibits COX."}\n', "inline.jsonl");
 * console.log(docs[0].text);
 * ```
 */
export function parseCorpusJsonl(text: string, file: string, field = "text"): CorpusDocument[] {
  const out: CorpusDocument[] = [];
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].trim();
    if (!line) continue;
    let obj: unknown;
    try {
      obj = JSON.parse(line);
    } catch (e) {
      throw new Error(`${file}:${i + 1}: malformed JSON (${(e as Error).message})`);
    }
    if (typeof obj !== "object" || obj === null || Array.isArray(obj)) {
      throw new Error(`${file}:${i + 1}: expected a JSON object`);
    }
    const value = (obj as Record<string, unknown>)[field];
    if (typeof value !== "string") throw new Error(`${file}:${i + 1}: missing string field '${field}'`);
    out.push({ ...(obj as Record<string, unknown>), text: value }); // extra fields are kept
  }
  if (out.length === 0) throw new Error(`${file}: no documents`);
  return out;
}

/** Reads a JSONL corpus file (see {@linkcode parseCorpusJsonl}). */
export async function readCorpusJsonl(path: string, field = "text"): Promise<CorpusDocument[]> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    throw new Error(`${path}: cannot read corpus (${(e as Error).message})`);
  }
  return parseCorpusJsonl(text, path, field);
}

/** Anything that turns text into token ids. */
export interface TextEncoder {
  /** Token ids of `text`, with BOS/EOS as asked. */
  encode(text: string, options: { addBos?: boolean; addEos?: boolean }): number[];
}

/** Tokenized documents split into training and validation. */
export interface TokenizedCorpus {
  /** Token arrays (`<s> … </s>`), all documents. */
  docs: Int32Array[];
  /** Indices of training documents. */
  train: Int32Array;
  /** Indices of validation documents. */
  valid: Int32Array;
  /** Total tokens. */
  tokens: number;
}

/**
 * Tokenizes documents as `<s> text </s>` and assigns each to validation with probability `validFraction`
 * (seeded; at least one document on each side when there are two or more).
 */
export function tokenizeCorpus(
  docs: readonly CorpusDocument[],
  tokenizer: TextEncoder,
  validFraction: number,
  seed: number,
): TokenizedCorpus {
  const ids = docs.map((d) => Int32Array.from(tokenizer.encode(d.text, { addBos: true, addEos: true })));
  const rand = mulberry32(seed ^ 0x5EED);
  const train: number[] = [], valid: number[] = [];
  ids.forEach((_, i) => (rand() < validFraction ? valid : train).push(i));
  if (validFraction > 0 && valid.length === 0 && train.length > 1) valid.push(train.pop()!);
  if (train.length === 0 && valid.length > 1) train.push(valid.pop()!);
  return {
    docs: ids,
    train: Int32Array.from(train),
    valid: Int32Array.from(valid),
    tokens: ids.reduce((a, d) => a + d.length, 0),
  };
}
