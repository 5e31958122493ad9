// Test fixture: files that mix UTF-8 text with raw (possibly invalid) bytes.

/** Writes `parts` to `path`: strings as UTF-8, numbers as single raw bytes (e.g. `0xe9`, Latin-1 é). */
export async function writeBytes(path: string, ...parts: (string | number)[]): Promise<void> {
  const enc = new TextEncoder();
  await Deno.writeFile(
    path,
    new Uint8Array(parts.flatMap((p) => typeof p === "number" ? [p] : [...enc.encode(p)])),
  );
}
