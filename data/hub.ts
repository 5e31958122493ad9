/**
 * Hugging Face Hub client: resolves `org/name[@revision]` against the hub's HTTP API and downloads files into
 * the cache layout `huggingface_hub` (and so `transformers`) uses, so either side reuses what the other
 * fetched:
 *
 * ```
 * $HF_HUB_CACHE (default $HF_HOME/hub, HF_HOME default ~/.cache/huggingface)
 * └── models--org--name/            (datasets--org--name for datasets)
 *     ├── blobs/<etag>              file contents, named by the LFS sha256 or the git blob sha1
 *     ├── refs/main                 the commit sha of `main` (no trailing newline)
 *     └── snapshots/<sha>/<path>    relative symlinks ../../blobs/<etag>
 * ```
 *
 * Requests: `GET {endpoint}/api/{models|datasets}/{repo}[/revision/{rev}]` for the commit sha and file list;
 * `HEAD {endpoint}/[datasets/]{repo}/resolve/{commit}/{path}` for `X-Repo-Commit`, `X-Linked-Etag` / `ETag`,
 * `X-Linked-Size` / `Content-Length` (read from the first response; relative redirects, i.e. renamed repos,
 * are followed, a redirect to another host is the CDN and only its `Location` is kept); then `GET` of the file,
 * following redirects, with `Range: bytes=N-` to resume a `blobs/<etag>.incomplete`. Environment: `HF_ENDPOINT`,
 * `HF_TOKEN` (else `$HF_TOKEN_PATH` or `$HF_HOME/token`) sent as `Authorization: Bearer`, `HF_HOME`,
 * `HF_HUB_CACHE`, `HF_HUB_OFFLINE=1` (cache only).
 *
 * @example
 * ```ts ignore
 * import { hubSettings, parseRepoRef, snapshotDownload, modelFiles } from "./hub.ts";
 * const ref = parseRepoRef("epfl-llm/meditron-7b", "model")!;
 * const dir = await snapshotDownload(ref, { settings: hubSettings(), select: modelFiles });
 * ```
 *
 * @module
 */

import { dirname, join, relative } from "node:path";
import { createHash } from "node:crypto";
import { syncDir, writeFileAtomic } from "./indexed_dataset.ts";

/**
 * The kind of hub repository.
 *
 * @example
 * ```ts
 * import type { RepoType } from "./hub.ts";
 * const t: RepoType = "dataset";
 * ```
 */
export type RepoType = "model" | "dataset";

/**
 * A repository (and optionally one file in it) at a revision.
 *
 * @example
 * ```ts
 * import type { RepoRef } from "./hub.ts";
 * const r: RepoRef = { type: "model", id: "epfl-llm/meditron-7b", revision: "main", explicitRevision: false };
 * ```
 */
export interface RepoRef {
  /** Model or dataset repository. */
  type: RepoType;
  /** `org/name`. */
  id: string;
  /** Branch, tag or commit sha (default `main`). */
  revision: string;
  /** Whether the revision was written out (`@rev`), which selects `/api/…/revision/{rev}`. */
  explicitRevision: boolean;
  /** A file inside the repository (`hf://` form only). */
  path?: string;
}

/**
 * Where and how to talk to the hub, from the environment by {@linkcode hubSettings}.
 *
 * @example
 * ```ts
 * import type { HubSettings } from "./hub.ts";
 * const s: HubSettings = { endpoint: "https://huggingface.co", cacheDir: "/tmp/hub", offline: false };
 * ```
 */
export interface HubSettings {
  /** Base URL, no trailing slash (`HF_ENDPOINT`, default `https://huggingface.co`). */
  endpoint: string;
  /** Bearer token for gated and private repositories. */
  token?: string;
  /** Where the token came from (for error messages), e.g. `HF_TOKEN`. */
  tokenSource?: string;
  /** The hub cache directory (`HF_HUB_CACHE`, default `$HF_HOME/hub`). */
  cacheDir: string;
  /** `HF_HUB_OFFLINE`: use the cache only. */
  offline: boolean;
}

/**
 * A hub failure with a message meant for the user (gated repository, not found, offline and not cached, …).
 *
 * @example
 * ```ts
 * import { HubError } from "./hub.ts";
 * const e = new HubError("org/name: not found", 404);
 * console.log(e.status); // 404
 * ```
 */
