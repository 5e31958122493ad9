/**
 * Renders the embedded knowledge base ({@link CONDITIONS}) into a varied,
 * deterministic demo pretraining corpus: guideline-style documents,
 * PubMed-like abstracts and textbook passages, with randomized phrasing and
 * ordering driven by a seeded PRNG.
 *
 * The facts are always stated declaratively; nothing here is phrased as a
 * multiple-choice question, so evaluation questions built from the same
 * knowledge base test recall rather than pattern copying.
 *
 * @module
 */

import { type Condition, CONDITIONS, SYSTEM_INFO } from "./knowledge.ts";

/**
 * Source tag of an embedded document (the corpus JSONL `source` field).
 *
 * @example
 * ```ts
 * import type { EmbeddedSource } from "./render.ts";
 * const s: EmbeddedSource = "abstracts";
 * ```
 */
export type EmbeddedSource = "guidelines" | "abstracts" | "textbook";

/**
 * One rendered document. `text`, `source` and `id` match the project's corpus
 * JSONL schema; `condition` is the slug of the condition it is about.
 *
 * @example
 * ```ts
 * import type { EmbeddedDocument } from "./render.ts";
 * const d: EmbeddedDocument = {
 *   id: "embedded/textbook-paragraph/asthma/0",
 *   text: "Asthma ...",
 *   source: "textbook",
 *   condition: "asthma",
 * };
 * ```
 */
export interface EmbeddedDocument {
  /** Unique id: `embedded/<template>/<condition id>/<copy index>`. */
  id: string;
  /** Document text. */
  text: string;
  /** Source tag. */
  source: EmbeddedSource;
  /** Slug of the condition the document is about. */
  condition: string;
}

/**
 * Names of the document templates, in rendering order.
 *
 * @example
 * ```ts
 * import { TEMPLATE_NAMES } from "./render.ts";
 * console.log(TEMPLATE_NAMES.length >= 6); // true
 * ```
 */
export const TEMPLATE_NAMES = [
  "guideline-management",
  "guideline-recommendations",
  "guideline-quickref",
  "abstract-review",
  "abstract-structured",
  "textbook-paragraph",
  "textbook-keypoints",
  "textbook-pearl",
  "textbook-comparison",
  "guideline-algorithm",
  "textbook-glossary",
] as const;

/**
 * One template name from {@link TEMPLATE_NAMES}.
 *
 * @example
 * ```ts
 * import type { TemplateName } from "./render.ts";
 * const t: TemplateName = "abstract-review";
 * ```
 */
export type TemplateName = typeof TEMPLATE_NAMES[number];

/**
 * Source tag produced by each template.
 *
 * @example
 * ```ts
 * import { TEMPLATE_SOURCES } from "./render.ts";
 * console.log(TEMPLATE_SOURCES["abstract-review"]); // "abstracts"
 * ```
 */
export const TEMPLATE_SOURCES: Readonly<Record<TemplateName, EmbeddedSource>> = {
  "guideline-management": "guidelines",
  "guideline-recommendations": "guidelines",
  "guideline-quickref": "guidelines",
  "abstract-review": "abstracts",
  "abstract-structured": "abstracts",
  "textbook-paragraph": "textbook",
  "textbook-keypoints": "textbook",
  "textbook-pearl": "textbook",
  "textbook-comparison": "textbook",
  "guideline-algorithm": "guidelines",
  "textbook-glossary": "textbook",
};

/**
 * Default seed of {@link renderCorpus}.
 *
 * @example
 * ```ts
 * import { DEFAULT_SEED, renderCorpus } from "./render.ts";
 * const a = renderCorpus({ seed: DEFAULT_SEED });
 * ```
 */
export const DEFAULT_SEED = 20231127;

/**
 * Default number of passes of {@link renderCorpus}; each pass renders every
 * condition once with every template, with fresh random phrasing.
 *
 * @example
 * ```ts
 * import { DEFAULT_COPIES } from "./render.ts";
 * console.log(DEFAULT_COPIES >= 1); // true
 * ```
 */
export const DEFAULT_COPIES = 1;

