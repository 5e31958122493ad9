/**
 * `deno task bench fuzz [--cases 10000] [--seed 1]`: a seeded property-based fuzzer over every parser and
 * boundary: safetensors files, Megatron `.idx`, the pickle reader, corpus JSONL lines, YAML run configs,
 * benchmark files (MedQA, MedMCQA, PubMedQA, MMLU), the server's HTTP request bodies (both completion
 * endpoints: any status but 5xx is clean), and the C ABI with random shapes and sizes. Inputs are
 * mutations of valid seeds (bit flips, truncation, splices, random bytes, boundary numbers). A case passes
 * when the input is accepted or rejected with a clean `Error` carrying a message; a `TypeError`/`RangeError`
 * from the runtime (an unhandled shape), a hang past 2 s, or a process crash is a failure. The test suite runs
 * a short seeded pass; interesting inputs found are kept under tests/fuzz/.
 *
 * @module
 */
import { join } from "node:path";
import { parseConfig } from "../models/config.ts";
import { SafetensorsReader } from "../models/safetensors.ts";
import { parseStateDict } from "../models/convert/torch.ts";
import { parseIndex } from "../data/indexed_dataset.ts";
import { parseCorpusJsonl } from "../data/corpus.ts";
import { parseMedQA } from "../eval/benchmarks/medqa.ts";
import { parseMedMCQA } from "../eval/benchmarks/medmcqa.ts";
import { parsePubMedQA } from "../eval/benchmarks/pubmedqa.ts";
import { parseMmlu } from "../eval/benchmarks/mmlu.ts";
import { MeditronError, NativeModel } from "../runtime/mod.ts";
import { BatchEngine, openAiHandler } from "../models/server.ts";
import { templateFor } from "../models/chat.ts";
import { Tokenizer } from "../data/tokenizer.ts";
import { benchMain, defineBench } from "./common.ts";

/** A seeded generator of uniforms in [0, 1) (LCG; enough for mutations). */
function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 4294967296;
}

const enc = new TextEncoder(), dec = new TextDecoder();

/** Mutates bytes: flips, overwrites with boundary values, truncates, duplicates a slice, or random noise. */
export function mutate(seed: Uint8Array, r: () => number): Uint8Array {
  let b = seed.slice();
  const ops = 1 + Math.floor(r() * 4);
  for (let k = 0; k < ops; k++) {
    const op = Math.floor(r() * 6), at = Math.floor(r() * Math.max(1, b.length));
    if (op === 0 && b.length) b[at] ^= 1 << Math.floor(r() * 8);
    else if (op === 1 && b.length) b[at] = [0, 0xff, 0x7f, 0x80, 0x22, 0x5c, 0x0a][Math.floor(r() * 7)];
    else if (op === 2) b = b.slice(0, at);
    else if (op === 3 && b.length) {
      const len = Math.floor(r() * 16);
      const piece = b.slice(at, at + len);
      const out = new Uint8Array(b.length + piece.length);
      out.set(b.subarray(0, at));
      out.set(piece, at);
      out.set(b.subarray(at), at + piece.length);
      b = out;
    } else if (op === 4) b = Uint8Array.from({ length: Math.floor(r() * 64) }, () => Math.floor(r() * 256));
    else if (op === 5 && b.length >= 8) {
      new DataView(b.buffer, b.byteOffset).setUint32(
        Math.min(at - (at % 4), b.length - 4),
        Math.floor(r() * 2 ** 32),
        true,
      );
    }
  }
  return b;
}

/** A fuzz target: valid seeds and a function that must accept or cleanly reject any input. */
interface Target {
  name: string;
  seeds: Uint8Array[];
  run(input: Uint8Array): Promise<void> | void;
}

function safetensorsSeed(): Uint8Array {
  const header = enc.encode(
    JSON.stringify({ w: { dtype: "F32", shape: [2], data_offsets: [0, 8] }, __metadata__: { a: "b" } }),
  );
  const out = new Uint8Array(8 + header.length + 8);
  new DataView(out.buffer).setBigUint64(0, BigInt(header.length), true);
  out.set(header, 8);
  new DataView(out.buffer).setFloat32(8 + header.length, 1.5, true);
  return out;
}

function idxSeed(): Uint8Array {
  // Megatron MMIDIDX: magic, version 1, dtype uint16 (8), 2 sequences, 3 doc_idx entries, sizes, pointers, doc_idx
  const b = new Uint8Array(9 + 8 + 1 + 8 + 8 + 2 * 4 + 2 * 8 + 3 * 8);
  const v = new DataView(b.buffer);
  b.set(enc.encode("MMIDIDX\0\0"), 0);
  v.setBigUint64(9, 1n, true);
  b[17] = 8;
  v.setBigUint64(18, 2n, true);
  v.setBigUint64(26, 3n, true);
  v.setInt32(34, 3, true), v.setInt32(38, 2, true);
  v.setBigInt64(42, 0n, true), v.setBigInt64(50, 6n, true);
  v.setBigInt64(58, 0n, true), v.setBigInt64(66, 1n, true), v.setBigInt64(74, 2n, true);
  return b;
}

