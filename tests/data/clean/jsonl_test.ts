// Streaming JSONL: lines across chunk boundaries, errors with file:line, atomic writes.
import assert from "node:assert/strict";
import {
  AtomicWriter,
  JsonlError,
  JsonlReader,
  parseJsonlLine,
  refuseOverwritingInputs,
  splitLines,
  stringField,
} from "../../../data/clean/jsonl.ts";
import { tempDir } from "../../helpers.ts";
import { writeBytes } from "../bytes_fixture.ts";

Deno.test("JsonlReader: lines split across tiny chunks and multi-byte characters, CRLF, blank lines", async () => {
  using dir = tempDir();
  const path = `${dir.path}/in.jsonl`;
  const records = ["Œdème — ünïcödé ✓ 指南", "plain", "x".repeat(100), "emoji 🩺🫀"].map((text) => ({
    text,
  }));
  await Deno.writeTextFile(
    path,
    records.map((r) => JSON.stringify(r)).join("\r\n") + "\n\n   \n" + '{"text":"last"}',
  );
  for (const chunk of [1, 3, 7, 1 << 20]) {
    const reader = new JsonlReader(path, chunk);
    const got: [number, string][] = [];
    for await (const l of reader) got.push([l.line, parseJsonlLine(l.text, path, l.line).text as string]);
    assert.deepEqual(got, [[1, records[0].text], [2, "plain"], [3, "x".repeat(100)], [4, records[3].text], [
      7,
      "last",
    ]]);
    assert.equal(reader.bytesRead, (await Deno.stat(path)).size);
  }
  await assert.rejects(async () => {
    for await (const _ of new JsonlReader(`${dir.path}/missing.jsonl`)) { /* nothing */ }
  }, /missing\.jsonl: cannot read/);
});

Deno.test("splitLines: every split of the bytes into chunks gives the same lines; CRLF, BOM, invalid UTF-8", async () => {
  const enc = new TextEncoder();
  const bytes = new Uint8Array([
    ...enc.encode("\uFEFFfirst é\r\n\n"), // a BOM, a CRLF line, a blank line
    ...enc.encode("🩺 糖\n"),
    ...enc.encode("bad "),
    0xff,
    0xc3, // a lone lead byte just before the newline
    ...enc.encode("\n\uFEFFkept BOM mid-file\r\n"),
    ...enc.encode("last 🫀"), // no final newline
  ]);
  const expected = [
    { text: "first é", line: 1, invalidUtf8: false },
    { text: "", line: 2, invalidUtf8: false },
    { text: "🩺 糖", line: 3, invalidUtf8: false },
    { text: "bad \uFFFD\uFFFD", line: 4, invalidUtf8: true },
    { text: "\uFEFFkept BOM mid-file", line: 5, invalidUtf8: false },
    { text: "last 🫀", line: 6, invalidUtf8: false },
  ];
  const collect = async (chunks: Uint8Array[]) => {
    const got = [];
    for await (const l of splitLines(chunks)) got.push(l);
    return got;
  };
  assert.deepEqual(await collect([bytes]), expected);
  // Every single cut and every pair of cuts: lines end at, just before and just after chunk boundaries.
  for (let i = 0; i <= bytes.length; i++) {
    assert.deepEqual(await collect([bytes.subarray(0, i), bytes.subarray(i)]), expected, `cut at ${i}`);
    for (let j = i; j <= bytes.length; j += 3) {
      const parts = [bytes.subarray(0, i), bytes.subarray(i, j), bytes.subarray(j)];
      assert.deepEqual(await collect(parts), expected, `cuts at ${i}, ${j}`);
    }
  }
  // One byte at a time; a final newline adds no empty line.
  const ended = new Uint8Array([...bytes, 10]);
  assert.deepEqual(await collect(Array.from(ended, (b) => new Uint8Array([b]))), expected);
  assert.deepEqual(await collect([]), []);
});

