// Optional cross-check against Python's huggingface_hub (skipped when the module is missing): both download
// the same repository from the test hub; the caches must be identical (paths, relative symlink targets, refs,
// blob names and bytes), and each side reuses a cache the other wrote without downloading again.
// Python: $MEDITRON_HF_PYTHON or python3 (e.g. `python3 -m venv /tmp/hfv && /tmp/hfv/bin/pip install
// huggingface_hub`, then MEDITRON_HF_PYTHON=/tmp/hfv/bin/python).
import assert from "node:assert/strict";
import { join, relative } from "node:path";
import { modelFiles, parseRepoRef, snapshotDownload } from "../../data/hub.ts";
import { tempDir } from "../helpers.ts";
import { TestHub } from "./hub_server.ts";

const PYTHON = Deno.env.get("MEDITRON_HF_PYTHON") ?? "python3";
const hasHub = (() => {
  try {
    return new Deno.Command(PYTHON, { args: ["-c", "import huggingface_hub"], stderr: "null" }).outputSync()
      .success;
  } catch {
    return false;
  }
})();

const FILES = {
  "config.json": `{"model_type":"llama"}`,
  "tokenizer.json": `{"model":{}}`,
  "model.safetensors": Uint8Array.from({ length: 50_000 }, (_, i) => (i * 7) & 0xff),
  "README.md": "card",
};

async function python(hub: TestHub, cache: string, offline = false): Promise<string> {
  const script = `import sys
from huggingface_hub import snapshot_download
print(snapshot_download("org/tiny", allow_patterns=["*.safetensors", "*.json"]))`;
  const out = await new Deno.Command(PYTHON, {
    args: ["-c", script],
    env: {
      HF_ENDPOINT: hub.url,
      HF_HUB_CACHE: cache,
      HF_HUB_OFFLINE: offline ? "1" : "0",
      HF_HUB_DISABLE_TELEMETRY: "1",
      HF_HUB_DISABLE_PROGRESS_BARS: "1",
      HF_HUB_DISABLE_XET: "1",
    },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  assert.ok(out.success, dec.decode(out.stderr));
  return dec.decode(out.stdout).trim().split("\n").at(-1)!;
}

/**
 * Every entry under a repo folder: path, symlink target or content hash. `trees/` (huggingface_hub ≥ 1 caches
 * its file listing there) is left out: it is Python's own, and neither side needs the other's.
 */
function tree(root: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of Deno.readDirSync(d)) {
      const p = join(d, e.name), rel = relative(root, p);
      if (e.isSymlink) out.push(`${rel} -> ${Deno.readLinkSync(p)}`);
      else if (e.isDirectory) walk(p);
      else out.push(`${rel} = ${TestHub.sha256(Deno.readFileSync(p))}`);
    }
  };
  walk(root);
  return out.filter((e) => !e.startsWith("trees/")).sort();
}

Deno.test({
  name: "huggingface_hub (Python) and data/hub.ts write the same cache and reuse each other's",
  ignore: !hasHub,
  fn: async () => {
    await using hub = new TestHub();
    using d = tempDir();
    hub.add({ type: "model", id: "org/tiny", files: FILES });
    const ours = join(d.path, "ours"), theirs = join(d.path, "theirs");
    const ref = parseRepoRef("org/tiny", "model")!;
    const dir = await snapshotDownload(ref, {
      settings: { endpoint: hub.url, cacheDir: ours, offline: false },
      select: modelFiles,
    });
    const pyDir = await python(hub, theirs);
    assert.equal(relative(theirs, pyDir), relative(ours, dir));
    assert.deepEqual(tree(join(ours, "models--org--tiny")), tree(join(theirs, "models--org--tiny")));

    // Python offline on our cache; ours on Python's cache with no file request.
    assert.equal(await python(hub, ours, true), dir);
    hub.requests.length = 0;
    const again = await snapshotDownload(ref, {
      settings: { endpoint: hub.url, cacheDir: theirs, offline: false },
      select: modelFiles,
    });
    assert.equal(again, pyDir);
    assert.deepEqual(hub.requests.map((r) => r.path), ["/api/models/org/tiny"]);
  },
});
