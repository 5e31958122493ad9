/**
 * `deno task chat`: a terminal chat with a model. Answers stream as they are generated; the conversation is
 * kept (oldest turns dropped when the context is full); `/reset` clears it, `/system TEXT` sets the system
 * message, `/quit` (or end of input) leaves; Ctrl-C stops the current generation, not the program.
 *
 * Input is read line by line from stdin, so the chat also works through a pipe. Answers are written to stdout
 * as `assistant> {answer}\n`; notices go to stderr.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { setNumThreads } from "../runtime/mod.ts";
import { NativeLanguageModel } from "../models/lm.ts";
import { type ChatTurn, cutAtStop, pendingStopPrefix, promptBudget } from "../models/chat.ts";
import { loadFlaggedModel } from "./serve.ts";
import { runMain, UsageError } from "./common.ts";

const HELP = `Usage: deno task chat --model RUN|HFDIR [options]

Chats with a model in the terminal. Pretrained models get Meditron's medical one-shot template (User:/Assistant:
turns separated by "\\n### ", stops at ###, User:, Assistant:), or, when the model's context cannot hold its
worked example and default system message, the medical-zero-shot variant without them (said at start-up);
finetuned ones (vocabulary with <|im_start|>) the <|im_start|>{role} template. Through a pipe, the exit status
is 1 when no message could be answered.

Commands: /reset (clear the history), /system TEXT (set the system message), /quit. Ctrl-C stops a generation.

Options:
  --model PATH|REPO     native run, Hugging Face directory or hub model org/name[@rev] (default runs/tiny)
  --template NAME       chatml | medical-one-shot | medical-zero-shot (default: from the vocabulary and context)
  --system TEXT         initial system message ('' for none)
  --max-tokens N        most tokens per answer (default 256)
  --temperature X       sampling temperature (default 0: greedy)
  --top-p X             nucleus sampling (default 1)
  --frequency-penalty X (default 0; Meditron's deployments used 1.0)
  --seed N              sampler seed (default 0)
  --no-verify           skip sha256 verification of checkpoint shards
  --threads N           kernel threads (default: all cores)
  --device cpu|cuda     where the model runs (cuda: deno task build --cuda, MEDITRON_LIB=runtime/build-cuda/…)
  --debug               show stack traces on errors
  -h, --help            this help

Examples:
  deno task chat --model runs/tiny
  echo "What is the first-line treatment of asthma?" | deno task chat --model runs/tiny-sft --max-tokens 64
`;

function num(flag: string, v: string | undefined, dflt: number, integer = false): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (v.trim() === "" || !Number.isFinite(n) || (integer && !Number.isInteger(n))) {
    throw new UsageError(`--${flag} must be a${integer ? "n integer" : " number"}, got '${v}'`);
  }
  return n;
}

/** Lines of stdin, as they arrive. */
async function* lines(): AsyncGenerator<string> {
  let buf = "";
  for await (const chunk of Deno.stdin.readable.pipeThrough(new TextDecoderStream())) {
    buf += chunk;
    let nl: number;
    while ((nl = buf.indexOf("\n")) >= 0) {
      yield buf.slice(0, nl).replace(/\r$/, "");
      buf = buf.slice(nl + 1);
    }
  }
  if (buf) yield buf;
}

