"""The kws model on voices of a speech engine it never heard: Festival.

    sudo apt-get install festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts \
        festvox-italp16k festvox-itapc16k festvox-czech-machac festvox-czech-dita festvox-ru \
        festvox-suopuhe-lj festvox-suopuhe-mv festvox-ca-ona-hts
    python benchmarks/kws_unseen_engine.py                 # the shipped pretrained run
    python benchmarks/kws_unseen_engine.py runs/kws runs/kws_seed1
    python benchmarks/kws_unseen_engine.py --clips festival.npz runs/kws   # keep the clips

The shipped data set is spoken by espeak-ng and flite; Festival is a third engine (flite began
as a small Festival, so its `kal` and `slt` are the same two speakers as flite's, the rest are
not). Each installed Festival voice says the 10 keywords at two speaking rates and 10 unknown
words, trimmed and centred in a clean one-second clip at -20 dBFS peak; each run's int8 model
classifies them. The English voices read English as they should; the Italian, Czech, Russian,
Finnish and Catalan voices read the English words with their own letter-to-sound rules, a
strong accent. The clips are made here, on this machine: nothing is downloaded, nothing is
shipped (``--clips FILE`` keeps them in an .npz on this machine and reads them back next time:
making them takes minutes). With several runs it prints the median per voice too. Nothing here
fails a build.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

VOICES = ("kal_diphone", "ked_diphone", "cmu_us_slt_arctic_hts", "lp_diphone", "pc_diphone",
          "czech_machac", "czech_dita", "czech_ph", "msu_ru_nsh_clunits", "suo_fi_lj_diphone",
          "hy_fi_mv_diphone", "upc_ca_ona_hts")
STRETCHES = (0.9, 1.1)  # Festival's Duration_Stretch: a faster and a slower reading
UNKNOWN = ("bed", "bird", "cat", "dog", "happy", "house", "tree", "wow", "seven", "zero")
PEAK_DBFS = -20.0


def say(voice: str, text: str, stretch: float) -> np.ndarray | None:
    """One word as a centred one-second int16 clip, or None when the voice cannot say it."""
    import soundfile

    from tinyml_edu.generators import kws

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "word.wav"
        setup = f"(begin (voice_{voice}) (Parameter.set 'Duration_Stretch {stretch}))"
        done = subprocess.run(["text2wave", "-eval", setup, "-o", str(out)], input=text.encode(),
                              capture_output=True, timeout=60, check=False)
        if done.returncode != 0 or not out.is_file():
            return None
        x, sr = soundfile.read(out, dtype="float64", always_2d=True)
    x = kws.trim(x[:, 0], sr)
    speed = max(1.0, len(x) / sr / kws.MAX_WORD_S * 1.01)  # squeeze a slow word into the clip
    x = kws.fade(kws.resample(x, sr, speed), kws.SAMPLE_RATE)[:kws.CLIP_SAMPLES]
    clip = np.zeros(kws.CLIP_SAMPLES)
    start = (len(clip) - len(x)) // 2
    clip[start:start + len(x)] = x
    clip *= 10 ** (PEAK_DBFS / 20) / (np.max(np.abs(clip)) + 1e-12)
    return kws.to_int16(clip)


def make_clips() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    from tinyml_edu.generators import kws

    clips, labels, voices = [], [], []
    for voice in VOICES:
        words = ([(w, w) for w in kws.KEYWORDS for _ in STRETCHES]
                 + [(w, "unknown") for w in UNKNOWN])
        stretches = [s for _ in kws.KEYWORDS for s in STRETCHES] + [
            STRETCHES[i % 2] for i in range(len(UNKNOWN))]
        for (text, label), stretch in zip(words, stretches, strict=True):
            clip = say(voice, text, stretch)
            if clip is None:
                print(f"note: Festival voice {voice} is not installed or failed; skipped")
                break
            clips.append(clip)
            labels.append(kws.CLASSES.index(label))
            voices.append(voice)
    if not clips:
        sys.exit("Festival (text2wave) and its voices are not installed: see this file's "
                 "docstring for the apt-get line")
    return np.stack(clips), np.array(labels), np.array(voices)


def load_or_make(cache: Path | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The clips, read from ``cache`` if it exists, else made (and saved there if given)."""
    if cache is not None and cache.is_file():
        with np.load(cache, allow_pickle=False) as saved:
            return saved["clips"], saved["labels"], saved["voices"]
    clips, labels, voices = make_clips()
    if cache is not None:
        np.savez(cache, clips=clips, labels=labels, voices=voices)
    return clips, labels, voices


def main(argv: list[str]) -> int:
    import argparse

    from tinyml_edu import pretrained, quantize
    from tinyml_edu.projects import kws as kws_project
    from tinyml_edu.run_report import RunReport

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="*", type=Path, help="run folders (default: the shipped "
                        "pretrained run)")
    parser.add_argument("--clips", type=Path, help="an .npz to keep the Festival clips in")
    args = parser.parse_args(argv)
    runs = args.runs or [pretrained.run_dir("kws")]
    clips, labels, voices = load_or_make(args.clips)
    names = list(dict.fromkeys(voices.tolist()))
    print(f"{len(clips)} Festival clips, {len(names)} voices")
    overall, keywords, unknown, per_voice = [], [], [], {v: [] for v in names}
    for run in runs:
        report, model = RunReport.load_finished(run)
        scores = quantize.predict(model.read_bytes(),
                                  kws_project.model_inputs(clips, report.params))
        right = scores.argmax(axis=1) == labels
        overall.append(float(right.mean()))
        keywords.append(float(right[labels > 1].mean()))
        unknown.append(float(right[labels == 1].mean()))
        for v in names:
            per_voice[v].append(float(right[voices == v].mean()))
        print(f"{run}: {right.mean():.1%} of all clips; keywords {right[labels > 1].mean():.1%}, "
              f"unknown {right[labels == 1].mean():.1%}")
        print("  " + ", ".join(f"{v} {right[voices == v].mean():.0%}" for v in names))
    if len(overall) > 1:
        med = statistics.median
        print(f"median over {len(overall)} runs: {med(overall):.1%} (keywords "
              f"{med(keywords):.1%}, unknown {med(unknown):.1%})")
        print("  " + ", ".join(f"{v} {med(per_voice[v]):.0%}" for v in names))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
