// A static file server on 127.0.0.1 for the tests that import the package, or fetch its sources, over http://.
import { join, normalize } from "node:path";

/** A running server of `root`'s files; `url` ends with a slash. Shuts down with `await using`. */
export interface StaticServer extends AsyncDisposable {
  /** `http://127.0.0.1:PORT/`. */
  url: string;
}

/** Serves the files under `root` (read-only) on a free loopback port; .ts as application/typescript. */
export function serveFiles(root: string): StaticServer {
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
    const path = normalize(decodeURIComponent(new URL(req.url).pathname));
    try {
      const body = await Deno.readFile(join(root, path));
      const type = path.endsWith(".ts") ? "application/typescript" : "application/octet-stream";
      return new Response(body, { headers: { "content-type": type } });
    } catch {
      return new Response("not found", { status: 404 });
    }
  });
  return {
    url: `http://127.0.0.1:${server.addr.port}/`,
    [Symbol.asyncDispose]: () => server.shutdown(),
  };
}
