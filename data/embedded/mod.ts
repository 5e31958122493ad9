/**
 * The embedded default corpus of the Meditron toolkit: a small structured
 * medical knowledge base ({@link CONDITIONS}) and a deterministic renderer
 * ({@link renderCorpus}) that turns it into guideline-, abstract- and
 * textbook-style documents for `deno task pretrain` with no arguments.
 *
 * Demo corpus for testing the toolkit only; not medical advice
 * (see {@link DISCLAIMER}).
 *
 * @example
 * ```ts
 * import { CONDITIONS, renderCorpus } from "./mod.ts";
 * const docs = renderCorpus({ seed: 1 });
 * console.log(CONDITIONS.length, docs.length);
 * ```
 *
 * @module
 */

export {
  type Condition,
  CONDITIONS,
  conditionsBySystem,
  conditionsOfSystems,
  DISCLAIMER,
  getCondition,
  type OrganSystem,
  SYSTEM_INFO,
  type SystemInfo,
  SYSTEMS,
} from "./knowledge.ts";
export {
  DEFAULT_COPIES,
  DEFAULT_SEED,
  type EmbeddedDocument,
  type EmbeddedSource,
  mulberry32,
  renderCorpus,
  renderDocument,
  type RenderOptions,
  TEMPLATE_NAMES,
  TEMPLATE_SOURCES,
  type TemplateName,
  templateOf,
} from "./render.ts";
