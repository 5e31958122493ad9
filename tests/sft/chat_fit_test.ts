// fitTemplate: the default template when its fixed part fits the prompt budget; medical-one-shot falls back to
// medical-zero-shot (no worked example, no default system message) only when none is named; errors otherwise.
import assert from "node:assert/strict";
import {
  CHATML,
  fitTemplate,
  LLAMA2_SYSTEM,
  MEDICAL_ONE_SHOT,
  MEDICAL_ZERO_SHOT,
  promptBudget,
} from "../../models/chat.ts";
import { Tokenizer } from "../../data/tokenizer.ts";

const tok = Tokenizer.llama2();
const countTokens = (text: string) => tok.encode(text, { addBos: true }).length;

Deno.test("MEDICAL_ZERO_SHOT: the one-shot turns, system line only when given; one-shot unchanged", () => {
  const h = [{ role: "user", content: "Q" }, { role: "assistant", content: "A" }, {
    role: "user",
    content: "Q2",
  }];
  assert.equal(MEDICAL_ZERO_SHOT.prompt(h), "User: Q\n### Assistant: A\n### User: Q2\n### Assistant:");
  assert.equal(
    MEDICAL_ZERO_SHOT.prompt([{ role: "system", content: "S" }, ...h]),
    "S\n### User: Q\n### Assistant: A\n### User: Q2\n### Assistant:",
  );
  assert.deepEqual(MEDICAL_ZERO_SHOT.stop, MEDICAL_ONE_SHOT.stop);
  assert.ok(MEDICAL_ONE_SHOT.prompt(h).startsWith(`${LLAMA2_SYSTEM}\n### User: What happens if listeria`));
  assert.ok(MEDICAL_ONE_SHOT.prompt([{ role: "system", content: "" }, ...h]).startsWith("\n### User: What"));
});

Deno.test("fitTemplate keeps the default where it fits, falls back or refuses where it does not", () => {
  const big = fitTemplate(32000, undefined, { budget: promptBudget(2048, 256), countTokens });
  assert.equal(big.template, MEDICAL_ONE_SHOT);
  assert.equal(big.notice, undefined);
  assert.ok(big.fixedTokens > 500 && big.fixedTokens < 600, String(big.fixedTokens));
  const small = fitTemplate(32000, undefined, { budget: promptBudget(256, 256), countTokens });
  assert.equal(small.template, MEDICAL_ZERO_SHOT);
  assert.match(
    small.notice!,
    /^the medical-one-shot template takes \d+ tokens .* but prompts may hold 128: using/,
  );
  assert.equal(fitTemplate(32002, undefined, { budget: 128, countTokens }).template, CHATML);
  assert.throws(
    () => fitTemplate(32000, "medical-one-shot", { budget: 128, countTokens, hint: "a lower --max-tokens" }),
    /^Error: the medical-one-shot template takes \d+ tokens .*prompts may hold 128; try --template medical-zero-shot or a lower --max-tokens$/,
  );
  // The fallback does not fit either: both templates are named, and the advice no longer offers the fallback.
  assert.throws(
    () =>
      fitTemplate(32000, undefined, {
        budget: 128,
        countTokens,
        system: LLAMA2_SYSTEM,
        hint: "a shorter --system",
      }),
    /^Error: the medical-one-shot template takes \d+ tokens .*, and the medical-zero-shot template takes \d+ tokens before the message \(template and system message\), but prompts may hold 128; try a shorter --system$/,
  );
  assert.throws(() => fitTemplate(32000, "alpaca", { budget: 128, countTokens }), /unknown chat template/);
});
