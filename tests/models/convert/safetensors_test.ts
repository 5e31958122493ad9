// safetensors: 16-bit float conversions against Python's struct (IEEE half) and bit rules, files from a foreign
// writer (Python struct + json) read by ours, ours checked field by field by Python, offsets past 4 GiB, sharded
// sets, and one clear error per kind of malformed file.
import assert from "node:assert/strict";
import { join } from "node:path";
import { bf16ToF32, f16ToF32, f32ToBf16, f32ToF16 } from "../../../models/convert/dtype.ts";
import {
  INDEX_FILE,
  parseSize,
  ShardedSafetensors,
  writeShardedSafetensors,
} from "../../../models/convert/sharded.ts";
import { encodeHeader, SafetensorsReader, writeSafetensors } from "../../../models/safetensors.ts";
import { tempDir } from "../../helpers.ts";

const havePython = await new Deno.Command("/usr/bin/python3", { args: ["-c", "1"] }).output()
  .then((o) => o.success, () => false);

async function python(code: string, ...args: string[]): Promise<string> {
  const out = await new Deno.Command("/usr/bin/python3", { args: ["-c", code, ...args] }).output();
  const dec = new TextDecoder();
  if (!out.success) throw new Error(dec.decode(out.stderr));
  return dec.decode(out.stdout);
}

Deno.test("bf16: widening is exact and narrowing rounds to nearest even", () => {
  assert.equal(f32ToBf16(1), 0x3f80);
  assert.equal(f32ToBf16(1 + 2 ** -8), 0x3f80); // tie → even (down)
  assert.equal(f32ToBf16(1 + 3 * 2 ** -8), 0x3f82); // tie → even (up)
  assert.equal(f32ToBf16(1 + 2 ** -8 + 2 ** -20), 0x3f81); // above the tie → up
  assert.equal(f32ToBf16(-2), 0xc000);
  assert.equal(f32ToBf16(Infinity), 0x7f80);
  assert.ok(Number.isNaN(bf16ToF32(f32ToBf16(NaN))));
  assert.equal(f32ToBf16(3.4028234663852886e38), 0x7f80); // max float rounds up to inf
  for (let b = 0; b < 0x10000; b++) {
    const v = bf16ToF32(b);
    if (!Number.isNaN(v)) assert.equal(f32ToBf16(v), b, `bits ${b.toString(16)}`);
  }
});

Deno.test("f16: every half round-trips and narrowing matches Python's struct 'e'", {
  ignore: !havePython,
}, async () => {
  for (let b = 0; b < 0x10000; b++) {
    const v = f16ToF32(b);
    if (!Number.isNaN(v)) assert.equal(f32ToF16(v), b, `bits ${b.toString(16)}`);
  }
  const values = Array.from({ length: 2000 }, (_, i) => {
    const f = new Float32Array([(Math.sin(i * 12.9898) * 43758.5453 % 1) * 2 ** ((i % 40) - 26)]);
    return f[0];
  });
  values.push(65519.99, 65520, 2 ** -25, 2 ** -25 * 1.0001, 2 ** -24 * 1.5, 2 ** -24 * 2.5);
  assert.equal(f32ToF16(-0), 0x8000);
  const want: number[] = JSON.parse(
    await python(
      "import json,struct,sys\nv=json.loads(sys.argv[1])\nout=[]\nfor x in v:\n" +
        "  try: out.append(struct.unpack('<H',struct.pack('<e',x))[0])\n" +
        "  except (OverflowError, struct.error): out.append(0x7c00 if x>0 else 0xfc00)\nprint(json.dumps(out))",
      JSON.stringify(values),
    ),
  );
  values.forEach((v, i) => assert.equal(f32ToF16(v), want[i], `value ${v}`));
});

