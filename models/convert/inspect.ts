/**
 * What is in a weights file or directory: tensor names, shapes, dtypes, sizes and the parameter count, for
 * safetensors files and sets, PyTorch `.bin`/`.pth` files, HF directories, Meta directories and native
 * checkpoints (run dir, checkpoints dir or iter dir; full shapes reassembled from the layout).
 *
 * @module
 */
import { basename, join } from "node:path";
import { readCheckpointMeta, resolveCheckpoint } from "../checkpoint.ts";
import { DTYPE_BYTES, numel } from "../safetensors.ts";
import { allParams, fullShape } from "./layout.ts";
import { MetaCheckpoint } from "./meta.ts";
import { ShardedSafetensors } from "./sharded.ts";
import type { TensorInfo, TensorSource } from "./source.ts";
import { openHfBin, TorchFile } from "./torch.ts";

/** A summary of a model's tensors. */
export interface Inspection {
  /** What was recognised, e.g. `safetensors set`, `native checkpoint (tp 2, pp 1, dp 1)`. */
  kind: string;
  /** Tensors. */
  tensors: TensorInfo[];
  /** Σ elements. */
  parameters: number;
  /** Σ stored bytes. */
  bytes: number;
  /** Extra facts (iteration, architecture…). */
  notes: string[];
}

const isFile = (p: string) => Deno.stat(p).then((s) => s.isFile, () => false);

function summarise(kind: string, tensors: TensorInfo[], notes: string[] = []): Inspection {
  return {
    kind,
    tensors,
    parameters: tensors.reduce((a, t) => a + numel(t.shape), 0),
    bytes: tensors.reduce((a, t) => a + numel(t.shape) * (DTYPE_BYTES[t.dtype] ?? 0), 0),
    notes,
  };
}

function fromSource(
  kind: string,
  open: () => Promise<TensorSource | undefined>,
): Promise<Inspection | undefined> {
  return open().then((s) => {
    if (!s) return undefined;
    using src = s;
    return summarise(kind, src.list());
  });
}

/**
 * Inspects `path` (every tensor header is validated; no tensor data is read).
 *
 * @example
 * ```ts ignore
 * const r = await inspect("Llama-2-7b-hf");
 * console.log(formatInspection(r));
 * ```
 */
export async function inspect(path: string): Promise<Inspection> {
  const st = await Deno.stat(path).catch(() => null);
  if (!st) throw new Error(`${path}: no such file or directory`);
  if (st.isFile) {
    if (path.endsWith(".safetensors")) {
      return (await fromSource("safetensors file", () => ShardedSafetensors.open(path)))!;
    }
    if (/\.(bin|pth|pt)$/.test(path)) return (await fromSource("PyTorch file", () => TorchFile.open(path)))!;
    if (basename(path) === "meta.json") return await inspect(join(path, ".."));
    throw new Error(`${path}: unknown file type (expected .safetensors, .bin, .pth or .pt)`);
  }
  if (await isFile(join(path, "params.json"))) {
    using m = await MetaCheckpoint.open(path);
    return summarise("Meta checkpoint (merged, HF names)", m.list());
  }
  if (
    await isFile(join(path, "model.safetensors.index.json")) || await isFile(join(path, "model.safetensors"))
  ) {
    return (await fromSource("Hugging Face safetensors", () => ShardedSafetensors.open(path)))!;
  }
  const bin = await fromSource("Hugging Face PyTorch .bin", () => openHfBin(path));
  if (bin) return bin;
  const ck = await resolveCheckpoint(path).catch(() => undefined);
  if (!ck) throw new Error(`${path}: no weights found (safetensors, .bin, Meta .pth or a native checkpoint)`);
  const meta = await readCheckpointMeta(ck);
  const m = meta.config.model, t = meta.topology;
  const tensors = allParams(m).map((name) => ({ name, shape: fullShape(m, name), dtype: "F32" }));
  return summarise(
    `native checkpoint (tp ${t.tp}, pp ${t.pp}, dp ${t.dp}${t.zero1 ? ", ZeRO-1" : ""})`,
    tensors,
    [
      `checkpoint ${ck}`,
      `iteration ${meta.iteration}, ${meta.consumed_samples} samples consumed`,
      `shards: ${Object.keys(meta.shards).length} files, ${
        Object.values(meta.shards).reduce((a, s) => a + s.bytes, 0)
      } bytes`,
    ],
  );
}

/**
 * Human units: `1.23 GB`.
 *
 * @example
 * ```ts
 * import { formatBytes } from "./inspect.ts";
 * console.log(formatBytes(13_476_839_424)); // 13.48 GB
 * ```
 */
export function formatBytes(n: number): string {
  const u = ["B", "kB", "MB", "GB", "TB"];
  let i = 0;
  while (n >= 1000 && i < u.length - 1) (n /= 1000, i++);
  return `${i ? n.toFixed(2) : n} ${u[i]}`;
}

/**
 * The report as text lines (one per tensor, then totals).
 *
 * @example
 * ```ts ignore
 * import { formatInspection, inspect } from "./inspect.ts";
 * console.log(formatInspection(await inspect("runs/tiny")));
 * ```
 */
export function formatInspection(r: Inspection): string {
  const width = Math.max(4, ...r.tensors.map((t) => t.name.length));
  const lines = [`${r.kind}`, ...r.notes.map((n) => `  ${n}`)];
  for (const t of r.tensors) {
    const bytes = numel(t.shape) * (DTYPE_BYTES[t.dtype] ?? 0);
    lines.push(
      `${t.name.padEnd(width)}  ${t.dtype.padEnd(4)}  [${t.shape.join(", ")}]  ${formatBytes(bytes)}`,
    );
  }
  lines.push(
    `${r.tensors.length} tensors, ${r.parameters.toLocaleString("en-US")} parameters` +
      (r.parameters >= 1e9
        ? ` (${(r.parameters / 1e9).toFixed(2)} billion)`
        : r.parameters >= 1e6
        ? ` (${(r.parameters / 1e6).toFixed(1)} million)`
        : "") +
      `, ${formatBytes(r.bytes)}`,
  );
  return lines.join("\n");
}
