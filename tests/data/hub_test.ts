// The hub client against a test hub on 127.0.0.1: huggingface_hub's cache layout, HEAD semantics, resume,
// sha256 rejection, offline mode, gated repositories.
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import {
  HubError,
  type HubSettings,
  hubSettings,
  modelFiles,
  parseRepoRef,
  repoFolderName,
  snapshotDownload,
} from "../../data/hub.ts";
import { tempDir } from "../helpers.ts";
import { TestHub } from "./hub_server.ts";

const bigFile = (n: number) => Uint8Array.from({ length: n }, (_, i) => (i * 131 + (i >> 8)) & 0xff);

const MODEL = {
  "config.json": `{"model_type":"llama"}`,
  "generation_config.json": `{"do_sample":false}`,
  "tokenizer.model": bigFile(300),
  "tokenizer_config.json": "{}",
  "model-00001-of-00002.safetensors": bigFile(200_000),
  "model-00002-of-00002.safetensors": bigFile(1000),
  "model.safetensors.index.json": `{"weight_map":{}}`,
  "pytorch_model.bin": bigFile(500),
  "README.md": "# card",
};

/** Every path under `dir` with its lstat size, sorted: a snapshot of what is on disk. */
async function listTree(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string) => {
    for await (const e of Deno.readDir(d)) {
      const p = join(d, e.name);
      out.push(`${p} ${(await Deno.lstat(p)).size}`);
      if (e.isDirectory) await walk(p);
    }
  };
  await walk(dir);
  return out.sort();
}

function settings(hub: TestHub, cacheDir: string, extra: Partial<HubSettings> = {}): HubSettings {
  return { endpoint: hub.url, cacheDir, offline: false, ...extra };
}

Deno.test("parseRepoRef: org/name[@rev], hf:// with a file, local paths are not repos", () => {
  assert.deepEqual(parseRepoRef("epfl-llm/meditron-7b", "model"), {
    type: "model",
    id: "epfl-llm/meditron-7b",
    revision: "main",
    explicitRevision: false,
  });
  assert.equal(
    parseRepoRef("bigbio/pubmed_qa@refs/convert/parquet", "dataset")?.revision,
    "refs/convert/parquet",
  );
  assert.deepEqual(parseRepoRef("hf://datasets/org/data@v2/sub/train.jsonl", "model"), {
    type: "dataset",
    id: "org/data",
    revision: "v2",
    explicitRevision: true,
    path: "sub/train.jsonl",
  });
  const outside = ["a/b@../../x", "a/b@refs//x", "a/b@./x", "hf://org/n@..%2F..%2Fx/f"];
  for (
    const p of ["./runs/tiny", "/abs/x", "runs/a/b", "a", "../x/y", "a--b/c", "x/y.", "a/b@", ...outside]
  ) {
    assert.equal(parseRepoRef(p, "model"), undefined, p);
  }
  assert.equal(repoFolderName({ type: "dataset", id: "bigbio/med_qa" }), "datasets--bigbio--med_qa");
});

Deno.test("hubSettings: HF_HOME, HF_HUB_CACHE, HF_ENDPOINT, HF_TOKEN and the token file, HF_HUB_OFFLINE", () => {
  using d = tempDir();
  Deno.writeTextFileSync(join(d.path, "token"), "hf_fromfile\n");
  const env = (m: Record<string, string>) => (k: string) => m[k];
  const a = hubSettings(env({ HF_HOME: d.path, HF_ENDPOINT: "http://x:1/", HF_HUB_OFFLINE: "1" }));
  assert.deepEqual(a, {
    endpoint: "http://x:1",
    token: "hf_fromfile",
    tokenSource: join(d.path, "token"),
    cacheDir: join(d.path, "hub"),
    offline: true,
  });
  const b = hubSettings(env({ HF_HOME: d.path, HF_HUB_CACHE: "/c", HF_TOKEN: "hf_env", HOME: "/h" }));
  assert.equal(b.token, "hf_env");
  assert.equal(b.cacheDir, "/c");
  assert.equal(b.endpoint, "https://huggingface.co");
  assert.equal(b.offline, false);
  assert.equal(hubSettings(env({ HOME: "/h" })).cacheDir, "/h/.cache/huggingface/hub");
});

Deno.test("modelFiles: safetensors + config + tokenizer; .bin only without safetensors", () => {
  assert.deepEqual(modelFiles(Object.keys(MODEL)).sort(), [
    "config.json",
    "generation_config.json",
    "model-00001-of-00002.safetensors",
    "model-00002-of-00002.safetensors",
    "model.safetensors.index.json",
    "tokenizer.model",
    "tokenizer_config.json",
  ]);
  assert.deepEqual(
    modelFiles(["config.json", "pytorch_model.bin", "pytorch_model.bin.index.json", "sub/x.bin", "a.txt"]),
    ["config.json", "pytorch_model.bin", "pytorch_model.bin.index.json"],
  );
});