const FOREIGN = `
import json, struct, sys
bf = lambda x: struct.unpack('<I', struct.pack('<f', x))[0] >> 16   # exact for these values
tensors = [
  ("a.f32", "F32", [2, 2], struct.pack('<4f', 1.5, -2.0, 0.25, 3.0)),
  ("b.bf16", "BF16", [3], struct.pack('<3H', bf(1.0), bf(-0.5), bf(256.0))),
  ("c.f16", "F16", [2], struct.pack('<2e', 0.5, -1024.0)),
  ("d.i64", "I64", [2], struct.pack('<2q', -7, 1 << 40)),
  ("e.i32", "I32", [1], struct.pack('<i', -123)),
  ("f.u8", "U8", [3], bytes([0, 7, 255])),
]
header, off, data = {"__metadata__": {"format": "pt", "who": "python"}}, 0, b""
for name, dt, shape, raw in tensors:
  header[name] = {"dtype": dt, "shape": shape, "data_offsets": [off, off + len(raw)]}
  off += len(raw); data += raw
h = json.dumps(header).encode()
open(sys.argv[1], "wb").write(struct.pack('<Q', len(h)) + h + data)
`;

Deno.test(
  "files from a foreign writer (Python struct + json) are read by ours",
  { ignore: !havePython },
  async () => {
    using dir = tempDir();
    const path = join(dir.path, "foreign.safetensors");
    await python(FOREIGN, path);
    using r = await SafetensorsReader.open(path);
    assert.deepEqual(r.header.metadata, { format: "pt", who: "python" });
    assert.deepEqual([...r.header.tensors.keys()], ["a.f32", "b.bf16", "c.f16", "d.i64", "e.i32", "f.u8"]);
    assert.deepEqual(r.header.tensors.get("a.f32")!.shape, [2, 2]);
    assert.deepEqual([...await r.readF32("a.f32")], [1.5, -2, 0.25, 3]);
    assert.deepEqual([...await r.read("b.bf16")], [1, -0.5, 256]);
    assert.deepEqual([...await r.read("c.f16")], [0.5, -1024]);
    assert.deepEqual([...await r.read("d.i64")], [-7, 2 ** 40]);
    assert.deepEqual([...await r.read("e.i32")], [-123]);
    assert.deepEqual([...await r.read("f.u8")], [0, 7, 255]);
    await assert.rejects(() => r.readF32("b.bf16"), /is BF16, expected F32/);
  },
);

const CHECK = `
import json, struct, sys
raw = open(sys.argv[1], "rb").read()
n = struct.unpack('<Q', raw[:8])[0]
h = json.loads(raw[8:8 + n].decode('utf-8'))
data = raw[8 + n:]
out = {"header_len": n, "meta": h.pop("__metadata__", None), "tensors": {}, "data_len": len(data)}
fmt = {"F32": ('f', 4), "BF16": ('H', 2), "F16": ('e', 2)}
for name, e in h.items():
  c, w = fmt[e["dtype"]]
  b, end = e["data_offsets"]
  vals = list(struct.unpack('<%d%s' % ((end - b) // w, c), data[b:end]))
  if e["dtype"] == "BF16": vals = [struct.unpack('<f', struct.pack('<I', v << 16))[0] for v in vals]
  out["tensors"][name] = {"dtype": e["dtype"], "shape": e["shape"], "offsets": [b, end], "values": vals}
print(json.dumps(out))
`;

Deno.test(
  "our files are read field by field by an independent Python reader",
  { ignore: !havePython },
  async () => {
    using dir = tempDir();
    const path = join(dir.path, "ours.safetensors");
    async function* pieces() {
      yield new Float32Array([1, 2]);
      yield new Float32Array([3]);
    }
    await writeSafetensors(path, [
      { name: "x", shape: [2, 2], data: new Float32Array([1.5, -2, 0.25, 3]) },
      { name: "y", shape: [3], data: new Float32Array([1, 1 + 2 ** -8, 1 + 3 * 2 ** -8]), dtype: "BF16" },
      { name: "z", shape: [2], data: new Float32Array([0.5, 1 / 3]), dtype: "F16" },
      { name: "s", shape: [3], data: pieces() },
    ], { format: "pt", step: "7" });
    const got = JSON.parse(await python(CHECK, path));
    assert.equal(got.header_len % 8, 0);
    assert.deepEqual(got.meta, { format: "pt", step: "7" });
    assert.equal(got.data_len, 16 + 6 + 4 + 12);
    assert.deepEqual(got.tensors.x, {
      dtype: "F32",
      shape: [2, 2],
      offsets: [0, 16],
      values: [1.5, -2, 0.25, 3],
    });
    assert.deepEqual(got.tensors.y, {
      dtype: "BF16",
      shape: [3],
      offsets: [16, 22],
      values: [1, 1, 1 + 2 ** -6],
    });
    assert.deepEqual(got.tensors.z.offsets, [22, 26]);
    assert.equal(got.tensors.z.values[1], 0.333251953125); // nearest half to 1/3
    assert.deepEqual(got.tensors.s, { dtype: "F32", shape: [3], offsets: [26, 38], values: [1, 2, 3] });
    using r = await SafetensorsReader.open(path);
    assert.deepEqual([...await r.readRange("x", 1, 2)], [-2, 0.25]);
  },
);