/**
 * Options of {@link renderCorpus}.
 *
 * @example
 * ```ts
 * import type { RenderOptions } from "./render.ts";
 * const o: RenderOptions = { seed: 7, copies: 1 };
 * ```
 */
export interface RenderOptions {
  /** PRNG seed (any 32-bit integer); the same seed gives identical output. Default {@link DEFAULT_SEED}. */
  seed?: number;
  /** Number of rendering passes (positive integer); scales the corpus linearly. Default {@link DEFAULT_COPIES}. */
  copies?: number;
  /** Conditions to render. Default: the whole knowledge base. */
  conditions?: readonly Condition[];
  /** Templates to use. Default: all of {@link TEMPLATE_NAMES}. */
  templates?: readonly TemplateName[];
}

/**
 * mulberry32: a tiny, fast, deterministic 32-bit PRNG. Returns a function that
 * yields floats in [0, 1).
 *
 * @example
 * ```ts
 * import { mulberry32 } from "./render.ts";
 * const rand = mulberry32(42);
 * const x = rand(); // same value on every run
 * console.log(x >= 0 && x < 1); // true
 * ```
 */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return (): number => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Small convenience wrapper around {@link mulberry32}. */
class Rng {
  readonly #next: () => number;
  constructor(seed: number) {
    this.#next = mulberry32(seed);
  }
  float(): number {
    return this.#next();
  }
  int(n: number): number {
    return Math.floor(this.#next() * n);
  }
  chance(p: number): boolean {
    return this.#next() < p;
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)];
  }
  shuffle<T>(items: readonly T[]): T[] {
    const out = [...items];
    for (let i = out.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      [out[i], out[j]] = [out[j], out[i]];
    }
    return out;
  }
}

// ------------------------------------------------------------------ text helpers

function cap(s: string): string {
  return s.length === 0 ? s : s[0].toUpperCase() + s.slice(1);
}

function joinList(items: readonly string[], conj = "and"): string {
  if (items.length === 0) return "";
  if (items.length === 1) return items[0];
  if (items.length === 2) return `${items[0]} ${conj} ${items[1]}`;
  return `${items.slice(0, -1).join(", ")}, ${conj} ${items[items.length - 1]}`;
}

function bullets(items: readonly string[], r: Rng): string {
  const mark = r.pick(["- ", "* ", "- "]);
  return items.map((i) => mark + cap(i)).join("\n");
}

function specialty(c: Condition): string {
  return SYSTEM_INFO[c.system].specialty;
}

// ------------------------------------------------------------------ phrase pools

const PRESENTS = [
  "typically presents with",
  "classically presents with",
  "commonly presents with",
  "usually manifests with",
  "is characterized clinically by",
  "characteristically causes",
] as const;

const FINDINGS_INTRO = [
  "Key findings include",
  "Characteristic findings include",
  "Typical findings are",
  "Important diagnostic clues include",
  "Examination and laboratory findings include",
  "Hallmark findings include",
] as const;

const TEST_SENTENCES: readonly ((n: string, t: string) => string)[] = [
  (n, t) => `The first-line diagnostic test for ${n} is ${t}.`,
  (n, t) => `The initial test of choice for ${n} is ${t}.`,
  (n, t) => `For suspected ${n}, the recommended initial investigation is ${t}.`,
  (n, t) => `Diagnostic evaluation of ${n} begins with ${t}.`,
  (n, t) => `The first step in confirming ${n} is ${t}.`,
  (n, t) => `In ${n}, the preferred first-line test is ${t}.`,
];

const TREAT_SENTENCES: readonly ((n: string, t: string) => string)[] = [
  (n, t) => `The first-line treatment of ${n} is ${t}.`,
  (n, t) => `First-line therapy for ${n} consists of ${t}.`,
  (n, t) => `${cap(n)} is treated first with ${t}.`,
  (n, t) => `The treatment of choice for ${n} is ${t}.`,
  (n, t) => `Standard initial management of ${n} is ${t}.`,
  (n, t) => `For ${n}, first-line management is ${t}.`,
];