Deno.test("snapshotDownload: huggingface_hub's cache layout, only the needed files, cached files not refetched", async () => {
  await using hub = new TestHub();
  using d = tempDir();
  const sha = hub.add({ type: "model", id: "org/tiny", files: MODEL });
  const s = settings(hub, d.path, { token: "hf_secret", tokenSource: "HF_TOKEN" });
  const events: number[] = [];
  const dir = await snapshotDownload(parseRepoRef("org/tiny", "model")!, {
    settings: s,
    select: modelFiles,
    concurrency: 3,
    onProgress: (p) => events.push(p.bytes),
  });
  const root = join(d.path, "models--org--tiny");
  assert.equal(dir, join(root, "snapshots", sha));
  assert.equal(Deno.readTextFileSync(join(root, "refs", "main")), sha); // no trailing newline
  const want = modelFiles(Object.keys(MODEL));
  assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name).sort(), want.sort());
  for (const f of want) {
    const content = MODEL[f as keyof typeof MODEL];
    const lfs = /\.(safetensors|model)$/.test(f);
    const etag = lfs ? TestHub.sha256(content) : TestHub.gitSha1(content);
    assert.equal(Deno.readLinkSync(join(dir, f)), `../../blobs/${etag}`, f); // relative symlink
    const bytes = typeof content === "string" ? new TextEncoder().encode(content) : content;
    assert.deepEqual(Deno.readFileSync(join(dir, f)), bytes, f);
  }
  assert.equal([...Deno.readDirSync(join(root, "blobs"))].length, want.length);
  assert.ok(
    events.at(-1)! === 200_000 + 1000 + 300 + [...want].reduce((a, f) => {
          const c = MODEL[f as keyof typeof MODEL];
          return typeof c === "string" ? a + new TextEncoder().encode(c).length : a;
        }, 0),
  );
  // HEAD semantics: the CDN redirect was not followed on HEAD; the token never went to the CDN.
  const cdn = hub.requests.filter((r) => r.path.startsWith("/cdn/"));
  assert.ok(cdn.length === 3 && cdn.every((r) => r.method === "GET" && r.auth === undefined));
  assert.ok(
    hub.requests.filter((r) => !r.path.startsWith("/cdn/")).every((r) => r.auth === "Bearer hf_secret"),
  );
  assert.ok(!hub.requests.some((r) => /README|pytorch_model/.test(r.path)));

  hub.requests.length = 0;
  assert.equal(
    await snapshotDownload(parseRepoRef("org/tiny", "model")!, { settings: s, select: modelFiles }),
    dir,
  );
  assert.deepEqual(hub.requests.map((r) => r.path), ["/api/models/org/tiny"]);
});

