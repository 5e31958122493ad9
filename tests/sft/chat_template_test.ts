// Chat templates and stop-string helpers.
import assert from "node:assert/strict";
import {
  CHATML,
  cutAtStop,
  LLAMA2_SYSTEM,
  MEDICAL_ONE_SHOT,
  pendingStopPrefix,
  templateFor,
} from "../../models/chat.ts";

Deno.test("CHATML: <|im_start|>{role} messages, system only when given, ends with the assistant header", () => {
  assert.equal(
    CHATML.prompt([{ role: "system", content: "S" }, { role: "user", content: "Q" }, {
      role: "assistant",
      content: "A",
    }, {
      role: "user",
      content: "Q2",
    }]),
    "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nQ<|im_end|>\n<|im_start|>assistant\nA<|im_end|>\n" +
      "<|im_start|>user\nQ2<|im_end|>\n<|im_start|>assistant\n",
  );
  assert.equal(
    CHATML.prompt([{ role: "user", content: "Q" }]),
    "<|im_start|>user\nQ<|im_end|>\n<|im_start|>assistant\n",
  );
});

Deno.test("MEDICAL_ONE_SHOT: Meditron's FastChat one_shot_medical layout", () => {
  const p = MEDICAL_ONE_SHOT.prompt([{ role: "user", content: "Q" }, { role: "assistant", content: "A" }, {
    role: "user",
    content: "Q2",
  }]);
  assert.ok(
    p.startsWith(
      `${LLAMA2_SYSTEM}\n### User: What happens if listeria is left untreated?\n### Assistant: If`,
    ),
  );
  assert.ok(p.endsWith("is crucial.\n### User: Q\n### Assistant: A\n### User: Q2\n### Assistant:"));
  const s = MEDICAL_ONE_SHOT.prompt([{ role: "system", content: "Be brief." }, {
    role: "user",
    content: "Q",
  }]);
  assert.ok(s.startsWith("Be brief.\n### User: What happens"));
  assert.deepEqual(MEDICAL_ONE_SHOT.stop, ["###", "User:", "Assistant:"]);
  assert.throws(() => MEDICAL_ONE_SHOT.prompt([{ role: "tool", content: "x" }]), /no role 'tool'/);
});

Deno.test("templateFor picks by vocabulary; stop helpers", () => {
  assert.equal(templateFor(32000).name, "medical-one-shot");
  assert.equal(templateFor(32012).name, "medical-one-shot");
  assert.equal(templateFor(32002).name, "chatml");
  assert.equal(templateFor(32014).name, "chatml");
  assert.equal(templateFor(32000, "chatml").name, "chatml");
  assert.throws(() => templateFor(32000, "alpaca"), /unknown chat template/);
  assert.deepEqual(cutAtStop("abc User: x ### y", ["###", "User:"]), { text: "abc ", stopped: true });
  assert.deepEqual(cutAtStop("abc", ["###"]), { text: "abc", stopped: false });
  assert.equal(pendingStopPrefix("text #", ["###"]), 1);
  assert.equal(pendingStopPrefix("text Use", ["###", "User:"]), 3);
  assert.equal(pendingStopPrefix("text", ["###"]), 0);
});
