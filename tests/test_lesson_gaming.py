"""Hidden tests recompute what they check: a cheating hand-in loses the exercise it games.

Each cheat is one a student could write after reading the visible tests (issue 17, item 6): a
copy of another variable that holds the same value (`host_labels = board_labels`), the output of
the library function the exercise asks them to write (`frames = features.frame_signal(...)`), or a
constant. The hand-in is the solution notebook with only the cheated answers
changed. Real nbgrader grades it, and every cheated test must score 0 while every other autograded
test keeps its points, so the points are lost to the cheat and to nothing else.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pytest

from tinyml_edu.course import check, config, lessons

STUDENT = "cheat"
SOLUTION = re.compile(r"^( *)### BEGIN SOLUTION\n.*?^ *### END SOLUTION\n?", re.M | re.S)

# lesson -> [(answer cell, cheat for each of its solution blocks in order, tests that must fail)]
CHEATS: dict[str, list[tuple[str, list[str], set[str]]]] = {
    "00-setup-check": [
        # the bytes worked out from the stated format (six float32 values), not measured in raw
        ("ans_bytes", ["guess_bytes_per_s = 2400\n"
                       "d_lines = [line for line in raw.splitlines(keepends=True)\n"
                       '           if line.startswith(b"D ")]\n'
                       "bytes_per_sample = 6 * 4\n"
                       "bytes_per_s = bytes_per_sample * rate\n"
                       "link_share = bytes_per_s / (protocol.BAUD_RATE / 10)"],
         {"test_bytes"}),
    ],
    "01-hello-tinyml": [
        ("ans_carray", ['header, source = "g_model_data", export.c_array_source(tflite_int8)[1]'],
         {"test_carray"}),
        # the wide model's size guessed (one byte per extra parameter), not converted
        ("ans_wide", ["guess_bytes = 6000\n"
                      'wide = models.mlp(input_dim=1, hidden=(64, 64), outputs=1, name="wide")\n'
                      "train.fit(wide, x_train, y_train, x_val, y_val, loss='mse', epochs=20)\n"
                      "extra = wide.count_params() - model.count_params()\n"
                      "wide_int8 = tflite_int8 + bytes(extra)\n"
                      "bytes_per_param = 1.0\n"
                      "fixed_bytes = len(tflite_int8) - model.count_params()"],
         {"test_wide"}),
    ],
    "02-capturing-sensor-data": [
        # made-up samples at rest (|a| = 1 g) instead of reading the recording
        ("ans_rate", ["data, rate = np.full((300, 6), 3 ** -0.5), 100.0\n"
                      "n_samples = len(data)\nduration_s = n_samples / rate"],
         {"test_rate", "test_magnitude"}),
        ("ans_windows",
         ["return len(datasets.cut_windows(np.zeros((n_samples, 1)), window, stride))"],
         {"test_windows"}),
        # the 100 Hz peak reused for the 50 Hz recording: "the same shake, the same frequency"
        ("ans_alias", ["x = np.asarray(x, dtype=float)\n"
                       "strength = np.abs(np.fft.rfft(x - x.mean()))\n"
                       "return float(np.fft.rfftfreq(len(x), d=1 / rate)[np.argmax(strength)])",
                       "guess_hz = 40\nhalf, half_rate = vibration[::2], 50.0\n"
                       "full_hz = peak_hz(vibration, 100.0)\nhalf_hz = full_hz"],
         {"test_alias"}),
    ],
    "03-audio-features": [
        ("ans_frames", ["frames = features.frame_signal(audio, WINDOW, STRIDE)"], {"test_frames"}),
        ("ans_edges", ["edges_hz = features.mel_to_hz(np.linspace(\n"
                       "    features.hz_to_mel(20.0), features.hz_to_mel(7600.0), 42))"],
         {"test_edges"}),
        ("ans_logmel", ["log_mel = features.log_mel_spectrogram(clip, params)"], {"test_logmel"}),
        ("ans_mfcc", ['mfccs = features.mfcc(clip, features.AudioFeatureParams(kind="mfcc"))'],
         {"test_mfcc"}),
        # NumPy's gradient: right on a straight line, but it is not the N-frame delta formula
        ("ans_deltas", ["return np.gradient(np.asarray(c, dtype=np.float64), axis=0)",
                        "mfcc_deltas = deltas(mfccs)\n"
                        "stacked = np.concatenate([mfccs, mfcc_deltas], axis=1)"],
         {"test_deltas"}),
    ],
    "04-keyword-spotting": [
        ("ans_confusion", ["from tinyml_edu import report\n"
                           "confusion = report.confusion_matrix(y_test, y_pred, 12)"],
         {"test_confusion"}),
        # the clip unchanged (right length, finite) and the noise added at its own level
        ("ans_augment", ["return np.asarray(clip, dtype=np.float64)",
                         "return np.asarray(clip, dtype=np.float64) + noise",
                         "return time_shift(clip, 0)"],
         {"test_augment"}),
    ],
    "05-quantization": [
        ("ans_quant", ["return quantize.quantize_input(x, scale, zero_point)",
                       "return quantize.dequantize(q, scale, zero_point)"], {"test_quant"}),
        ("ans_compare", ['converter_scale, converter_zero = input_details["quantization"]\n'
                         "my_scale, my_zero = converter_scale, converter_zero"], {"test_compare"}),
        # dynamic range is the float32 model under another name: one conversion saved
        ("ans_modes", ["for mode in quantize.MODES:\n"
                       "    source = 'float32' if mode == 'dynamic' else mode\n"
                       "    tflite_models[mode] = quantize.convert(model, mode=source,\n"
                       "                                           representative=x_train)\n"
                       "    sizes[mode] = len(tflite_models[mode])\n"
                       "    accuracies[mode] = quantize.evaluate(\n"
                       "        tflite_models[mode], x_test, y_test, 'classification'\n"
                       "    )['accuracy']"],
         {"test_modes"}),
        # TensorFlow's own fake quantization (its gradient is already straight-through)
        ("ans_fake_quant", ["q_min, q_max = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1\n"
                            "return tf.quantization.fake_quant_with_min_max_args(\n"
                            "    x, min=(q_min - zero_point) * scale,\n"
                            "    max=(q_max - zero_point) * scale, num_bits=bits)"],
         {"test_fake_quant"}),
        # no QAT at all: the PTQ model under the QAT model's name
        ("ans_qat", ["my_guess = 3\nqat_model = qat_mlp(model_raw, flat_train)\n"
                     "model_qat, tflite_qat, acc_qat = model_raw, tflite_ptq, acc_ptq"],
         {"test_qat"}),
    ],
    "06-fitting-the-board": [
        # the library's fit and latency (used later in the lesson) instead of the rules
        ("ans_fit", ["for board_id, board in boards.BOARDS.items():\n"
                     "    fit = profile.fit_on_board(board, len(tflite_int8), arena, 0, None)\n"
                     "    fit_table[board_id] = (fit.flash_bytes, fit.ram_bytes, fit.fits)"],
         {"test_fit"}),
        ("ans_latency", ["for board_id, board in boards.BOARDS.items():\n"
                         "    if board.clock_hz > 0:\n"
                         "        fit = profile.fit_on_board(\n"
                         "            board, len(tflite_int8), arena, total_macs, None)\n"
                         "        latency_ms[board_id] = fit.latency_ms"],
         {"test_latency"}),
        # only an op's first input counted (the visible two-op model has one input per op), and
        # TFLM's measured head copied as the prediction
        ("ans_predict_arena",
         ["return max(int(np.prod(inputs[0])) + int(np.prod(output)) for _, inputs, output in ops)",
          "my_guess = 8\n"
          "small_prediction = profile.tflm_arena_parts(tflite_int8)['head']\n"
          "wide_prediction = profile.tflm_arena_parts(tflite_wide)['head']\n"
          "wide_arena = profile.tflm_arena_bytes(tflite_wide)"],
         {"test_predict_arena"}),
    ],
    "07-deployment": [
        ("ans_build", ['result = deploy.build_sketch(run / "model_int8.tflite", '
                       '"nano33ble_sense_rev2", "sketches")\n'
                       'ino = "void setup() { registerOps(); }"'],
         {"test_build", "test_ops"}),  # exercise 2 reads the sketch's ops from ino
        # the board's labels as the host's, scores made up from them (issue 17 item 6)
        ("ans_compare", ['board = capture.predictions("virtual", 12, source="gestures", speed=20, '
                         "flash_dir=FLASH)\n"
                         "board_labels = [p.label for p in board]\n"
                         "host_labels = board_labels\n"
                         "host_scores = np.eye(len(labels))[\n"
                         "    [labels.index(b) for b in board_labels]]"],
         {"test_compare"}),
        # the library's quantizer (the one the board agrees with) instead of lroundf by hand
        ("ans_quant_bug",
         ["if truncate:\n"
          "    v = np.asarray(x, dtype=np.float32) / np.float32(scale)\n"
          "    return np.clip(np.trunc(v) + zero_point, -128, 127).astype(np.int8)\n"
          "return runtime.quantize_input(x, scale, zero_point)",
          "my_guess = 3\n"
          'settings = (result.sketch_dir / "model_settings.h").read_text()\n'
          'input_scale = float(re.search(r"kInputScale = ([-+.\\deE]+)f", settings).group(1))\n'
          'input_zero_point = int(re.search(r"kInputZeroPoint = (-?\\d+)", settings).group(1))\n'
          "q = sketch_quantize(board_features, input_scale, input_zero_point)\n"
          "scores_round = run_int8(model_int8, q)\n"
          "q = sketch_quantize(board_features, input_scale, input_zero_point, truncate=True)\n"
          "scores_trunc = run_int8(model_int8, q)\n"
          "labels_changed = int(np.sum(scores_round.argmax(1) != scores_trunc.argmax(1)))\n"
          "largest_shift = float(np.abs(scores_trunc - scores_round).max())"],
         {"test_quant_bug"}),
        # the lesson's first model, trained on the shipped data, instead of my_model
        ("ans_retrain", ["my_model_int8 = model_int8\n"
                         "my_pred = quantize.predict(my_model_int8, "
                         "gestures.imu_features(my_x_test)).argmax(axis=1)\n"
                         "my_accuracy = float(np.mean(my_pred == my_y_test))"],
         {"test_retrain"}),
    ],
    "09-listening-for-mosquitoes": [
        # the project's f0 instead of the student's spectrum peak; f0_train and species_mean
        # (exercise 2) are then computed from it too
        ("ans_f0", ["f0 = float(wingbeats.raw_features(clip[None])[0, 0])"],
         {"test_f0", "test_hist"}),
        # no Hann window; the project's levels (its own band and noise floor) instead of the
        # student's bands
        ("ans_band", ["spectrum = np.abs(np.fft.rfft(clip))\n"
                      "band = (np.fft.rfftfreq(len(clip), 1 / RATE) >= low_hz) & "
                      "(np.fft.rfftfreq(len(clip), 1 / RATE) < high_hz)\n"
                      "return float(np.sum(spectrum[band] ** 2))",
                      "return float(wingbeats.raw_features(np.asarray(clip)[None])[0, k])",
                      "h2_train = wingbeats.raw_features(x_train)[:, 2]\n"
                      "h2_test = wingbeats.raw_features(x_test)[:, 2]"],
         {"test_band"}),
    ],
    "10-heart-rhythm": [
        ("ans_cv", ["return float(ecg.raw_features(window_uv[None])[0, 1])",
                    "cv_val = np.array([rr_cv(w) for w in x_val])"], {"test_cv"}),
    ],
    "11-water-quality": [
        # the library's AUC, which the tests compare with, instead of counting the pairs
        ("ans_pair_auc", ["return float(metrics.roc_auc(scores, is_anomaly))",
                          "auc = pair_auc(score_test, wq_y_test == 1)"], {"test_pair_auc"}),
    ],
    "12-responsible-tinyml": [
        # the profile's latency, printed above the exercise, instead of MACs x cycles / clock
        ("ans_energy", ['latency_s = prof.boards["nano33ble_sense_rev2"].latency_ms / 1000\n'
                        "energy_per_inference_j = latency_s * ACTIVE_POWER_W"], {"test_energy"}),
        # exercise 2's worst and best accent groups standing in for the female and male voices
        ("ans_female", ["my_guess = 5\n"
                        "acc_female = acc_by_group[worst_group]\n"
                        "acc_male = acc_by_group[best_group]\n"
                        "female_gap = acc_male - acc_female\n"
                        "gap_se = float(np.sqrt(acc_female * (1 - acc_female) / 50 "
                        "+ acc_male * (1 - acc_male) / 50))"],
         {"test_female"}),
    ],
    "13-listening-for-elephants": [
        # the true f0 copied in as the measured peaks, and the fractions made up
        ("ans_octave", ["my_guess = 0.7\nfound = true_f0.copy()\nright, octave = 1.0, 0.0"],
         {"test_octave"}),
    ],
    "14-detecting-elephants": [
        # the flat recorder's recall, printed above, instead of measuring through the microphone
        ("ans_microphone", ["my_guess = 0.5\nrecall_100 = per_class.copy()"], {"test_microphone"}),
    ],
    "15-listening-all-the-time": [
        # the library's smoother, which the tests compare with, instead of the student's rules
        ("ans_smooth", ["hop = int(np.min(np.diff(times_ms)))\n"
                        "params = listen.ListenParams(hop_ms=hop, average_window_ms=window_ms,\n"
                        "                             min_count=min_count, threshold=threshold,\n"
                        "                             suppression_ms=suppression_ms)\n"
                        "detections = [(int(round(d.time * 1000)), d.label)\n"
                        "              for d in listen.smooth(times_ms, scores, labels, params)]"],
         {"test_smooth_rules", "test_smooth_suppression", "test_smooth_stream"}),
        # the score's own rates instead of dividing the counts
        ("ans_rates", ["my_hit_rate = score.hit_rate\n"
                       "my_fa_per_hour = score.false_alarms_per_hour"],
         {"test_rates"}),
        # the default threshold's rates instead of a new measurement at 0.8
        ("ans_high", ["my_fa_guess = 90\n"
                      "high_fa_per_hour, high_hit_rate = my_fa_per_hour, my_hit_rate"],
         {"test_high"}),
    ],
    "08-magic-wand": [
        ("ans_features", ["amag = gestures.imu_features(x_train)[..., 6]\n"
                          "n_windows = len(features.imu_windows(x_test.reshape(-1, 6), "
                          "gestures.FEATURES))"],
         {"test_features"}),
        # no turn at all, and the accuracy of the wand held as recorded
        ("ans_rotated", ["return np.asarray(windows, dtype=np.float64).copy()",
                         "my_guess = 70\nrotated_accuracy = int8_accuracy"],
         {"test_rotated"}),
    ],
    "18-counting-cars": [
        # the project's peak rule instead of the student's loops (exercise 4 counts with it too)
        ("ans_find_cars",
         ["return (np.argwhere(cars.local_peaks(prob, threshold)[0]) + 0.5) * CELL"],
         {"test_find_cars", "test_scores"}),
        # the project's 96 x 96 frame buffer for every camera setting: everything "fits"
        ("ans_budget", ["arena_bytes = profile.tflm_arena_bytes(int8_model)\n"
                        "frame_bytes = {name: cars.FRAME_BUFFER_BYTES\n"
                        "               for name in CAMERA_SETTINGS}\n"
                        "fits = {name: True for name in CAMERA_SETTINGS}\n"
                        "fit = profile.fit_on_board(\n"
                        "    nano, len(int8_model), arena_bytes, macs, None)\n"
                        "frames_per_second = 1000 / fit.latency_ms"],
         {"test_budget"}),
        # the day frames' figures, printed above, instead of measuring the dark frames
        ("ans_dark", ["my_guess = 3.0\ndark_mae = mae_by_condition['day']\n"
                      "dark_bias = 0.0\ndark_recall = results['int8']['recall']"],
         {"test_dark"}),
    ],
    "16-debugging-on-the-board": [
        # the board's own labels as the computer's: every board then "agrees" with the computer
        ("ans_host", ["return [p.label for p in preds]",
                      "host = host_labels_for(healthy_preds, stream)\n"
                      "healthy_agreement = float(np.mean([p.label == h for p, h in "
                      "zip(healthy_preds, host, strict=True)]))"],
         {"test_host"}),
        # a linear scan instead of bisection, and the arena read off the healthy board's comment
        ("ans_arena", ["n = low\nwhile not boots(n):\n    n += 16\nreturn n",
                       'arena_needed = int(re.search(r"arena (\\d+) of", '
                       '"\\n".join(healthy_lines)).group(1))'],
         {"test_arena"}),
    ],
    "17-seeing-with-a-camera": [
        # Pillow's grayscale (the library's read_frame uses it) instead of weighting the channels
        ("ans_gray", ['return np.asarray(Image.fromarray(np.asarray(rgb, np.uint8)).convert("L"))',
                      "h, w = image.shape[:2]\nside = min(h, w)\n"
                      "top, left = (h - side) // 2, (w - side) // 2\n"
                      "return image[top:top + side, left:left + side]"],
         {"test_gray"}),
        # right helpers, but augment hands the frames back unchanged
        ("ans_augment", ["out = (np.asarray(frames, dtype=np.float64) - 128) * contrast"
                         " + 128 + brightness\n"
                         "return np.clip(np.round(out), 0, 255).astype(np.uint8)",
                         "frames = np.asarray(frames)\nh, w = frames.shape[1:3]\n"
                         "pad = max(abs(dy), abs(dx))\n"
                         "padded = np.pad(frames, ((0, 0), (pad, pad), (pad, pad), (0, 0)), "
                         'mode="edge")\n'
                         "return padded[:, pad - dy:pad - dy + h, pad - dx:pad - dx + w]",
                         "noisy = np.asarray(frames, dtype=np.float64) + rng.normal(0.0, sigma, "
                         "np.shape(frames))\n"
                         "return np.clip(np.round(noisy), 0, 255).astype(np.uint8)",
                         "return np.asarray(frames).copy()"],
         {"test_augment"}),
        # one network trained, and used as both: "from scratch" is the pre-trained one
        ("ans_transfer", ["guess_scratch, guess_transfer = 0.3, 0.6\ntrain.set_seed(0)\n"
                          "transfer = images.build(prep)\n"
                          'train_few(transfer, "pre-trained")\nscratch = transfer\n'
                          "predicted = transfer.predict(inputs_test, verbose=0).argmax(axis=1)\n"
                          "transfer_accuracy = float(np.mean(predicted == y_test))\n"
                          "scratch_accuracy = transfer_accuracy"],
         {"test_transfer"}),
        # the library's fit, shown after the exercise, instead of the flash and RAM rules
        ("ans_fit", ["for name, camera_frame in CAMERA_FRAMES.items():\n"
                     "    fit = profile.fit_on_board(NANO, len(model_int8), arena_bytes, 0, None,\n"
                     "                               extra_ram_bytes=camera_frame + frame_bytes)\n"
                     "    fit_table[name] = (fit.flash_bytes, fit.ram_bytes, fit.fits)"],
         {"test_fit"}),
    ],
}


def _meta(cell: dict) -> dict:
    return cell["metadata"].get("nbgrader", {})


def _indented(blocks: Iterator[str]) -> Callable[[re.Match[str]], str]:
    """A ``re.sub`` replacement: the next cheat, at the indentation of the block it replaces."""
    def replace(match: re.Match[str]) -> str:
        return "".join(match.group(1) + line + "\n" for line in next(blocks).splitlines())
    return replace


def cheat_notebook(solution: dict, cheats: list[tuple[str, list[str], set[str]]]) -> dict:
    """The solution notebook with each cheated answer cell's solution blocks replaced."""
    nb = json.loads(json.dumps(solution))
    for grade_id, blocks, _ in cheats:
        cell = next(c for c in nb["cells"] if _meta(c).get("grade_id") == grade_id)
        source = "".join(cell["source"])
        found = SOLUTION.findall(source)
        assert len(found) == len(blocks), f"{grade_id} has {len(found)} solution blocks"
        cell["source"] = SOLUTION.sub(_indented(iter(blocks)), source).splitlines(keepends=True)
    return nb


