// `data clean` end to end through cleanCommand: every source, the report file, bad input, bad flags.
import assert from "node:assert/strict";
import { cleanCommand, HELP_CLEAN } from "../../../data/clean/command.ts";
import { HELP_COMBINE } from "../../../data/clean/combine.ts";
import { tempDir } from "../../helpers.ts";
import { writeBytes } from "../bytes_fixture.ts";

const GUIDELINE =
  "Offer metformin as first-line treatment to adults with type 2 diabetes and review the dose " +
  "every three months. Measure HbA1c at least twice a year and adjust therapy to individual targets.";

function guidelineLines(): string[] {
  return [
    {
      source: "nice",
      title: "Type 2 diabetes",
      url: "https://nice.org.uk/ng28",
      raw_text: `## Treatment\n${GUIDELINE}\n## References\n1. X`,
    },
    { source: "cdc", title: "TYPE 2 DIABETES", text: `# Treatment\n${GUIDELINE}` },
    { source: "who", title: "Short", raw_text: "Too short." },
  ].map((r) => JSON.stringify(r));
}

Deno.test("clean guidelines: output, {output}.report.json and counts by reason", async () => {
  using dir = tempDir();
  const input = `${dir.path}/guidelines.jsonl`;
  await Deno.writeTextFile(input, guidelineLines().join("\n") + "\n");
  const output = `${dir.path}/clean/guidelines.jsonl`;
  const report = await cleanCommand([
    "--source",
    "guidelines",
    "--input",
    input,
    "--output",
    output,
    "--quiet",
  ]);
  assert.equal(report.read, 3);
  assert.equal(report.kept, 1);
  assert.deepEqual(report.dropped, { duplicate: 1, too_short: 1 });
  assert.equal(report.bytesIn, (await Deno.stat(input)).size);
  assert.equal(report.bytesOut, (await Deno.stat(output)).size);
  const saved = JSON.parse(await Deno.readTextFile(`${output}.report.json`));
  assert.deepEqual(saved, report);
  const [doc] = (await Deno.readTextFile(output)).trim().split("\n").map((l) => JSON.parse(l));
  assert.equal(doc.clean_text, `Type 2 diabetes\n\n# Treatment\n${GUIDELINE}`);
  assert.equal(doc.text, doc.clean_text);
});

Deno.test("clean: malformed line → file:line error and no output; --skip-bad counts it", async () => {
  using dir = tempDir();
  const input = `${dir.path}/guidelines.jsonl`;
  const lines = guidelineLines();
  lines.splice(1, 0, '{"source": "nice", "raw_text": "unterminated');
  lines.push('{"source": "nice", "title": "no text field"}');
  await Deno.writeTextFile(input, lines.join("\n") + "\n");
  const output = `${dir.path}/out.jsonl`;
  const args = ["--source", "guidelines", "--input", input, "--output", output, "--quiet"];
  await assert.rejects(cleanCommand(args), new RegExp(`^JsonlError: ${input}:2: malformed JSON`));
  assert.deepEqual(
    [...Deno.readDirSync(dir.path)].map((e) => e.name),
    ["guidelines.jsonl"],
    "no partial output",
  );
  const report = await cleanCommand([...args, "--skip-bad"]);
  assert.deepEqual(report.dropped, { bad_line: 1, duplicate: 1, too_short: 1, missing_field: 1 });
  assert.equal(report.kept, 1);
  assert.equal(report.read, 5);
  // Without --skip-bad, a record without its text field is an error naming the field.
  await Deno.writeTextFile(input, guidelineLines()[0] + '\n{"source": "nice", "title": "no text"}\n');
  await assert.rejects(
    cleanCommand([...args, "--output", `${dir.path}/other.jsonl`]),
    new RegExp(`${input}:2: missing string field 'raw_text' or 'text'`),
  );
  assert.ok(!(await Deno.stat(`${dir.path}/other.jsonl`).catch(() => null)));
});