const COMPLICATION_SENTENCES: readonly ((n: string, x: string) => string)[] = [
  (n, x) => `A common complication of ${n} is ${x}.`,
  (n, x) => `An important complication of ${n} is ${x}.`,
  (n, x) => `Clinicians caring for patients with ${n} should watch for ${x}.`,
  (n, x) => `${cap(n)} can be complicated by ${x}.`,
  (n, x) => `A classic complication of ${n} is ${x}.`,
  (n, x) => `Untreated or severe ${n} may lead to ${x}.`,
];

const RISK_SENTENCES: readonly ((n: string, x: string) => string)[] = [
  (n, x) => `Risk factors for ${n} include ${x}.`,
  (n, x) => `Predisposing factors for ${n} include ${x}.`,
  (n, x) => `${cap(n)} is more likely in the setting of ${x}.`,
  (n, x) => `Recognized risk factors for ${n} are ${x}.`,
];

function presentationSentence(c: Condition, r: Rng): string {
  return `${cap(c.name)} ${r.pick(PRESENTS)} ${joinList(r.shuffle(c.presentation))}.`;
}

function findingsSentence(c: Condition, r: Rng): string {
  return `${r.pick(FINDINGS_INTRO)} ${joinList(r.shuffle(c.keyFindings))}.`;
}

function testSentence(c: Condition, r: Rng): string {
  return r.pick(TEST_SENTENCES)(c.name, c.firstLineTest);
}

function treatSentence(c: Condition, r: Rng): string {
  return r.pick(TREAT_SENTENCES)(c.name, c.firstLineTreatment);
}

function complicationSentence(c: Condition, r: Rng): string {
  return r.pick(COMPLICATION_SENTENCES)(c.name, c.complication);
}

function riskSentence(c: Condition, r: Rng): string | null {
  if (!c.riskFactors || c.riskFactors.length === 0) return null;
  return r.pick(RISK_SENTENCES)(c.name, joinList(r.shuffle(c.riskFactors)));
}

function sentences(parts: readonly (string | null)[]): string {
  return parts.filter((p): p is string => p !== null).join(" ");
}

// ------------------------------------------------------------------ templates

type Renderer = (c: Condition, r: Rng, peers: readonly Condition[]) => string;

const guidelineManagement: Renderer = (c, r) => {
  const title = r.pick([
    `# Management of ${c.name}`,
    `# Diagnosis and management of ${c.name}`,
    `# Clinical practice guideline: ${c.name}`,
    `# ${cap(c.name)}: evaluation and treatment`,
  ]);
  const scope = r.pick([
    `This guideline summarizes the recognition, diagnosis, and first-line management of ${c.name} in ${
      specialty(c)
    } practice.`,
    `Scope: recognition and initial management of ${c.name}.`,
    `Purpose: to standardize the first-line evaluation and treatment of ${c.name}.`,
  ]);
  const sections: string[] = [
    `## ${r.pick(["Clinical presentation", "Presentation", "Clinical features", "Symptoms and signs"])}\n${
      bullets(r.shuffle(c.presentation), r)
    }`,
    `## ${r.pick(["Key findings", "Examination and investigations", "Characteristic findings"])}\n${
      bullets(r.shuffle(c.keyFindings), r)
    }`,
    `## ${r.pick(["Diagnosis", "Diagnostic evaluation", "Workup", "Initial investigations"])}\n${
      r.pick(["- First-line test: ", "- Initial test of choice: ", "- Recommended first test: "])
    }${c.firstLineTest}`,
    `## ${r.pick(["Treatment", "Management", "First-line therapy", "Initial management"])}\n${
      r.pick(["- First-line treatment: ", "- Treatment of choice: ", "- Recommended initial therapy: "])
    }${c.firstLineTreatment}`,
    `## ${r.pick(["Complications", "Monitoring", "Complications to anticipate"])}\n${
      r.pick(["- Common complication: ", "- Watch for: ", "- Key complication: "])
    }${c.complication}`,
  ];
  if (c.riskFactors && c.riskFactors.length > 0) {
    const risk = `## ${r.pick(["Risk factors", "Who is at risk", "Predisposing factors"])}\n${
      bullets(r.shuffle(c.riskFactors), r)
    }`;
    // Risk factors go either right after the presentation or at the end.
    if (r.chance(0.5)) sections.splice(1, 0, risk);
    else sections.push(risk);
  }
  return [title, scope, ...sections].join("\n\n");
};

