/**
 * A restricted unpickler for protocol 2–5 streams: exactly the opcodes `torch.save` emits for state dicts
 * (containers, strings, numbers, memo, globals, REDUCE/BUILD, persistent ids). Globals and REDUCE are not
 * executed: the caller maps each allowed global to a handler; any other global, and any other opcode, is
 * refused with its name. Nothing in the stream can run code.
 *
 * @module
 */

/**
 * A reference to a Python global (`module.name`).
 *
 * @example
 * ```ts
 * import { PyGlobal } from "./pickle.ts";
 * console.log(String(new PyGlobal("collections", "OrderedDict"))); // collections.OrderedDict
 * ```
 */
export class PyGlobal {
  /** Creates the reference. */
  constructor(readonly module: string, readonly name: string) {}
  /** `module.name`. */
  toString(): string {
    return `${this.module}.${this.name}`;
  }
}

/**
 * A Python tuple.
 *
 * @example
 * ```ts
 * import { PyTuple } from "./pickle.ts";
 * console.log(new PyTuple([1, 2]).items.length); // 2
 * ```
 */
export class PyTuple {
  /** Creates a tuple. */
  constructor(readonly items: PyValue[]) {}
}

/**
 * A Python dict (insertion order kept; `OrderedDict` too).
 *
 * @example
 * ```ts
 * import { PyDict } from "./pickle.ts";
 * const d = new PyDict();
 * d.map.set("w", 1);
 * ```
 */
export class PyDict {
  /** Entries. */
  readonly map: Map<PyValue, PyValue> = new Map();
}

/** Values the unpickler produces (handlers may return their own objects). */
export type PyValue =
  | null
  | boolean
  | number
  | bigint
  | string
  | Uint8Array
  | PyValue[]
  | PyTuple
  | PyDict
  | PyGlobal
  | { readonly kind: string };

/** What the caller allows. */
export interface UnpickleHooks {
  /** Called for REDUCE: the global called and its arguments; throw to refuse. */
  call(fn: PyGlobal, args: PyValue[]): PyValue;
  /** Called for BUILD with the object and its state; return the built object. */
  build(obj: PyValue, state: PyValue): PyValue;
  /** Persistent ids (torch storages). */
  persistentLoad(pid: PyValue): PyValue;
  /** Which globals may be named at all. */
  allowGlobal(g: PyGlobal): boolean;
}

/** Names of every pickle opcode (for error messages). */
const OPCODE_NAMES: Record<number, string> = {
  0x28: "MARK",
  0x2e: "STOP",
  0x30: "POP",
  0x31: "POP_MARK",
  0x32: "DUP",
  0x46: "FLOAT",
  0x49: "INT",
  0x4a: "BININT",
  0x4b: "BININT1",
  0x4c: "LONG",
  0x4d: "BININT2",
  0x4e: "NONE",
  0x50: "PERSID",
  0x51: "BINPERSID",
  0x52: "REDUCE",
  0x53: "STRING",
  0x54: "BINSTRING",
  0x55: "SHORT_BINSTRING",
  0x56: "UNICODE",
  0x58: "BINUNICODE",
  0x61: "APPEND",
  0x62: "BUILD",
  0x63: "GLOBAL",
  0x64: "DICT",
  0x7d: "EMPTY_DICT",
  0x65: "APPENDS",
  0x67: "GET",
  0x68: "BINGET",
  0x69: "INST",
  0x6a: "LONG_BINGET",
  0x6c: "LIST",
  0x5d: "EMPTY_LIST",
  0x6f: "OBJ",
  0x70: "PUT",
  0x71: "BINPUT",
  0x72: "LONG_BINPUT",
  0x73: "SETITEM",
  0x74: "TUPLE",
  0x29: "EMPTY_TUPLE",
  0x75: "SETITEMS",
  0x47: "BINFLOAT",
  0x80: "PROTO",
  0x81: "NEWOBJ",
  0x82: "EXT1",
  0x83: "EXT2",
  0x84: "EXT4",
  0x85: "TUPLE1",
  0x86: "TUPLE2",
  0x87: "TUPLE3",
  0x88: "NEWTRUE",
  0x89: "NEWFALSE",
  0x8a: "LONG1",
  0x8b: "LONG4",
  0x42: "BINBYTES",
  0x43: "SHORT_BINBYTES",
  0x8c: "SHORT_BINUNICODE",
  0x8d: "BINUNICODE8",
  0x8e: "BINBYTES8",
  0x8f: "EMPTY_SET",
  0x90: "ADDITEMS",
  0x91: "FROZENSET",
  0x92: "NEWOBJ_EX",
  0x93: "STACK_GLOBAL",
  0x94: "MEMOIZE",
  0x95: "FRAME",
  0x96: "BYTEARRAY8",
  0x97: "NEXT_BUFFER",
  0x98: "READONLY_BUFFER",
};