// Protocol-2 pickle of {"w": torch._utils._rebuild_tensor_v2(persistent storage, 0, (2,), (1,), False, {})}.
function pickleSeed(): Uint8Array {
  const parts: number[] = [0x80, 0x02, 0x7d, 0x71, 0x00]; // PROTO 2, EMPTY_DICT, BINPUT 0
  const str = (s: string) => [0x58, s.length, 0, 0, 0, ...enc.encode(s)]; // BINUNICODE
  parts.push(...str("w"));
  parts.push(0x63, ...enc.encode("torch._utils\n_rebuild_tensor_v2\n")); // GLOBAL
  parts.push(0x28); // MARK
  parts.push(
    0x28,
    ...str("storage"),
    0x63,
    ...enc.encode("torch\nFloatStorage\n"),
    ...str("0"),
    ...str("cpu"),
    0x4b,
    2,
    0x74,
  ); // MARK..TUPLE
  parts.push(0x51); // BINPERSID
  parts.push(0x4b, 0, 0x4b, 2, 0x85, 0x4b, 1, 0x85, 0x89); // 0, (2,), (1,), False
  parts.push(0x7d); // {}
  parts.push(0x74, 0x52, 0x73, 0x2e); // TUPLE, REDUCE, SETITEM, STOP
  return Uint8Array.from(parts);
}

const MEDQA =
  '{"question": "A 30-year-old man has fever. Which drug?", "answer": "Amoxicillin", "options": {"A": "Amoxicillin", "B": "Warfarin", "C": "Insulin", "D": "Heparin"}, "meta_info": "step1", "answer_idx": "A"}\n';
const MEDMCQA =
  '{"question": "Drug of choice?", "exp": null, "cop": 1, "opa": "a", "opb": "b", "opc": "c", "opd": "d", "subject_name": "Pharmacology", "topic_name": null, "id": "x1", "choice_type": "single"}\n';
const PQA =
  '{"123": {"QUESTION": "Does it work?", "CONTEXTS": ["c1", "c2"], "LABELS": ["A", "B"], "MESHES": [], "YEAR": "2001", "reasoning_required_pred": "yes", "reasoning_free_pred": "yes", "final_decision": "yes", "LONG_ANSWER": "Yes."}}';

const CHAT_BODY =
  '{"model": "m", "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", ' +
  '"content": "First-line treatment of asthma?"}], "max_tokens": 3, "temperature": 0.7, "top_p": 0.9, ' +
  '"stop": ["###"], "n": 1, "seed": 5, "frequency_penalty": 1.0, "presence_penalty": 0, "stream": false}';

/** POSTs the body to its endpoint (chat when it mentions messages); a status below 500 is clean. */
async function serve(handler: (req: Request) => Promise<Response>, body: Uint8Array): Promise<void> {
  const path = dec.decode(body).includes('"messages"') ? "/v1/chat/completions" : "/v1/completions";
  const res = await handler(
    new Request(`http://127.0.0.1${path}`, {
      method: "POST",
      body: body.slice().buffer,
      headers: { "content-type": "application/json" },
    }),
  );
  await res.text();
  if (res.status >= 500) throw new TypeError(`HTTP ${res.status} on ${path}`);
  if (res.status >= 400) throw new Error(`rejected with ${res.status}`);
}

