// The SFT loss on the native model: Σ mask·CE / Σ mask by hand, and exactly zero gradients without assistant tokens.
import assert from "node:assert/strict";
import { NativeModel } from "../../runtime/mod.ts";
import { Tokenizer } from "../../data/tokenizer.ts";
import { type ChatMessage, padBatch, tokenizeChat } from "../../data/sft.ts";
import { assertClose, TEST_OPTIM } from "../helpers.ts";

const tok = Tokenizer.llama2({ chatTokens: true });
const DIMS = {
  dim: 16,
  nLayers: 1,
  nHeads: 2,
  nKvHeads: 1,
  ffnDim: 32,
  vocabSize: 32002,
  maxSeq: 64,
  normEps: 1e-5,
  ropeTheta: 1e4,
};
const A: ChatMessage[] = [
  { role: "user", content: "Which test confirms anemia?" },
  { role: "assistant", content: "A complete blood count." },
];
const B: ChatMessage[] = [
  { role: "system", content: "Be brief." },
  { role: "question", content: "Drug for asthma attacks?" },
  { role: "answer", content: "Albuterol." },
];

async function create(): Promise<NativeModel> {
  return await NativeModel.create(DIMS, { ...TEST_OPTIM, warmupSteps: 0 }, { seed: 5, initStd: 0.5 });
}

// Σ mask·CE / Σ mask in float64 from the model's logits.
async function handLoss(m: NativeModel, b: ReturnType<typeof padBatch>, rows: number): Promise<number> {
  const logits = await m.logits(b.tokens, rows, b.seq);
  const V = DIMS.vocabSize;
  let num = 0, den = 0;
  for (let i = 0; i < rows * b.seq; i++) {
    const w = b.lossMask[i];
    if (w === 0) continue;
    let max = -Infinity;
    for (let v = 0; v < V; v++) max = Math.max(max, logits[i * V + v]);
    let sum = 0;
    for (let v = 0; v < V; v++) sum += Math.exp(logits[i * V + v] - max);
    num += w * (Math.log(sum) + max - logits[i * V + b.targets[i]]);
    den += w;
  }
  return num / den;
}

for (const promptLossWeight of [0, 0.25]) {
  Deno.test(`SFT loss equals the hand count on a 2-example batch (prompt weight ${promptLossWeight})`, async () => {
    using m = await create();
    const ex = [A, B].map((c) => tokenizeChat(tok, c, { promptLossWeight }));
    const b = padBatch(ex, 64, 0);
    const longest = Math.max(...ex.map((e) => e.ids.length - 1));
    assert.equal(b.seq, Math.ceil(longest / 16) * 16);
    const hand = await handLoss(m, b, 2);
    // The hand count of the mask: assistant tokens (minus none: the first token is never a target) + prompt.
    const expectedMass = ex.reduce(
      (a, e) => a + e.weights.slice(1).reduce((x, y) => x + y, 0),
      0,
    );
    const r = await m.trainStep({ ...b, nMicro: 1, batch: 2 });
    assertClose(r.nTokens, expectedMass, 1e-6, "Σ mask");
    assertClose(r.loss, hand, 1e-4, "loss");
  });
}

Deno.test("SFT loss mask: gradients are exactly zero when no assistant token is present", async () => {
  using m = await create();
  const noAnswer = tokenizeChat(tok, [{ role: "user", content: "Hello there, doctor." }]);
  const withAnswer = tokenizeChat(tok, A);
  const grads = async (ex: typeof noAnswer) => {
    const b = padBatch([ex], 64, 0);
    m.zeroGrad();
    await m.forwardBackward(b.tokens, b.targets, b.lossMask, 1, b.seq, 1);
    let nonzero = 0;
    for (const p of m.params()) nonzero += m.read(p.name, "grad").filter((g) => g !== 0).length;
    return nonzero;
  };
  assert.equal(await grads(noAnswer), 0);
  assert.ok(await grads(withAnswer) > 0); // the check can fail
  await assert.rejects(
    () => m.trainStep({ ...padBatch([noAnswer], 64, 0), nMicro: 1, batch: 1 }),
    /loss mask of the whole batch is zero/,
  );
});
