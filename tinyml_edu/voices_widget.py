"""The recorder for the class's own voices: a JupyterLab cell that records a prompted word list
from the laptop's microphone, in the browser (no board).

    from tinyml_edu.voices_widget import KWS_PROMPTS, recorder
    recorder("voices", ["yes", "no", "up"], keeper="Ms Diallo, on the school's laptop")
    recorder("voices", KWS_PROMPTS)  # the kws project's 12 classes, silence and unknown too

The cell shows who keeps the recordings and how to have them deleted, asks for a pseudonym
(never the real name) and the student's consent, then prompts each word ``repeats`` times in a
shuffled order and records ``seconds`` of audio for each at the browser's rate. Each clip goes
to Python, which saves it with ``voices.save_payload`` (16 kHz WAV and sidecar).

How the browser talks to Python: ``anywidget`` is not among the course's dependencies, and a
custom ipywidgets view would need a JupyterLab extension of its own, so the recorder is
JavaScript output (``IPython.display.Javascript``: JupyterLab runs it in a trusted notebook,
i.e. a cell run in this session) next to two hidden ``ipywidgets.Textarea``. The script writes
a JSON message into the first and fires its ``change`` event, which ipywidgets syncs to the
kernel; Python answers in the second, which the script reads. Only the two stock widgets and
the browser's own APIs (``getUserMedia``, Web Audio) are used.

Browsers allow the microphone only on ``https://`` or ``localhost`` pages: JupyterLab on the
student's laptop, Binder and an https JupyterHub work; a hub on plain http does not (the cell
says so).
"""

from __future__ import annotations

import html
import json
import secrets
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from tinyml_edu import voices
from tinyml_edu.errors import InputError, TinyMLEduError

KWS_PROMPTS = voices.KWS_PROMPTS  # the kws project's words, with what to say for each
SECONDS = 1.5  # recorded per prompt: time to react, say the word and stop
REPEATS = 3  # takes of each word


def consent_text(keeper: str, folder: Path, keep_until: str) -> str:
    """The privacy notice the student agrees to (plain text, one paragraph per line)."""
    return "\n".join((
        "Your recordings train the class's keyword model. They are voice recordings: a voice "
        "can identify a person, so please read this first.",
        f"Who keeps them: {keeper}. They are saved in the folder '{folder}' and shared only "
        "with this class's instructor, pooled with your classmates' recordings.",
        "Your name is not stored: choose a pseudonym that is not your name and that you will "
        "remember. Each file records the pseudonym, the word and the date.",
        f"How long: until {keep_until}; then they are deleted.",
        f"To delete them at any time, tell {keeper} your pseudonym: every recording under it "
        "is deleted (tinyml-edu voices delete FOLDER PSEUDONYM) from your folder and the pooled "
        "one, and models trained on them are trained again without them.",
        "Recording is voluntary and not graded: you can stop at any time.",
    ))