def test_cheat_notebook_replaces_only_the_solution_blocks() -> None:
    lesson = lessons.get_lesson("05")
    solution = lessons.read_notebook(lesson.notebook)
    cheated = cheat_notebook(solution, CHEATS[lesson.id])
    changed = [_meta(c).get("grade_id") for c, s in zip(cheated["cells"], solution["cells"],
                                                        strict=True) if c != s]
    assert changed == ["ans_quant", "ans_compare", "ans_modes", "ans_fake_quant", "ans_qat"]
    quant = "".join(next(c for c in cheated["cells"]
                         if _meta(c).get("grade_id") == "ans_quant")["source"])
    assert "    return quantize.quantize_input(x, scale, zero_point)\n" in quant
    assert "BEGIN SOLUTION" not in quant and "def dequantize_tensor" in quant


def _test_scores(root: Path, source: Path, lesson: str) -> dict[str, float]:
    from nbgrader.api import Gradebook

    db_url = config.load_config(root, source).CourseDirectory.db_url
    with Gradebook(db_url) as gb:
        submitted = gb.find_submission_notebook(lesson, lesson, STUDENT)
        return {g.name: float(g.auto_score) for g in submitted.grades if g.auto_score is not None}


# Two cheats are graded at once from threads: only their child processes overlap; nbgrader's
# in-process API (release, gradebook) is not known to be thread-safe, so it takes turns.
NBGRADER_IN_PROCESS = threading.Lock()


