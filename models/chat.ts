/**
 * Chat templates: how a conversation becomes the prompt text a model continues, and where its answer stops.
 *
 * - `medical-one-shot`: Meditron's FastChat template for PRETRAINED models (`one_shot_medical`): the Llama-2
 *   system message, one worked example (listeriosis), turns `User: …` / `Assistant: …` separated by `\n### `,
 *   the prompt ending in `Assistant:`; generation stops at `###`, `User:` or `Assistant:`.
 * - `medical-zero-shot`: the same turns without the worked example and without a default system message,
 *   for pretrained models whose context (e.g. the tiny preset's 256 tokens) cannot hold the ~550-token
 *   one-shot prompt; {@linkcode fitTemplate} falls back to it.
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
export type ChatTemplateName = "medical-one-shot" | "medical-zero-shot" | "chatml";

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

// Meditron's FastChat layout (separator style ADD_COLON_SINGLE, sep `\n### `) after worked `examples`; without
// a default system message, the system line is written only when one is given.
function medicalTemplate(
  name: ChatTemplateName,
  defaultSystem: string,
  examples: readonly ChatTurn[],
): ChatTemplate {
  return {
    name,
    defaultSystem,
    stop: ["###", "User:", "Assistant:"],
    stopTokens: [],
    prompt(messages: readonly ChatTurn[]): string {
      const { system, turns } = split(messages, defaultSystem);
      const sep = "\n### ";
      let out = system || defaultSystem ? system + sep : "";
      for (const t of [...examples, ...turns]) {
        if (t.role !== "user" && t.role !== "assistant") {
          throw new Error(`the ${name} template has no role '${t.role}'`);
        }
        out += `${t.role === "user" ? "User" : "Assistant"}: ${t.content}${sep}`;
      }
      return `${out}Assistant:`;
    },
  };
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
export const MEDICAL_ONE_SHOT: ChatTemplate = medicalTemplate("medical-one-shot", LLAMA2_SYSTEM, [
  { role: "user", content: LISTERIA_Q },
  { role: "assistant", content: LISTERIA_A },
]);

/**
 * {@linkcode MEDICAL_ONE_SHOT}'s turns without its worked example (~450 tokens) and without a default system
 * message (~130 tokens; written only when given), for pretrained models whose context cannot hold them.
 *
 * @example
 * ```ts
 * import { MEDICAL_ZERO_SHOT } from "./chat.ts";
 * const p = MEDICAL_ZERO_SHOT.prompt([{ role: "user", content: "Hi" }]);
 * console.log(p === "User: Hi\n### Assistant:"); // true
 * MEDICAL_ZERO_SHOT.prompt([{ role: "system", content: "Be brief." }, { role: "user", content: "Hi" }]);
 * // "Be brief.\n### User: Hi\n### Assistant:"
 * ```
 */
export const MEDICAL_ZERO_SHOT: ChatTemplate = medicalTemplate("medical-zero-shot", "", []);

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

/** Names {@linkcode templateFor} accepts. */
export const CHAT_TEMPLATE_NAMES: readonly ChatTemplateName[] = [
  "chatml",
  "medical-one-shot",
  "medical-zero-shot",
];

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
  if (name === "medical-zero-shot") return MEDICAL_ZERO_SHOT;
  if (name !== undefined) {
    throw new Error(`unknown chat template '${name}' (${CHAT_TEMPLATE_NAMES.join(", ")})`);
  }
  return vocabSize === 32002 || vocabSize >= 32014 ? CHATML : MEDICAL_ONE_SHOT;
}

/**
 * Most tokens a chat prompt may hold in a `maxSeq`-token context so that up to `maxTokens` (at least half the
 * context) remain for the answer; the chat CLI drops old turns to stay within it.
 *
 * @example
 * ```ts
 * import { promptBudget } from "./chat.ts";
 * console.log(promptBudget(256, 256), promptBudget(256, 16)); // 128 240
 * ```
 */
export function promptBudget(maxSeq: number, maxTokens: number): number {
  return Math.max(1, maxSeq - Math.min(maxTokens, Math.floor(maxSeq / 2)));
}

/** What {@linkcode fitTemplate} needs to know. */
export interface FitOptions {
  /** Most tokens a prompt may hold ({@linkcode promptBudget}). */
  budget: number;
  /** Token count of a prompt text (BOS included). */
  countTokens: (text: string) => number;
  /** System message of the conversation (default: the template's). */
  system?: string;
  /**
   * What else the user can change when nothing fits, e.g. "a lower --max-tokens" (appended to the error, after
   * `--template medical-zero-shot` when another template failed).
   */
  hint?: string;
}

/** The template {@linkcode fitTemplate} chose. */
export interface FittedTemplate {
  /** The template. */
  template: ChatTemplate;
  /** Tokens its prompt takes before the user's text (system message, worked example, one empty turn). */
  fixedTokens: number;
  /** Set when it replaced the default template because that one did not fit. */
  notice?: string;
}

/**
 * {@linkcode templateFor}'s template when its fixed part (system message, worked example, an empty user turn)
 * leaves room for a message within `budget`; when no template is named and the medical one-shot one does not
 * fit, the medical zero-shot one (no worked example) with a notice. Throws, naming the sizes and `hint`, when
 * the template does not fit.
 *
 * @example
 * ```ts
 * import { fitTemplate } from "./chat.ts";
 * const countTokens = (text: string) => Math.ceil(text.length / 4); // a rough stand-in for a tokenizer
 * const f = fitTemplate(32000, undefined, { budget: 240, countTokens });
 * console.log(f.template.name, f.notice !== undefined); // "medical-zero-shot" true
 * ```
 */
export function fitTemplate(vocabSize: number, name: string | undefined, o: FitOptions): FittedTemplate {
  const fixed = (t: ChatTemplate) =>
    o.countTokens(t.prompt([
      ...(o.system !== undefined ? [{ role: "system", content: o.system }] : []),
      { role: "user", content: "" },
    ]));
  const chosen = templateFor(vocabSize, name);
  const fixedTokens = fixed(chosen);
  if (fixedTokens < o.budget) return { template: chosen, fixedTokens };
  const why = `the ${chosen.name} template takes ${fixedTokens} tokens before the message ` +
    `(${
      chosen === MEDICAL_ONE_SHOT ? "system message and worked example" : "template and system message"
    }), ` +
    `but prompts may hold ${o.budget}`;
  if (name === undefined && chosen === MEDICAL_ONE_SHOT) {
    let fallback: FittedTemplate;
    try {
      fallback = fitTemplate(vocabSize, "medical-zero-shot", o);
    } catch (e) {
      throw new Error(`${why}, and ${(e as Error).message}`);
    }
    return {
      ...fallback,
      notice: `${why}: using medical-zero-shot (no worked example, no default system message) instead`,
    };
  }
  const other = chosen === MEDICAL_ZERO_SHOT ? undefined : "--template medical-zero-shot";
  const tries = other && o.hint
    ? `${other}${o.hint.includes(" or ") ? ", " : " or "}${o.hint}`
    : other ?? o.hint;
  throw new Error(`${why}${tries ? `; try ${tries}` : ""}`);
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
