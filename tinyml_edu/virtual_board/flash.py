"""The virtual board's flash: ``model.tflite`` + ``deploy.json`` in a folder that outlives the
process, shared by every VirtualBoard and by ``tinyml-edu deploy --port virtual``."""

from __future__ import annotations

import hashlib
import json
import os
from datetime import datetime
from pathlib import Path
from typing import Any

from tinyml_edu._fs import write_atomic
from tinyml_edu.features import sensor_of
from tinyml_edu.virtual_board.bugs import check_bug
from tinyml_edu.virtual_board.errors import VirtualBoardError
from tinyml_edu.virtual_board.streams import SENSOR_KINDS

FLASH_ENV_VAR = "TINYML_EDU_VIRTUAL_FLASH"
MODEL_FILE = "model.tflite"
META_FILE = "deploy.json"


def default_flash_dir() -> Path:
    """``$TINYML_EDU_VIRTUAL_FLASH`` or ``~/.tinyml-edu/virtual-board``."""
    env = os.environ.get(FLASH_ENV_VAR)
    return Path(env) if env else Path.home() / ".tinyml-edu" / "virtual-board"


def window_info(meta: dict[str, Any]) -> dict[str, Any]:
    """Window and stride in stream samples, from ``feature_params`` (unless given already)."""
    kind = SENSOR_KINDS.get(meta.get("sensor") or "")
    info = kind.window(meta.get("feature_params") or {}) if kind else {}
    return {**info, **{k: meta[k] for k in ("window", "stride") if meta.get(k)}}


def flash(model_bytes: bytes, meta: dict[str, Any], flash_dir: Path | str | None = None,
          bug: str | None = None) -> Path:
    """Store a model the way a board's flash would: ``model.tflite`` and ``deploy.json``.

    ``meta``: ``project``, ``labels``, ``sensor`` (derived from ``feature_params`` when left out),
    ``feature_params``, ``arena_bytes`` (measured with TFLM when left out); ``window`` and
    ``stride`` are derived. ``bug``: a firmware bug of ``bugs.BUGS`` the board then has (default:
    ``meta``'s ``bug``, else none). A running board must be rebooted to see it
    (``VirtualBoard.flash`` does that). Returns the flash folder."""
    model_bytes = bytes(model_bytes)
    if len(model_bytes) < 8 or model_bytes[4:8] != b"TFL3":
        raise VirtualBoardError("not a .tflite model (no TFL3 identifier): flash the file that "
                                "`tinyml-edu run` wrote, e.g. runs/gestures/model_int8.tflite")
    folder = Path(flash_dir) if flash_dir is not None else default_flash_dir()
    meta = dict(meta)
    meta.setdefault("project", "model")
    meta["labels"] = [str(label) for label in meta.get("labels") or []]
    meta["feature_params"] = dict(meta.get("feature_params") or {})
    if not meta.get("sensor") or meta["sensor"] == "none":
        meta["sensor"] = sensor_of(meta["feature_params"])
    bug = bug if bug is not None else meta.pop("bug", None)
    check_bug(bug, meta, model_bytes)
    if bug is not None:
        meta["bug"] = bug
    if not meta.get("arena_bytes"):
        meta["arena_bytes"] = _measure_arena(model_bytes)
    meta.update(window_info(meta))
    meta.update(model_bytes=len(model_bytes),
                model_sha256=hashlib.sha256(model_bytes).hexdigest(),
                flashed=datetime.now().astimezone().isoformat(timespec="seconds"))
    folder.mkdir(parents=True, exist_ok=True)
    write_atomic(folder / MODEL_FILE, model_bytes)
    write_atomic(folder / META_FILE, (json.dumps(meta, indent=2, default=str) + "\n").encode())
    return folder


def erase(flash_dir: Path | str | None = None) -> None:
    """Remove a flashed model (the board boots as a plain capture board)."""
    folder = Path(flash_dir) if flash_dir is not None else default_flash_dir()
    for name in (META_FILE, MODEL_FILE):
        (folder / name).unlink(missing_ok=True)


def read_flash(flash_dir: Path | str | None = None) -> tuple[bytes, dict[str, Any]] | None:
    """The flashed model and its metadata, or None when nothing is flashed."""
    folder = Path(flash_dir) if flash_dir is not None else default_flash_dir()
    meta_path, model_path = folder / META_FILE, folder / MODEL_FILE
    if not meta_path.is_file():
        return None
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    if not model_path.is_file():
        raise VirtualBoardError(f"{meta_path} is there but {model_path} is missing: flash again")
    model = model_path.read_bytes()
    if meta.get("model_sha256") and hashlib.sha256(model).hexdigest() != meta["model_sha256"]:
        raise VirtualBoardError(f"{model_path} does not match {META_FILE} (half-written?): "
                                "flash again")
    return model, meta


def _measure_arena(model_bytes: bytes) -> int:
    from tinyml_edu import profile

    try:
        if profile.tflm_available():
            return profile.tflm_arena_bytes(model_bytes)
        return profile.estimate_arena_bytes(model_bytes)
    except (RuntimeError, ValueError) as err:
        raise VirtualBoardError(f"cannot measure the model's arena: {err}") from err