/**
 * The name of opcode `op` (e.g. `NEWOBJ`), or its hex code when unknown.
 *
 * @example
 * ```ts
 * import { opcodeName } from "./pickle.ts";
 * console.log(opcodeName(0x81)); // NEWOBJ
 * ```
 */
export function opcodeName(op: number): string {
  return OPCODE_NAMES[op] ?? `0x${op.toString(16).padStart(2, "0")}`;
}

const MARK = Symbol("mark");
type Slot = PyValue | typeof MARK;

/**
 * Unpickles `bytes` under `hooks`; `where` names the stream in errors.
 *
 * @example
 * ```ts
 * import { PyDict, unpickle } from "./pickle.ts";
 * // protocol 2: {"a": 1}
 * const bytes = new Uint8Array([0x80, 2, 0x7d, 0x71, 0, 0x58, 1, 0, 0, 0, 0x61, 0x71, 1, 0x4b, 1, 0x73, 0x2e]);
 * const d = unpickle(bytes, "inline", {
 *   call: () => { throw new Error("no calls"); },
 *   build: () => { throw new Error("no build"); },
 *   persistentLoad: () => null,
 *   allowGlobal: () => false,
 * }) as PyDict;
 * console.log(d.map.get("a")); // 1
 * ```
 */
export function unpickle(bytes: Uint8Array, where: string, hooks: UnpickleHooks): PyValue {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const dec = new TextDecoder("utf-8", { fatal: true });
  const stack: Slot[] = [];
  const memo = new Map<number, PyValue>();
  let pos = 0;
  const fail = (msg: string): never => {
    throw new Error(`${where}: ${msg} (pickle offset ${pos})`);
  };
  const need = (n: number) => {
    if (pos + n > bytes.length) fail("truncated pickle");
  };
  const u8 = () => (need(1), bytes[pos++]);
  const u16 = () => (need(2), pos += 2, dv.getUint16(pos - 2, true));
  const u32 = () => (need(4), pos += 4, dv.getUint32(pos - 4, true));
  const i32 = () => (need(4), pos += 4, dv.getInt32(pos - 4, true));
  const u64 = () => (need(8), pos += 8, Number(dv.getBigUint64(pos - 8, true)));
  const take = (n: number) => (need(n), pos += n, bytes.subarray(pos - n, pos));
  const str = (n: number) => {
    try {
      return dec.decode(take(n));
    } catch {
      return fail("invalid UTF-8 string");
    }
  };
  const pop = (): PyValue => {
    const v = stack.pop();
    if (v === undefined || v === MARK) return fail("stack underflow");
    return v as PyValue;
  };
  const top = (): PyValue => {
    const v = stack[stack.length - 1];
    if (v === undefined || v === MARK) return fail("stack underflow");
    return v as PyValue;
  };
  const popMark = (): PyValue[] => {
    const i = stack.lastIndexOf(MARK);
    if (i < 0) fail("MARK missing");
    const items = stack.splice(i) as Slot[];
    return items.slice(1) as PyValue[];
  };
  const setItems = (d: PyValue, kv: PyValue[]) => {
    if (!(d instanceof PyDict)) fail("SETITEM(S) on a non-dict");
    for (let i = 0; i + 1 < kv.length; i += 2) (d as PyDict).map.set(kv[i], kv[i + 1]);
  };
  const global = (module: string, name: string) => {
    const g = new PyGlobal(module, name);
    if (!hooks.allowGlobal(g)) fail(`refusing global ${g} (not part of a state dict)`);
    return g;
  };
  for (;;) {
    const at = pos;
    const op = u8();
    switch (op) {
      case 0x80: { // PROTO
        const v = u8();
        if (v < 2 || v > 5) fail(`pickle protocol ${v} is not supported (2–5)`);
        break;
      }
      case 0x95: // FRAME
        u64();
        break;
      case 0x2e: // STOP
        if (stack.length !== 1) fail(`STOP with ${stack.length} items on the stack`);
        return pop();
      case 0x28: // MARK
        stack.push(MARK);
        break;
      case 0x7d: // EMPTY_DICT
        stack.push(new PyDict());
        break;
      case 0x5d: // EMPTY_LIST
        stack.push([]);
        break;
      case 0x29: // EMPTY_TUPLE
        stack.push(new PyTuple([]));
        break;
      case 0x74: // TUPLE
        stack.push(new PyTuple(popMark()));
        break;
      case 0x85: // TUPLE1
        stack.push(new PyTuple([pop()]));
        break;
      case 0x86: { // TUPLE2
        const b = pop(), a = pop();
        stack.push(new PyTuple([a, b]));
        break;
      }
      case 0x87: { // TUPLE3
        const c = pop(), b = pop(), a = pop();
        stack.push(new PyTuple([a, b, c]));
        break;
      }
      case 0x73: { // SETITEM
        const v = pop(), k = pop();
        setItems(top(), [k, v]);
        break;
      }
      case 0x75: { // SETITEMS
        const kv = popMark();
        setItems(top(), kv);
        break;
      }
      case 0x61: { // APPEND
        const v = pop(), l = top();
        if (!Array.isArray(l)) fail("APPEND on a non-list");
        (l as PyValue[]).push(v);
        break;
      }
      case 0x65: { // APPENDS
        const items = popMark(), l = top();
        if (!Array.isArray(l)) fail("APPENDS on a non-list");
        (l as PyValue[]).push(...items);
        break;
      }
      case 0x71: // BINPUT
        memo.set(u8(), top());
        break;
      case 0x72: // LONG_BINPUT
        memo.set(u32(), top());
        break;
      case 0x94: // MEMOIZE
        memo.set(memo.size, top());
        break;
      case 0x68: // BINGET
      case 0x6a: { // LONG_BINGET
        const k = op === 0x68 ? u8() : u32();
        if (!memo.has(k)) fail(`memo key ${k} missing`);
        stack.push(memo.get(k)!);
        break;
      }
      case 0x63: { // GLOBAL "module\nname\n"
        const end1 = bytes.indexOf(0x0a, pos);
        const end2 = end1 < 0 ? -1 : bytes.indexOf(0x0a, end1 + 1);
        if (end2 < 0) fail("truncated GLOBAL");
        const module = str(end1 - pos);
        pos++;
        const name = str(end2 - pos);
        pos++;
        stack.push(global(module, name));
        break;
      }
      case 0x93: { // STACK_GLOBAL
        const name = pop(), module = pop();
        if (typeof name !== "string" || typeof module !== "string") fail("STACK_GLOBAL needs two strings");
        stack.push(global(module as string, name as string));
        break;
      }
      case 0x8c: // SHORT_BINUNICODE
        stack.push(str(u8()));
        break;
      case 0x58: // BINUNICODE
        stack.push(str(u32()));
        break;
      case 0x8d: // BINUNICODE8
        stack.push(str(u64()));
        break;
      case 0x43: // SHORT_BINBYTES
        stack.push(take(u8()).slice());
        break;
      case 0x42: // BINBYTES
        stack.push(take(u32()).slice());
        break;
      case 0x4a: // BININT
        stack.push(i32());
        break;
      case 0x4b: // BININT1
        stack.push(u8());
        break;
      case 0x4d: // BININT2
        stack.push(u16());
        break;
      case 0x8a: { // LONG1: little-endian two's complement
        const n = u8(), b = take(n);
        let v = 0n;
        for (let i = n - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]);
        if (n && b[n - 1] & 0x80) v -= 1n << BigInt(8 * n);
        stack.push(
          v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v,
        );
        break;
      }
      case 0x47: // BINFLOAT (big-endian)
        need(8);
        stack.push(dv.getFloat64(pos, false));
        pos += 8;
        break;
      case 0x4e: // NONE
        stack.push(null);
        break;
      case 0x88: // NEWTRUE
        stack.push(true);
        break;
      case 0x89: // NEWFALSE
        stack.push(false);
        break;
      case 0x51: // BINPERSID
        stack.push(hooks.persistentLoad(pop()));
        break;
      case 0x52: { // REDUCE
        const args = pop(), fn = pop();
        if (!(fn instanceof PyGlobal)) fail("REDUCE of a non-global");
        if (!(args instanceof PyTuple)) fail("REDUCE arguments are not a tuple");
        stack.push(hooks.call(fn as PyGlobal, (args as PyTuple).items));
        break;
      }
      case 0x62: { // BUILD
        const state = pop(), obj = pop();
        stack.push(hooks.build(obj, state));
        break;
      }
      default:
        pos = at;
        fail(`unsupported pickle opcode ${opcodeName(op)} (0x${op.toString(16).padStart(2, "0")})`);
    }
  }
}
