// Megatron MMIDIDX indexed datasets: byte-for-byte layout, reader round trip, corrupt-index errors.
import assert from "node:assert/strict";
import { join } from "node:path";
import {
  documentPrefix,
  IndexedDataset,
  IndexedDatasetWriter,
  optimalDtype,
  resolvePrefix,
  writeIndexedDataset,
} from "../../data/indexed_dataset.ts";
import { mulberry32 } from "../../data/gpt_dataset.ts";
import { tempDir } from "../helpers.ts";

// Three documents: "<s> the </s>", "<s> Hello world! </s>", "<s> </s>".
const DOCS = [[1, 278, 2], [1, 15043, 3186, 29991, 2], [1, 2]];

/** The .idx Megatron's MMapIndexedDataset.Index.writer produces, assembled field by field. */
function handIdx(sizes: number[], dtypeCode: number, itemSize: number): Uint8Array {
  const n = sizes.length;
  const bytes = new Uint8Array(9 + 8 + 1 + 8 + 8 + 4 * n + 8 * n + 8 * (n + 1));
  const v = new DataView(bytes.buffer);
  let o = 0;
  for (const c of "MMIDIDX") v.setUint8(o++, c.charCodeAt(0));
  v.setUint8(o++, 0);
  v.setUint8(o++, 0);
  v.setBigUint64(o, 1n, true); // version
  o += 8;
  v.setUint8(o++, dtypeCode);
  v.setBigUint64(o, BigInt(n), true); // sequence count
  o += 8;
  v.setBigUint64(o, BigInt(n + 1), true); // len(doc_idx)
  o += 8;
  for (const s of sizes) {
    v.setInt32(o, s, true);
    o += 4;
  }
  let pointer = 0;
  for (const s of sizes) {
    v.setBigInt64(o, BigInt(pointer), true);
    o += 8;
    pointer += s * itemSize;
  }
  for (let i = 0; i <= n; i++) {
    v.setBigInt64(o, BigInt(i), true);
    o += 8;
  }
  assert.equal(o, bytes.length);
  return bytes;
}

function handBin(docs: number[][], itemSize: 2 | 4): Uint8Array {
  const tokens = docs.flat();
  const bytes = new Uint8Array(tokens.length * itemSize);
  const v = new DataView(bytes.buffer);
  tokens.forEach((t, i) => itemSize === 2 ? v.setUint16(2 * i, t, true) : v.setInt32(4 * i, t, true));
  return bytes;
}

Deno.test("writer output equals a hand-assembled 3-document Megatron .idx/.bin, byte for byte (uint16, int32)", async () => {
  using dir = tempDir();
  for (const [dtype, code, size] of [["uint16", 8, 2], ["int32", 4, 4]] as const) {
    const prefix = join(dir.path, `three_${dtype}_text_document`);
    const summary = await writeIndexedDataset(prefix, DOCS, dtype);
    assert.deepEqual(summary, { prefix, dtype, documents: 3, tokens: 10 });
    assert.deepEqual(await Deno.readFile(`${prefix}.idx`), handIdx([3, 5, 2], code, size), `${dtype} .idx`);
    assert.deepEqual(await Deno.readFile(`${prefix}.bin`), handBin(DOCS, size), `${dtype} .bin`);
  }
  // Only the final files remain: no temporaries.
  const names = [...Deno.readDirSync(dir.path)].map((e) => e.name).sort();
  assert.deepEqual(names, [
    "three_int32_text_document.bin",
    "three_int32_text_document.idx",
    "three_uint16_text_document.bin",
    "three_uint16_text_document.idx",
  ]);
});

Deno.test("the reader reads hand-assembled files and round-trips random documents", async () => {
  using dir = tempDir();
  const hand = join(dir.path, "hand");
  await Deno.writeFile(`${hand}.idx`, handIdx([3, 5, 2], 8, 2));
  await Deno.writeFile(`${hand}.bin`, handBin(DOCS, 2));
  {
    using ds = IndexedDataset.open(hand);
    assert.equal(ds.dtype, "uint16");
    assert.equal(ds.count, 3);
    assert.equal(ds.tokens, 10);
    assert.deepEqual(Array.from(ds.documentIndex), [0, 1, 2, 3]);
    assert.deepEqual(Array.from(ds.pointers), [0, 6, 16]);
    DOCS.forEach((d, i) => assert.deepEqual(Array.from(ds.document(i)), d));
    assert.deepEqual(Array.from(ds.slice(1, 1, 4)), [15043, 3186, 29991]);
    assert.deepEqual(Array.from(ds.slice(2, 1, 1)), []);
    assert.throws(() => ds.slice(1, 2, 6), /outside sequence 1 of 5 tokens/);
    assert.throws(() => ds.slice(3, 0, 1), /sequence 3 out of range/);
  }
  const rand = mulberry32(7);
  const docs = Array.from(
    { length: 300 },
    () => Array.from({ length: Math.floor(rand() * 50) }, () => Math.floor(rand() * 32000)),
  );
  const prefix = join(dir.path, "random");
  const writer = await IndexedDatasetWriter.create(prefix, { dtype: "uint16", bufferBytes: 1024 });
  await writer.addMany(docs.slice(0, 100).flat(), docs.slice(0, 100).map((d) => d.length));
  for (const d of docs.slice(100)) await writer.add(d);
  await writer.close();
  using ds = IndexedDataset.open(`${prefix}.idx`); // a suffix is accepted
  assert.equal(ds.count, docs.length);
  docs.forEach((d, i) => {
    assert.equal(ds.length(i), d.length);
    assert.deepEqual(Array.from(ds.document(i)), d);
  });
  assert.deepEqual(Array.from(ds.slice(17, 2, 9)), docs[17].slice(2, 9));
});

