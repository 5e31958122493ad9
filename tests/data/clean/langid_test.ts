// Language ID (npm eld) on clear English, French and German samples; threshold and sample size.
import assert from "node:assert/strict";
import { LanguageDetector } from "../../../data/clean/langid.ts";

const EN = "Adults with community-acquired pneumonia should receive antibiotics within four hours of " +
  "admission, and the choice of agent depends on the severity of illness and local resistance patterns.";
const FR = "Les adultes atteints de pneumonie communautaire doivent recevoir des antibiotiques dans les " +
  "quatre heures suivant l'admission, et le choix de l'agent dépend de la gravité de la maladie.";
const DE = "Erwachsene mit ambulant erworbener Pneumonie sollten innerhalb von vier Stunden nach der " +
  "Aufnahme Antibiotika erhalten, und die Wahl des Wirkstoffs hängt vom Schweregrad der Erkrankung ab.";

Deno.test("langid: English, French and German are told apart", async () => {
  const langid = await LanguageDetector.load();
  assert.equal(langid.detect(EN).language, "en");
  assert.equal(langid.detect(FR).language, "fr");
  assert.equal(langid.detect(DE).language, "de");
  assert.ok(langid.isLanguage(EN));
  assert.ok(!langid.isLanguage(FR));
  assert.ok(!langid.isLanguage(DE));
  assert.ok(langid.isLanguage(DE, { language: "de" }));
});

Deno.test("langid: threshold, undetectable text, sample of the first characters only", async () => {
  const langid = await LanguageDetector.load();
  const { score } = langid.detect(EN);
  assert.ok(score > 0.5 && score <= 1, `score ${score}`);
  assert.ok(langid.isLanguage(EN, { threshold: score }));
  assert.ok(!langid.isLanguage(EN, { threshold: Math.min(1, score + 0.01) }));
  assert.deepEqual(langid.detect("12 345 --- ||"), { language: "und", score: 0 });
  assert.ok(!langid.isLanguage(""));
  assert.equal(langid.detect(FR + " " + EN.repeat(20), FR.length).language, "fr", "only the sample is read");
  assert.equal(langid.detect(FR + " " + EN.repeat(20)).language, "en");
  assert.equal(await LanguageDetector.load(), langid, "loaded once");
  // An English opening paragraph does not decide for a French document: windows over the sample vote.
  const mixed = EN + " " + EN + "\n" + Array.from({ length: 16 }, () => FR).join(" ");
  assert.equal(langid.detect(mixed.slice(0, 360)).language, "en");
  assert.equal(langid.detect(mixed).language, "fr");
});
