// A small Hugging Face Hub on 127.0.0.1 for tests: the API (`/api/{models,datasets}/{repo}[/revision/{rev}]`),
// `resolve/{rev}/{path}` with the hub's headers (X-Repo-Commit, ETag = git blob sha1, X-Linked-Etag = sha256
// and X-Linked-Size for LFS files, which redirect (302) to a "CDN" on another origin), Range requests on the
// CDN, gated repositories (401 without the right token), and fault injection (a connection dropped after N
// bytes, a corrupted LFS body).
import { createHash } from "node:crypto";
import { join, relative } from "node:path";

/** A repository served by {@linkcode TestHub}. */
export interface TestRepo {
  type: "model" | "dataset";
  id: string;
  /** path → content. */
  files: Record<string, Uint8Array | string>;
  /** Commit sha (default: derived from the contents). */
  sha?: string;
  /** Extra revision names (e.g. `refs/convert/parquet`) pointing at the same commit, besides `main`. */
  revisions?: string[];
  /**
   * Gated: files answer 401 (`X-Error-Code: GatedRepo`) unless `Authorization: Bearer <token>`; the API stays
   * public, as on the hub.
   */
  token?: string;
  /** Private: everything answers 401 `RepoNotFound` without the token (the hub does not reveal it exists). */
  private?: boolean;
}

/** One request the hub saw. */
export interface SeenRequest {
  method: string;
  path: string;
  range?: string;
  auth?: string;
}

const LFS = /\.(safetensors|bin|parquet|model)$/;
const hex = (algo: string, ...parts: (string | Uint8Array)[]) => {
  const h = createHash(algo);
  for (const p of parts) h.update(p);
  return h.digest("hex");
};
const bytesOf = (v: Uint8Array | string): Uint8Array<ArrayBuffer> =>
  typeof v === "string" ? new TextEncoder().encode(v) : new Uint8Array(v);

/** The hub's answer for a repository that does not exist or that the caller may not see. */
const notFound = () =>
  new Response(`{"error":"Repository Not Found"}`, {
    status: 401,
    headers: { "x-error-code": "RepoNotFound" },
  });

/** A directory's files (recursively) as a {@linkcode TestRepo} file map. */
export async function filesOfDir(dir: string): Promise<Record<string, Uint8Array>> {
  const out: Record<string, Uint8Array> = {};
  const walk = async (d: string) => {
    for await (const e of Deno.readDir(d)) {
      const p = join(d, e.name);
      if (e.isDirectory) await walk(p);
      else out[relative(dir, p)] = await Deno.readFile(p);
    }
  };
  await walk(dir);
  return out;
}

/** The test hub. `url` is the endpoint; `cdn` another origin (localhost) for LFS redirects. */
export class TestHub {
  readonly url: string;
  readonly requests: SeenRequest[] = [];
  /** CDN GETs of this path are cut after `bytes` bytes, `times` times. */
  drop?: { path: string; bytes: number; times: number };
  /** CDN GETs of this path answer 503, `times` times. */
  unavailable?: { path: string; times: number };
  /** CDN GETs of this path serve one byte flipped. */
  corrupt?: string;
  /** CDN GETs of this path answer after `ms` milliseconds. */
  slow?: { path: string; ms: number };
  readonly #server: Deno.HttpServer;
  readonly #repos = new Map<string, TestRepo & { sha: string; revisions: string[] }>();

  constructor() {
    this.#server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, (r) => this.#handle(r));
    this.url = `http://127.0.0.1:${(this.#server.addr as Deno.NetAddr).port}`;
  }

  /** Adds (or replaces) a repository; returns its commit sha. */
  add(repo: TestRepo): string {
    const names = Object.keys(repo.files).sort();
    const sha = repo.sha ?? hex("sha1", repo.id, ...names.flatMap((n) => [n, bytesOf(repo.files[n])]));
    this.#repos.set(`${repo.type}:${repo.id}`, { revisions: [], ...repo, sha });
    return sha;
  }

