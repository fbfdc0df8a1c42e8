"""Camera capture: the virtual board's camera over a real pty, PNG + JSON per frame, damaged
frames skipped, a pulled cable losing nothing already saved, and the command line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tinyml_edu import capture, protocol, virtual_board
from tinyml_edu.capture import CaptureError
from tinyml_edu.virtual_board import VirtualBoardError, load_stream
from tinyml_edu.virtual_board.camera import CAMERA_SIZE, TEST_CARD, make_test_card

pytestmark = pytest.mark.skipif(os.name == "nt", reason="the virtual board needs a pty")

SPEED = 40.0  # 200 frames a second


@pytest.fixture(autouse=True)
def _private_flash(flash_dir: Path) -> Path:
    return flash_dir


@pytest.fixture(autouse=True)
def no_board_left_running():
    yield
    assert not [t for t in threading.enumerate() if t.name.startswith("virtual-board")]


def as_sent(image: np.ndarray) -> np.ndarray:
    """What an RGB picture looks like after the trip through RGB565."""
    return protocol.rgb565_to_rgb(protocol.rgb_to_rgb565(image), image.shape[1], image.shape[0])


def saved(result: capture.FrameCaptureResult) -> list[tuple[np.ndarray, dict]]:
    out = []
    for png in result.files:
        with Image.open(png) as image:
            pixels = np.asarray(image)
        out.append((pixels, json.loads(png.with_suffix(".json").read_text())))
    return out


def test_frames_of_the_virtual_camera_become_png_and_json(tmp_path):
    result = capture.capture_frames("virtual", "circle", tmp_path / "data", frames=6,
                                    progress=False, speed=SPEED, group="Blue-Fox",
                                    source=TEST_CARD)
    assert not result.interrupted and result.frames == 6
    assert (result.lost_frames, result.bad_frames, result.corrupted) == (0, 0, 0)
    assert result.folder == tmp_path / "data" / "circle"
    assert sorted(result.folder.glob("*.png")) == sorted(result.files)
    assert len(list(result.folder.glob("*.json"))) == 6
    circles, _ = make_test_card("circle")
    for k, (pixels, meta) in enumerate(saved(result)):
        # The virtual camera shows the label's test-card frames in order, again and again.
        np.testing.assert_array_equal(pixels, as_sent(circles[k % len(circles)]))
        assert meta["file"] == result.files[k].name and meta["sequence"] == k
        assert (meta["width"], meta["height"]) == CAMERA_SIZE
        assert meta["pixel_format"] == "rgb565" and meta["sensor"] == "camera"
        assert meta["label"] == "circle" and meta["board"] == "virtual"
        assert meta["group"] == "blue-fox" and meta["frame"] == k and meta["lost_before"] == 0
        assert meta["timestamp"][:4].isdigit() and "T" in meta["timestamp"]
        assert result.files[k].name.startswith("blue-fox_circle_")
    stamps = [meta["timestamp"] for _, meta in saved(result)]
    assert stamps == sorted(stamps)

    again = capture.capture_frames("virtual", "circle", tmp_path / "data", frames=2,
                                   progress=False, speed=SPEED, source=TEST_CARD)
    assert not set(again.files) & set(result.files)  # never overwrites
    assert len(list(result.folder.glob("*.png"))) == 8


def test_a_students_folder_of_grayscale_pictures_arrives_unchanged(tmp_path, boards):
    """grayscale8 is lossless: the pictures come back bit for bit; label folders are kept."""
    rng = np.random.default_rng(1)
    pictures = {label: [rng.integers(0, 256, (48, 64), np.uint8) for _ in range(3)]
                for label in ("cat", "dog")}
    for label, images in pictures.items():
        (tmp_path / "mine" / label).mkdir(parents=True)
        for i, image in enumerate(images):
            Image.fromarray(image).save(tmp_path / "mine" / label / f"{i}.png")
    board = boards(sensor="camera", source=tmp_path / "mine", label="dog")
    result = capture.capture_frames(board.port, "dog", tmp_path / "out", frames=4,
                                    progress=False)
    assert result.frames == 4
    for k, (pixels, meta) in enumerate(saved(result)):
        assert meta["pixel_format"] == "grayscale8" and (meta["width"], meta["height"]) == (64, 48)
        np.testing.assert_array_equal(pixels, pictures["dog"][k % 3])


def test_a_data_set_name_means_the_data_set_even_beside_a_folder_of_that_name(
        tmp_path, monkeypatch):
    """A student who keeps their car photos in ./cars still gets the shipped set from `--source
    cars`, and is told how to pick the folder; ./cars or a Path is the folder."""
    monkeypatch.chdir(tmp_path)
    for name in ("cars", TEST_CARD):
        (tmp_path / name / "mine").mkdir(parents=True)
        Image.fromarray(np.full((30, 40), 7, np.uint8)).save(tmp_path / name / "mine" / "a.png")
    shipped = load_stream("camera", "cars")
    assert shipped.description.startswith("cars test split")
    assert "give --source ./cars" in shipped.note
    card = load_stream("camera", TEST_CARD)
    assert "test card" in card.description and f"./{TEST_CARD}" in card.note
    for folder in ("./cars", Path("cars"), str(tmp_path / "cars")):
        mine = load_stream("camera", folder)
        assert mine.data.shape == (1, 30, 40) and mine.note == "", folder


def test_the_virtual_camera_brings_pictures_to_one_frame_size(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    Image.fromarray(np.full((600, 800, 3), 200, np.uint8)).save(folder / "big.jpg")
    Image.fromarray(np.zeros((30, 40), np.uint8)).save(folder / "small.png")
    stream = load_stream("camera", folder, "cat")
    assert stream.data.shape == (2, CAMERA_SIZE[1], CAMERA_SIZE[0], 3)  # RGB wins over gray
    assert stream.units == ("rgb565",) and stream.columns == ("160x120",)
    assert "no cat/ folder" in stream.note
    assert abs(int(stream.data[0].mean()) - 200) <= 2 and stream.data[1].max() == 0
    (folder / "notes.png").write_text("not a picture")
    with pytest.raises(VirtualBoardError, match="notes.png is not a picture"):
        load_stream("camera", folder, None)
    (tmp_path / "empty").mkdir()
    with pytest.raises(VirtualBoardError, match="no pictures"):
        load_stream("camera", tmp_path / "empty", None)


def test_a_damaged_frame_is_counted_skipped_and_said(boards, tmp_path):
    board = boards(sensor="camera")
    board.inject("corrupt", after=2)  # frame seq 2 leaves with one pixel bit flipped
    messages: list[str] = []
    result = capture.capture_frames(board.port, "bars", tmp_path, frames=5, progress=False,
                                    on_message=messages.append)
    assert (result.frames, result.bad_frames, result.lost_frames) == (5, 1, 1)
    assert [meta["sequence"] for _, meta in saved(result)] == [0, 1, 3, 4, 5]
    assert [meta["lost_before"] for _, meta in saved(result)] == [0, 0, 1, 0, 0]
    assert len(messages) == 1 and "frame skipped" in messages[0] and "damaged" in messages[0]


def test_an_unplugged_board_loses_no_saved_frame(boards, tmp_path):
    board = boards(sensor="camera", source=TEST_CARD)
    board.inject("unplug", after=5)
    result = capture.capture_frames(board.port, "square", tmp_path, frames=100, progress=False)
    assert result.interrupted and "disconnected after 5 frames" in result.reason
    assert result.frames == 5
    frames = saved(result)
    assert [meta["sequence"] for _, meta in frames] == [0, 1, 2, 3, 4]
    assert all(pixels.shape == (120, 160, 3) for pixels, _ in frames)
    assert sorted(p.name for p in (tmp_path / "square").iterdir()) == sorted(
        [p.name for p in result.files] + [p.with_suffix(".json").name for p in result.files])


def test_a_cable_pulled_mid_frame_keeps_every_whole_frame(tmp_path):
    """A hand-made camera on a raw pty: three whole frames, half a fourth, then nothing."""
    import tty

    master, slave = os.openpty()
    tty.setraw(slave)
    port = os.ttyname(slave)
    rng = np.random.default_rng(5)
    images = [rng.integers(0, 256, (24, 32), np.uint8) for _ in range(4)]

    def board():
        command = b""
        while b"START" not in command:
            command += os.read(master, 64)
        os.write(master, protocol.encode_header("nano33ble_sense_rev2", "camera", 5, ["32x24"],
                                                ["grayscale8"]))
        for seq, image in enumerate(images[:3]):
            os.write(master, protocol.encode_camera_frame(seq, image))
        os.write(master, protocol.encode_camera_frame(3, images[3])[:400])  # cut short
        time.sleep(0.3)
        os.close(master)

    thread = threading.Thread(target=board, daemon=True)
    thread.start()
    try:
        result = capture.capture_frames(port, "x", tmp_path, frames=10, progress=False,
                                        stall_timeout=2.0)
    finally:
        thread.join(timeout=5)
        os.close(slave)
    assert result.interrupted and result.frames == 3 and result.board == "nano33ble_sense_rev2"
    for (pixels, meta), image in zip(saved(result), images, strict=False):
        np.testing.assert_array_equal(pixels, image)
        assert meta["board"] == "nano33ble_sense_rev2" and meta["rate"] == 5


def test_wrong_sensor_and_bad_requests_are_explained(boards, tmp_path):
    board = boards(sensor="imu")
    with pytest.raises(CaptureError, match="streams imu data, not camera"):
        capture.capture_frames(board.port, "cat", tmp_path, frames=1, progress=False)
    with pytest.raises(CaptureError, match="--frames N.*--seconds S"):
        capture.capture_frames("virtual", "cat", tmp_path, progress=False)
    with pytest.raises(CaptureError, match="label"):
        capture.capture_frames("virtual", "../up", tmp_path, frames=1, progress=False)
    with pytest.raises(CaptureError, match="whole number"):
        capture.capture_frames("virtual", "cat", tmp_path, frames=0, progress=False)
    assert not list(tmp_path.rglob("*.png"))


def test_capture_with_sensor_camera_records_for_seconds_without_a_label(tmp_path):
    result = capture.capture("virtual", "camera", None, 0.5, tmp_path, progress=False, speed=4)
    assert isinstance(result, capture.FrameCaptureResult) and not result.interrupted
    # 20 frames/s for 0.5 s: at most 12 (with the start-up frame), at least one however busy
    # the machine is (a wall-clock duration, so a loaded CI runner may see fewer than 10)
    assert result.folder == tmp_path and 1 <= result.frames <= 12
    assert all(p.name.startswith("frame_") for p in result.files)
    assert all("label" not in meta for _, meta in saved(result))


def tinyml(*args: str, env: dict, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tinyml_edu", *args], capture_output=True,
                          text=True, env=env, timeout=timeout)


def test_cli_camera_capture(tmp_path, flash_dir):
    env = {**os.environ, virtual_board.FLASH_ENV_VAR: str(flash_dir)}
    done = tinyml("capture", "--port", "virtual", "--sensor", "camera", "--label", "square",
                  "--frames", "3", "--group", "red-owl", "--out", str(tmp_path / "data"),
                  "--speed", "20", "--quiet", env=env)
    assert done.returncode == 0, done.stderr
    assert "saved 3 frames (PNG + JSON)" in done.stdout
    pngs = sorted((tmp_path / "data" / "square").glob("red-owl_square_*.png"))
    assert len(pngs) == 3
    assert json.loads(pngs[0].with_suffix(".json").read_text())["group"] == "red-owl"
    no_seconds = tinyml("capture", "--port", "virtual", "--sensor", "imu", "--label", "W",
                        "--out", str(tmp_path), env=env)
    assert no_seconds.returncode == 2 and "needs --seconds" in no_seconds.stderr
    no_count = tinyml("capture", "--port", "virtual", "--sensor", "camera", "--out",
                      str(tmp_path), env=env)
    assert no_count.returncode == 2 and "--frames" in no_count.stderr


def test_garbage_names_the_camera_sketches(boards, tmp_path):
    board = boards(sensor="camera", mode="garbage", speed=1)
    with pytest.raises(CaptureError, match="garbage.*capture_camera_nano or .*capture_camera_xiao"):
        capture.capture_frames(board.port, "cat", tmp_path, frames=1, progress=False,
                               header_timeout=1)
    assert not list(tmp_path.rglob("*.png"))


def test_cli_ctrl_c_keeps_the_frames_saved(tmp_path, flash_dir):
    import signal

    env = {**os.environ, virtual_board.FLASH_ENV_VAR: str(flash_dir)}
    proc = subprocess.Popen([sys.executable, "-m", "tinyml_edu", "capture", "--port", "virtual",
                             "--sensor", "camera", "--source", TEST_CARD, "--label", "bars",
                             "--frames", "100000",
                             "--out", str(tmp_path), "--speed", "2", "--quiet"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and len(list(tmp_path.glob("bars/*.png"))) < 3:
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=20)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    pngs = sorted((tmp_path / "bars").glob("*.png"))
    assert len(pngs) >= 3 and "stopped with Ctrl-C" in err
    assert f"the {len(pngs)} frames saved before are in {tmp_path / 'bars'}" in err
    for png in pngs:  # every saved frame is whole and described
        with Image.open(png) as image:
            assert image.size == CAMERA_SIZE
        assert json.loads(png.with_suffix(".json").read_text())["file"] == png.name


def test_the_virtual_camera_shows_the_shipped_image_set_by_default(tmp_path):
    """With no source, the virtual camera plays the shipped `images` set: the label's own
    96 x 96 grayscale frames, as the data set holds them."""
    from tinyml_edu import datasets

    ds = datasets.load("images")
    result = capture.capture_frames("virtual", "circle", tmp_path, frames=3, progress=False,
                                    speed=SPEED)
    assert result.frames == 3
    circle = ds.info.classes.index("circle")
    shipped = {x[..., 0].tobytes() for split in datasets.SPLITS
               for x, y in zip(ds.arrays[f"x_{split}"], ds.arrays[f"y_{split}"], strict=True)
               if y == circle}
    for pixels, meta in saved(result):
        assert pixels.shape == (96, 96) and meta["pixel_format"] == "grayscale8"
        assert pixels.tobytes() in shipped
