/**
 * Conversion throughput on a synthetic checkpoint of ≥ 1 GB next to `cp` + `sync` of the same bytes (the
 * disk's limit) in the same run, and each conversion's peak RSS (VmHWM of its own process) against the largest
 * tensor. "model MB/s" is the fp32 model size over the wall time (what `cp` of the same bytes would take);
 * "written MB/s" counts every byte the step writes (native checkpoints hold the model plus two AdamW moments).
 * Conversions: HF fp32 → native (model + two zero AdamW moments written), native → HF bf16, and
 * reshard tp 1 → tp 2.
 *
 * Run: `deno task bench convert [--dir DIR] [--layers N]`.
 *
 * @module
 */
import { join } from "node:path";
import { hfToNative, nativeToHf, reshard } from "../models/convert/mod.ts";
import { allParams, fullShape } from "../models/convert/layout.ts";
import { writeShardedSafetensors } from "../models/convert/sharded.ts";
import type { ModelConfig } from "../models/config.ts";
import { benchMain, defineBench } from "./common.ts";

// ~1.34 GB in fp32 with 4 layers; the largest tensor is the 32000 × 2048 embedding (262 MB in fp32).
function benchModel(layers: number): ModelConfig {
  return {
    dim: 2048,
    n_layers: layers,
    n_heads: 16,
    n_kv_heads: 16,
    ffn_dim: 5632,
    vocab_size: 32000,
    max_seq: 2048,
    norm_eps: 1e-5,
    rope_theta: 10000,
    init_std: 0.02,
  };
}

const MB = 1e6;
/** First argument of the internal child process that runs one conversion (not an option of the benchmark). */
const CHILD = "--child";

function peakRss(): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(Deno.readTextFileSync("/proc/self/status"));
  return m ? Number(m[1]) * 1024 : NaN;
}

function dirBytes(dir: string): number {
  let n = 0;
  for (const e of Deno.readDirSync(dir)) {
    const p = join(dir, e.name);
    n += e.isDirectory ? dirBytes(p) : Deno.statSync(p).size;
  }
  return n;
}

async function child(op: string, a: string, b: string): Promise<void> {
  const t0 = performance.now();
  if (op === "hf-to-native") await hfToNative(a, b);
  else if (op === "native-to-hf") await nativeToHf(a, b, { dtype: "BF16" });
  else if (op === "reshard") await reshard(a, b, { tp: 2 });
  else if (op !== "noop") throw new Error(`unknown op ${op}`);
  console.log(JSON.stringify({ seconds: (performance.now() - t0) / 1000, rss: peakRss() }));
}

/** Runs {@linkcode child} in a process of its own (`bench/convert.ts --child OP A B`), so its peak RSS is its own. */
async function runChild(op: string, a: string, b: string): Promise<{ seconds: number; rss: number }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL(import.meta.url).pathname, CHILD, op, a, b],
    stdout: "piped",
    stderr: "inherit",
  }).output();
  if (!out.success) throw new Error(`${op} failed`);
  return JSON.parse(new TextDecoder().decode(out.stdout).trim().split("\n").at(-1)!);
}

async function timed(cmd: string, args: string[]): Promise<number> {
  const t0 = performance.now();
  const out = await new Deno.Command(cmd, { args, stdout: "null", stderr: "inherit" }).output();
  if (!out.success) throw new Error(`${cmd} failed`);
  return (performance.now() - t0) / 1000;
}