export class HubError extends Error {
  /** HTTP status when the hub answered one. */
  readonly status?: number;
  /**
   * The hub's `X-Error-Code` (`RepoNotFound`, `GatedRepo`, `RevisionNotFound`, `EntryNotFound`), or
   * `Unreachable` (no answer) / `OfflineNotCached` (`HF_HUB_OFFLINE` and not in the cache).
   */
  readonly code?: string;
  /** Creates the error. */
  constructor(message: string, status?: number, code?: string) {
    super(message);
    this.name = "HubError";
    this.status = status;
    this.code = code;
  }
}

const TRUE = new Set(["1", "true", "yes", "on"]);

/**
 * Reads the hub settings from environment variables (`HF_ENDPOINT`, `HF_HOME`, `HF_HUB_CACHE`, `HF_TOKEN`,
 * `HF_TOKEN_PATH`, `HF_HUB_OFFLINE`), as `huggingface_hub` does. `env` defaults to `Deno.env.get`.
 *
 * @example
 * ```ts
 * import { hubSettings } from "./hub.ts";
 * const s = hubSettings((k) => ({ HF_HOME: "/data/hf", HF_HUB_OFFLINE: "1" } as Record<string, string>)[k]);
 * console.log(s.cacheDir, s.offline); // /data/hf/hub true
 * ```
 */
