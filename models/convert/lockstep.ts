/**
 * Several consumers walking the same sequence of large values in step: value i is loaded once, handed to
 * every consumer, and value i + 1 is loaded only after every consumer has asked for it (i.e. is done with i).
 * Writing the TP shards of one stage concurrently this way reads each full tensor once and keeps one in
 * memory, whatever the TP size.
 *
 * @module
 */

/**
 * A lockstep loader shared by `consumers` consumers, each requesting indices 0, 1, 2… in order.
 *
 * @example
 * ```ts
 * import { Lockstep } from "./lockstep.ts";
 * let loads = 0;
 * const ls = new Lockstep(2, (i) => Promise.resolve((loads++, i * 10)));
 * const walk = async () => [await ls.get(0), await ls.get(1)];
 * console.log(await Promise.all([walk(), walk()]), loads); // [[0, 10], [0, 10]] 2
 * ```
 */
export class Lockstep<T> {
  readonly #consumers: number;
  readonly #load: (i: number) => Promise<T>;
  #current = -1;
  #value?: Promise<T>;
  #waiters: { i: number; resolve: () => void; reject: (e: unknown) => void }[] = [];
  #failed?: unknown;
  #count = 0;

  /** `load(i)` is called once per index, after every consumer is done with index i − 1. */
  constructor(consumers: number, load: (i: number) => Promise<T>) {
    this.#consumers = consumers;
    this.#load = load;
  }

  /** Value `i` for one consumer (each consumer asks 0, 1, 2… in order). */
  async get(i: number): Promise<T> {
    if (this.#failed !== undefined) throw this.#failed;
    if (i === this.#current) return await this.#value!;
    if (i !== this.#current + 1) throw new Error(`lockstep: index ${i} requested while at ${this.#current}`);
    this.#count++;
    if (this.#count === this.#consumers) {
      this.#count = 0;
      this.#current = i;
      this.#value = undefined; // drop the previous value before loading the next
      this.#value = this.#load(i);
      const ready = this.#waiters.filter((w) => w.i === i);
      this.#waiters = this.#waiters.filter((w) => w.i !== i);
      for (const w of ready) w.resolve();
      return await this.#value;
    }
    await new Promise<void>((resolve, reject) => this.#waiters.push({ i, resolve, reject }));
    return await this.#value!;
  }

  /** Fails every waiting and future request (a consumer died: the others must not wait forever). */
  abort(reason: unknown): void {
    this.#failed = reason ?? new Error("lockstep aborted");
    for (const w of this.#waiters) w.reject(this.#failed);
    this.#waiters = [];
  }
}

/**
 * Runs `tasks` concurrently; the first failure aborts `ls` so the others stop, then is rethrown.
 *
 * @example
 * ```ts
 * import { allInStep, Lockstep } from "./lockstep.ts";
 * const ls = new Lockstep(2, (i) => Promise.resolve(i));
 * await allInStep([ls], [ls.get(0), ls.get(0)]);
 * ```
 */
export async function allInStep<T>(ls: Lockstep<T>[], tasks: Promise<unknown>[]): Promise<void> {
  const results = await Promise.allSettled(
    tasks.map((t) =>
      t.catch((e) => {
        for (const l of ls) l.abort(e);
        throw e;
      })
    ),
  );
  const failed = results.find((r) => r.status === "rejected") as PromiseRejectedResult | undefined;
  if (failed) throw failed.reason;
}