Deno.test("the writer refuses a tensor whose values do not match its shape", async () => {
  using dir = tempDir();
  await assert.rejects(
    () =>
      writeSafetensors(join(dir.path, "bad.safetensors"), [{
        name: "w",
        shape: [3],
        data: new Float32Array(2),
      }]),
    /has 2 values, its shape \[3\] needs 3/,
  );
});

Deno.test("offsets beyond 4 GiB (sparse file) are read exactly", async () => {
  using dir = tempDir();
  const path = join(dir.path, "big.safetensors");
  const big = 5 * 2 ** 30; // 5 GiB of zeros (sparse), then a small tensor
  const { bytes } = encodeHeader(
    [{ name: "pad", shape: [big], dtype: "U8" }, { name: "tail", shape: [4] }],
    {},
  );
  {
    using f = await Deno.open(path, { write: true, create: true });
    await f.write(bytes);
    await f.truncate(bytes.length + big);
    await f.seek(bytes.length + big, Deno.SeekMode.Start);
    await f.write(new Uint8Array(new Float32Array([1, -2, 3.5, 4e30]).buffer));
  }
  using r = await SafetensorsReader.open(path);
  assert.deepEqual(r.header.tensors.get("tail")!.data_offsets, [big, big + 16]);
  assert.deepEqual([...await r.readF32("tail")], [1, -2, 3.5, new Float32Array([4e30])[0]]);
  assert.deepEqual([...await r.readRange("pad", big - 2, 2)], [0, 0]);
});

function rawFile(header: string | Uint8Array, data: Uint8Array, lenOverride?: bigint): Uint8Array {
  const h = typeof header === "string" ? new TextEncoder().encode(header) : header;
  const out = new Uint8Array(8 + h.length + data.length);
  new DataView(out.buffer).setBigUint64(0, lenOverride ?? BigInt(h.length), true);
  out.set(h, 8);
  out.set(data, 8 + h.length);
  return out;
}