const guidelineRecommendations: Renderer = (c, r) => {
  const who = r.pick([
    "We recommend",
    "The panel recommends",
    "Clinicians should use",
    "This guideline recommends",
  ]);
  const recs: string[] = [
    `Suspect ${c.name} in patients presenting with ${joinList(r.shuffle(c.presentation))}.`,
    `${r.pick(["Supportive findings include", "Look for", "Findings that support the diagnosis are"])} ${
      joinList(r.shuffle(c.keyFindings))
    }.`,
    `${who} ${c.firstLineTest} as the first-line diagnostic test for ${c.name}.`,
    `${who} ${c.firstLineTreatment} as first-line treatment of ${c.name}.`,
    `${
      r.pick(["Monitor patients for", "Anticipate and monitor for", "Counsel patients about the risk of"])
    } ${c.complication}, ${
      r.pick(["a common complication", "an important complication", "a recognized complication"])
    } of ${c.name}.`,
  ];
  if (c.riskFactors && c.riskFactors.length > 0) {
    recs.push(
      `${r.pick(["Assess for", "Identify and address", "Document"])} risk factors for ${c.name}, including ${
        joinList(r.shuffle(c.riskFactors))
      }.`,
    );
  }
  const title = `${cap(c.name)}: ${
    r.pick(["clinical practice recommendations", "summary of recommendations", "consensus recommendations"])
  }`;
  const label = r.pick(["Recommendation", "Rec.", "Statement"]);
  return [title, "", ...recs.map((t, i) => `${label} ${i + 1}. ${t}`)].join("\n");
};

const guidelineQuickref: Renderer = (c, r) => {
  const lines = [
    `${r.pick(["Quick reference", "Pocket card", "At a glance", "Clinical summary"])}: ${cap(c.name)}`,
    r.chance(0.5) ? `System: ${SYSTEM_INFO[c.system].label}` : `Specialty: ${cap(specialty(c))}`,
    `${r.pick(["Presents with", "Clinical features", "Symptoms"])}: ${r.shuffle(c.presentation).join("; ")}`,
    `${r.pick(["Key findings", "Findings", "Look for"])}: ${r.shuffle(c.keyFindings).join("; ")}`,
    `${r.pick(["First-line test", "Initial test", "Diagnose with"])}: ${c.firstLineTest}`,
    `${r.pick(["First-line treatment", "Initial treatment", "Treat with"])}: ${c.firstLineTreatment}`,
    `${r.pick(["Complication", "Watch for", "Major complication"])}: ${c.complication}`,
  ];
  if (c.riskFactors && c.riskFactors.length > 0) {
    lines.push(
      `${r.pick(["Risk factors", "At risk", "Predisposing factors"])}: ${
        r.shuffle(c.riskFactors).join("; ")
      }`,
    );
  }
  return lines.join("\n");
};

const REVIEW_TITLES: readonly ((n: string) => string)[] = [
  (n) => `Diagnosis and management of ${n}: a narrative review`,
  (n) => `${cap(n)}: current concepts in evaluation and treatment`,
  (n) => `Contemporary approach to ${n}`,
  (n) => `Recognizing and treating ${n}: a review for clinicians`,
  (n) => `${cap(n)} in clinical practice: an update`,
];

const REVIEW_METHODS = [
  "We summarized recommendations from major clinical practice guidelines and standard textbooks.",
  "This narrative review synthesizes consensus guidance and standard medical teaching.",
  "We reviewed guideline statements and core references on presentation, diagnosis, and treatment.",
  "Key recommendations were extracted from guidelines and standard review sources and summarized.",
] as const;

