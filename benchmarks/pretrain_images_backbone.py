"""Pre-train the backbone that ``tinyml-edu run images`` fine-tunes, and ship its weights.

    TF_ENABLE_ONEDNN_OPTS=0 PYTHONPATH=. python benchmarks/pretrain_images_backbone.py

1. Regenerates the pre-training frames (``tinyml_edu.generators.images.pretraining``: eight
   symbols that are NOT the project's classes, 1,000 each, seed 6969, training desks only), or
   reads them from ``--data`` (the file ``python -m tinyml_edu.generators.images --pretraining
   FILE`` writes).
2. Trains ``projects.images.backbone()`` + a softmax over the eight symbols, each frame turned
   or flipped at random (the project's transforms), for ``--epochs`` epochs (seeded), and
   holds out 10 % to say how well it learnt.
3. Writes the backbone's weights to ``tinyml_edu/pretrained/images_backbone.npz`` (or
   ``--out``) and prints their sha256: put it in ``projects/images.py`` (``BACKBONE_SHA256``).

The same TensorFlow version on the same kind of CPU gives the same file; another version may
differ in the last bits, which is why the file ships rather than being rebuilt at install.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tinyml_edu.projects import images  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, help="pre-training npz (else regenerated)")
    parser.add_argument("--out", type=Path, default=images.BACKBONE_FILE)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if args.data:
        with np.load(args.data) as f:
            x, y = f["x"], f["y"]
    else:
        from tinyml_edu.generators.images import pretraining

        data = pretraining()
        x, y = data["x"], data["y"]
    classes = int(y.max()) + 1
    order = np.random.default_rng(args.seed).permutation(len(y))
    held = order[: len(y) // 10]
    fit = order[len(y) // 10:]
    # One random flip or quarter turn per frame (all eight of each would take 8x as long).
    turns = np.random.default_rng(args.seed + 1).integers(0, images.AUG_TRANSFORMS, len(fit))
    x_fit = images.frames_to_inputs(x[fit])
    for k in range(images.AUG_TRANSFORMS):
        x_fit[turns == k] = images.dihedral(x_fit[turns == k], k)
    y_fit = y[fit]
    x_held, y_held = images.frames_to_inputs(x[held]), y[held]

    import keras

    keras.utils.set_random_seed(args.seed)
    base = images.backbone()
    model = images.classifier(base, classes)
    model.compile(keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(
        3e-3, args.epochs * (len(y_fit) // 64 + 1))),
        "sparse_categorical_crossentropy", metrics=["accuracy"])
    start = time.perf_counter()
    model.fit(x_fit, y_fit, epochs=args.epochs, batch_size=64, verbose=2)
    seconds = time.perf_counter() - start
    held_accuracy = float(np.mean(model.predict(x_held, verbose=0).argmax(1) == y_held))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    sha = images.save_backbone_weights(base, args.out)
    print(json.dumps({"file": str(args.out), "bytes": args.out.stat().st_size, "sha256": sha,
                      "held_out_accuracy": held_accuracy, "train_s": round(seconds, 1),
                      "frames": len(y_fit), "epochs": args.epochs, "seed": args.seed},
                     indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
