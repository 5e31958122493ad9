// The tokenize job: same bytes for 1 and 2 workers, equal to direct Tokenizer.encode; streaming; errors.
import assert from "node:assert/strict";
import { join } from "node:path";
import {
  parseTokenizeArgs,
  readLines,
  tokenizeJsonl,
  type TokenizeProgress,
} from "../../data/tokenize_job.ts";
import { IndexedDataset } from "../../data/indexed_dataset.ts";
import { Tokenizer } from "../../data/tokenizer.ts";
import { tempDir } from "../helpers.ts";
import { writeBytes } from "./bytes_fixture.ts";

const TEXTS = [
  "Aspirin irreversibly inhibits COX-1.",
  "Métformine 500 mg — naïve café; 糖尿病 🩺 ≥ 7.0% HbA1c",
  "  leading spaces and\n\nnewlines\tand tabs  ",
  "[bib_ref] Smith et al. [/bib_ref] showed [fig_ref] Fig. 2 [/fig_ref].",
  "x".repeat(3000),
  "Short.",
];

function corpusLines(copies: number): string[] {
  const lines: string[] = [];
  for (let c = 0; c < copies; c++) {
    TEXTS.forEach((t, i) =>
      lines.push(JSON.stringify({ id: `${c}-${i}`, text: `${c}: ${t}`, source: "test" }))
    );
  }
  return lines;
}

Deno.test("1 and 2 workers write identical files, equal to Tokenizer.encode per document in input order", async () => {
  using dir = tempDir();
  const input = join(dir.path, "corpus.jsonl");
  // Blank lines, a CRLF line, an empty text (skipped) and no final newline.
  const lines = corpusLines(40);
  lines.splice(7, 0, "");
  lines.splice(20, 0, JSON.stringify({ text: "   " }));
  await Deno.writeTextFile(input, lines.join("\n").replace(lines[3], lines[3] + "\r"));
  const reports = [];
  for (const workers of [1, 2]) {
    const progress: TokenizeProgress[] = [];
    const report = await tokenizeJsonl({
      input,
      outputPrefix: join(dir.path, `w${workers}`),
      workers,
      appendEod: true,
      bracketTokens: true,
      batchBytes: 2000, // many batches, so workers interleave
      onProgress: (p) => progress.push(p),
    });
    reports.push(report);
    assert.equal(report.prefix, join(dir.path, `w${workers}_text_document`));
    assert.equal(report.documents, 240);
    assert.equal(report.skippedEmpty, 1);
    assert.equal(report.dtype, "uint16");
    assert.ok(progress.length > 10, "progress after every batch");
    assert.ok(progress[0].bytes < progress[0].totalBytes, "written while the input is still being read");
    assert.deepEqual(
      progress.map((p) => p.documents),
      progress.map((p) => p.documents).sort((a, b) => a - b),
    );
  }
  const bin1 = await Deno.readFile(`${reports[0].prefix}.bin`),
    bin2 = await Deno.readFile(`${reports[1].prefix}.bin`);
  const idx1 = await Deno.readFile(`${reports[0].prefix}.idx`),
    idx2 = await Deno.readFile(`${reports[1].prefix}.idx`);
  assert.deepEqual(bin1, bin2);
  assert.deepEqual(idx1, idx2);
  const tok = Tokenizer.llama2({ bracketTokens: true });
  const texts = corpusLines(40).map((l) => JSON.parse(l).text as string);
  using ds = IndexedDataset.open(reports[0].prefix);
  assert.equal(ds.count, texts.length);
  texts.forEach((t, i) =>
    assert.deepEqual(Array.from(ds.document(i)), tok.encode(t, { addBos: true, addEos: true }))
  );
  assert.equal(ds.tokens, reports[0].tokens);
  assert.ok(
    Array.from(ds.document(3)).includes(tok.tokenToId("[bib_ref]")!),
    "bracket tokens are whole tokens",
  );
});

Deno.test("options: json key names the output, no BOS, no EOD; gzip input; several inputs", async () => {
  using dir = tempDir();
  const input = join(dir.path, "c.jsonl.gz");
  const body = new TextEncoder().encode(
    TEXTS.map((t) => JSON.stringify({ abstract: t })).join("\n") + "\n",
  );
  const gz = new Uint8Array(
    await new Response(new Blob([body]).stream().pipeThrough(new CompressionStream("gzip"))).arrayBuffer(),
  );
  await Deno.writeFile(input, gz);
  const r = await tokenizeJsonl({
    input,
    outputPrefix: join(dir.path, "pub"),
    workers: 1,
    jsonKey: "abstract",
    addBos: false,
  });
  assert.equal(r.prefix, join(dir.path, "pub_abstract_document"));
  using ds = IndexedDataset.open(r.prefix);
  const tok = Tokenizer.llama2();
  TEXTS.forEach((t, i) =>
    assert.deepEqual(Array.from(ds.document(i)), tok.encode(t, { addBos: false, addEos: false }))
  );
  // Several inputs go into one dataset, in order, with per-input counts.
  const second = join(dir.path, "second.jsonl");
  await Deno.writeTextFile(second, '{"abstract": "Zinc shortens diarrhoea."}\n');
  const both = await tokenizeJsonl({
    input: [second, input],
    outputPrefix: join(dir.path, "both"),
    workers: 2,
    jsonKey: "abstract",
    batchBytes: 10,
  });
  assert.deepEqual(both.documentsPerInput, [1, TEXTS.length]);
  using ds2 = IndexedDataset.open(both.prefix);
  assert.deepEqual(Array.from(ds2.document(0)), tok.encode("Zinc shortens diarrhoea.", { addEos: false }));
  assert.deepEqual(Array.from(ds2.document(TEXTS.length)), tok.encode(TEXTS.at(-1)!, { addEos: false }));
});

