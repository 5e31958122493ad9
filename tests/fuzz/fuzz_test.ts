// A short seeded pass of the fuzzer (bench/fuzz.ts runs ≥ 10,000 cases per target): every parser and the
// C ABI accept or cleanly reject mutated inputs — no TypeError/RangeError from an unhandled shape, no hang.
import assert from "node:assert/strict";
import { fuzzAll } from "../../bench/fuzz.ts";
import { tempDir } from "../helpers.ts";

Deno.test("fuzz: 400 mutated inputs per target, no unclean failures", async () => {
  using dir = tempDir();
  const results = await fuzzAll(400, 2026, dir.path);
  assert.ok(results.length >= 10);
  for (const r of results) {
    assert.equal(r.crashes.length, 0, `${r.target}: ${r.crashes[0]?.error}`);
    assert.ok(
      r.rejected > 0 && r.accepted > 0,
      `${r.target}: the seed is accepted and mutations are rejected`,
    );
  }
});
