/**
 * Chat templates: how a conversation becomes the prompt text a model continues, and where its answer stops.
 *
 * - `medical-one-shot`: Meditron's FastChat template for PRETRAINED models (`one_shot_medical`): the Llama-2
 *   system message, one worked example (listeriosis), turns `User: …` / `Assistant: …` separated by `\n### `,
 *   the prompt ending in `Assistant:`; generation stops at `###`, `User:` or `Assistant:`.
 * - `chatml`: the `<|im_start|>{role}\n{content}<|im_end|>\n` template of FINETUNED models (what
 *   `deno task finetune` trains), the prompt ending in `<|im_start|>assistant\n`; generation stops at
 *   `<|im_end|>`.
 *
 * @module
 */

/** One message of a conversation. */
export interface ChatTurn {
  /** `system`, `user` or `assistant`. */
  role: string;
  /** Message text. */
  content: string;
}

/** Names of the templates. */
export type ChatTemplateName = "medical-one-shot" | "chatml";

/** A chat template. */
export interface ChatTemplate {
  /** Template name. */
  readonly name: ChatTemplateName;
  /** The system message used when the conversation has none. */
  readonly defaultSystem: string;
  /** Prompt text for `messages` (a leading `system` message replaces the default), ready for the answer. */
  prompt(messages: readonly ChatTurn[]): string;
  /** Stop strings of the generated text (cut from the answer). */
  readonly stop: readonly string[];
  /** Special tokens that end an answer (looked up in the tokenizer). */
  readonly stopTokens: readonly string[];
}

/** Llama-2's default system message, which Meditron's templates use. */
export const LLAMA2_SYSTEM =
  "You are a helpful, respectful and honest assistant. Always answer as helpfully as possible, while being " +
  "safe. Your answers should not include any harmful, unethical, racist, sexist, toxic, dangerous, or illegal " +
  "content. Please ensure that your responses are socially unbiased and positive in nature.\n\nIf a question " +
  "does not make any sense, or is not factually coherent, explain why instead of answering something not " +
  "correct. If you don't know the answer to a question, please don't share false information.";

const LISTERIA_Q = "What happens if listeria is left untreated?";
const LISTERIA_A =
  "If listeria infection, or listeriosis, is left untreated, it can lead to severe health complications, " +
  "particularly in certain high-risk groups. Here's a general overview of the potential outcomes:\n\n" +
  "1. Spread of the Infection: Untreated listeriosis can spread beyond the gut to other parts of the body, " +
  "including the nervous system. This can lead to more severe conditions like meningitis (inflammation of the " +
  "membranes surrounding the brain and spinal cord) and septicemia (a serious blood infection).\n" +
  "2. Increased Risk for Certain Groups: Pregnant women, newborns, the elderly, and individuals with weakened " +
  "immune systems are at a higher risk of severe complications. In pregnant women, listeriosis can lead to " +
  "miscarriage, stillbirth, premature delivery, or life-threatening infection of the newborn.\n" +
  "3. Neurological Effects: Listeriosis can cause severe neurological symptoms like headaches, stiff neck, " +
  "confusion, loss of balance, and convulsions, especially when the infection spreads to the nervous system.\n" +
  "4. Long-Term Health Impacts: For some, particularly those with pre-existing health conditions or weakened " +
  "immune systems, the health impacts of listeriosis can be long-lasting and may not fully resolve even with " +
  "treatment.\n" +
  "5. Fatalities: In severe cases, particularly among high-risk groups, listeriosis can be fatal.\n\n" +
  "It's important to note that early diagnosis and appropriate treatment, typically with antibiotics, can " +
  "greatly improve the prognosis for those with listeriosis. Therefore, seeking medical attention promptly if " +
  "listeriosis is suspected is crucial.";

function split(messages: readonly ChatTurn[], fallback: string): { system: string; turns: ChatTurn[] } {
  const first = messages[0];
  if (first?.role === "system") return { system: first.content, turns: messages.slice(1) };
  return { system: fallback, turns: [...messages] };
}

