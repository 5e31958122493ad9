// Streaming JSONL: lines across chunk boundaries, errors with file:line, atomic writes.
import assert from "node:assert/strict";
import {
  AtomicWriter,
  JsonlError,
  JsonlReader,
  parseJsonlLine,
  stringField,
} from "../../../data/clean/jsonl.ts";
import { tempDir } from "../../helpers.ts";

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
