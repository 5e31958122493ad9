// SIGKILL at random moments, resume each time: the loss curve equals an uninterrupted run bit for bit.
import assert from "node:assert/strict";
import { killAndResume } from "../../bench/preemption.ts";
import { tempDir } from "../helpers.ts";

Deno.test("3 random SIGKILLs + --resume give the uninterrupted loss curve bit for bit", async () => {
  using dir = tempDir();
  const r = await killAndResume(dir.path, 3, 11, 40);
  assert.equal(r.kills, 3, `only ${r.kills} of 3 kills landed mid-run`);
  assert.ok(r.identical, "the resumed curve differs from the uninterrupted one");
});
