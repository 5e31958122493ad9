/**
 * The TS binding of libmeditron: the only part of the toolkit that touches `Deno.dlopen`.
 *
 * @example
 * ```ts
 * import { buildInfo } from "@meditron/toolkit/runtime";
 * console.log(await buildInfo());
 * ```
 *
 * @module
 */
export {
  type Device,
  type ModelDims,
  type OptimSettings,
  type Recompute,
  SYMBOLS,
  type Symbols,
  TensorKind,
  type TensorKindName,
  type Topology,
} from "./ffi.ts";
export {
  buildInfo,
  checkDevice,
  distAbort,
  distAllOk,
  distBarrier,
  distFinalize,
  type DistInfo,
  distInit,
  MeditronError,
  native,
  setNumThreads,
} from "./library.ts";
export {
  type InitOptions,
  lrAt,
  NativeModel,
  type ParamMeta,
  type RankInfo,
  type StepResult,
  type TrainBatch,
} from "./model.ts";
export { KvCache } from "./kv.ts";
export { attentionBackward, attentionForward, type AttentionShape } from "./ops.ts";
export { checkSegmentIds } from "./segments.ts";
export {
  buildNative,
  type BuildOptions,
  cudaDefines,
  fetchSources,
  MissingDependencyError,
  SOURCE_FILES,
} from "./build.ts";