Deno.test("malformed input: errors name file:line or the missing field; nothing is left behind", async () => {
  using dir = tempDir();
  const cases: [string, string, RegExp][] = [
    ["bad.jsonl", '{"text": "ok"}\n\n{"text": "broken"\n', /bad\.jsonl:3: malformed JSON/],
    ["array.jsonl", '{"text": "ok"}\n[1, 2]\n', /array\.jsonl:2: expected a JSON object/],
    ["field.jsonl", '{"text": "ok"}\n{"body": "no text"}\n', /field\.jsonl:2: missing string field 'text'/],
    ["empty.jsonl", "\n\n", /empty\.jsonl: no documents/],
  ];
  for (const [name, body, pattern] of cases) {
    const input = join(dir.path, name);
    await Deno.writeTextFile(input, body);
    await assert.rejects(
      () => tokenizeJsonl({ input, outputPrefix: join(dir.path, "out"), workers: 2 }),
      pattern,
    );
  }
  await assert.rejects(
    () => tokenizeJsonl({ input: join(dir.path, "absent.jsonl"), outputPrefix: join(dir.path, "out") }),
    /absent\.jsonl: cannot read input/,
  );
  const left = [...Deno.readDirSync(dir.path)].map((e) => e.name).filter((n) => n.startsWith("out"));
  assert.deepEqual(left, [], "no partial or temporary outputs");
  assert.throws(() => parseTokenizeArgs(["--input", "x.jsonl"]), /--output-prefix/);
  assert.throws(
    () => parseTokenizeArgs(["--input", "x", "--output-prefix", "y", "--workers", "0"]),
    /--workers must be/,
  );
  assert.throws(() => parseTokenizeArgs(["--bogus"]), /bogus/);
  assert.deepEqual(
    parseTokenizeArgs(["--input", "x", "--output-prefix", "y", "--append-eod", "--no-bos", "--workers", "3"]),
    {
      input: "x",
      outputPrefix: "y",
      workers: 3,
      jsonKey: undefined,
      appendEod: true,
      addBos: false,
      bracketTokens: false,
      tokenizerJson: undefined,
      batchBytes: undefined,
    },
  );
});

// Iterates the lines of a file in a child process whose V8 heap is capped at 24 MB: either with readLines
// (streaming) or, as the control that shows the cap binds, by reading the file whole.
async function linesUnderCap(path: string, mode: "stream" | "whole"): Promise<{ ok: boolean; out: string }> {
  const script = `${path}.count.ts`;
  const module = new URL("../../data/tokenize_job.ts", import.meta.url).href;
  await Deno.writeTextFile(
    script,
    `import { readLines } from "${module}";\n` +
      `let n = 0;\n` +
      `if (Deno.args[1] === "whole") n = (await Deno.readTextFile(Deno.args[0])).split("\\n").length - 1;\n` +
      `else for await (const _ of readLines(Deno.args[0])) n++;\n` +
      `console.log(n);\n`,
  );
  const config = new URL("../../deno.json", import.meta.url).pathname;
  const { success, stdout } = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--config", config, "--v8-flags=--max-old-space-size=24", script, path, mode],
    stdout: "piped",
    stderr: "null",
  }).output();
  return { ok: success, out: new TextDecoder().decode(stdout).trim() };
}

Deno.test("the input is streamed: 48 MB of lines read under a 24 MB heap cap; chunk and UTF-8 boundaries", async () => {
  using dir = tempDir();
  const path = join(dir.path, "big.jsonl");
  // Lines of multi-byte text, so chunk boundaries fall inside characters.
  const line = JSON.stringify({ text: "é🩺糖".repeat(2000) + "end" });
  const lineBytes = new TextEncoder().encode(line + "\n");
  const blocks = Math.ceil(48e6 / (lineBytes.length * 100));
  {
    using f = await Deno.open(path, { write: true, create: true });
    const block = new Uint8Array(lineBytes.length * 100);
    for (let i = 0; i < 100; i++) block.set(lineBytes, i * lineBytes.length);
    for (let i = 0; i < blocks; i++) await f.write(block);
  }
  const total = (await Deno.stat(path)).size;
  assert.ok(total >= 48e6);
  let count = 0, lastBytes = 0;
  for await (const { line: got, number, bytesRead } of readLines(path)) {
    count++;
    if (got !== line) assert.fail(`line ${number} differs`);
    assert.ok(bytesRead >= lastBytes);
    lastBytes = bytesRead;
  }
  assert.equal(count, blocks * 100);
  assert.equal(lastBytes, total);
  assert.deepEqual(await linesUnderCap(path, "stream"), { ok: true, out: String(blocks * 100) });
  assert.equal(
    (await linesUnderCap(path, "whole")).ok,
    false,
    "control: reading the file whole exceeds the cap",
  );
});