def _grade_cheat(lesson_id: str) -> dict[str, float]:
    """Release the lesson in a throw-away course, hand in its cheat, autograde it with real
    nbgrader in the grader's own child process (as `course check`, with the network cut where
    the machine can), and return each autograded test's score."""
    from nbgrader.apps import NbGraderAPI

    lesson = lessons.get_lesson(lesson_id)
    source = lesson.folder.parent
    root = Path(tempfile.mkdtemp(prefix=f"gaming-{lesson_id}-"))
    try:
        with NBGRADER_IN_PROCESS:
            api = NbGraderAPI(config=config.load_config(root, source))
            assert api.generate_assignment(lesson_id, force=True, create=True)["success"]
        hand_in = root / "submitted" / STUDENT / lesson_id
        shutil.copytree(lesson.folder, hand_in,
                        ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
        (hand_in / lesson.notebook.name).write_text(
            json.dumps(cheat_notebook(lessons.read_notebook(lesson.notebook), CHEATS[lesson_id])))
        # the grader's own child process, as `course check` starts it (network cut where the
        # machine can, TensorFlow's C++ log off, started in this course's folder)
        run = check._autograde_in_child(root, source, lesson_id, STUDENT,
                                        check.offline_available())
        assert run.returncode == 0, run.output[-3000:]
        with NBGRADER_IN_PROCESS:
            return _test_scores(root, source, lesson_id)
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def graded_cheat(request: pytest.FixtureRequest) -> Iterator[Callable[[str], dict[str, float]]]:
    """Scores of each lesson's cheat, graded two at a time: asking for one lesson also starts
    the next selected one, so a 2-core machine grades while the other test waits."""
    order = [item.callspec.params["lesson_id"] for item in request.session.items
             if getattr(item, "originalname", "") == "test_cheat_loses_the_gamed_exercise"]
    futures: dict[str, Future[dict[str, float]]] = {}
    with ThreadPoolExecutor(2) as pool:
        def scores(lesson_id: str) -> dict[str, float]:
            at = order.index(lesson_id) if lesson_id in order else len(order)
            for wanted in [lesson_id, *order[at + 1:at + 2]]:
                if wanted not in futures:
                    futures[wanted] = pool.submit(_grade_cheat, wanted)
            return futures[lesson_id].result()
        yield scores


@pytest.mark.slow
@pytest.mark.parametrize("lesson_id", sorted(CHEATS))
def test_cheat_loses_the_gamed_exercise(lesson_id: str, graded_cheat) -> None:
    lesson = lessons.get_lesson(lesson_id)
    solution = lessons.read_notebook(lesson.notebook)
    points = {_meta(c)["grade_id"]: float(_meta(c)["points"]) for c in solution["cells"]
              if _meta(c).get("grade") and not _meta(c).get("solution")}
    must_fail = set().union(*(fails for _, _, fails in CHEATS[lesson_id]))
    assert must_fail <= set(points), must_fail - set(points)

    scores = graded_cheat(lesson_id)
    expected = {gid: 0.0 if gid in must_fail else pts for gid, pts in points.items()}
    assert {gid: scores.get(gid) for gid in points} == expected


# The helper the hidden tests use to tell a student's computation from a copy, on plain cells.
NOTEBOOK = [
    "import numpy as np\nfrom tinyml_edu import features",
    "library = features.log_mel_spectrogram(clip, params)  # a comparison is fine",
    "log_mel = np.log(np.maximum(power @ fb, 1e-6))",
    "def hz_to_mel(f):\n    return 2595 * np.log10(1 + f / 700)\nedges = hz_to_mel(np.arange(3))",
    "mel_to_hz = lambda m: 700 * (10 ** (m / 2595) - 1)\nback = mel_to_hz(edges)",
    "from tinyml_edu.features import *\nstarred = mfcc(clip, p)",
    "tmp = features.mfcc(clip, p)",
    "mfccs = tmp.copy()",
    "alias = features.frame_signal\ndef cut(a):\n    return alias(a, 480, 320)\n"
    "frames = cut(audio)",
    "from tinyml_edu.features import dct_matrix as d\nD = np.zeros((13, 40))\n"
    "D[1:] = d(13, 40)[1:]",
    "board_labels = [p.label for p in board]\nhost_labels = list(board_labels)",
    "confusion = np.zeros((12, 12), int)\nnp.add.at(confusion, (y_test, y_pred), 1)",
]
AVOID = ["log_mel_spectrogram", "mfcc", "frame_signal", "dct_matrix", "hz_to_mel",
         "confusion_matrix"]
COPIES = ["board_labels"]


@pytest.mark.parametrize(("name", "found"), [
    ("log_mel", set()), ("library", {"log_mel_spectrogram"}), ("edges", set()),
    ("mfccs", {"mfcc"}), ("frames", {"frame_signal"}), ("D", {"dct_matrix"}),
    ("host_labels", {"board_labels"}), ("confusion", set()), ("back", set()),
    ("starred", {"mfcc"}),
])
def test_copied_from_follows_each_name_to_its_sources(name: str, found: set[str]) -> None:
    from tinyml_edu import checks

    assert checks.copied_from(name, AVOID + ["mel_to_hz"], COPIES, NOTEBOOK) == found


def test_check_own_work_names_the_copy_without_the_answer() -> None:
    from tinyml_edu import checks

    checks.check_own_work("log_mel", AVOID, cells=NOTEBOOK)
    with pytest.raises(checks.CheckFailed, match="computed from mfcc, which this exercise asks"):
        checks.check_own_work("mfccs", AVOID, cells=NOTEBOOK)
    # a later, honest computation replaces the copy
    checks.check_own_work("mfccs", AVOID, cells=[*NOTEBOOK, "mfccs = log_mel[:, :13] * 2"])
    # a copy stays a copy however the copied variable itself was computed
    with pytest.raises(checks.CheckFailed, match="computed from board_labels"):
        checks.check_own_work("host_labels", copies=COPIES, cells=NOTEBOOK)