Deno.test("malformed files are refused with one clear error each", async () => {
  using dir = tempDir();
  const t = (e: object) => JSON.stringify(e);
  const cases: [string, Uint8Array, RegExp][] = [
    ["tiny", new Uint8Array(3), /not a safetensors file \(3 bytes\)/],
    ["pastEOF", rawFile("{}", new Uint8Array(0), 1000n), /header length 1000 runs past the end/],
    ["json", rawFile("{not json", new Uint8Array(0)), /header is not valid UTF-8 JSON/],
    [
      "utf8",
      rawFile(new Uint8Array([0x7b, 0xff, 0x7d]), new Uint8Array(0)),
      /header is not valid UTF-8 JSON/,
    ],
    ["array", rawFile("[]", new Uint8Array(0)), /header is not a JSON object/],
    [
      "dtype",
      rawFile(t({ w: { dtype: "Q7", shape: [1], data_offsets: [0, 4] } }), new Uint8Array(4)),
      /unknown dtype "Q7"/,
    ],
    [
      "range",
      rawFile(t({ w: { dtype: "F32", shape: [2], data_offsets: [0, 8] } }), new Uint8Array(4)),
      /outside the data/,
    ],
    [
      "size",
      rawFile(t({ w: { dtype: "F32", shape: [3], data_offsets: [0, 8] } }), new Uint8Array(8)),
      /spans 8 bytes, shape × dtype = 12/,
    ],
    [
      "overlap",
      rawFile(
        t({
          a: { dtype: "F32", shape: [2], data_offsets: [0, 8] },
          b: { dtype: "F32", shape: [2], data_offsets: [4, 12] },
        }),
        new Uint8Array(12),
      ),
      /'a' and 'b' overlap/,
    ],
    [
      "gap",
      rawFile(t({ w: { dtype: "F32", shape: [1], data_offsets: [4, 8] } }), new Uint8Array(8)),
      /starts at 4, expected 0/,
    ],
    [
      "trailing",
      rawFile(t({ w: { dtype: "F32", shape: [1], data_offsets: [0, 4] } }), new Uint8Array(8)),
      /data section is 8 bytes but the tensors cover 4/,
    ],
    [
      "meta",
      rawFile(t({ __metadata__: { a: 1 } }), new Uint8Array(0)),
      /__metadata__ must map strings to strings/,
    ],
    [
      "shape",
      rawFile(t({ w: { dtype: "F32", shape: [-1], data_offsets: [0, 4] } }), new Uint8Array(4)),
      /invalid shape/,
    ],
  ];
  for (const [name, bytes, re] of cases) {
    const path = join(dir.path, `${name}.safetensors`);
    Deno.writeFileSync(path, bytes);
    await assert.rejects(() => SafetensorsReader.open(path), (e: Error) => {
      assert.match(e.message, re, name);
      assert.ok(!e.message.includes("\n"), `${name}: one line`);
      assert.ok(e.message.startsWith(path), `${name}: names the file`);
      return true;
    });
  }
});

Deno.test("sharded sets: planned by size, index written, read back, index mismatches refused", async () => {
  using dir = tempDir();
  assert.equal(parseSize("5GB"), 5e9);
  assert.equal(parseSize("2KiB"), 2048);
  assert.throws(() => parseSize("lots"), /invalid size 'lots'/);
  const decls = [
    { name: "a", shape: [10], dtype: "BF16" as const },
    { name: "b", shape: [10], dtype: "BF16" as const },
    { name: "c", shape: [40], dtype: "BF16" as const },
    { name: "d", shape: [3], dtype: "BF16" as const },
  ];
  const values = (name: string, n: number) =>
    Float32Array.from({ length: n }, (_, i) => (name.charCodeAt(0) % 10) + i / 4);
  const files = await writeShardedSafetensors(
    dir.path,
    decls,
    (name) => Promise.resolve(values(name, decls.find((d) => d.name === name)!.shape[0])),
    { maxShardBytes: 45 },
  );
  assert.deepEqual(files, [
    "model-00001-of-00003.safetensors",
    "model-00002-of-00003.safetensors",
    "model-00003-of-00003.safetensors",
    INDEX_FILE,
  ]);
  const index = JSON.parse(Deno.readTextFileSync(join(dir.path, INDEX_FILE)));
  assert.deepEqual(index, {
    metadata: { total_size: 126 },
    weight_map: {
      a: "model-00001-of-00003.safetensors",
      b: "model-00001-of-00003.safetensors",
      c: "model-00002-of-00003.safetensors",
      d: "model-00003-of-00003.safetensors",
    },
  });
  {
    using src = await ShardedSafetensors.open(dir.path);
    assert.deepEqual(src.list().map((t) => [t.name, t.dtype]), [["a", "BF16"], ["b", "BF16"], ["c", "BF16"], [
      "d",
      "BF16",
    ]]);
    assert.deepEqual([...await src.read("c")], [...values("c", 40)]);
  }
  index.weight_map.d = "model-00001-of-00003.safetensors";
  Deno.writeTextFileSync(join(dir.path, INDEX_FILE), JSON.stringify(index));
  await assert.rejects(() => ShardedSafetensors.open(dir.path), /tensor 'd' is not in model-00001-of-00003/);
});