/** Runs the benchmark and prints the table. */
async function run(v: { dir?: string; layers: number }): Promise<void> {
  const m = benchModel(v.layers);
  const root = v.dir ?? Deno.makeTempDirSync({ prefix: "meditron-bench-convert-" });
  try {
    const hf = join(root, "hf");
    Deno.mkdirSync(hf, { recursive: true });
    Deno.writeTextFileSync(
      join(hf, "config.json"),
      JSON.stringify({
        architectures: ["LlamaForCausalLM"],
        hidden_size: m.dim,
        intermediate_size: m.ffn_dim,
        num_attention_heads: m.n_heads,
        num_key_value_heads: m.n_kv_heads,
        num_hidden_layers: m.n_layers,
        rms_norm_eps: m.norm_eps,
        vocab_size: m.vocab_size,
        max_position_embeddings: m.max_seq,
        torch_dtype: "float32",
      }),
    );
    const names = allParams(m);
    const size = (n: string) => fullShape(m, n).reduce((a, b) => a * b, 1);
    await writeShardedSafetensors(
      hf,
      names.map((name) => ({ name, shape: fullShape(m, name), dtype: "F32" as const })),
      (name) => {
        const x = new Float32Array(size(name));
        for (let i = 0; i < x.length; i += 1021) x[i] = (i % 97) * 1e-3;
        return Promise.resolve(x);
      },
      { maxShardBytes: 5e9 },
    );
    const inBytes = dirBytes(hf);
    const largest = Math.max(...names.map(size)) * 4;
    console.log(
      `synthetic checkpoint: ${names.length} tensors, ${(inBytes / MB).toFixed(0)} MB fp32, ` +
        `largest tensor ${(largest / MB).toFixed(0)} MB (fp32)`,
    );
    await timed("sync", []); // start every measurement with no dirty pages pending
    const cpSec = await timed("sh", [
      "-c",
      `cp '${hf}/model.safetensors' '${root}/cp.safetensors' && sync '${root}/cp.safetensors'`,
    ]);
    Deno.removeSync(join(root, "cp.safetensors"));
    const base = await runChild("noop", "", "");
    const rows: [string, number, number, number, number][] = [];
    rows.push(["cp + sync (same bytes)", cpSec, inBytes, inBytes, NaN]);
    const ops: [string, string, string][] = [
      ["hf-to-native", hf, join(root, "run")],
      ["native-to-hf", join(root, "run"), join(root, "back")],
      ["reshard", join(root, "run"), join(root, "run-tp2")],
    ];
    for (const [op, a, b] of ops) {
      await timed("sync", []);
      const r = await runChild(op, a, b);
      rows.push([op, r.seconds, inBytes, dirBytes(b), r.rss]);
    }
    console.log(
      "\n| operation | seconds | model MB/s | written MB/s | peak RSS | RSS / largest tensor |\n|---|---|---|---|---|---|",
    );
    for (const [op, s, read, written, rss] of rows) {
      console.log(
        `| ${op} | ${s.toFixed(2)} | ${(read / MB / s).toFixed(0)} | ${(written / MB / s).toFixed(0)} | ${
          Number.isNaN(rss) ? "–" : `${(rss / MB).toFixed(0)} MB`
        } | ${Number.isNaN(rss) ? "–" : (rss / largest).toFixed(2)} |`,
      );
    }
    console.log(
      `\nDeno baseline peak RSS (empty child): ${(base.rss / MB).toFixed(0)} MB; ` +
        `the criterion is peak RSS < 2 × largest tensor = ${(2 * largest / MB).toFixed(0)} MB.`,
    );
  } finally {
    if (!v.dir) Deno.removeSync(root, { recursive: true });
  }
}

/** `deno task bench convert`. */
export const bench = defineBench({
  name: "convert",
  measures:
    `Conversion throughput on a synthetic checkpoint (dim 2048, --layers layers: ~1.34 GB fp32 with 4) and each
conversion's peak RSS (VmHWM of its own process) against the largest tensor: HF fp32 -> native (model plus two
zero AdamW moments written), native -> HF bf16, reshard tp 1 -> tp 2. "model MB/s" is the fp32 model size over
the wall time; "written MB/s" counts every byte the step writes.`,
  peer:
    "cp + sync of the same bytes (the disk's limit), in the same run; criterion: peak RSS < 2 x largest tensor",
  options: {
    dir: {
      type: "string",
      arg: "DIR",
      help: "where to write the checkpoints, kept after (default: a temporary directory, removed after)",
    },
    layers: { type: "int", default: 4, min: 1, help: "layers of the synthetic model" },
  },
  run,
});

if (import.meta.main) {
  if (Deno.args[0] === CHILD) await child(Deno.args[1], Deno.args[2], Deno.args[3]);
  else await benchMain(bench);
}