/**
 * Meditron's `one_shot_medical` FastChat template (separator style ADD_COLON_SINGLE, sep `\n### `).
 *
 * @example
 * ```ts
 * import { MEDICAL_ONE_SHOT } from "./chat.ts";
 * const p = MEDICAL_ONE_SHOT.prompt([{ role: "user", content: "Hi" }]);
 * console.log(p.endsWith("\n### User: Hi\n### Assistant:")); // true
 * ```
 */
export const MEDICAL_ONE_SHOT: ChatTemplate = {
  name: "medical-one-shot",
  defaultSystem: LLAMA2_SYSTEM,
  stop: ["###", "User:", "Assistant:"],
  stopTokens: [],
  prompt(messages: readonly ChatTurn[]): string {
    const { system, turns } = split(messages, LLAMA2_SYSTEM);
    const all: ChatTurn[] = [
      { role: "user", content: LISTERIA_Q },
      { role: "assistant", content: LISTERIA_A },
      ...turns,
    ];
    const sep = "\n### ";
    let out = system + sep;
    for (const t of all) {
      if (t.role !== "user" && t.role !== "assistant") {
        throw new Error(`the medical one-shot template has no role '${t.role}'`);
      }
      out += `${t.role === "user" ? "User" : "Assistant"}: ${t.content}${sep}`;
    }
    return `${out}Assistant:`;
  },
};

/**
 * The `<|im_start|>` template of finetuned models (the system message is included only when given).
 *
 * @example
 * ```ts
 * import { CHATML } from "./chat.ts";
 * CHATML.prompt([{ role: "user", content: "Hi" }]);
 * // "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
 * ```
 */
export const CHATML: ChatTemplate = {
  name: "chatml",
  defaultSystem: "",
  stop: ["<|im_end|>"],
  stopTokens: ["<|im_end|>"],
  prompt(messages: readonly ChatTurn[]): string {
    const { system, turns } = split(messages, "");
    const all = system ? [{ role: "system", content: system }, ...turns] : turns;
    return all.map((t) => `<|im_start|>${t.role}\n${t.content}<|im_end|>\n`).join("") +
      "<|im_start|>assistant\n";
  },
};

/**
 * The template for a model: `chatml` when its vocabulary holds the chat tokens (≥ 32002 ids, what finetuning
 * adds), else Meditron's medical one-shot template; `name` forces one.
 *
 * @example
 * ```ts
 * import { templateFor } from "./chat.ts";
 * console.log(templateFor(32000).name, templateFor(32002).name); // "medical-one-shot" "chatml"
 * ```
 */
export function templateFor(vocabSize: number, name?: string): ChatTemplate {
  if (name === "chatml") return CHATML;
  if (name === "medical-one-shot") return MEDICAL_ONE_SHOT;
  if (name !== undefined) throw new Error(`unknown chat template '${name}' (chatml, medical-one-shot)`);
  return vocabSize === 32002 || vocabSize >= 32014 ? CHATML : MEDICAL_ONE_SHOT;
}

/**
 * Cuts `text` at the first stop string; returns the kept text and whether a stop was found.
 *
 * @example
 * ```ts
 * import { cutAtStop } from "./chat.ts";
 * cutAtStop("Rest.\n### User:", ["###", "User:"]); // { text: "Rest.\n", stopped: true }
 * ```
 */
export function cutAtStop(text: string, stop: readonly string[]): { text: string; stopped: boolean } {
  let cut = -1;
  for (const s of stop) {
    const i = s ? text.indexOf(s) : -1;
    if (i >= 0 && (cut < 0 || i < cut)) cut = i;
  }
  return cut < 0 ? { text, stopped: false } : { text: text.slice(0, cut), stopped: true };
}

/**
 * How many characters at the end of `text` may still become a stop string (held back when streaming).
 *
 * @example
 * ```ts
 * import { pendingStopPrefix } from "./chat.ts";
 * pendingStopPrefix("Fine.\n##", ["###"]); // 2
 * ```
 */
export function pendingStopPrefix(text: string, stop: readonly string[]): number {
  let keep = 0;
  for (const s of stop) {
    for (let n = Math.min(s.length - 1, text.length); n > keep; n--) {
      if (text.endsWith(s.slice(0, n))) {
        keep = n;
        break;
      }
    }
  }
  return keep;
}