  #cdn(): string {
    return `http://localhost:${(this.#server.addr as Deno.NetAddr).port}`;
  }

  #handle(req: Request): Response | Promise<Response> {
    const url = new URL(req.url);
    const path = decodeURIComponent(url.pathname);
    this.requests.push({
      method: req.method,
      path: url.pathname,
      range: req.headers.get("range") ?? undefined,
      auth: req.headers.get("authorization") ?? undefined,
    });
    if (path.startsWith("/cdn/")) return this.#serveCdn(req, url.pathname.slice(5));
    const api = /^\/api\/(models|datasets)\/([^/]+\/[^/]+)(?:\/revision\/(.+))?$/.exec(url.pathname);
    if (api) {
      const repo = this.#repos.get(`${api[1].slice(0, -1)}:${api[2]}`);
      if (!repo || (repo.private && !this.#authorized(req, repo))) return notFound();
      const rev = api[3] ? decodeURIComponent(api[3]) : "main";
      if (!this.#revOk(repo, rev)) {
        return new Response(`{"error":"Invalid rev id"}`, {
          status: 404,
          headers: { "x-error-code": "RevisionNotFound" },
        });
      }
      return Response.json({
        id: repo.id,
        sha: repo.sha,
        siblings: Object.keys(repo.files).sort().map((rfilename) => ({ rfilename })),
      });
    }
    const tree = /^\/api\/(models|datasets)\/([^/]+\/[^/]+)\/tree\/([^/]+)$/.exec(url.pathname);
    if (tree) {
      // huggingface_hub ≥ 1 lists files with the tree API (one page here).
      const repo = this.#repos.get(`${tree[1].slice(0, -1)}:${tree[2]}`);
      if (!repo || !this.#revOk(repo, decodeURIComponent(tree[3]))) {
        return new Response("{}", { status: 404 });
      }
      return Response.json(
        Object.keys(repo.files).sort().map((path) => {
          const b = bytesOf(repo.files[path]);
          const lfs = LFS.test(path)
            ? { oid: hex("sha256", b), size: b.length, pointerSize: 134 }
            : undefined;
          return { type: "file", path, size: b.length, oid: hex("sha1", `blob ${b.length}\0`, b), lfs };
        }),
      );
    }
    const m = /^\/(datasets\/)?([^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(url.pathname);
    if (!m) return new Response("not found", { status: 404 });
    const repo = this.#repos.get(`${m[1] ? "dataset" : "model"}:${m[2]}`);
    if (!repo || (repo.private && !this.#authorized(req, repo))) return notFound();
    if (!this.#authorized(req, repo)) {
      return new Response("Access to model is restricted", {
        status: 401,
        headers: { "x-error-code": "GatedRepo" },
      });
    }
    if (!this.#revOk(repo, decodeURIComponent(m[3]))) {
      return new Response("Invalid rev id", { status: 404, headers: { "x-error-code": "RevisionNotFound" } });
    }
    const file = repo.files[decodeURIComponent(m[4])];
    if (file === undefined) {
      return new Response("Entry not found", { status: 404, headers: { "x-error-code": "EntryNotFound" } });
    }
    const body = bytesOf(file);
    const gitSha = hex("sha1", `blob ${body.length}\0`, body);
    const h = new Headers({ "x-repo-commit": repo.sha, "accept-ranges": "bytes" });
    if (LFS.test(m[4])) {
      const sha256 = hex("sha256", body);
      this.#blobs.set(sha256, body);
      h.set("etag", `"${hex("sha1", "pointer", sha256)}"`);
      h.set("x-linked-etag", `"${sha256}"`);
      h.set("x-linked-size", String(body.length));
      h.set("location", `${this.#cdn()}/cdn/${sha256}`);
      h.set("content-length", "0");
      return new Response(null, { status: 302, headers: h });
    }
    h.set("etag", `W/"${gitSha}"`);
    h.set("content-length", String(body.length));
    return new Response(req.method === "HEAD" ? null : body, { status: 200, headers: h });
  }

  readonly #blobs = new Map<string, Uint8Array<ArrayBuffer>>();

  #authorized(req: Request, repo: { token?: string }): boolean {
    return !repo.token || req.headers.get("authorization") === `Bearer ${repo.token}`;
  }

  #revOk(repo: { sha: string; revisions: string[] }, rev: string): boolean {
    return rev === "main" || rev === repo.sha || repo.revisions.includes(rev);
  }

  async #serveCdn(req: Request, key: string): Promise<Response> {
    if (this.slow?.path === key) {
      const ms = this.slow.ms;
      await new Promise<void>((r) => {
        const t = setTimeout(r, ms);
        req.signal.addEventListener("abort", () => (clearTimeout(t), r())); // the client went away
      });
    }
    let body: Uint8Array<ArrayBuffer> | undefined = this.#blobs.get(key);
    if (!body) return new Response("no such blob", { status: 404 });
    if (this.unavailable?.path === key && this.unavailable.times > 0) {
      this.unavailable.times--;
      return new Response("try again", { status: 503 });
    }
    if (this.corrupt === key) {
      body = body.slice();
      body[body.length >> 1] ^= 0xff;
    }
    let start = 0;
    const range = /^bytes=(\d+)-$/.exec(req.headers.get("range") ?? "");
    if (range) start = Number(range[1]);
    if (start > body.length) return new Response(null, { status: 416 });
    const part = body.subarray(start);
    const h = new Headers({ "content-length": String(part.length), "accept-ranges": "bytes" });
    if (range) h.set("content-range", `bytes ${start}-${body.length - 1}/${body.length}`);
    const status = range ? 206 : 200;
    const drop = this.drop;
    if (drop && drop.path === key && drop.times > 0 && part.length > drop.bytes) {
      drop.times--;
      const stream = new ReadableStream<Uint8Array>({
        async pull(c) {
          c.enqueue(part.slice(0, drop.bytes));
          // Time for the server to flush those bytes before the connection is cut, even when it is starved.
          await new Promise((r) => setTimeout(r, 200));
          c.close(); // fewer bytes than Content-Length: the client sees the connection end mid-body
        },
      });
      return new Response(req.method === "HEAD" ? null : stream, { status, headers: h });
    }
    return new Response(req.method === "HEAD" ? null : part, { status, headers: h });
  }

  /** sha256 of a file of a repository (its LFS etag). */
  static sha256(content: Uint8Array | string): string {
    return hex("sha256", bytesOf(content));
  }

  /** git blob sha1 of a file (its non-LFS etag). */
  static gitSha1(content: Uint8Array | string): string {
    const b = bytesOf(content);
    return hex("sha1", `blob ${b.length}\0`, b);
  }

  /** Stops the server. */
  async close(): Promise<void> {
    await this.#server.shutdown();
  }

  /** Stops the server when used with `await using`. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