class Recorder:
    """The Python half of the recorder: answers the browser's messages and saves the clips.

    ``handle`` takes one message and returns the answer; the widget calls it for each message
    the browser sends, and tests call it directly."""

    def __init__(self, folder: Path | str, prompts: Iterable[str] | Mapping[str, str],
                 repeats: int = REPEATS, seconds: float = SECONDS,
                 keeper: str = "your instructor", keep_until: str = "the end of the course",
                 notice: str | None = None,
                 keep_seconds: float | None = voices.KEEP_SECONDS) -> None:
        self.folder = Path(folder)
        self.prompts = voices.prompt_list(prompts)
        if not 1 <= int(repeats) <= 20:
            raise InputError(f"repeats={repeats}: record each word 1 to 20 times")
        if not voices.MIN_SECONDS <= seconds <= voices.MAX_SECONDS:
            raise InputError(f"seconds={seconds}: record {voices.MIN_SECONDS:g} to "
                                    f"{voices.MAX_SECONDS:g} s per prompt")
        if keep_seconds is not None and keep_seconds > seconds:
            raise InputError(f"keep_seconds={keep_seconds} is longer than the "
                                    f"{seconds} s recorded")
        self.repeats, self.seconds, self.keep_seconds = int(repeats), float(seconds), keep_seconds
        self.notice = notice or consent_text(keeper, self.folder, keep_until)
        self.saved: list[Path] = []  # what this recorder saved, the only files it may discard

    def handle(self, message: Mapping[str, Any] | str) -> dict[str, Any]:
        """One message of the browser -> the answer ``{"seq", "ok", "message", ...}``.

        ``hello {pseudonym}``: check the pseudonym; ``clip {pseudonym, label, rate, format,
        data, consent}``: save a recording; ``discard {file}``: delete one this recorder
        saved (the student's "redo")."""
        seq = None
        try:
            if isinstance(message, str):
                message = json.loads(message)
            if not isinstance(message, Mapping):
                raise InputError("a message is a JSON object")
            seq = message.get("seq")
            kind = message.get("kind")
            if kind == "hello":
                who = voices.validate_pseudonym(message.get("pseudonym", ""))
                have = voices.speakers(self.folder).get(who, 0)
                note = (f" {have} recording(s) under this pseudonym are there already; new "
                        "ones are added. If they are not yours, choose another pseudonym."
                        if have else "")
                return {"seq": seq, "ok": True, "pseudonym": who,
                        "message": f"Recording as '{who}'.{note}"}
            if kind == "clip":
                clip = voices.save_payload(self.folder, message, keep_seconds=self.keep_seconds)
                self.saved.append(clip.path)
                quiet = clip.peak_dbfs < -40 and clip.label != "silence"
                return {"seq": seq, "ok": True, "file": clip.path.relative_to(self.folder)
                        .as_posix(), "peak_dbfs": clip.peak_dbfs, "quiet": quiet,
                        "message": f"saved {clip.path.name}"
                        + (" (very quiet: is the microphone on?)" if quiet else "")}
            if kind == "discard":
                path = self.folder / str(message.get("file", ""))
                if path not in self.saved:
                    raise InputError(f"{message.get('file')!r} was not recorded here")
                for part in (path, path.with_suffix(".json")):
                    part.unlink(missing_ok=True)
                self.saved.remove(path)
                return {"seq": seq, "ok": True, "message": f"deleted {path.name}"}
            raise InputError(f"unknown message kind {kind!r}")
        except (TinyMLEduError, ValueError, OSError) as err:
            return {"seq": seq, "ok": False, "message": str(err)}

    def config(self) -> dict[str, Any]:
        """What the browser script needs."""
        return {"prompts": [[label, text] for label, text in self.prompts.items()],
                "repeats": self.repeats, "seconds": self.seconds,
                "notice_html": "".join(f"<p>{html.escape(line)}</p>"
                                       for line in self.notice.splitlines() if line.strip())}

    def show(self) -> Recorder:
        """Display the recorder in the notebook (needs ipywidgets and IPython)."""
        import ipywidgets
        from IPython.display import Javascript, display

        uid = secrets.token_hex(6)
        inbox = ipywidgets.Textarea(layout=ipywidgets.Layout(display="none"))
        outbox = ipywidgets.Textarea(layout=ipywidgets.Layout(display="none"))
        inbox.add_class(f"tinyml-voices-in-{uid}")
        outbox.add_class(f"tinyml-voices-out-{uid}")
        status = ipywidgets.HTML(f"Recordings go to <code>{html.escape(str(self.folder))}</code>.")

        def on_message(change: dict[str, Any]) -> None:
            text = change["new"]
            if not text:
                return
            inbox.value = ""  # the audio does not stay in the widget's state
            answer = self.handle(text)
            if answer.get("ok") and answer.get("file"):
                status.value = (f"Saved {len(self.saved)} recording(s) in "
                                f"<code>{html.escape(str(self.folder))}</code>; last: "
                                f"<code>{html.escape(answer['file'])}</code>")
            outbox.value = json.dumps(answer)

        inbox.observe(on_message, names="value")
        display(Javascript(_SCRIPT.replace("__CONFIG__", json.dumps(
            {**self.config(), "uid": uid}))))
        display(ipywidgets.VBox([status, inbox, outbox]))
        return self

    def _ipython_display_(self) -> None:
        self.show()