/** All targets; `model` is a small native model for the C ABI target, `lm` one with the Llama-2 vocabulary. */
function targets(dir: string, model: NativeModel, engine: BatchEngine): Target[] {
  const codec = Tokenizer.llama2();
  const handler = openAiHandler({
    engine,
    codec,
    template: templateFor(codec.vocabSize),
    modelName: "m",
    defaultMaxTokens: 4,
  });
  return [
    {
      name: "server request bodies",
      seeds: [enc.encode(CHAT_BODY), enc.encode(CHAT_BODY.replace('"messages"', '"prompt": "Aspirin", "x"'))],
      run: (b) => serve(handler, b),
    },
    {
      name: "safetensors",
      seeds: [safetensorsSeed()],
      run: async (b) => {
        const path = join(dir, "f.safetensors");
        Deno.writeFileSync(path, b);
        using r = await SafetensorsReader.open(path);
        for (const name of r.header.tensors.keys()) await r.readF32(name);
      },
    },
    { name: "indexed .idx", seeds: [idxSeed()], run: (b) => void parseIndex(b, "f.idx", 10) },
    {
      name: "pickle (torch state dict)",
      seeds: [pickleSeed()],
      run: (b) => void parseStateDict(b, "data.pkl"),
    },
    {
      name: "corpus JSONL",
      seeds: [enc.encode('{"text": "a b c", "source": "s", "id": "1"}\n{"text": "d"}\n')],
      run: (b) => void parseCorpusJsonl(dec.decode(b), "c.jsonl"),
    },
    {
      name: "YAML config",
      seeds: [
        enc.encode("preset: tiny\nmodel:\n  dim: 64\n  n_heads: 4\ntrain:\n  steps: 10\n  lr: 1.0e-3\n"),
      ],
      run: (b) => void parseConfig(dec.decode(b), "run.yaml"),
    },
    {
      name: "MedQA JSONL",
      seeds: [enc.encode(MEDQA)],
      run: (b) => void parseMedQA(dec.decode(b), "test.jsonl"),
    },
    {
      name: "MedMCQA",
      seeds: [enc.encode(MEDMCQA)],
      run: (b) => void parseMedMCQA(dec.decode(b), "dev.json"),
    },
    {
      name: "PubMedQA",
      seeds: [enc.encode(PQA)],
      run: (b) =>
        void parsePubMedQA(dec.decode(b), "ori_pqal.json", '{"123": "yes"}', "test_ground_truth.json"),
    },
    {
      name: "MMLU CSV",
      seeds: [enc.encode('"What is x, really?",a,b,c,d,A\nq2,a,b,c,d,B\n')],
      run: (b) => void parseMmlu(dec.decode(b), "anatomy_test.csv", "anatomy"),
    },
    {
      name: "C ABI (random shapes, ids, sizes)",
      seeds: [new Uint8Array(16)],
      run: async (b) => {
        const bytes = new Uint8Array(16);
        bytes.set(b.subarray(0, 16));
        const v = new DataView(bytes.buffer);
        const batch = (v.getUint8(0) % 5) - 1, seq = (v.getUint8(1) % 40) - 2, n = v.getUint8(2) % 90;
        const tokens = Int32Array.from({ length: n }, (_, i) => (v.getInt8(3 + (i % 8)) * 7 + i) % 400);
        const kind = v.getUint8(11) % 4;
        // Segment ids (packed rows) on odd byte 14: non-decreasing for a positive byte 15, else decreasing.
        const segmentIds = v.getUint8(14) & 1
          ? Int32Array.from({ length: n }, (_, i) => (v.getInt8(15) * i) >> 4)
          : undefined;
        if (kind === 0) await model.logits(tokens, batch, seq, segmentIds);
        else if (kind === 1) {
          const lossMask = new Float32Array(n).fill(v.getInt8(12));
          await model.trainStep({
            tokens,
            targets: tokens,
            lossMask,
            segmentIds,
            nMicro: (v.getUint8(13) % 3) - 1,
            batch,
            seq,
          });
        } else if (kind === 2) {
          model.write("model.norm.weight", new Float32Array(n).fill(v.getFloat32(12, true)));
        } else await model.evalLoss(tokens, tokens, new Float32Array(n).fill(1), batch, seq, segmentIds);
      },
    },
  ];
}

const CORPUS = new URL("../tests/fuzz/corpus/", import.meta.url);
const slug = (name: string) => name.replace(/\W+/g, "_").replace(/^_|_$/g, "");

/** The kept corpus of interesting inputs of a target (accepted mutations found by earlier runs). */
function corpusOf(name: string): Uint8Array[] {
  try {
    const dir = new URL(`${slug(name)}/`, CORPUS);
    return [...Deno.readDirSync(dir)].filter((e) => e.isFile).sort((a, b) => a.name.localeCompare(b.name))
      .map((e) => Deno.readFileSync(new URL(e.name, dir)));
  } catch {
    return [];
  }
}

/** Per-target outcome. */
export interface FuzzResult {
  /** Target name. */
  target: string;
  /** Cases run. */
  cases: number;
  /** Accepted inputs. */
  accepted: number;
  /** Clean rejections (an Error with a message). */
  rejected: number;
  /** Unclean failures: TypeError/RangeError/ReferenceError, empty messages, or hangs. */
  crashes: { input: string; error: string }[];
  /** Accepted mutations (inputs that got past validation: the interesting ones to keep). */
  interesting: Uint8Array[];
}

const UNCLEAN = [TypeError, RangeError, ReferenceError, SyntaxError];