Deno.test("tokens are read from the .bin on demand, not from a copy loaded at open", async () => {
  using dir = tempDir();
  const prefix = join(dir.path, "live");
  await writeIndexedDataset(prefix, [[10, 11, 12], [20, 21]], "uint16");
  using ds = IndexedDataset.open(prefix);
  assert.deepEqual(Array.from(ds.document(1)), [20, 21]);
  // Rewrite token 21 in place (same length): the reader must see the new value.
  using f = await Deno.open(`${prefix}.bin`, { write: true });
  await f.seek(8, Deno.SeekMode.Start);
  await f.write(Uint8Array.of(99, 0));
  assert.deepEqual(Array.from(ds.document(1)), [20, 99]);
});

Deno.test("prefix resolution, dtype choice and writer errors", async () => {
  using dir = tempDir();
  const out = join(dir.path, "gap");
  await writeIndexedDataset(documentPrefix(out), [[1, 2, 3]], "uint16");
  assert.equal(resolvePrefix(out), `${out}_text_document`);
  assert.equal(resolvePrefix(`${out}_text_document.bin`), `${out}_text_document`);
  assert.equal(resolvePrefix(join(dir.path, "nope")), undefined);
  assert.equal(optimalDtype(32000), "uint16");
  assert.equal(optimalDtype(65499), "uint16");
  assert.equal(optimalDtype(65500), "int32");
  const w = await IndexedDatasetWriter.create(join(dir.path, "bad"), { dtype: "uint16" });
  await assert.rejects(() => w.add([1, 70000]), /token 70000 does not fit uint16/);
  await assert.rejects(() => w.addMany([1, 2, 3], [2]), /lengths sum to 2 but 3 ids/);
  await w.abort();
  assert.ok(![...Deno.readDirSync(dir.path)].some((e) => e.name.startsWith("bad")), "abort leaves nothing");
});

Deno.test("corrupt or inconsistent indices fail with one error naming the file", async () => {
  using dir = tempDir();
  const good = handIdx([3, 5, 2], 8, 2), bin = handBin(DOCS, 2);
  const cases: [string, (idx: Uint8Array) => Uint8Array, Uint8Array, RegExp][] = [
    ["magic", (b) => b.map((x, i) => i === 0 ? 0x4e : x), bin, /not a Megatron MMIDIDX index/],
    ["short", (b) => b.slice(0, 20), bin, /not a Megatron MMIDIDX index/],
    ["version", (b) => b.map((x, i) => i === 9 ? 2 : x), bin, /version 2, expected 1/],
    ["dtype", (b) => b.map((x, i) => i === 17 ? 42 : x), bin, /unknown dtype code 42/],
    [
      "truncated",
      (b) => b.slice(0, b.length - 8),
      bin,
      /94 bytes, but 3 sequences and 4 document-index entries need 102/,
    ],
    ["size", (b) => b.map((x, i) => i === 38 ? 9 : x), bin, /pointer of sequence 2 is 16, expected 24/],
    ["bin-short", (b) => b, bin.slice(0, 18), /describe 20 bytes of tokens but the .bin has 18/],
    ["bin-long", (b) => b, new Uint8Array(22), /describe 20 bytes of tokens but the .bin has 22/],
    ["doc-idx", (b) => b.map((x, i) => i === b.length - 8 ? 2 : x), bin, /document index must end at/],
  ];
  for (const [name, corrupt, binBytes, pattern] of cases) {
    const prefix = join(dir.path, name);
    await Deno.writeFile(`${prefix}.idx`, corrupt(good));
    await Deno.writeFile(`${prefix}.bin`, binBytes);
    assert.throws(
      () => IndexedDataset.open(prefix),
      (e: Error) => {
        assert.match(e.message, pattern, name);
        assert.ok(e.message.startsWith(`${prefix}.idx: `), `${name}: ${e.message}`);
        return true;
      },
    );
  }
  const orphan = join(dir.path, "orphan");
  await Deno.writeFile(`${orphan}.idx`, good);
  assert.throws(() => IndexedDataset.open(orphan), /orphan\.bin: missing data file/);
  assert.throws(() => IndexedDataset.open(join(dir.path, "none")), /none\.idx: no such indexed dataset/);
});