/** Entry point. */
export async function main(args: string[]): Promise<void> {
  const { values: v } = parseArgs({
    args,
    strict: true,
    options: {
      model: { type: "string", default: "runs/tiny" },
      template: { type: "string" },
      system: { type: "string" },
      "max-tokens": { type: "string" },
      temperature: { type: "string" },
      "top-p": { type: "string" },
      "frequency-penalty": { type: "string" },
      seed: { type: "string" },
      "no-verify": { type: "boolean" },
      threads: { type: "string" },
      device: { type: "string", default: "cpu" },
      debug: { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (v.help) {
    console.log(HELP);
    return;
  }
  const maxTokens = num("max-tokens", v["max-tokens"], 256, true);
  const sampling = {
    temperature: num("temperature", v.temperature, 0),
    topP: num("top-p", v["top-p"], 1),
    frequencyPenalty: num("frequency-penalty", v["frequency-penalty"], 0),
  };
  let seed = num("seed", v.seed, 0, true);
  await setNumThreads(num("threads", v.threads, 0, true));
  using m = await loadFlaggedModel(v, {
    maxTokens,
    system: v.system,
    hint: "a shorter --system ('' for none) or a lower --max-tokens",
  });
  using lm = new NativeLanguageModel(m.model, 2);
  const tok = m.tokenizer, template = m.template, maxSeq = m.model.dims.maxSeq;
  const eos = [...template.stopTokens.map((t) => tok.tokenToId(t)), tok.eosId].filter(
    (x): x is number => typeof x === "number",
  );
  const enc = new TextEncoder();
  const out = (s: string) => Deno.stdout.writeSync(enc.encode(s));
  const note = (s: string) => console.error(`[${s}]`);
  const interactive = Deno.stdin.isTerminal();
  let system = v.system;
  let history: ChatTurn[] = [];
  let generating = false, interrupted = false;
  let answered = 0, tooLong = 0;
  const onSigint = () => {
    if (generating) interrupted = true;
    else note("Ctrl-C stops a generation; /quit or Ctrl-D leaves");
  };
  Deno.addSignalListener("SIGINT", onSigint);
  if (m.notice) note(m.notice);
  note(`model ${m.name}, template ${template.name}, context ${maxSeq} tokens; /reset, /system TEXT, /quit`);
  try {
    if (interactive) out("you> ");
    for await (const raw of lines()) {
      const line = raw.trim();
      if (line === "/quit" || line === "/exit") break;
      if (line === "/reset") {
        history = [];
        note("history cleared");
      } else if (line === "/system" || line.startsWith("/system ")) {
        system = line.slice(7).trim() || undefined;
        note(system ? `system message set` : "system message cleared");
      } else if (line.startsWith("/")) {
        note(`unknown command ${line.split(" ")[0]} (/reset, /system TEXT, /quit)`);
      } else if (line) {
        history.push({ role: "user", content: line });
        const sys: ChatTurn[] = system !== undefined ? [{ role: "system", content: system }] : [];
        let prompt = tok.encode(template.prompt([...sys, ...history]), { addBos: true });
        const budget = promptBudget(maxSeq, maxTokens);
        while (prompt.length > budget && history.length > 1) {
          history = history.slice(history.length > 2 ? 2 : 1); // drop the oldest exchange
          prompt = tok.encode(template.prompt([...sys, ...history]), { addBos: true });
        }
        if (prompt.length >= maxSeq) {
          history.pop();
          tooLong++;
          note(`the message is too long for the model's ${maxSeq}-token context`);
        } else {
          answered++;
          out("assistant> ");
          generating = true;
          interrupted = false;
          const ids: number[] = [];
          let shown = 0, text = "";
          for await (const id of lm.generate(prompt, { maxTokens, seed: seed++, eos, ...sampling })) {
            if (eos.includes(id)) break;
            ids.push(id);
            const full = tok.decode(ids);
            const cut = cutAtStop(full, template.stop);
            text = cut.text;
            let safe = cut.stopped ? text.length : full.length - pendingStopPrefix(full, template.stop);
            if (!cut.stopped && full.endsWith("\uFFFD")) safe = Math.min(safe, full.length - 1);
            if (safe > shown) {
              out(text.slice(shown, safe));
              shown = safe;
            }
            if (cut.stopped || interrupted) break;
          }
          if (!interrupted && shown < text.length) out(text.slice(shown));
          out("\n");
          generating = false;
          if (interrupted) note("stopped");
          history.push({ role: "assistant", content: (interrupted ? text.slice(0, shown) : text).trim() });
        }
      }
      if (interactive) out("you> ");
    }
  } finally {
    Deno.removeSignalListener("SIGINT", onSigint);
  }
  if (!interactive && answered === 0 && tooLong > 0) {
    throw new Error(
      `no message was answered: ${
        tooLong > 1 ? `all ${tooLong} were` : "it was"
      } too long for the model's ${maxSeq}-token context`,
    );
  }
}

if (import.meta.main) await runMain(main, HELP);
