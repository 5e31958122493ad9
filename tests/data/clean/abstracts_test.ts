// Abstracts: title + abstract, URL/reference removal, dedup by corpusid, exclusion of full-text papers.
import assert from "node:assert/strict";
import { abstractText, cleanAbstracts, readCorpusIds } from "../../../data/clean/abstracts.ts";
import { tempDir } from "../../helpers.ts";

const ABSTRACT = "Background: Low-dose aspirin is widely used for the prevention of cardiovascular events " +
  "<sup>1</sup>. Methods: We randomized 19,114 older adults (https://clinicaltrials.gov/NCT01038583) [2, 3].";

Deno.test("abstract text: title + newline + abstract, URLs and reference markup removed", () => {
  assert.equal(
    abstractText("Aspirin in older adults", ABSTRACT),
    "Aspirin in older adults\nBackground: Low-dose aspirin is widely used for the prevention of cardiovascular " +
      "events. Methods: We randomized 19,114 older adults.",
  );
  assert.equal(abstractText("", "Only the abstract."), "Only the abstract.");
});

Deno.test("abstracts: papers in the full-text set are dropped, corpusid duplicates dropped, counts by reason", async () => {
  using dir = tempDir();
  const papers = `${dir.path}/s2orc.jsonl`;
  await Deno.writeTextFile(
    papers,
    [
      '{"corpusid": 11, "content": {"text": "x", "annotations": {}}}',
      '{"corpusid": "12"}',
      '{"externalids": {"corpusid": 99}, "corpusid": 17}',
      "{}",
      "",
    ].join("\n"),
  );
  const excludeIds = await readCorpusIds(papers);
  assert.equal(excludeIds.size, 3);
  assert.ok(excludeIds.has("17") && !excludeIds.has("99"), "a nested corpusid is not the record's");
  const records = [
    { corpusid: 10, title: "Kept", abstract: ABSTRACT },
    { corpusid: 11, title: "Has full text", abstract: ABSTRACT.replace("19,114", "100") },
    { corpusid: 12, title: "Has full text too", abstract: ABSTRACT.replace("19,114", "200") },
    { corpusid: "10", title: "Same paper again", abstract: ABSTRACT.replace("19,114", "300") },
    { corpusid: 13, title: "Kept", abstract: ABSTRACT }, // same text as the first: exact duplicate
    { corpusid: 14, title: "Short", abstract: "Too short." },
    {
      corpusid: 15,
      title: "Aspirine",
      abstract: "L'aspirine à faible dose est largement utilisée pour la " +
        "prévention des événements cardiovasculaires chez les personnes âgées.",
    },
    {
      corpusid: 16,
      title: "Statins",
      text: "Statins lower LDL cholesterol and reduce major vascular events in adults.",
    },
  ];
  const { docs, counts } = await cleanAbstracts(records, { excludeIds });
  assert.deepEqual(docs.map((d) => d.corpusid), [10, 16]);
  assert.deepEqual(counts.dropped, {
    in_papers: 2,
    duplicate_id: 1,
    duplicate: 1,
    too_short: 1,
    not_english: 1,
  });
  assert.equal(docs[0].text, abstractText("Kept", ABSTRACT));
  assert.equal(docs[0].abstract, ABSTRACT, "input fields kept");
  assert.equal(
    docs[1].text,
    "Statins\nStatins lower LDL cholesterol and reduce major vascular events in adults.",
  );
});