const abstractReview: Renderer = (c, r) => {
  const title = r.pick(REVIEW_TITLES)(c.name);
  const background = sentences([
    `${cap(c.name)} is ${
      r.pick(["an important condition", "a clinically significant disorder", "a key diagnosis"])
    } in ${specialty(c)}.`,
    `Patients ${r.pick(["typically present with", "commonly report", "often present with"])} ${
      joinList(r.shuffle(c.presentation))
    }.`,
  ]);
  const results = sentences([
    findingsSentence(c, r),
    testSentence(c, r),
    treatSentence(c, r),
    complicationSentence(c, r),
    riskSentence(c, r),
  ]);
  const conclusions = r.pick([
    `${cap(c.name)} should be suspected in patients with ${
      joinList(r.shuffle(c.presentation))
    }; ${c.firstLineTest} is the first-line test and ${c.firstLineTreatment} is the first-line treatment.`,
    `Early recognition of ${c.name}, confirmation with ${c.firstLineTest}, and prompt ${c.firstLineTreatment} reduce the risk of ${c.complication}.`,
    `For ${c.name}, first-line treatment is ${c.firstLineTreatment}; clinicians should remain alert to ${c.complication}.`,
  ]);
  return `${title}\nBackground: ${background}\nMethods: ${
    r.pick(REVIEW_METHODS)
  }\nResults: ${results}\nConclusions: ${conclusions}`;
};

const abstractStructured: Renderer = (c, r) => {
  const title = r.pick([
    `Initial evaluation and first-line therapy of ${c.name}: a structured summary`,
    `${cap(c.name)}: diagnostic and therapeutic essentials`,
    `Evidence summary: ${c.name}`,
    `Clinical features, diagnosis, and treatment of ${c.name}`,
  ]);
  const objective = r.pick([
    `To summarize the clinical features, first-line diagnostic test, and first-line treatment of ${c.name}.`,
    `To describe how ${c.name} is recognized, confirmed, and treated.`,
    `To provide a concise overview of ${c.name} for clinicians in ${specialty(c)}.`,
  ]);
  const main = sentences([
    presentationSentence(c, r),
    findingsSentence(c, r),
    testSentence(c, r),
  ]);
  const mgmt = sentences([treatSentence(c, r), complicationSentence(c, r), riskSentence(c, r)]);
  const conclusion = r.pick([
    `${
      cap(c.firstLineTest)
    } is the first-line test and ${c.firstLineTreatment} the first-line treatment for ${c.name}.`,
    `In ${c.name}, diagnosis starts with ${c.firstLineTest} and treatment starts with ${c.firstLineTreatment}.`,
    `Management of ${c.name} centers on ${c.firstLineTreatment} after confirmation with ${c.firstLineTest}.`,
  ]);
  return `${title}\nObjective: ${objective}\nMethods: ${
    r.pick(REVIEW_METHODS)
  }\nResults: ${main}\nManagement: ${mgmt}\nConclusions: ${conclusion}`;
};

const textbookParagraph: Renderer = (c, r) => {
  const intro = r.pick([
    `${cap(c.name)} is a condition encountered in ${specialty(c)}.`,
    `${cap(c.name)} is an important diagnosis in ${specialty(c)}.`,
    `${cap(c.name)} is covered in the ${specialty(c)} curriculum.`,
  ]);
  const body = sentences([
    intro,
    presentationSentence(c, r),
    findingsSentence(c, r),
    riskSentence(c, r),
    testSentence(c, r),
    treatSentence(c, r),
    complicationSentence(c, r),
  ]);
  return r.chance(0.5) ? `${cap(c.name)}\n\n${body}` : body;
};

const textbookKeypoints: Renderer = (c, r) => {
  const points = [
    `${cap(c.name)} ${r.pick(PRESENTS)} ${joinList(r.shuffle(c.presentation))}.`,
    findingsSentence(c, r),
    testSentence(c, r),
    treatSentence(c, r),
    complicationSentence(c, r),
  ];
  const risk = riskSentence(c, r);
  if (risk) points.splice(2, 0, risk);
  const head = r.pick([
    `Key points: ${c.name}`,
    `High-yield facts: ${c.name}`,
    `Summary box: ${cap(c.name)}`,
  ]);
  const numbered = r.chance(0.5);
  return [head, ...points.map((p, i) => (numbered ? `${i + 1}. ${p}` : `- ${p}`))].join("\n");
};