Deno.test("JsonlReader counts the lines with invalid UTF-8; valid lines keep their characters", async () => {
  using dir = tempDir();
  const path = `${dir.path}/in.jsonl`;
  // 0xe9: Latin-1 é; 0x80: a continuation byte without a lead byte.
  await writeBytes(
    path,
    '{"text": "ok \uFFFD literal"}\n{"text": "caf',
    0xe9,
    '"}\n{"text": "x',
    0x80,
    0x80,
    '"}\n',
  );
  for (const chunk of [1, 5, 1 << 20]) {
    const reader = new JsonlReader(path, chunk);
    const texts: string[] = [];
    for await (const l of reader) texts.push(parseJsonlLine(l.text, path, l.line).text as string);
    assert.deepEqual(texts, ["ok \uFFFD literal", "caf\uFFFD", "x\uFFFD\uFFFD"]);
    assert.equal(reader.invalidUtf8Lines, 2, "a valid U+FFFD is not counted");
  }
});

Deno.test("refuseOverwritingInputs: the same file by another spelling or a symlink is refused", async () => {
  using dir = tempDir();
  const input = `${dir.path}/raw.jsonl`;
  await Deno.writeTextFile(input, "{}\n");
  await Deno.symlink(input, `${dir.path}/link.jsonl`);
  const cwd = Deno.cwd();
  try {
    Deno.chdir(dir.path);
    for (
      const output of [
        input,
        `${dir.path}/./raw.jsonl`,
        `${dir.path}/sub/../raw.jsonl`,
        "raw.jsonl",
        "./link.jsonl",
      ]
    ) {
      await assert.rejects(
        () =>
          refuseOverwritingInputs([["--papers", "other.jsonl"], ["--input", "./raw.jsonl"]], [[
            "--output",
            output,
          ]]),
        (e: Error) => {
          assert.equal(
            e.message,
            `--output ${output} is the same file as --input ./raw.jsonl: writing it would replace the input`,
          );
          return true;
        },
      );
    }
    // New files, in existing or missing directories, are fine.
    await refuseOverwritingInputs([["--input", input]], [["--output", "clean.jsonl"], [
      "--report",
      "new/dir/r.json",
    ]]);
  } finally {
    Deno.chdir(cwd);
  }
  assert.equal(await Deno.readTextFile(input), "{}\n");
});

Deno.test("parseJsonlLine and stringField: errors name the file, the line and the field", () => {
  assert.throws(() => parseJsonlLine('{"text": "a"', "data/g.jsonl", 17), (e: unknown) => {
    assert.ok(e instanceof JsonlError);
    assert.match(e.message, /^data\/g\.jsonl:17: malformed JSON \(/);
    assert.equal(e.kind, "bad_line");
    return true;
  });
  assert.throws(
    () => parseJsonlLine("[1, 2]", "g.jsonl", 2),
    /^JsonlError: g\.jsonl:2: expected a JSON object$/,
  );
  assert.throws(() => stringField({ text: 5 }, ["raw_text", "text"], "g.jsonl", 3), (e: unknown) => {
    assert.ok(e instanceof JsonlError);
    assert.equal(e.message, "g.jsonl:3: missing string field 'raw_text' or 'text'");
    assert.equal(e.kind, "missing_field");
    return true;
  });
  assert.equal(stringField({ raw_text: null, text: "t" }, ["raw_text", "text"], "g", 1), "", "null is empty");
});

Deno.test("AtomicWriter: nothing at the path until commit; abort removes the temporary file", async () => {
  using dir = tempDir();
  const path = `${dir.path}/sub/out.jsonl`;
  const w = await AtomicWriter.open(path);
  await w.write("a\n");
  await assert.rejects(Deno.stat(path), Deno.errors.NotFound);
  await w.commit();
  assert.equal(await Deno.readTextFile(path), "a\n");
  const w2 = await AtomicWriter.open(path);
  await w2.write("partial");
  await w2.abort();
  assert.equal(await Deno.readTextFile(path), "a\n", "previous output untouched");
  assert.deepEqual([...Deno.readDirSync(`${dir.path}/sub`)].map((e) => e.name), ["out.jsonl"]);
  const big = await AtomicWriter.open(`${dir.path}/big.txt`);
  const line = "y".repeat(999) + "\n";
  for (let i = 0; i < 10_000; i++) await big.write(line); // crosses the flush threshold several times
  await big.commit();
  assert.equal((await Deno.stat(`${dir.path}/big.txt`)).size, 10_000_000);
  assert.equal(big.bytesWritten, 10_000_000);
});
