/**
 * Worker entry that tokenizes text off the main thread with {@linkcode Tokenizer}.
 *
 * Protocol: post one {@linkcode TokenizerWorkerInit} (the worker answers `{ ready: true }`), then any number
 * of {@linkcode TokenizerWorkerRequest}s; each is answered by a {@linkcode TokenizerWorkerResult} whose
 * buffers are transferred.
 *
 * @example
 * ```ts
 * import type { TokenizerWorkerResult } from "./tokenizer_worker.ts";
 * const worker = new Worker(new URL("./tokenizer_worker.ts", import.meta.url), { type: "module" });
 * worker.postMessage({ llama2: {} });
 * worker.onmessage = (e: MessageEvent<{ ready: true } | TokenizerWorkerResult>) => {
 *   if ("ready" in e.data) worker.postMessage({ texts: ["Hello world"], options: {} });
 *   else console.log(e.data.ids, e.data.lengths); // Int32Array [1, 15043, 3186], Int32Array [3]
 * };
 * ```
 * @module
 */
import { type EncodeOptions, type Llama2Options, Tokenizer } from "./tokenizer.ts";

/**
 * First message: which tokenizer to build (the Llama-2 one, or a parsed HF `tokenizer.json`).
 *
 * @example
 * ```ts
 * import type { TokenizerWorkerInit } from "./tokenizer_worker.ts";
 * const init: TokenizerWorkerInit = { llama2: { bracketTokens: true } };
 * ```
 */
export type TokenizerWorkerInit = { llama2: Llama2Options } | { json: unknown };

/**
 * A batch of texts to encode.
 *
 * @example
 * ```ts
 * import type { TokenizerWorkerRequest } from "./tokenizer_worker.ts";
 * const request: TokenizerWorkerRequest = { texts: ["a", "b"], options: { addBos: false } };
 * ```
 */
export interface TokenizerWorkerRequest {
  /** The texts to encode. */
  texts: string[];
  /** BOS/EOS options, as for `Tokenizer.encode`. */
  options: EncodeOptions;
}

/**
 * The ids of a batch, concatenated, with the number of ids of each text.
 *
 * @example
 * ```ts
 * import type { TokenizerWorkerResult } from "./tokenizer_worker.ts";
 * const result: TokenizerWorkerResult = { ids: Int32Array.of(15043, 3186), lengths: Int32Array.of(2) };
 * ```
 */
export interface TokenizerWorkerResult {
  /** The ids of all texts, concatenated. */
  ids: Int32Array<ArrayBuffer>;
  /** How many ids each text has. */
  lengths: Int32Array<ArrayBuffer>;
}

let tokenizer: Tokenizer | undefined;

// The worker's global scope, typed here instead of with `/// <reference lib="deno.worker" />` (a directive
// that modifies globals, which JSR packages may not carry).
const scope = self as unknown as {
  onmessage: ((event: MessageEvent<TokenizerWorkerInit | TokenizerWorkerRequest>) => void) | null;
  postMessage(message: unknown, transfer?: Transferable[]): void;
};

function encodeBatch(tok: Tokenizer, request: TokenizerWorkerRequest): TokenizerWorkerResult {
  const all = tok.encodeBatch(request.texts, request.options);
  return { ids: Int32Array.from(all.flat()), lengths: Int32Array.from(all, (ids) => ids.length) };
}

scope.onmessage = (event: MessageEvent<TokenizerWorkerInit | TokenizerWorkerRequest>) => {
  const message = event.data;
  if (!("texts" in message)) {
    tokenizer = "llama2" in message ? Tokenizer.llama2(message.llama2) : Tokenizer.fromHFJson(message.json);
    scope.postMessage({ ready: true });
    return;
  }
  if (!tokenizer) throw new Error("tokenizer_worker: encode request before init");
  const result = encodeBatch(tokenizer, message);
  scope.postMessage(result, [result.ids.buffer, result.lengths.buffer]);
};