Deno.test("snapshotDownload: nested paths, datasets, an encoded revision and refs/<revision>", async () => {
  await using hub = new TestHub();
  using d = tempDir();
  const files = {
    "cfg/test/0000.parquet": bigFile(64),
    "cfg/train/0000.parquet": bigFile(32),
    "x.json": "[]",
  };
  const sha = hub.add({ type: "dataset", id: "org/ds", files, revisions: ["refs/convert/parquet"] });
  const ref = parseRepoRef("org/ds@refs/convert/parquet", "dataset")!;
  const dir = await snapshotDownload(ref, {
    settings: settings(hub, d.path),
    select: (f) => f.filter((x) => x.includes("/test/")),
  });
  const root = join(d.path, "datasets--org--ds");
  assert.equal(Deno.readTextFileSync(join(root, "refs", "refs", "convert", "parquet")), sha);
  assert.equal(
    Deno.readLinkSync(join(dir, "cfg/test/0000.parquet")),
    `../../../../blobs/${TestHub.sha256(files["cfg/test/0000.parquet"])}`,
  );
  assert.ok(hub.requests.some((r) => r.path === "/api/datasets/org/ds/revision/refs%2Fconvert%2Fparquet"));
  assert.ok(hub.requests.some((r) => r.path.startsWith("/datasets/org/ds/resolve/")));
  assert.ok(!hub.requests.some((r) => r.path.includes("train")));
  await assert.rejects(
    snapshotDownload(ref, { settings: settings(hub, d.path), select: modelFiles }),
    /dataset org\/ds@refs\/convert\/parquet: none of its 3 files is one this needs \(cfg\/test\/0000.parquet, /,
  );
});

Deno.test("snapshotDownload: a connection dropped mid-file is resumed with Range, in the same run and the next", async () => {
  await using hub = new TestHub();
  using d = tempDir();
  const big = MODEL["model-00001-of-00002.safetensors"];
  hub.add({ type: "model", id: "org/tiny", files: MODEL });
  const key = TestHub.sha256(big);
  const s = settings(hub, d.path);
  const ref = parseRepoRef("org/tiny", "model")!;
  const retries: string[] = [];

  // Next run: the first run gives up after one attempt and leaves the .incomplete file.
  hub.drop = { path: key, bytes: 70_000, times: 1 };
  await assert.rejects(
    snapshotDownload(ref, { settings: s, select: modelFiles, attempts: 1 }),
    (e: Error) => e instanceof HubError && /run again to resume/.test(e.message),
  );
  const part = join(d.path, "models--org--tiny", "blobs", `${key}.incomplete`);
  assert.equal(Deno.statSync(part).size, 70_000);
  assert.ok(!Deno.statSync(join(d.path, "models--org--tiny", "blobs")).isFile);

  // Same run: two drops, resumed twice.
  hub.drop = { path: key, bytes: 50_000, times: 2 };
  hub.requests.length = 0;
  const dir = await snapshotDownload(ref, {
    settings: s,
    select: modelFiles,
    onProgress: (p) => p.retry && retries.push(p.retry),
  });
  assert.deepEqual(Deno.readFileSync(join(dir, "model-00001-of-00002.safetensors")), big);
  const ranges = hub.requests.filter((r) => r.path === `/cdn/${key}`).map((r) => r.range);
  assert.deepEqual(ranges, ["bytes=70000-", "bytes=120000-", "bytes=170000-"]);
  assert.equal(retries.length, 2);
  assert.ok(!(await Deno.stat(part).then(() => true, () => false)));
});

Deno.test("snapshotDownload: a 503 from the CDN is retried", async () => {
  await using hub = new TestHub();
  using d = tempDir();
  hub.add({ type: "model", id: "org/tiny", files: MODEL });
  const key = TestHub.sha256(MODEL["model-00002-of-00002.safetensors"]);
  hub.unavailable = { path: key, times: 2 };
  const retries: string[] = [];
  const dir = await snapshotDownload(parseRepoRef("org/tiny", "model")!, {
    settings: settings(hub, d.path),
    select: modelFiles,
    onProgress: (p) => p.retry && retries.push(p.retry),
  });
  assert.deepEqual(
    Deno.readFileSync(join(dir, "model-00002-of-00002.safetensors")),
    MODEL["model-00002-of-00002.safetensors"],
  );
  assert.equal(retries.length, 2);
  assert.match(retries[0], /HTTP 503/);
});

Deno.test("snapshotDownload: an LFS file whose sha256 does not match is rejected and nothing stays visible", async () => {
  await using hub = new TestHub();
  using d = tempDir();
  hub.add({ type: "model", id: "org/tiny", files: MODEL });
  const key = TestHub.sha256(MODEL["model-00002-of-00002.safetensors"]);
  hub.corrupt = key;
  // Another file still downloading when the corrupt one fails: it is aborted (not left to run its 20 s),
  // and the rejection waits for it to settle.
  hub.slow = { path: TestHub.sha256(MODEL["model-00001-of-00002.safetensors"]), ms: 20_000 };
  const t0 = performance.now();
  await assert.rejects(
    snapshotDownload(parseRepoRef("org/tiny", "model")!, {
      settings: settings(hub, d.path),
      select: modelFiles,
    }),
    (e: Error) => e instanceof HubError && e.message.includes(`does not match the hub's ${key}`),
  );
  assert.ok(performance.now() - t0 < 10_000, "the other download was aborted");
  const after = await listTree(d.path);
  await new Promise((r) => setTimeout(r, 500));
  assert.deepEqual(await listTree(d.path), after, "nothing writes to the cache once the download has failed");
  const blobs = [...Deno.readDirSync(join(d.path, "models--org--tiny", "blobs"))].map((e) => e.name);
  assert.ok(!blobs.some((b) => b.startsWith(key)), blobs.join(","));
  const snap = [...Deno.readDirSync(join(d.path, "models--org--tiny", "snapshots"))][0].name;
  const linked = [...Deno.readDirSync(join(d.path, "models--org--tiny", "snapshots", snap))].map((e) =>
    e.name
  );
  assert.ok(!linked.includes("model-00002-of-00002.safetensors"));
  // The revision's ref is written only once every file is in: offline mode does not take this snapshot.
  assert.ok(!existsSync(join(d.path, "models--org--tiny", "refs", "main")));
  await assert.rejects(
    snapshotDownload(parseRepoRef("org/tiny", "model")!, {
      settings: { ...settings(hub, d.path), offline: true },
    }),
    /is not in the hub cache/,
  );
});

Deno.test("snapshotDownload: a file name that would leave the snapshot is refused before any download", async () => {
  await using hub = new TestHub();
  using d = tempDir();
  hub.add({ type: "model", id: "org/evil", files: { "config.json": "{}", "../../escape.json": "{}" } });
  await assert.rejects(
    snapshotDownload(parseRepoRef("org/evil", "model")!, { settings: settings(hub, d.path) }),
    (e: Error) => e instanceof HubError && /file name "..\/..\/escape.json" leaves the repo/.test(e.message),
  );
  assert.equal(hub.requests.filter((r) => r.path.includes("/resolve/")).length, 0);
  assert.ok(
    !existsSync(join(d.path, "escape.json")) && !existsSync(join(d.path, "models--org--evil", "escape.json")),
  );
});

Deno.test("offline: HF_HUB_OFFLINE uses the cache without a request, and names the repo when it is not cached", async () => {
  await using hub = new TestHub();
  using d = tempDir();
  hub.add({ type: "model", id: "org/tiny", files: MODEL });
  const ref = parseRepoRef("org/tiny", "model")!;
  const dir = await snapshotDownload(ref, { settings: settings(hub, d.path), select: modelFiles });
  hub.requests.length = 0;
  const off = settings(hub, d.path, { offline: true });
  assert.equal(await snapshotDownload(ref, { settings: off }), dir);
  assert.equal(hub.requests.length, 0);
  await assert.rejects(
    snapshotDownload(parseRepoRef("org/other", "model")!, { settings: off }),
    /org\/other is not in the hub cache .* HF_HUB_OFFLINE is set/,
  );
  // An unreachable hub falls back to a cached revision too.
  const down = settings(hub, d.path, { endpoint: "http://127.0.0.1:9" });
  assert.equal(await snapshotDownload(ref, { settings: down }), dir);
  await assert.rejects(
    snapshotDownload(parseRepoRef("org/none", "model")!, { settings: down }),
    /cannot reach/,
  );
});

Deno.test("gated and private repositories: 401 says how to get access; the token (env or $HF_HOME/token) opens them", async () => {
  await using hub = new TestHub();
  using d = tempDir();
  hub.add({ type: "model", id: "meta-llama/Llama-2-7b-hf", files: MODEL, token: "hf_good" });
  const ref = parseRepoRef("meta-llama/Llama-2-7b-hf", "model")!;
  await assert.rejects(
    snapshotDownload(ref, { settings: settings(hub, join(d.path, "hub")) }),
    (e: Error) => {
      assert.ok(e instanceof HubError && e.status === 401);
      for (
        const s of [
          "gated or private",
          "no token was sent",
          "accept the license",
          "HF_TOKEN",
          "huggingface-cli login",
        ]
      ) {
        assert.ok(e.message.includes(s), `${s}: ${e.message}`);
      }
      assert.ok(e.message.includes(`${hub.url}/meta-llama/Llama-2-7b-hf`));
      return true;
    },
  );
  await assert.rejects(
    snapshotDownload(ref, {
      settings: hubSettings((k) => ({ HF_ENDPOINT: hub.url, HF_HOME: d.path, HF_TOKEN: "hf_bad" })[k]),
    }),
    /the token from HF_TOKEN was sent and refused/,
  );
  Deno.writeTextFileSync(join(d.path, "token"), "hf_good");
  const s = hubSettings((k) => ({ HF_ENDPOINT: hub.url, HF_HOME: d.path } as Record<string, string>)[k]);
  const dir = await snapshotDownload(ref, { settings: s, select: modelFiles });
  assert.ok(dir.startsWith(join(d.path, "hub", "models--meta-llama--Llama-2-7b-hf", "snapshots")));
  // A repository that does not exist, or a private one without its token: 401 RepoNotFound, said as such.
  hub.add({ type: "model", id: "org/private", files: MODEL, token: "hf_other", private: true });
  for (const id of ["org/missing", "org/private"]) {
    await assert.rejects(
      snapshotDownload(parseRepoRef(id, "model")!, { settings: s }),
      (e: Error) =>
        e instanceof HubError && e.code === "RepoNotFound" &&
        e.message.includes(`${id}: no such model repository on ${hub.url} (HTTP 401`) &&
        e.message.includes(`the token from ${join(d.path, "token")} was sent`),
    );
  }
  // A file or revision that does not exist.
  await assert.rejects(
    snapshotDownload(parseRepoRef("hf://models/meta-llama/Llama-2-7b-hf/nope.json", "model")!, {
      settings: s,
      select: () => ["nope.json"],
    }),
    /no such file \(HTTP 404/,
  );
  await assert.rejects(
    snapshotDownload(parseRepoRef("org/private@v9", "model")!, { settings: { ...s, token: "hf_other" } }),
    /org\/private@v9: no such revision v9 \(HTTP 404/,
  );
});
