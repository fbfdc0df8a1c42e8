"""The whole board loop over a real pseudo-terminal, as a class without boards would run it:
capture labelled IMU data from the virtual board, train on it, deploy the model to the virtual
board, and read back predictions that match what the host computes for the same windows."""

import json

import numpy as np
import pytest

from tinyml_edu import capture, datasets, deploy, pipeline, quantize
from tinyml_edu.projects import gestures

COLUMNS = "ax,ay,az,gx,gy,gz"


def _stream_folder(folder, label, windows):
    """A recordings folder whose only file is ``windows`` played back to back."""
    (folder / label).mkdir(parents=True)
    np.savetxt(folder / label / "stream.csv", windows.reshape(-1, 6), delimiter=",",
               fmt="%.4f", header=COLUMNS, comments="")
    (folder / label / "stream.json").write_text(json.dumps({"rate": 100}))
    return folder


@pytest.mark.slow
def test_capture_train_deploy_predict_on_the_virtual_board(tmp_path):
    ds = datasets.load("gestures")
    x_train, y_train = ds.split("train")
    empty_flash, flash = tmp_path / "empty_flash", tmp_path / "flash"
    captured = tmp_path / "my_gestures"

    # 1. Capture: three short recordings per gesture, from boards streaming that gesture.
    for index, label in enumerate(ds.info.classes):
        source = _stream_folder(tmp_path / f"src_{label}", label, x_train[y_train == index][:30])
        for _ in range(3):
            result = capture.capture("virtual", "imu", label, 4.0, captured, progress=False,
                                     source=source, speed=40, flash_dir=empty_flash)
            assert not result.interrupted and result.samples >= 390
    assert len(list(captured.glob("*/*.csv"))) == 12

    # 2. Train on the captured folder with the gestures project.
    run_dir = tmp_path / "run"
    report = pipeline.run("gestures", run_dir, progress=False, log=lambda m: None,
                          data=captured)
    assert report["dataset"] == str(captured) and report["classes"] == list(ds.info.classes)

    # 3. Deploy to the virtual board.
    sketch = deploy.build_sketch(run_dir / "model_int8.tflite", "nano33ble_sense_rev2",
                                 tmp_path / "sketches").sketch_dir
    deploy.flash_virtual(sketch, flash)

    # 4. Predictions from the board equal the host's for the same windows.
    x_test, _ = ds.split("test")
    test_stream = _stream_folder(tmp_path / "src_test", "mixed", x_test[:6])
    preds = capture.predictions("virtual", 6, timeout=30, source=test_stream, speed=20,
                                flash_dir=flash)
    stream = np.loadtxt(test_stream / "mixed" / "stream.csv", delimiter=",", skiprows=1,
                        dtype=np.float32)
    windows = np.stack([stream[p.seq * 64:p.seq * 64 + 128] for p in preds])
    expected = quantize.predict((run_dir / "model_int8.tflite").read_bytes(),
                                gestures.imu_features(windows))
    assert [p.label for p in preds] == [report["classes"][i] for i in expected.argmax(axis=1)]
    np.testing.assert_allclose([p.score for p in preds], expected.max(axis=1), atol=2e-3)
