/**
 * `deno run -A bench/clean.ts [--mb 20] [--near-dedup 0.8]`: cleaning throughput (input MB/s, one core) of
 * `data clean` per source on generated inputs in the real schemas (guideline JSONL, abstracts, S2ORC
 * records with JSON-encoded annotations). No peer runs here: Meditron's Python scripts need their data.
 *
 * @module
 */
import { cleanFile, type CleanSource } from "../data/clean/clean_file.ts";
import { mulberry32 } from "../data/gpt_dataset.ts";
import { benchMain, defineBench } from "./common.ts";

const WORDS = ("patient patients treatment dose daily therapy risk adults children blood pressure diabetes " +
  "insulin metformin aspirin infection antibiotic should be offered to with and the of in for review " +
  "monitor assess symptoms severe mild chronic acute evidence recommendation trial outcome mortality " +
  "hospital care clinical guideline management diagnosis screening follow-up weeks months years")
  .split(" ");

function sentence(rand: () => number, n = 12 + Math.floor(rand() * 14)): string {
  const w = Array.from({ length: n }, () => WORDS[Math.floor(rand() * WORDS.length)]);
  w[0] = w[0][0].toUpperCase() + w[0].slice(1);
  return w.join(" ") + ".";
}

function guideline(rand: () => number, i: number): Record<string, unknown> {
  const lines = ["Skip to main content", `## Introduction`];
  for (let s = 0; s < 6; s++) {
    lines.push(`### Section ${s}`);
    for (let p = 0; p < 4; p++) {
      lines.push(
        `${rand() < 0.3 ? "• " : ""}${sentence(rand)} ${sentence(rand)} [${
          p + 1
        }] (https://example.org/g/${i})`,
      );
    }
    lines.push("| --- | --- |", "");
  }
  lines.push("## References", "1. Smith J. A trial. 2019.");
  return {
    source: ["nice", "who", "cdc", "society"][i % 4],
    title: `Guideline ${i}`,
    url: "https://x",
    raw_text: lines.join("\n"),
  };
}

function abstract(rand: () => number, i: number): Record<string, unknown> {
  const text = Array.from({ length: 8 }, () => sentence(rand)).join(" ") + " [3]";
  return { corpusid: i, title: sentence(rand, 8), abstract: text };
}

function paper(rand: () => number, i: number): Record<string, unknown> {
  let text = "";
  const ann: Record<string, { start: number; end: number; attributes?: Record<string, string> }[]> = {};
  const add = (s: string, type?: string, attributes?: Record<string, string>) => {
    const start = text.length;
    text += s;
    if (type) {
      (ann[type] ??= []).push(
        attributes ? { start, end: text.length, attributes } : { start, end: text.length },
      );
    }
    return start;
  };
  add(sentence(rand, 8), "title");
  add("\n");
  add(Array.from({ length: 6 }, () => sentence(rand)).join(" "), "abstract");
  for (let s = 1; s <= 8; s++) {
    add("\n");
    add(`Section ${s}`, "sectionheader", { n: String(s) });
    for (let p = 0; p < 5; p++) {
      add("\n");
      const start = add(sentence(rand) + " ");
      add(`(Smith ${s}${p})`, "bibref", { ref_id: `b${(s * 5 + p) % 20}` });
      add(" " + sentence(rand) + " ");
      add("Fig. 1", "figureref", { ref_id: "fig_0" });
      add(". " + sentence(rand));
      (ann.paragraph ??= []).push({ start, end: text.length });
    }
  }
  for (let b = 0; b < 20; b++) {
    add("\n");
    const start = add("Smith J. ");
    add(sentence(rand, 10), "bibtitle");
    (ann.bibentry ??= []).push({ start, end: text.length, attributes: { id: `b${b}` } });
    (ann.bibauthor ??= []).push({ start, end: start + 7 });
  }
  add("\n");
  const fig = add("Figure 1: ");
  add(sentence(rand), "figurecaption");
  (ann.figure ??= []).push({ start: fig, end: text.length, attributes: { id: "fig_0" } });
  const annotations: Record<string, string> = {};
  for (const [k, v] of Object.entries(ann)) annotations[k] = JSON.stringify(v);
  return { corpusid: i, content: { text, annotations } };
}

const MAKERS: Record<
  Exclude<CleanSource, "replay">,
  (rand: () => number, i: number) => Record<string, unknown>
> = {
  guidelines: guideline,
  abstracts: abstract,
  papers: paper,
};

/** Writes about `mb` MB of generated `source` records to `path`; returns the size in bytes. */
export async function generate(path: string, source: keyof typeof MAKERS, mb: number): Promise<number> {
  const rand = mulberry32(7);
  const parts: string[] = [];
  let bytes = 0;
  for (let i = 0; bytes < mb * 1e6; i++) {
    const line = JSON.stringify(MAKERS[source](rand, i)) + "\n";
    parts.push(line);
    bytes += line.length;
  }
  await Deno.writeTextFile(path, parts.join(""));
  return (await Deno.stat(path)).size;
}

/** Runs the benchmark. */
async function run({ mb, "near-dedup": nearDedup }: { mb: number; "near-dedup": number }): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "meditron-bench-clean-" });
  try {
    console.log(`data clean throughput, one core, ~${mb} MB generated input per source`);
    for (const source of Object.keys(MAKERS) as (keyof typeof MAKERS)[]) {
      const input = `${dir}/${source}.jsonl`;
      const size = await generate(input, source, mb);
      for (const near of [undefined, nearDedup]) {
        const report = await cleanFile({
          source,
          input,
          output: `${dir}/${source}.clean.jsonl`,
          options: { nearDedup: near === undefined ? undefined : { threshold: near } },
        });
        const label = near === undefined ? "exact dedup" : `+ MinHash ${near}`;
        console.log(
          `  ${source.padEnd(11)} ${label.padEnd(14)} ${(size / 1e6).toFixed(1)} MB, ${report.read} docs → ` +
            `${report.kept} kept: ${report.mbPerSecond.toFixed(1)} MB/s`,
        );
      }
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** `deno task bench clean`. */
export const bench = defineBench({
  name: "clean",
  measures:
    `Input MB/s (one core) of \`data clean\` per source, with exact dedup and then with MinHash near-dedup, on
generated inputs in the real schemas: guideline JSONL, abstracts, S2ORC records with JSON-encoded annotations.`,
  peer: "none: Meditron's Python cleaning scripts need their data, so no peer runs here",
  options: {
    mb: { type: "number", default: 20, min: 0.01, help: "MB of generated input per source" },
    "near-dedup": {
      type: "number",
      default: 0.8,
      min: 0,
      max: 1,
      help: "Jaccard threshold of the MinHash near-dedup pass",
    },
  },
  run,
});

if (import.meta.main) await benchMain(bench);