export function hubSettings(env: (key: string) => string | undefined = (k) => Deno.env.get(k)): HubSettings {
  const home = env("HF_HOME") ??
    join(env("XDG_CACHE_HOME") ?? join(env("HOME") ?? ".", ".cache"), "huggingface");
  const cacheDir = env("HF_HUB_CACHE") ?? env("HUGGINGFACE_HUB_CACHE") ?? join(home, "hub");
  const endpoint = (env("HF_ENDPOINT") ?? "https://huggingface.co").replace(/\/+$/, "");
  let token = env("HF_TOKEN")?.trim() || undefined;
  let tokenSource = token ? "HF_TOKEN" : undefined;
  if (!token) {
    const path = env("HF_TOKEN_PATH") ?? join(home, "token");
    try {
      token = Deno.readTextFileSync(path).trim() || undefined;
      tokenSource = token ? path : undefined;
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
  }
  return {
    endpoint,
    token,
    tokenSource,
    cacheDir,
    offline: TRUE.has((env("HF_HUB_OFFLINE") ?? "").toLowerCase()),
  };
}

const NAME = /^[A-Za-z0-9][\w.-]{0,95}$/;
const validName = (s: string) => NAME.test(s) && !s.includes("--") && !s.includes("..") && !/[.-]$/.test(s);
const COMMIT = /^[0-9a-f]{40}$/;
/** A git blob sha1 (regular files) or an LFS sha256: the only names a blob in the cache may have. */
const ETAG = /^(?:[0-9a-f]{40}|[0-9a-f]{64})$/;

/**
 * True for a relative path that stays inside its directory (no empty, `.` or `..` segment, not absolute): what
 * file names from the hub and revision names must be before they become paths in the cache.
 */
function safeRelativePath(p: string): boolean {
  return p !== "" && !p.startsWith("/") && !p.includes("\\") &&
    p.split("/").every((seg) => seg !== "" && seg !== "." && seg !== "..");
}

/**
 * Parses a repository reference, or returns `undefined` when `spec` is not one (so the caller treats it as a
 * local path). Accepted: `org/name`, `org/name@revision`, and `hf://[datasets/]org/name[@revision][/path]`
 * (the `huggingface_hub` file-system form, which can name one file). `type` is the repository type of the
 * plain form.
 *
 * @example
 * ```ts
 * import { parseRepoRef } from "./hub.ts";
 * parseRepoRef("epfl-llm/meditron-7b@v1.0", "model"); // { type: "model", id: "epfl-llm/meditron-7b", revision: "v1.0", … }
 * parseRepoRef("hf://datasets/org/data/train.jsonl", "model")?.path; // "train.jsonl"
 * parseRepoRef("./runs/tiny", "model"); // undefined
 * ```
 */
export function parseRepoRef(spec: string, type: RepoType): RepoRef | undefined {
  if (spec.startsWith("hf://")) {
    let rest = spec.slice(5);
    let t: RepoType = "model";
    if (rest.startsWith("datasets/")) [t, rest] = ["dataset", rest.slice(9)];
    else if (rest.startsWith("models/")) rest = rest.slice(7);
    const parts = rest.split("/");
    if (parts.length < 2) return undefined;
    const [org, nameRev] = parts;
    const at = nameRev.indexOf("@");
    const name = at < 0 ? nameRev : nameRev.slice(0, at);
    const revision = at < 0 ? "main" : decodeURIComponent(nameRev.slice(at + 1));
    if (!validName(org) || !validName(name) || !safeRelativePath(revision)) return undefined;
    const path = parts.slice(2).join("/") || undefined;
    return { type: t, id: `${org}/${name}`, revision, explicitRevision: at >= 0, path };
  }
  const m = /^([^/@]+)\/([^/@]+)(?:@(.+))?$/.exec(spec);
  if (!m || !validName(m[1]) || !validName(m[2]) || (m[3] !== undefined && !safeRelativePath(m[3]))) {
    return undefined;
  }
  return { type, id: `${m[1]}/${m[2]}`, revision: m[3] ?? "main", explicitRevision: m[3] !== undefined };
}

/**
 * The cache folder of a repository: `models--org--name` or `datasets--org--name`.
 *
 * @example
 * ```ts
 * import { repoFolderName } from "./hub.ts";
 * repoFolderName({ type: "dataset", id: "bigbio/med_qa" }); // "datasets--bigbio--med_qa"
 * ```
 */
export function repoFolderName(ref: Pick<RepoRef, "type" | "id">): string {
  return `${ref.type}s--${ref.id.replaceAll("/", "--")}`;
}

/** `ref@rev` for messages. */
function label(ref: RepoRef): string {
  return `${ref.type === "dataset" ? "dataset " : ""}${ref.id}${
    ref.revision === "main" ? "" : `@${ref.revision}`
  }`;
}

/** The hub page of a repository (where its license is accepted). */
function pageUrl(ref: RepoRef, s: HubSettings): string {
  return `${s.endpoint}/${ref.type === "dataset" ? "datasets/" : ""}${ref.id}`;
}

/**
 * The URL of a file: `{endpoint}/[datasets/]{repo}/resolve/{revision}/{path}` (revision percent-encoded,
 * e.g. `refs%2Fconvert%2Fparquet`).
 *
 * @example
 * ```ts
 * import { fileUrl } from "./hub.ts";
 * fileUrl({ type: "model", id: "a/b", revision: "main", explicitRevision: false }, "main", "config.json",
 *   { endpoint: "https://huggingface.co", cacheDir: "", offline: false });
 * // "https://huggingface.co/a/b/resolve/main/config.json"
 * ```
 */
export function fileUrl(ref: RepoRef, revision: string, path: string, s: HubSettings): string {
  const file = path.split("/").map(encodeURIComponent).join("/");
  return `${pageUrl(ref, s)}/resolve/${encodeURIComponent(revision)}/${file}`;
}

function headers(s: HubSettings, url: string, extra: Record<string, string> = {}): Headers {
  const h = new Headers({ "user-agent": "meditron-toolkit (deno)", ...extra });
  // The token goes to the hub only, never to the CDN a download is redirected to.
  if (s.token && new URL(url).origin === new URL(s.endpoint).origin) {
    h.set("authorization", `Bearer ${s.token}`);
  }
  return h;
}

/**
 * Turns an error answer into a message saying what to do. The hub's `X-Error-Code` decides when present, as in
 * huggingface_hub: `RepoNotFound` (also sent with 401 for a repository that does not exist or is private),
 * `GatedRepo`, `RevisionNotFound`, `EntryNotFound`; otherwise the status.
 */
async function httpError(res: Response, ref: RepoRef, what: string, s: HubSettings): Promise<HubError> {
  const body = (await res.text().catch(() => "")).slice(0, 300).trim();
  const code = res.headers.get("x-error-code") ?? undefined;
  const detail = `HTTP ${res.status} for ${what}`;
  const token = s.token
    ? `the token from ${s.tokenSource} was sent`
    : "no token was sent (HF_TOKEN, or 'huggingface-cli login')";
  if (code === "RepoNotFound") {
    return new HubError(
      `${label(ref)}: no such ${ref.type} repository on ${s.endpoint} (${detail}); check the name, ` +
        `and for a private repository the token (${token})`,
      res.status,
      code,
    );
  }
  if (code === "RevisionNotFound" || code === "EntryNotFound") {
    const what2 = code === "RevisionNotFound" ? `revision ${ref.revision}` : "file";
    return new HubError(`${label(ref)}: no such ${what2} (${detail})`, res.status, code);
  }
  if (res.status === 401 || res.status === 403 || code === "GatedRepo") {
    const sent = s.token
      ? `${token} and refused, or its account has not been granted access`
      : "no token was sent";
    return new HubError(
      `${label(ref)} is gated or private (${detail}; ${sent}). To get access: accept the license on ` +
        `${pageUrl(ref, s)} while logged in, create a read token at ${s.endpoint}/settings/tokens, then ` +
        `set HF_TOKEN=hf_… or run 'huggingface-cli login' (which writes $HF_HOME/token)`,
      res.status,
      code ?? "GatedRepo",
    );
  }
  if (res.status === 404) {
    return new HubError(
      `${label(ref)}: not found on ${s.endpoint} (${detail})${body ? `: ${body}` : ""}`,
      404,
    );
  }
  return new HubError(`${label(ref)}: ${detail}${body ? `: ${body}` : ""}`, res.status);
}

/** fetch that names the URL on a connection failure. */
async function request(url: string, init: RequestInit): Promise<Response> {
  try {
    return await fetch(url, init);
  } catch (e) {
    throw new HubError(`cannot reach ${url}: ${(e as Error).message}`, undefined, "Unreachable");
  }
}

/**
 * A repository at a commit: the commit sha and every file path in it.
 *
 * @example
 * ```ts
 * import type { RepoInfo } from "./hub.ts";
 * const i: RepoInfo = { sha: "0".repeat(40), files: ["config.json"] };
 * ```
 */
export interface RepoInfo {
  /** Commit sha the revision points to. */
  sha: string;
  /** `siblings[].rfilename`. */
  files: string[];
}

/**
 * `GET {endpoint}/api/{models|datasets}/{repo}` (or `…/revision/{rev}` for an explicit revision): the commit
 * sha and file list.
 *
 * @example
 * ```ts ignore
 * import { hubSettings, parseRepoRef, repoInfo } from "./hub.ts";
 * const info = await repoInfo(parseRepoRef("epfl-llm/meditron-7b", "model")!, hubSettings());
 * ```
 */
export async function repoInfo(ref: RepoRef, s: HubSettings): Promise<RepoInfo> {
  let url = `${s.endpoint}/api/${ref.type}s/${ref.id}`;
  if (ref.explicitRevision) url += `/revision/${encodeURIComponent(ref.revision)}`;
  const res = await request(url, { headers: headers(s, url) });
  if (!res.ok) throw await httpError(res, ref, url, s);
  const body = await res.json() as { sha?: unknown; siblings?: { rfilename?: unknown }[] };
  if (typeof body.sha !== "string" || !Array.isArray(body.siblings)) {
    throw new HubError(`${url}: the answer has no "sha" and "siblings" (is HF_ENDPOINT a hub?)`);
  }
  const files = body.siblings.map((x) => x.rfilename).filter((f): f is string => typeof f === "string");
  return { sha: body.sha, files };
}

/**
 * What a `HEAD` on a file's resolve URL says.
 *
 * @example
 * ```ts
 * import type { FileMetadata } from "./hub.ts";
 * const m: FileMetadata = { commit: "0".repeat(40), etag: "abc", size: 3, location: "https://…", lfs: false };
 * ```
 */
export interface FileMetadata {
  /** `X-Repo-Commit`. */
  commit?: string;
  /** `X-Linked-Etag` (LFS: the sha256) or `ETag` (git blob sha1), without quotes and `W/`. */
  etag: string;
  /** `X-Linked-Size` or `Content-Length`. */
  size: number;
  /** Where to GET the content: the `Location` of a redirect (CDN) or the resolve URL. */
  location: string;
  /** Whether the file is stored in LFS (`X-Linked-Etag` present): its etag is the content sha256. */
  lfs: boolean;
}

/** `"abc"` / `W/"abc"` → `abc`, as huggingface_hub's `_normalize_etag`. */
function normalizeEtag(etag: string, url: string): string {
  const e = etag.replace(/^W\//, "").replace(/^"|"$/g, "");
  if (!ETAG.test(e)) throw new HubError(`${url}: ETag ${JSON.stringify(etag)} is not a sha1 or sha256`);
  return e;
}

/**
 * `HEAD` of a file with huggingface_hub's semantics: headers are read from the first response; a relative
 * redirect (renamed repository) is followed, an absolute one (the CDN for LFS files) only gives `location`.
 *
 * @example
 * ```ts ignore
 * import { fileMetadata, hubSettings, parseRepoRef } from "./hub.ts";
 * const meta = await fileMetadata(parseRepoRef("a/b", "model")!, "main", "config.json", hubSettings());
 * ```
 */
export async function fileMetadata(
  ref: RepoRef,
  revision: string,
  path: string,
  s: HubSettings,
): Promise<FileMetadata> {
  let url = fileUrl(ref, revision, path, s);
  for (let hop = 0;; hop++) {
    const res = await request(url, {
      method: "HEAD",
      redirect: "manual",
      headers: headers(s, url, { "accept-encoding": "identity" }),
    });
    const location = res.headers.get("location");
    if (res.status >= 300 && res.status < 400 && location && location.startsWith("/") && hop < 5) {
      url = new URL(location, url).href; // renamed repository: same host
      continue;
    }
    if (!(res.ok || (res.status >= 300 && res.status < 400))) throw await httpError(res, ref, url, s);
    const h = res.headers;
    const linked = h.get("x-linked-etag");
    const etag = linked ?? h.get("etag");
    if (!etag) throw new HubError(`${url}: no ETag in the answer (is HF_ENDPOINT a hub?)`);
    const size = Number(h.get("x-linked-size") ?? h.get("content-length"));
    if (!Number.isSafeInteger(size) || size < 0) throw new HubError(`${url}: no file size in the answer`);
    return {
      commit: h.get("x-repo-commit") ?? undefined,
      etag: normalizeEtag(etag, url),
      size,
      location: location ? new URL(location, url).href : url,
      lfs: linked !== null,
    };
  }
}

/** Cache paths of one repository. */
function repoCache(ref: RepoRef, s: HubSettings) {
  const root = join(s.cacheDir, repoFolderName(ref));
  return {
    root,
    blob: (etag: string) => join(root, "blobs", etag),
    snapshot: (sha: string) => join(root, "snapshots", sha),
    ref: (rev: string) => join(root, "refs", rev),
    lock: (etag: string) => join(s.cacheDir, ".locks", repoFolderName(ref), `${etag}.lock`),
  };
}

/**
 * Progress of a download, reported per chunk.
 *
 * @example
 * ```ts
 * import type { DownloadProgress } from "./hub.ts";
 * const p: DownloadProgress = { file: "config.json", bytes: 10, totalBytes: 100, filesDone: 0, files: 3 };
 * ```
 */
export interface DownloadProgress {
  /** The file that just advanced (or finished). */
  file: string;
  /** Bytes of all selected files now present (cached ones included). */
  bytes: number;
  /**
   * Bytes of the files to fetch whose size is known so far (a file's size comes with its HEAD, sent just before
   * its download, at most `concurrency` files ahead).
   */
  totalBytes: number;
  /** Files complete. */
  filesDone: number;
  /** Files selected. */
  files: number;
  /** Set on a retry after a dropped connection. */
  retry?: string;
}

/**
 * Options of {@linkcode snapshotDownload}.
 *
 * @example
 * ```ts
 * import { type SnapshotOptions, modelFiles } from "./hub.ts";
 * const o: SnapshotOptions = { select: modelFiles, concurrency: 4 };
 * ```
 */
export interface SnapshotOptions {
  /** Hub settings (default {@linkcode hubSettings}()). */
  settings?: HubSettings;
  /** Picks the files to fetch from the repository's list (default: all). */
  select?: (files: string[]) => string[];
  /** Files downloaded at once (default 8, as huggingface_hub). */
  concurrency?: number;
  /** Attempts per file when the connection drops mid-file, each resuming with `Range` (default 5). */
  attempts?: number;
  /** Called as bytes arrive. */
  onProgress?: (p: DownloadProgress) => void;
  /** Called once with what will be fetched (or that the cache is used). */
  onPlan?: (message: string) => void;
}

const exists = (p: string) => Deno.lstat(p).then(() => true, () => false);

/** The commit a revision points to in the cache, if known. */
async function cachedCommit(ref: RepoRef, s: HubSettings): Promise<string | undefined> {
  if (COMMIT.test(ref.revision)) return ref.revision;
  try {
    return (await Deno.readTextFile(repoCache(ref, s).ref(ref.revision))).trim();
  } catch {
    return undefined;
  }
}

/**
 * The cached snapshot directory of a revision, or `undefined` when it is not in the cache.
 *
 * @example
 * ```ts ignore
 * import { cachedSnapshot, hubSettings, parseRepoRef } from "./hub.ts";
 * const dir = await cachedSnapshot(parseRepoRef("epfl-llm/meditron-7b", "model")!, hubSettings());
 * ```
 */
export async function cachedSnapshot(ref: RepoRef, s: HubSettings): Promise<string | undefined> {
  const sha = await cachedCommit(ref, s);
  if (!sha) return undefined;
  const dir = repoCache(ref, s).snapshot(sha);
  return (await exists(dir)) ? dir : undefined;
}

/** Runs `work` with an exclusive flock on `path` (the same lock file huggingface_hub's FileLock takes). */
async function withLock<T>(path: string, work: () => Promise<T>): Promise<T> {
  await Deno.mkdir(dirname(path), { recursive: true });
  using f = await Deno.open(path, { read: true, write: true, create: true });
  await f.lock(true);
  try {
    return await work();
  } finally {
    await f.unlock();
  }
}

/** sha256 of the first bytes already in a partial file. */
async function hashPrefix(path: string): Promise<{ hash: ReturnType<typeof createHash>; bytes: number }> {
  const hash = createHash("sha256");
  let bytes = 0;
  try {
    using f = await Deno.open(path, { read: true });
    const buf = new Uint8Array(1 << 20);
    for (let n = await f.read(buf); n !== null; n = await f.read(buf)) {
      hash.update(buf.subarray(0, n));
      bytes += n;
    }
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  return { hash, bytes };
}

/**
 * Downloads one blob to `blobs/<etag>`: into `<etag>.incomplete` (resumed with `Range: bytes=N-` when a
 * previous run or a dropped connection left one), size and, for LFS files, sha256 checked, fsynced, renamed.
 */
async function fetchBlob(
  ref: RepoRef,
  path: string,
  meta: FileMetadata,
  blob: string,
  s: HubSettings,
  attempts: number,
  signal: AbortSignal,
  onBytes: (n: number, retry?: string) => void,
): Promise<void> {
  const part = `${blob}.incomplete`;
  let { hash, bytes } = await hashPrefix(part);
  if (bytes > meta.size) {
    await Deno.remove(part);
    ({ hash, bytes } = { hash: createHash("sha256"), bytes: 0 });
  }
  onBytes(bytes);
  for (let attempt = 1;; attempt++) {
    try {
      if (bytes < meta.size || meta.size === 0) {
        const extra: Record<string, string> = { "accept-encoding": "identity" };
        if (bytes > 0) extra.range = `bytes=${bytes}-`;
        const res = await request(meta.location, { headers: headers(s, meta.location, extra), signal });
        if (!res.ok) throw await httpError(res, ref, `${path} (${meta.location})`, s);
        const resumed = res.status === 206 &&
          new RegExp(`^bytes ${bytes}-`).test(res.headers.get("content-range") ?? `bytes ${bytes}-`);
        if (bytes > 0 && !resumed) {
          // The server ignored Range (or answered another one): start over.
          onBytes(-bytes);
          ({ hash, bytes } = { hash: createHash("sha256"), bytes: 0 });
          await Deno.remove(part).catch(() => {});
        }
        using f = await Deno.open(part, { write: true, create: true, append: true });
        if (res.body) {
          for await (const chunk of res.body) {
            await f.write(chunk); // Deno.FsFile.write on a regular file writes the whole chunk
            hash.update(chunk);
            bytes += chunk.length;
            onBytes(chunk.length);
          }
        }
        await f.sync();
        if (bytes < meta.size) throw new Error(`the connection closed after byte ${bytes}`);
      }
      break;
    } catch (e) {
      // Another file failed (its error is the one reported): stop here, leaving the part file to resume.
      if (signal.aborted) throw e;
      if (e instanceof HubError && e.status !== undefined && e.status < 500) throw e; // 5xx: retried
      if (attempt >= attempts) {
        throw new HubError(
          `${label(ref)}: ${path}: download failed after ${attempts} attempts at byte ${bytes} of ` +
            `${meta.size} (${(e as Error).message}); run again to resume from ${part}`,
        );
      }
      onBytes(0, `${path}: connection lost at byte ${bytes} (${(e as Error).message}); resuming`);
      await new Promise((r) => setTimeout(r, Math.min(200 * 2 ** attempt, 5000)));
    }
  }
  if (bytes !== meta.size) {
    await Deno.remove(part).catch(() => {});
    throw new HubError(`${label(ref)}: ${path}: got ${bytes} bytes, the hub announced ${meta.size}; removed`);
  }
  const digest = hash.digest("hex");
  if (meta.lfs && digest !== meta.etag) {
    await Deno.remove(part).catch(() => {});
    const what = `${label(ref)}: ${path}`;
    throw new HubError(
      `${what}: sha256 ${digest} does not match the hub's ${meta.etag}; the download was removed`,
    );
  }
  await Deno.rename(part, blob);
  syncDir(dirname(blob));
}

/** Points `snapshots/<sha>/<path>` at the blob with a relative symlink, as huggingface_hub does. */
async function linkPointer(pointer: string, blob: string): Promise<void> {
  await Deno.mkdir(dirname(pointer), { recursive: true });
  await Deno.remove(pointer).catch(() => {});
  await Deno.symlink(relative(dirname(pointer), blob), pointer);
}

/**
 * Downloads the selected files of a repository revision into the cache and returns the snapshot directory.
 * Files already in the snapshot are not requested again; with `HF_HUB_OFFLINE` (or when the hub cannot be
 * reached and the revision is cached) the cached snapshot is returned without any request.
 *
 * @example
 * ```ts ignore
 * import { modelFiles, parseRepoRef, snapshotDownload } from "./hub.ts";
 * const dir = await snapshotDownload(parseRepoRef("epfl-llm/meditron-7b", "model")!, { select: modelFiles });
 * ```
 */
export async function snapshotDownload(ref: RepoRef, opts: SnapshotOptions = {}): Promise<string> {
  const s = opts.settings ?? hubSettings();
  const cache = repoCache(ref, s);
  if (s.offline) {
    const dir = await cachedSnapshot(ref, s);
    if (dir) {
      opts.onPlan?.(`${label(ref)}: offline (HF_HUB_OFFLINE), using the cache ${dir}`);
      return dir;
    }
    throw new HubError(
      `${label(ref)} is not in the hub cache ${s.cacheDir} and HF_HUB_OFFLINE is set: download it once ` +
        `with the hub reachable, or unset HF_HUB_OFFLINE`,
      undefined,
      "OfflineNotCached",
    );
  }
  let info: RepoInfo;
  try {
    info = await repoInfo(ref, s);
  } catch (e) {
    const dir = e instanceof HubError && e.status === undefined ? await cachedSnapshot(ref, s) : undefined;
    if (!dir) throw e;
    opts.onPlan?.(`${label(ref)}: ${(e as Error).message}; using the cached snapshot ${dir}`);
    return dir;
  }
  const files = opts.select ? opts.select(info.files) : info.files;
  if (files.length === 0) {
    const some = info.files.slice(0, 20).join(", ") + (info.files.length > 20 ? ", …" : "");
    throw new HubError(`${label(ref)}: none of its ${info.files.length} files is one this needs (${some})`);
  }
  const unsafe = files.find((f) => !safeRelativePath(f));
  if (unsafe !== undefined) {
    throw new HubError(`${label(ref)}: file name ${JSON.stringify(unsafe)} leaves the repo`);
  }
  const snapshot = cache.snapshot(info.sha);
  const todo: string[] = [];
  for (const f of files) if (!(await exists(join(snapshot, f)))) todo.push(f);
  opts.onPlan?.(
    `${label(ref)} (commit ${info.sha.slice(0, 12)}): ${files.length} files, ` +
      `${todo.length === 0 ? "all cached" : `${todo.length} to download`} -> ${snapshot}`,
  );
  const progress: DownloadProgress = {
    file: "",
    bytes: 0,
    totalBytes: 0,
    filesDone: files.length - todo.length,
    files: files.length,
  };
  await pool(todo, opts.concurrency ?? 8, async (f, signal) => {
    // Each file's HEAD just before its download (as hf_hub_download does): a CDN location is used while fresh.
    const meta = await fileMetadata(ref, info.sha, f, s);
    progress.totalBytes += meta.size;
    const blob = cache.blob(meta.etag);
    await Deno.mkdir(dirname(blob), { recursive: true });
    await withLock(cache.lock(meta.etag), async () => {
      if (await exists(blob)) {
        progress.bytes += meta.size;
        return;
      }
      await fetchBlob(ref, f, meta, blob, s, opts.attempts ?? 5, signal, (n, retry) => {
        progress.bytes += n;
        opts.onProgress?.({ ...progress, file: f, retry });
      });
    });
    await linkPointer(join(snapshot, f), blob);
    progress.filesDone++;
    opts.onProgress?.({ ...progress, file: f });
  });
  // The revision's ref last, once every file is in place: an interrupted download never names a snapshot
  // that offline mode would then take as complete.
  if (ref.revision !== info.sha) {
    await Deno.mkdir(dirname(cache.ref(ref.revision)), { recursive: true });
    await writeFileAtomic(cache.ref(ref.revision), new TextEncoder().encode(info.sha));
  }
  return snapshot;
}

/**
 * Maps `items` through `work` with at most `n` in flight; results in input order. The first failure aborts
 * the `signal` the items in flight were given and starts no new one, and it is thrown only once every item in
 * flight has settled: when this rejects, nothing it started is still writing (a caller may then remove the
 * directory it wrote to).
 */
async function pool<T, R>(
  items: readonly T[],
  n: number,
  work: (item: T, signal: AbortSignal) => Promise<R>,
): Promise<R[]> {
  const out = new Array<R>(items.length);
  const abort = new AbortController();
  let next = 0;
  let failure: { error: unknown } | undefined;
  const worker = async () => {
    while (!failure && next < items.length) {
      const i = next++;
      try {
        out[i] = await work(items[i], abort.signal);
      } catch (e) {
        failure ??= { error: e }; // the first failure, not the aborts it caused
        abort.abort();
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(n, items.length) }, worker)); // workers never reject
  if (failure) throw failure.error;
  return out;
}

const TOKENIZER_FILES = [
  "tokenizer.model",
  "tokenizer.json",
  "tokenizer_config.json",
  "special_tokens_map.json",
];

/**
 * The files of a model repository needed to load it: `*.safetensors` (+ `model.safetensors.index.json`),
 * `config.json`, `generation_config.json` and the tokenizer files; PyTorch `*.bin` (+
 * `pytorch_model.bin.index.json`) only when the repository has no safetensors. Top level only.
 *
 * @example
 * ```ts
 * import { modelFiles } from "./hub.ts";
 * modelFiles(["config.json", "model.safetensors", "pytorch_model.bin", "README.md"]);
 * // ["config.json", "model.safetensors"]
 * ```
 */
export function modelFiles(files: string[]): string[] {
  const top = files.filter((f) => !f.includes("/"));
  const safetensors = top.some((f) => f.endsWith(".safetensors"));
  return top.filter((f) =>
    f === "config.json" || f === "generation_config.json" || TOKENIZER_FILES.includes(f) ||
    (safetensors
      ? f.endsWith(".safetensors") || f === "model.safetensors.index.json"
      : f.endsWith(".bin") || f === "pytorch_model.bin.index.json")
  );
}

/**
 * Every file path (relative, `/`-separated) under a snapshot directory, following its symlinks.
 *
 * @example
 * ```ts ignore
 * import { snapshotFiles } from "./hub.ts";
 * const files = await snapshotFiles(snapshotDir); // ["data/validation-00000-of-00001.parquet", …]
 * ```
 */
export async function snapshotFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string, prefix: string) => {
    for await (const e of Deno.readDir(d)) {
      const rel = prefix ? `${prefix}/${e.name}` : e.name;
      const st = await Deno.stat(join(d, e.name)).catch(() => undefined);
      if (st?.isDirectory) await walk(join(d, e.name), rel);
      else if (st?.isFile) out.push(rel);
    }
  };
  await walk(dir, "");
  return out.sort();
}