/** Runs `cases` inputs per target from `seed`. */
export async function fuzzAll(cases: number, seed: number, dir: string): Promise<FuzzResult[]> {
  using model = await NativeModel.create(
    {
      dim: 16,
      nLayers: 1,
      nHeads: 2,
      nKvHeads: 1,
      ffnDim: 16,
      vocabSize: 300,
      maxSeq: 32,
      normEps: 1e-5,
      ropeTheta: 1e4,
    },
    {
      lr: 1e-3,
      minLr: 1e-4,
      warmupSteps: 1,
      decaySteps: 10,
      beta1: 0.9,
      beta2: 0.95,
      eps: 1e-8,
      weightDecay: 0,
      gradClip: 1,
    },
    { seed: 1, initStd: 0.02 },
  );
  using lm = await NativeModel.create(
    {
      dim: 16,
      nLayers: 1,
      nHeads: 2,
      nKvHeads: 1,
      ffnDim: 16,
      vocabSize: 32000,
      maxSeq: 64,
      normEps: 1e-5,
      ropeTheta: 1e4,
    },
    {
      lr: 0,
      minLr: 0,
      warmupSteps: 0,
      decaySteps: 1,
      beta1: 0.9,
      beta2: 0.95,
      eps: 1e-8,
      weightDecay: 0,
      gradClip: 0,
    },
    { seed: 2, initStd: 0.02 },
  );
  using engine = new BatchEngine(lm, 4);
  const results: FuzzResult[] = [];
  for (const t of targets(dir, model, engine)) {
    const r = rng(seed * 7919 + t.name.length);
    const res: FuzzResult = { target: t.name, cases, accepted: 0, rejected: 0, crashes: [], interesting: [] };
    const seeds = [...t.seeds, ...corpusOf(t.name)];
    for (let i = 0; i < cases; i++) {
      const input = i < seeds.length ? seeds[i] : mutate(seeds[Math.floor(r() * seeds.length)], r);
      const started = performance.now();
      try {
        await t.run(input);
        res.accepted++;
        if (i >= seeds.length && res.interesting.length < 8) res.interesting.push(input);
      } catch (e) {
        const err = e as Error;
        // Clean: our own errors (MeditronError from the library, Error subclasses with a message). Unclean: what
        // the JS runtime throws at an unhandled shape (TypeError, RangeError, a bare JSON SyntaxError…).
        const unclean = !(err instanceof MeditronError) &&
          (UNCLEAN.some((k) => err.constructor === k) || !err.message);
        if (unclean) {
          res.crashes.push({
            input: btoa(String.fromCharCode(...input.slice(0, 4096))),
            error: `${err.name}: ${err.message}`,
          });
        } else res.rejected++;
      }
      if (performance.now() - started > 2000) {
        res.crashes.push({ input: btoa(String.fromCharCode(...input)), error: "hang > 2 s" });
      }
    }
    results.push(res);
  }
  return results;
}

/** Runs the fuzzer, prints a table, saves crashing inputs under tests/fuzz/. */
async function run(v: { cases: number; seed: number; "save-corpus": boolean }): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "meditron-fuzz-" });
  try {
    const results = await fuzzAll(v.cases, v.seed, dir);
    let crashes = 0;
    for (const r of results) {
      crashes += r.crashes.length;
      if (v["save-corpus"]) {
        const dir = new URL(`${slug(r.target)}/`, CORPUS);
        Deno.mkdirSync(dir, { recursive: true });
        const have = corpusOf(r.target).length;
        r.interesting.forEach((b, k) =>
          Deno.writeFileSync(new URL(`input-${String(have + k).padStart(3, "0")}`, dir), b)
        );
      }
      console.log(
        `${
          r.target.padEnd(34)
        } ${r.cases} cases: ${r.accepted} accepted, ${r.rejected} clean rejections, ${r.crashes.length} crashes`,
      );
      if (r.crashes.length) {
        const out = new URL(`../tests/fuzz/crash-${r.target.replace(/\W+/g, "_")}.json`, import.meta.url);
        Deno.writeTextFileSync(out, JSON.stringify(r.crashes.slice(0, 20), null, 2));
        console.log(`  first: ${r.crashes[0].error} (saved to ${out.pathname})`);
      }
    }
    if (crashes) Deno.exit(1);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** `deno task bench fuzz`. */
export const bench = defineBench({
  name: "fuzz",
  measures:
    `Seeded property-based fuzzing of every parser and boundary (safetensors, Megatron .idx, pickle, corpus JSONL,
YAML run configs, MedQA/MedMCQA/PubMedQA/MMLU files, the server's request bodies, the C ABI): mutated valid
seeds must be accepted or rejected with a clean Error. Prints crashes and hangs (> 2 s) per target (exit 1 if
any); crashing inputs are saved to tests/fuzz/crash-*.json.`,
  peer: "none: the criterion is 0 crashes and 0 hangs",
  options: {
    cases: { type: "int", default: 10000, min: 1, help: "cases per target" },
    seed: { type: "int", default: 1, min: 0, help: "seed of the mutations" },
    "save-corpus": {
      type: "boolean",
      help: "keep up to 8 accepted mutated inputs per target under tests/fuzz/",
    },
  },
  run,
});

if (import.meta.main) await benchMain(bench);
