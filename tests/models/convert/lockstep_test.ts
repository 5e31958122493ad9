// Lockstep: each value is loaded once for all consumers, the next only after every consumer is done with
// the previous one, and a failing consumer releases the others with its error.
import assert from "node:assert/strict";
import { allInStep, Lockstep } from "../../../models/convert/lockstep.ts";

Deno.test("lockstep loads each index once and never runs ahead of the slowest consumer", async () => {
  const loads: number[] = [];
  const requested = [-1, -1, -1]; // the highest index each consumer has asked for
  const ls = new Lockstep(3, async (i) => {
    // Loading i is allowed only once every consumer has moved on from i − 1.
    assert.ok(requested.every((r) => r >= i), `load ${i} while consumers are at ${requested}`);
    loads.push(i);
    await new Promise((r) => setTimeout(r, 1));
    return i * 10;
  });
  const seen: number[][] = [[], [], []];
  await allInStep(
    [ls],
    [0, 1, 2].map(async (c) => {
      for (let i = 0; i < 5; i++) {
        requested[c] = i;
        seen[c].push(await ls.get(i));
        await new Promise((r) => setTimeout(r, c * 3)); // consumers of different speeds
      }
    }),
  );
  assert.deepEqual(loads, [0, 1, 2, 3, 4]);
  assert.deepEqual(seen, [[0, 10, 20, 30, 40], [0, 10, 20, 30, 40], [0, 10, 20, 30, 40]]);
});

Deno.test("a failing consumer aborts the others instead of leaving them waiting", async () => {
  const ls = new Lockstep(2, (i) => Promise.resolve(i));
  await assert.rejects(
    () =>
      allInStep([ls], [
        (async () => {
          await ls.get(0);
          throw new Error("disk full");
        })(),
        (async () => {
          await ls.get(0);
          await ls.get(1);
        })(),
      ]),
    /disk full/,
  );
  await assert.rejects(
    () => new Lockstep(1, (i) => Promise.resolve(i)).get(3),
    /index 3 requested while at -1/,
  );
});
