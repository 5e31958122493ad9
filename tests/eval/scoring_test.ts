import assert from "node:assert/strict";
import { Tokenizer } from "../../data/tokenizer.ts";
import { tokenizeScoring } from "../../eval/mod.ts";

const tok = Tokenizer.llama2();

Deno.test("scoring tokens: context + continuation encoded whole, split at the shared prefix", () => {
  const t = tokenizeScoring(tok, "The answer is:", [" A", " maybe", " no"], 4096);
  assert.deepEqual(t.context, tok.encode("The answer is:"));
  assert.equal(t.context[0], tok.bosId);
  for (const [i, c] of [" A", " maybe", " no"].entries()) {
    assert.deepEqual([...t.context, ...t.continuations[i]], tok.encode(`The answer is:${c}`));
  }
  assert.equal(t.truncated, false);
});

Deno.test("scoring tokens: a merge across the boundary moves the split back, shared by all continuations", () => {
  // "is" + "sue" merges into "issue": the context's last token is not a prefix of the whole.
  const t = tokenizeScoring(tok, "This is", ["sue", " not"], 4096);
  const whole = [tok.encode("This issue"), tok.encode("This is not")];
  assert.deepEqual([...t.context, ...t.continuations[0]], whole[0]);
  assert.deepEqual([...t.context, ...t.continuations[1]], whole[1]);
  assert.ok(t.context.length < tok.encode("This is").length);
});

Deno.test("scoring tokens: long contexts keep their newest tokens", () => {
  const t = tokenizeScoring(tok, "one two three four five six seven eight nine ten", [" A"], 6);
  assert.equal(t.truncated, true);
  assert.equal(t.context.length + t.continuations[0].length, 6);
  assert.deepEqual(t.context, tok.encode("one two three four five six seven eight nine ten").slice(-5));
  assert.throws(() => tokenizeScoring(tok, "x", [" A B C"], 3), /leaves no room/);
});
