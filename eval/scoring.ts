/**
 * Turning text into what a language model scores: the tokenizer interface evaluation needs, and the split of
 * `context + continuation` into shared context tokens and per-continuation tokens.
 *
 * @module
 */

/**
 * What evaluation needs of a tokenizer (the project's `Tokenizer` fits).
 *
 * @example
 * ```ts
 * import { Tokenizer } from "../data/tokenizer.ts";
 * import type { TextCodec } from "./scoring.ts";
 * const codec: TextCodec = Tokenizer.llama2();
 * ```
 */
export interface TextCodec {
  /** Text to ids. */
  encode(text: string, options?: { addBos?: boolean; addEos?: boolean }): number[];
  /** Ids to text (special tokens skipped). */
  decode(ids: number[]): string;
  /** End-of-sequence id, a stop token for generation. */
  readonly eosId: number | null;
}

/**
 * Token ids of a scoring request.
 *
 * @example
 * ```ts
 * import type { ScoringTokens } from "./scoring.ts";
 * const t: ScoringTokens = { context: [1, 450], continuations: [[319], [350]], truncated: false };
 * ```
 */
export interface ScoringTokens {
  /** Context ids shared by every continuation (BOS first unless truncated). */
  context: number[];
  /** The ids of each continuation after the context. */
  continuations: number[][];
  /** Whether the context lost its oldest tokens to fit `maxContext`. */
  truncated: boolean;
}

/**
 * Tokenizes a scoring request: `context + continuation` is encoded whole for each continuation and split at
 * the prefix all of them share with the context, so the scored tokens are exactly those a model would produce
 * after the context (SentencePiece merges across the boundary are respected). A context longer than
 * `maxContext` minus the longest continuation loses its oldest tokens (`truncated`).
 *
 * @example
 * ```ts
 * import { Tokenizer } from "../data/tokenizer.ts";
 * import { tokenizeScoring } from "./scoring.ts";
 * const t = tokenizeScoring(Tokenizer.llama2(), "The answer is:", [" A", " B"], 4096);
 * console.log(t.context.length, t.continuations); // 5 [[319], [350]]
 * ```
 */
export function tokenizeScoring(
  codec: TextCodec,
  context: string,
  continuations: string[],
  maxContext: number,
): ScoringTokens {
  const ctx = codec.encode(context, { addBos: true, addEos: false });
  const wholes = continuations.map((c) => codec.encode(context + c, { addBos: true, addEos: false }));
  let shared = ctx.length;
  for (const w of wholes) {
    let i = 0;
    while (i < shared && i < w.length && w[i] === ctx[i]) i++;
    shared = i;
  }
  for (const [i, w] of wholes.entries()) {
    if (w.length <= shared) throw new Error(`continuation ${JSON.stringify(continuations[i])} adds no token`);
  }
  const conts = wholes.map((w) => w.slice(shared));
  const room = maxContext - Math.max(...conts.map((c) => c.length));
  if (room < 1) throw new Error(`maxContext ${maxContext} leaves no room for the context`);
  const truncated = shared > room;
  return { context: ctx.slice(truncated ? shared - room : 0, shared), continuations: conts, truncated };
}