def recorder(folder: Path | str, prompts: Iterable[str] | Mapping[str, str],
             **options: Any) -> None:
    """Show a recorder for ``prompts`` saving into ``folder``; see ``Recorder`` for the
    options (``repeats``, ``seconds``, ``keeper``, ``keep_until``, ``notice``). Returns
    nothing, so that a cell ending with it shows one recorder, not two."""
    Recorder(folder, prompts, **options).show()


# The browser half. `element` is the output area JupyterLab hands to JavaScript output.
_SCRIPT = r"""
(function () {
  const cfg = __CONFIG__;
  const root = document.createElement("div");
  root.className = "tinyml-voices";
  root.style.cssText = "font-family: sans-serif; max-width: 46em; padding: 0.5em;";
  root.innerHTML = `
    <h3 style="margin: 0.2em 0">Record your voice for the class's keyword model</h3>
    <div class="tv-notice" style="border: 1px solid #aaa; padding: 0 0.8em; font-size: 0.9em">
      ${cfg.notice_html}</div>
    <p><label><input type="checkbox" class="tv-consent"> I have read this and agree to share
      my recordings with the class</label></p>
    <p><label>Pseudonym (<b>not</b> your real name):
      <input type="text" class="tv-pseudonym" maxlength="32" placeholder="e.g. blue-fox"
             autocomplete="off"></label></p>
    <p><button class="tv-start">Start recording</button>
       <button class="tv-redo" disabled>Redo the last word</button>
       <button class="tv-stop" disabled>Stop</button></p>
    <div class="tv-prompt" style="font-size: 2.4em; min-height: 1.4em; margin: 0.2em 0"></div>
    <progress class="tv-progress" value="0" max="1" style="width: 100%"></progress>
    <div class="tv-status" style="min-height: 1.4em"></div>`;
  element.appendChild(root);
  const $ = (name) => root.querySelector(name);
  const status = (text, bad) => { $(".tv-status").textContent = text;
                                  $(".tv-status").style.color = bad ? "#b00" : ""; };
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  let seq = 0, stopping = false, redo = null, last = null;

  function box(kind) {
    const found = document.querySelector(`.tinyml-voices-${kind}-${cfg.uid} textarea`);
    if (!found) throw new Error("the recorder lost its link to Python: run the cell again");
    return found;
  }
  async function ask(message) {  // to Python through the hidden text box, then wait for its answer
    message.seq = ++seq;
    const inbox = box("in");
    inbox.value = JSON.stringify(message);
    inbox.dispatchEvent(new Event("change", { bubbles: true }));
    for (let waited = 0; waited < 30000; waited += 100) {
      await sleep(100);
      try {
        const answer = JSON.parse(box("out").value || "{}");
        if (answer.seq === message.seq) return answer;
      } catch (e) { /* half-updated: read again */ }
    }
    throw new Error("Python did not answer in 30 s: is the kernel running? Run the cell again");
  }

  function toBase64(int16) {
    const bytes = new Uint8Array(int16.buffer);
    let text = "";
    for (let i = 0; i < bytes.length; i += 0x8000)
      text += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
    return btoa(text);
  }

  async function openMicrophone() {
    if (!window.isSecureContext || !navigator.mediaDevices)
      throw new Error("this browser allows the microphone only on https:// or localhost pages; " +
                      "ask your instructor for the https address");
    const stream = await navigator.mediaDevices.getUserMedia({ audio: {
      channelCount: 1, echoCancellation: false, noiseSuppression: false,
      autoGainControl: false } });
    const context = new AudioContext();
    await context.resume();
    const source = context.createMediaStreamSource(stream);
    // ScriptProcessorNode: every browser has it, and it needs no module file to load.
    const node = context.createScriptProcessor(4096, 1, 1);
    const mute = context.createGain();
    mute.gain.value = 0;  // the graph must reach the speakers to run, silently
    source.connect(node); node.connect(mute); mute.connect(context.destination);
    let sink = null;
    node.onaudioprocess = (e) => { if (sink) sink(e.inputBuffer.getChannelData(0)); };
    return {
      rate: context.sampleRate,
      record(seconds) {
        const wanted = Math.round(seconds * context.sampleRate);
        const out = new Float32Array(wanted);
        let have = 0;
        return new Promise((resolve) => {
          sink = (chunk) => {
            const n = Math.min(chunk.length, wanted - have);
            out.set(chunk.subarray(0, n), have);
            have += n;
            $(".tv-progress").value = have / wanted;
            if (have >= wanted) { sink = null; resolve(out); }
          };
        });
      },
      close() { stream.getTracks().forEach((t) => t.stop()); context.close(); },
    };
  }

  function shuffled(list) {
    const a = list.slice();
    for (let i = a.length - 1; i > 0; i--) {
      const j = Math.floor(Math.random() * (i + 1));
      [a[i], a[j]] = [a[j], a[i]];
    }
    return a;
  }

  async function session() {
    if (!$(".tv-consent").checked) { status("Tick the box first: nothing is recorded without " +
                                            "your consent.", true); return; }
    const hello = await ask({ kind: "hello", pseudonym: $(".tv-pseudonym").value });
    if (!hello.ok) { status(hello.message, true); return; }
    $(".tv-pseudonym").value = hello.pseudonym;
    status(hello.message);
    const mic = await openMicrophone();
    let order = [];
    for (let r = 0; r < cfg.repeats; r++) order = order.concat(shuffled(cfg.prompts));
    $(".tv-start").disabled = true; $(".tv-stop").disabled = false;
    $(".tv-consent").disabled = true; $(".tv-pseudonym").disabled = true;
    let done = 0;
    last = null;
    try {
      for (let i = 0; !stopping && (i < order.length || redo); i++) {
        if (redo) {  // "redo" was pressed: that recording goes, its word comes again now
          const gone = await ask({ kind: "discard", file: redo.file });
          if (gone.ok) { done--; order.splice(i, 0, redo.item); }
          status(gone.message, !gone.ok);
          redo = null;
        }
        if (i >= order.length) break;
        const [label, text] = order[i];
        $(".tv-prompt").textContent = `Get ready: ${text}`;
        $(".tv-progress").value = 0;
        await sleep(900);
        // "(stay quiet)" is an instruction, not a word to say
        $(".tv-prompt").textContent = text.startsWith("(") ? text : `Say: ${text}`;
        const samples = await mic.record(cfg.seconds);
        $(".tv-prompt").textContent = "…";
        const int16 = new Int16Array(samples.length);
        for (let k = 0; k < samples.length; k++)
          int16[k] = Math.max(-32768, Math.min(32767, Math.round(samples[k] * 32767)));
        const saved = await ask({ kind: "clip", pseudonym: hello.pseudonym, label: label,
                                  prompt: text, rate: mic.rate, format: "int16",
                                  data: toBase64(int16), consent: true });
        if (!saved.ok) throw new Error(saved.message);
        done++; last = { file: saved.file, item: order[i] };
        $(".tv-redo").disabled = false;
        status(`${done} of ${order.length}: ${saved.message}`, saved.quiet);
        await sleep(300);
      }
      $(".tv-prompt").textContent = stopping ? "Stopped." : "Done: thank you!";
      status(`${done} recording(s) saved as '${hello.pseudonym}'.`);
    } finally {
      mic.close();
      $(".tv-stop").disabled = true; $(".tv-redo").disabled = true;
      $(".tv-start").disabled = false; $(".tv-consent").disabled = false;
      $(".tv-pseudonym").disabled = false; stopping = false;
    }
  }

  let running = false;
  $(".tv-start").onclick = () => {
    if (running) return;
    running = true;
    session().catch((e) => status(String(e.message || e), true))
             .finally(() => { running = false; });
  };
  $(".tv-stop").onclick = () => { stopping = true; };
  $(".tv-redo").onclick = () => {  // the recording saved last when the button was pressed
    if (!last) return;
    redo = last; last = null; $(".tv-redo").disabled = true;
    status(`'${redo.item[1]}' is recorded again next.`);
  };
})();
"""