const textbookPearl: Renderer = (c, r) => {
  const pres = r.shuffle(c.presentation);
  const finding = r.pick(c.keyFindings);
  const lead = r.pick([
    `Clinical pearl: a patient with ${joinList(pres)} and ${finding} most likely has ${c.name}.`,
    `Teaching case: the combination of ${joinList(pres)} with ${finding} is typical of ${c.name}.`,
    `Pattern recognition: ${joinList(pres)} together with ${finding} points to ${c.name}.`,
  ]);
  const rest = r.pick([
    `In this setting the first-line test is ${c.firstLineTest}, and the first-line treatment is ${c.firstLineTreatment}.`,
    `The diagnosis is approached first with ${c.firstLineTest}; management begins with ${c.firstLineTreatment}.`,
    `Next, ${c.firstLineTest} is performed, and ${c.firstLineTreatment} is the first-line therapy.`,
  ]);
  return sentences([lead, rest, complicationSentence(c, r)]);
};

const textbookComparison: Renderer = (c, r, peers) => {
  const others = peers.filter((p) => p.system === c.system && p.id !== c.id);
  const o = others.length > 0 ? r.pick(others) : c;
  if (o === c) return textbookParagraph(c, r, peers);
  const head = r.pick([
    `Distinguishing ${c.name} from ${o.name}`,
    `${cap(c.name)} versus ${o.name}`,
    `Differential diagnosis: ${c.name} and ${o.name}`,
  ]);
  const body = sentences([
    `${cap(c.name)} ${r.pick(PRESENTS)} ${joinList(r.shuffle(c.presentation))}, whereas ${o.name} ${
      r.pick(PRESENTS)
    } ${joinList(r.shuffle(o.presentation))}.`,
    `In ${c.name}, ${r.pick(["key findings include", "characteristic findings are"])} ${
      joinList(r.shuffle(c.keyFindings))
    }; in ${o.name}, they include ${joinList(r.shuffle(o.keyFindings))}.`,
    `The first-line test for ${c.name} is ${c.firstLineTest}, while ${o.name} is evaluated first with ${o.firstLineTest}.`,
    `${
      cap(c.name)
    } is treated first with ${c.firstLineTreatment}; by contrast, first-line treatment of ${o.name} is ${o.firstLineTreatment}.`,
    `A common complication of ${c.name} is ${c.complication}, compared with ${o.complication} in ${o.name}.`,
  ]);
  return `${head}\n\n${body}`;
};

const guidelineAlgorithm: Renderer = (c, r) => {
  const head = r.pick([
    `Care pathway: ${c.name}`,
    `Stepwise approach to ${c.name}`,
    `${cap(c.name)} algorithm`,
    `Clinical pathway for suspected ${c.name}`,
  ]);
  const step = r.pick(["Step", "Stage", "Phase"]);
  const steps = [
    `${r.pick(["Recognize", "Identify", "Suspect the diagnosis from"])} ${
      joinList(r.shuffle(c.presentation))
    }.`,
    `${r.pick(["First-line test", "Initial test", "Diagnostic first step"])}: ${c.firstLineTest}${
      r.chance(0.5) ? `; supportive findings are ${joinList(r.shuffle(c.keyFindings))}` : ""
    }.`,
    `${r.pick(["Start", "Begin", "Initiate"])} first-line treatment: ${c.firstLineTreatment}.`,
    `${r.pick(["Monitor for", "Reassess and watch for", "Prevent and detect"])} ${c.complication}.`,
  ];
  return [head, ...steps.map((t, i) => `${step} ${i + 1}: ${t}`)].join("\n");
};