Deno.test("clean abstracts with --papers, papers, and replay through the CLI", async () => {
  using dir = tempDir();
  const p = dir.path;
  const paperText = "Results\n" + GUIDELINE;
  const paper = {
    corpusid: 7,
    content: {
      text: paperText,
      annotations: {
        sectionheader: JSON.stringify([{ start: 0, end: 7, attributes: { n: "1" } }]),
        paragraph: JSON.stringify([{ start: 8, end: paperText.length }]),
        bibentry: null,
      },
    },
  };
  await Deno.writeTextFile(`${p}/s2orc.jsonl`, JSON.stringify(paper) + "\n");
  const abstracts = [{ corpusid: 7, title: "T", abstract: GUIDELINE }, {
    corpusid: 8,
    title: "U",
    abstract: GUIDELINE,
  }];
  await Deno.writeTextFile(`${p}/abstracts.jsonl`, abstracts.map((a) => JSON.stringify(a)).join("\n"));
  const ra = await cleanCommand([
    "--source=abstracts",
    `--input=${p}/abstracts.jsonl`,
    `--papers=${p}/s2orc.jsonl`,
    `--output=${p}/abstracts.clean.jsonl`,
    "--quiet",
  ]);
  assert.deepEqual([ra.kept, ra.dropped], [1, { in_papers: 1 }]);
  const rp = await cleanCommand([
    "--source",
    "papers",
    "--input",
    `${p}/s2orc.jsonl`,
    "--output",
    `${p}/papers.clean.jsonl`,
    "--min-words",
    "5",
    "--near-dedup",
    "0.8",
    "--quiet",
  ]);
  assert.equal(rp.kept, 1);
  assert.deepEqual(JSON.parse(await Deno.readTextFile(`${p}/papers.clean.jsonl`)), {
    corpusid: 7,
    text: `# Results\n\n${GUIDELINE}`,
  });
  await Deno.writeTextFile(
    `${p}/web.jsonl`,
    Array.from({ length: 2000 }, (_, i) => `{"text": "web ${i}"}`).join("\n"),
  );
  const rr = await cleanCommand([
    "--source",
    "replay",
    "--input",
    `${p}/web.jsonl`,
    "--output",
    `${p}/replay.jsonl`,
    "--keep-rate",
    "0.1",
    "--seed",
    "3",
    "--quiet",
  ]);
  assert.ok(rr.kept > 140 && rr.kept < 260, `kept ${rr.kept}`);
  assert.equal(rr.options.keepRate, 0.1);
});

Deno.test("clean guidelines: --rules FILE adds a source's truncation rules", async () => {
  using dir = tempDir();
  const input = `${dir.path}/g.jsonl`;
  await Deno.writeTextFile(
    input,
    JSON.stringify({ source: "mysoc", raw_text: `${GUIDELINE}\nAnnex 1\nTables.` }),
  );
  await Deno.writeTextFile(`${dir.path}/rules.json`, JSON.stringify({ mysoc: { stop: ["Annex"] } }));
  const args = ["--source", "guidelines", "--input", input, "--output", `${dir.path}/o.jsonl`, "--quiet"];
  await cleanCommand([...args, "--rules", `${dir.path}/rules.json`]);
  assert.equal(JSON.parse(await Deno.readTextFile(`${dir.path}/o.jsonl`)).text, GUIDELINE);
  await cleanCommand(args);
  assert.equal(
    JSON.parse(await Deno.readTextFile(`${dir.path}/o.jsonl`)).text,
    `${GUIDELINE}\nAnnex 1\nTables.`,
  );
  await Deno.writeTextFile(`${dir.path}/rules.json`, JSON.stringify({ mysoc: { stopp: ["Annex"] } }));
  await assert.rejects(
    cleanCommand([...args, "--rules", `${dir.path}/rules.json`]),
    /unknown key 'mysoc\.stopp'/,
  );
  await assert.rejects(cleanCommand([...args, "--rules", `${dir.path}/none.json`]), /--rules .*none\.json/);
});

