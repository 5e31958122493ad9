// Combine: subset field, seeded split proportions, no replay in validation, report, determinism.
import assert from "node:assert/strict";
import { combineCommand, combineFiles, subsetFromPath, validationPath } from "../../../data/clean/combine.ts";
import { tempDir } from "../../helpers.ts";

async function writeSubset(path: string, name: string, n: number): Promise<void> {
  const lines = Array.from(
    { length: n },
    (_, i) => JSON.stringify({ id: `${name}-${i}`, text: `${name} document ${i}` }),
  );
  await Deno.writeTextFile(path, lines.join("\n") + "\n");
}

async function readJsonl(path: string): Promise<Record<string, unknown>[]> {
  return (await Deno.readTextFile(path)).split("\n").filter((l) => l).map((l) => JSON.parse(l));
}

Deno.test("combine: Meditron fractions (5% guidelines, 3% papers, no replay) within tolerance", async () => {
  using dir = tempDir();
  const sizes = { guidelines: 6000, papers: 6000, replay: 3000 };
  for (const [name, n] of Object.entries(sizes)) await writeSubset(`${dir.path}/${name}.jsonl`, name, n);
  const report = await combineFiles({
    inputs: Object.keys(sizes).map((subset) => ({ subset, path: `${dir.path}/${subset}.jsonl` })),
    output: `${dir.path}/gap.jsonl`,
    seed: 5,
  });
  assert.equal(report.validation, `${dir.path}/gap.validation.jsonl`);
  const train = await readJsonl(`${dir.path}/gap.jsonl`);
  const valid = await readJsonl(report.validation);
  assert.equal(train.length + valid.length, 15_000, "every document once");
  assert.equal(new Set([...train, ...valid].map((r) => r.id)).size, 15_000);
  for (const [subset, n, f] of [["guidelines", 6000, 0.05], ["papers", 6000, 0.03]] as const) {
    const v = valid.filter((r) => r.subset === subset).length;
    const sd = Math.sqrt(n * f * (1 - f));
    assert.ok(Math.abs(v - n * f) <= 4 * sd, `${subset}: ${v} in validation, expected ${n * f}`);
    assert.equal(report.subsets[subset].validation, v);
    assert.equal(report.subsets[subset].train, n - v);
  }
  assert.equal(valid.filter((r) => r.subset === "replay").length, 0, "no replay in validation");
  assert.equal(train.filter((r) => r.subset === "replay").length, 3000);
  assert.ok(train.every((r) => typeof r.subset === "string" && String(r.id).startsWith(String(r.subset))));
  const saved = JSON.parse(await Deno.readTextFile(`${dir.path}/gap.jsonl.report.json`));
  assert.deepEqual(saved, report);
});

Deno.test("combine: the split is a function of the seed; subsets do not move each other", async () => {
  using dir = tempDir();
  await writeSubset(`${dir.path}/guidelines.jsonl`, "guidelines", 2000);
  await writeSubset(`${dir.path}/papers.jsonl`, "papers", 2000);
  const run = async (seed: number, withPapers: boolean, out: string) => {
    const inputs = [{ subset: "guidelines", path: `${dir.path}/guidelines.jsonl` }];
    if (withPapers) inputs.push({ subset: "papers", path: `${dir.path}/papers.jsonl` });
    await combineFiles({ inputs, output: `${dir.path}/${out}.jsonl`, seed });
    return (await readJsonl(`${dir.path}/${out}.validation.jsonl`)).filter((r) => r.subset === "guidelines")
      .map((r) => r.id);
  };
  const a = await run(1, true, "a"), b = await run(1, false, "b"), c = await run(2, true, "c");
  assert.deepEqual(a, b);
  assert.notDeepEqual(a, c);
});

Deno.test("combine: a small subset still gets one validation document; CLI flags and inference", async () => {
  using dir = tempDir();
  await writeSubset(`${dir.path}/my_guidelines.jsonl`, "guidelines", 3);
  await writeSubset(`${dir.path}/replay_sample.jsonl`, "replay", 3);
  const report = await combineCommand([
    "--input",
    `${dir.path}/my_guidelines.jsonl`,
    "--input",
    `replay=${dir.path}/replay_sample.jsonl`,
    "--valid",
    "guidelines=0.01",
    "--output",
    `${dir.path}/out/all.jsonl`,
    "--validation",
    `${dir.path}/out/valid.jsonl`,
  ]);
  assert.equal(report.subsets.guidelines.validation, 1, "forced: fraction > 0 and ≥ 2 documents");
  assert.equal(report.subsets.guidelines.validFraction, 0.01);
  assert.equal(report.subsets.replay.validation, 0);
  assert.equal((await readJsonl(`${dir.path}/out/valid.jsonl`)).length, 1);
  assert.equal(subsetFromPath("x/s2orc_pmc.jsonl"), "papers");
  assert.equal(subsetFromPath("x/unknown.jsonl"), null);
  assert.equal(validationPath("a/b.jsonl"), "a/b.validation.jsonl");
  await assert.rejects(
    combineCommand(["--input", "x/unknown.jsonl", "--output", "o.jsonl"]),
    /cannot infer the subset/,
  );
  await assert.rejects(
    combineCommand(["--input", "a=b", "--output", "o.jsonl", "--valid", "a=2"]),
    /--valid a must be/,
  );
  await assert.rejects(combineCommand(["--output", "o.jsonl"]), /at least one --input/);
  await assert.rejects(combineCommand(["--input", "a=b", "--output", "o", "--bogus"]), /bogus/);
});

Deno.test("combine: malformed line fails with file:line and leaves no output; --skip-bad counts it", async () => {
  using dir = tempDir();
  const path = `${dir.path}/papers.jsonl`;
  await Deno.writeTextFile(path, '{"text": "a"}\n{"text": "b"\n{"id": 3}\n{"text": "d"}\n');
  await assert.rejects(
    combineFiles({ inputs: [{ subset: "papers", path }], output: `${dir.path}/all.jsonl` }),
    new RegExp(`${path}:2: malformed JSON`),
  );
  assert.deepEqual(
    [...Deno.readDirSync(dir.path)].map((e) => e.name),
    ["papers.jsonl"],
    "nothing half-written",
  );
  const report = await combineFiles({
    inputs: [{ subset: "papers", path }],
    output: `${dir.path}/all.jsonl`,
    skipBad: true,
  });
  assert.equal(report.subsets.papers.badLines, 1);
  assert.equal(report.subsets.papers.missingText, 1);
  assert.equal(report.train + report.validationDocs, 2);
});

Deno.test("combine: an output that is an input (another spelling or a symlink) is refused before writing", async () => {
  using dir = tempDir();
  const path = `${dir.path}/papers.jsonl`;
  await writeSubset(path, "papers", 5);
  const body = await Deno.readTextFile(path);
  await Deno.symlink(path, `${dir.path}/link.jsonl`);
  const cases: [string, { output: string; validation?: string }][] = [
    ["--output", { output: `${dir.path}/./papers.jsonl` }],
    ["--validation", { output: `${dir.path}/all.jsonl`, validation: `${dir.path}/link.jsonl` }],
  ];
  for (const [flag, outputs] of cases) {
    await assert.rejects(
      combineFiles({ inputs: [{ subset: "papers", path }], ...outputs }),
      new RegExp(
        `^Error: ${flag} .* is the same file as --input ${path}: writing it would replace the input`,
      ),
    );
    assert.equal(await Deno.readTextFile(path), body);
  }
  assert.deepEqual([...Deno.readDirSync(dir.path)].map((e) => e.name).sort(), ["link.jsonl", "papers.jsonl"]);
});