const textbookGlossary: Renderer = (c, r) => {
  const risk = c.riskFactors && c.riskFactors.length > 0
    ? ` ${r.pick(["Risk factors:", "Predisposing factors:", "More common with:"])} ${
      joinList(r.shuffle(c.riskFactors))
    }.`
    : "";
  return `${cap(c.name)} (${specialty(c)}). ${r.pick(["Presentation:", "Clinical picture:", "Features:"])} ${
    joinList(r.shuffle(c.presentation))
  }. ${r.pick(["Findings:", "Signs and results:", "Clues:"])} ${joinList(r.shuffle(c.keyFindings))}. ${
    r.pick(["First-line test:", "Initial test:", "Diagnosis:"])
  } ${c.firstLineTest}. ${
    r.pick(["First-line treatment:", "Initial therapy:", "Treatment:"])
  } ${c.firstLineTreatment}. ${
    r.pick(["Complication:", "Watch for:", "Main complication:"])
  } ${c.complication}.${risk}`;
};

const RENDERERS: Readonly<Record<TemplateName, Renderer>> = {
  "guideline-management": guidelineManagement,
  "guideline-recommendations": guidelineRecommendations,
  "guideline-quickref": guidelineQuickref,
  "abstract-review": abstractReview,
  "abstract-structured": abstractStructured,
  "textbook-paragraph": textbookParagraph,
  "textbook-keypoints": textbookKeypoints,
  "textbook-pearl": textbookPearl,
  "textbook-comparison": textbookComparison,
  "guideline-algorithm": guidelineAlgorithm,
  "textbook-glossary": textbookGlossary,
};

/**
 * Render one condition with one template. Deterministic for a given seed.
 *
 * @example
 * ```ts
 * import { renderDocument } from "./render.ts";
 * import { getCondition } from "./knowledge.ts";
 * const text = renderDocument(getCondition("asthma")!, "textbook-paragraph", 1);
 * console.log(text.includes("spirometry")); // true
 * ```
 */
export function renderDocument(
  condition: Condition,
  template: TemplateName,
  seed: number,
  peers: readonly Condition[] = CONDITIONS,
): string {
  return RENDERERS[template](condition, new Rng(seed), peers);
}

/**
 * Extract the template name from an {@link EmbeddedDocument} id, or null if
 * the id does not come from {@link renderCorpus}.
 *
 * @example
 * ```ts
 * import { templateOf } from "./render.ts";
 * console.log(templateOf("embedded/abstract-review/asthma/0")); // "abstract-review"
 * ```
 */
export function templateOf(id: string): TemplateName | null {
  const part = id.split("/")[1];
  return (TEMPLATE_NAMES as readonly string[]).includes(part) ? part as TemplateName : null;
}

/**
 * Render the embedded demo corpus: every condition with every template,
 * `copies` times, with seeded phrasing choices, then shuffled with the same
 * seed. Same seed and options give byte-identical output; different seeds
 * give a different order and phrasing. The default (seed
 * {@link DEFAULT_SEED}, {@link DEFAULT_COPIES} copies) is about 2 MB of text.
 *
 * @example
 * ```ts
 * import { renderCorpus } from "./render.ts";
 * const docs = renderCorpus({ seed: 1, copies: 1 });
 * const jsonl = docs.map((d) => JSON.stringify({ text: d.text, source: d.source, id: d.id })).join("\n");
 * ```
 */
export function renderCorpus(options: RenderOptions = {}): EmbeddedDocument[] {
  const seed = options.seed ?? DEFAULT_SEED;
  const copies = options.copies ?? DEFAULT_COPIES;
  const conditions = options.conditions ?? CONDITIONS;
  const templates = options.templates ?? TEMPLATE_NAMES;
  if (!Number.isInteger(seed)) throw new RangeError(`seed must be an integer, got ${seed}`);
  if (!Number.isInteger(copies) || copies < 1) {
    throw new RangeError(`copies must be a positive integer, got ${copies}`);
  }
  const master = new Rng(seed);
  const docs: EmbeddedDocument[] = [];
  for (let copy = 0; copy < copies; copy++) {
    for (const c of conditions) {
      for (const t of templates) {
        const docSeed = Math.floor(master.float() * 4294967296);
        docs.push({
          id: `embedded/${t}/${c.id}/${copy}`,
          text: RENDERERS[t](c, new Rng(docSeed), conditions),
          source: TEMPLATE_SOURCES[t],
          condition: c.id,
        });
      }
    }
  }
  return master.shuffle(docs);
}