Deno.test("clean: bad flags are errors naming the flag; --help prints and writes nothing", async () => {
  const base = ["--input", "a.jsonl", "--output", "b.jsonl"];
  await assert.rejects(
    cleanCommand(["--source", "books", ...base]),
    /--source must be one of guidelines, abstracts/,
  );
  await assert.rejects(cleanCommand(["--source", "guidelines"]), /--input is required/);
  await assert.rejects(cleanCommand(["--source", "replay", ...base]), /replay needs a keep rate/);
  await assert.rejects(
    cleanCommand(["--source", "replay", ...base, "--keep-rate", "2"]),
    /--keep-rate must be a number in \[0, 1\]/,
  );
  await assert.rejects(
    cleanCommand(["--source", "guidelines", ...base, "--keep-rate", "0.1"]),
    /replay only/,
  );
  await assert.rejects(
    cleanCommand(["--source", "papers", ...base, "--near-dedup", "x"]),
    /--near-dedup must be/,
  );
  await assert.rejects(cleanCommand(["--source", "papers", ...base, "--unknown"]), /unknown/i);
  await assert.rejects(cleanCommand(["--source", "papers", ...base, "--lang", "english"]), /--lang expects/);
  const log = console.log;
  let printed = "";
  console.log = (s: string) => printed += s;
  try {
    const r = await cleanCommand(["--help"]);
    assert.equal(r.help, true);
  } finally {
    console.log = log;
  }
  assert.equal(printed, HELP_CLEAN);
  for (const help of [HELP_CLEAN, HELP_COMBINE]) {
    assert.match(help, /Usage: deno task data (clean|combine)/);
    assert.match(help, /Examples:/);
  }
});

Deno.test("clean: an output or report that is the input (another spelling or a symlink) is refused before reading", async () => {
  using dir = tempDir();
  const input = `${dir.path}/raw.jsonl`;
  const body = guidelineLines().join("\n") + "\n";
  await Deno.writeTextFile(input, body);
  await Deno.symlink(input, `${dir.path}/link.jsonl`);
  const cases: [string, string][] = [
    ["--output", input],
    ["--output", `${dir.path}/./raw.jsonl`],
    ["--output", `${dir.path}/link.jsonl`],
    ["--report", `${dir.path}/missing/../raw.jsonl`],
  ];
  for (const [flag, path] of cases) {
    const output = flag === "--output" ? path : `${dir.path}/out.jsonl`;
    const report = flag === "--report" ? ["--report", path] : [];
    const args = ["--source", "guidelines", "--input", input, "--output", output, ...report, "--quiet"];
    await assert.rejects(
      cleanCommand(args),
      (e: Error) => {
        assert.equal(
          e.message,
          `${flag} ${path} is the same file as --input ${input}: writing it would replace the input`,
        );
        return true;
      },
    );
    assert.equal(await Deno.readTextFile(input), body, `${flag} ${path}: input untouched`);
  }
  assert.deepEqual([...Deno.readDirSync(dir.path)].map((e) => e.name).sort(), ["link.jsonl", "raw.jsonl"]);
});

Deno.test("clean: lines with invalid UTF-8 are counted in the report; valid input bytes are unchanged", async () => {
  using dir = tempDir();
  const input = `${dir.path}/replay.jsonl`;
  await writeBytes(input, '{"text": "caf', 0xe9, '"}\n{"text": "naïve 🩺 \uFFFD"}\n');
  const output = `${dir.path}/out.jsonl`;
  const args = ["--source", "replay", "--keep-rate", "1", "--input", input, "--output", output, "--quiet"];
  const report = await cleanCommand(args);
  assert.equal(report.kept, 2);
  assert.equal(report.invalidUtf8Lines, 1, "a valid U+FFFD is not counted");
  assert.equal(JSON.parse(await Deno.readTextFile(`${output}.report.json`)).invalidUtf8Lines, 1);
  assert.deepEqual(
    (await Deno.readTextFile(output)).trim().split("\n").map((l) => JSON.parse(l).text),
    ["caf\uFFFD", "naïve 🩺 \uFFFD"],
  );
});
