"""How the `kws` score on held-out voices grows with the number of training speakers.

    python benchmarks/kws_speakers.py                          # shares 0.25 0.5 0.75 1, seeds 0 1
    python benchmarks/kws_speakers.py --shares 0.5 1 --seeds 0

Trains the `kws` project as `tinyml-edu run kws` does, on a random share of the training
speakers: every clip of a kept speaker and all silence clips; val and test stay whole. A
speaker is what the splits are disjoint over (``generators.kws.speaker_of``: an espeak-ng voice
variant, or a flite speaker). Prints the int8 test accuracy for each share and seed and the
mean over seeds. About 10 minutes with the defaults on 2 cores.

This is the evidence behind the datasheet's statement that the held-out-voice score is limited
by how many distinct voices the training split has, not by the number of clips.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tinyml_edu import datasets, pipeline, quantize  # noqa: E402
from tinyml_edu.generators.kws import speaker_of  # noqa: E402
from tinyml_edu.projects import get_project  # noqa: E402


def keep_speakers(ds: datasets.Dataset, share: float, seed: int) -> tuple[datasets.Dataset, int,
                                                                           int]:
    """A copy of ``ds`` whose training split keeps a random ``share`` of its speakers.
    Returns it with the number of speakers kept and in all."""
    speakers = np.array([speaker_of(str(g)) for g in ds.groups("train")])
    is_noise = np.char.startswith(speakers.astype(str), "noise_")  # silence: kept whole
    names = sorted(set(speakers[~is_noise]))
    count = max(1, int(round(share * len(names))))
    kept = set(np.random.default_rng(seed).choice(names, count, replace=False))
    rows = is_noise | np.isin(speakers, list(kept))
    arrays = dict(ds.arrays)
    for key in ("x_train", "y_train", "group_train"):
        arrays[key] = np.asarray(arrays[key])[rows]
    return datasets.Dataset(ds.info, arrays), count, len(names)


def int8_accuracy(ds: datasets.Dataset, seed: int) -> float:
    project = get_project("kws")
    prep = project.prepare(ds)
    model, _ = pipeline.train_model(project, prep, ds.info.task, seed=seed, progress=False)
    blob = quantize.convert(model, "int8", representative=prep.x["train"],
                            per_channel_dense=project.per_channel_dense)
    predicted = quantize.predict(blob, prep.x["test"]).argmax(axis=-1)
    return float(np.mean(predicted == prep.y["test"]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shares", type=float, nargs="+", default=[0.25, 0.5, 0.75, 1.0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1],
                        help="each seed draws its own speakers and initial weights")
    args = parser.parse_args(argv)
    if not all(0 < s <= 1 for s in args.shares):
        parser.error("--shares must lie in (0, 1]")
    full = datasets.load("kws")
    print(f"{'share':>6} {'speakers':>9} {'clips':>6}  int8 test accuracy per seed  mean")
    for share in args.shares:
        scores, clips = [], []
        for seed in args.seeds:
            ds, kept, total = keep_speakers(full, share, seed)
            clips.append(len(ds.arrays["y_train"]))
            scores.append(int8_accuracy(ds, seed))
        per_seed = "  ".join(f"{s:.1%}" for s in scores)
        print(f"{share:>6.2f} {f'{kept}/{total}':>9} {round(statistics.mean(clips)):>6}  "
              f"{per_seed:<27} {statistics.mean(scores):.1%}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