Deno.test("lines spanning many read chunks: an 8 MB line, a line ending at a 64 KiB boundary, CRLF, no final newline", async () => {
  using dir = tempDir();
  const input = join(dir.path, "long.jsonl");
  const enc = new TextEncoder();
  // Multi-byte words, so read chunks end inside characters; about 8 MB of UTF-8 on one line.
  const words = ["Métformine", "糖尿病", "🩺", "HbA1c", "naïve", "≥7.0%"];
  const parts: string[] = [];
  for (let i = 0, bytes = 0; bytes < 8e6; i++) {
    const w = `${words[i % words.length]}${i % 97}`;
    parts.push(w);
    bytes += enc.encode(w).length + 1;
  }
  const long = parts.join(" ");
  const lines = [JSON.stringify({ text: "first" }), JSON.stringify({ text: long }) + "\r"];
  // Pad the third line so that its "\n" is the last byte of a 64 KiB read chunk.
  const used = enc.encode(lines.join("\n") + "\n").length;
  const bare = enc.encode(JSON.stringify({ text: "" }) + "\n").length;
  const pad = 65536 - ((used + bare) % 65536);
  lines.push(JSON.stringify({ text: "b".repeat(pad) }));
  assert.equal(enc.encode(lines.join("\n") + "\n").length % 65536, 0);
  lines.push(JSON.stringify({ text: "after the boundary" }));
  lines.push(JSON.stringify({ text: "last, no newline" }));
  await Deno.writeTextFile(input, lines.join("\n"));
  const texts = ["first", long, "b".repeat(pad), "after the boundary", "last, no newline"];

  let count = 0;
  for await (const { line, number, invalidUtf8 } of readLines(input)) {
    count++;
    assert.equal(line, lines[number - 1].replace(/\r$/, ""), `line ${number}`);
    assert.equal(invalidUtf8, false);
  }
  assert.equal(count, texts.length);

  const r = await tokenizeJsonl({ input, outputPrefix: join(dir.path, "long"), workers: 1, appendEod: true });
  assert.equal(r.documents, texts.length);
  assert.equal(r.invalidUtf8Lines, 0);
  const tok = Tokenizer.llama2();
  using ds = IndexedDataset.open(r.prefix);
  texts.forEach((t, i) =>
    assert.deepEqual(
      Array.from(ds.document(i)),
      tok.encode(t, { addBos: true, addEos: true }),
      `document ${i}`,
    )
  );
});

Deno.test("invalid UTF-8 lines are counted in the report and tokenized with U+FFFD", async () => {
  using dir = tempDir();
  const input = join(dir.path, "latin1.jsonl");
  await writeBytes(
    input,
    '{"text": "caf',
    0xe9,
    '"}\n{"text": "valid \uFFFD stays"}\n{"text": "na',
    0xef,
    've"}\n',
  );
  const r = await tokenizeJsonl({ input, outputPrefix: join(dir.path, "l"), workers: 1 });
  assert.equal(r.documents, 3);
  assert.equal(r.invalidUtf8Lines, 2, "a valid U+FFFD is not counted");
  const tok = Tokenizer.llama2();
  using ds = IndexedDataset.open(r.prefix);
  ["caf\uFFFD", "valid \uFFFD stays", "na\uFFFDve"].forEach((t, i) =>
    assert.deepEqual(Array.from(ds.document(i)), tok.encode(t, { addBos: true, addEos: false }))
  );
});

Deno.test("an output that is an input (another spelling or a symlink) is refused before reading", async () => {
  using dir = tempDir();
  const input = join(dir.path, "c_text_document.bin");
  const body = '{"text": "keep me"}\n';
  await Deno.writeTextFile(input, body);
  await Deno.symlink(input, join(dir.path, "link.idx"));
  for (
    const [inp, prefix] of [[input, `${dir.path}/missing/../c`], [
      join(dir.path, "link.idx"),
      join(dir.path, "c"),
    ]]
  ) {
    await assert.rejects(
      () => tokenizeJsonl({ input: inp, outputPrefix: prefix, workers: 1 }),
      /--output-prefix .*c_text_document\.(bin|idx) is the same file as --input .*(c_text_document\.bin|link\.idx)/,
    );
  }
  assert.equal(await Deno.readTextFile(input), body);
});
