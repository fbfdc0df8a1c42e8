"""Recordings -> files for Edge Impulse's uploader, in its data acquisition format.

IMU recordings (CSV, with the sidecar ``tinyml-edu capture`` writes) become unsigned data
acquisition JSON; audio recordings become WAV files; a README says how to upload them.
"""

from __future__ import annotations

import csv
import json
import re
import shutil
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from tinyml_edu import __version__, datasets
from tinyml_edu._fs import check_out_dir, write_atomic
from tinyml_edu.errors import InputError

# The uploader takes a sample's label from its file name up to the first dot, in these letters.
EI_LABEL = re.compile(r"^[a-zA-Z0-9\s_-]+$")
EMPTY_SIGNATURE = "0" * 64  # alg "none": the signature is not checked; HS256 would be 64 hex
README_MARK = "Made by tinyml-edu edge-impulse export-data"


@dataclass
class ExportedDataset:
    out_dir: Path
    files: list[Path] = field(default_factory=list)
    per_label: dict[str, int] = field(default_factory=dict)
    readme: Path | None = None


def _issued_at(path: Path, sidecar: dict[str, Any]) -> int:
    started = sidecar.get("started")
    if isinstance(started, str):
        try:
            return int(datetime.fromisoformat(started).timestamp())
        except ValueError:
            pass
    return int(path.stat().st_mtime)


def _read_csv(path: Path) -> tuple[list[str], list[list[float]]]:
    """The CSV as written, in float64 (``datasets.load_recording`` reads float32, which would
    put 0.10000000149011612 in the upload where the file says 0.1), with line numbers in its
    errors."""
    with open(path, newline="", encoding="utf-8") as f:
        rows = [row for row in csv.reader(f) if row]
    if not rows:
        raise datasets.DatasetError(f"{path} is empty; expected a header row, then numbers")
    header = [c.strip() for c in rows[0]]
    values = []
    for n, row in enumerate(rows[1:], start=2):
        if len(row) != len(header):
            raise datasets.DatasetError(f"{path}, line {n}: {len(row)} values for "
                                        f"{len(header)} columns")
        try:
            values.append([float(v) for v in row])
        except ValueError as err:
            raise datasets.DatasetError(f"{path}, line {n}: {err}") from err
    return header, values


def acquisition_json(path: Path, rate: float | None = None) -> dict[str, Any]:
    """One CSV recording (and its sidecar) in Edge Impulse's data acquisition format, unsigned
    (``alg: none``)."""
    sidecar = datasets.read_sidecar(path)
    header, values = _read_csv(path)
    try:
        rate = float(sidecar.get("rate") or 0) or rate
    except (TypeError, ValueError):
        pass
    if not rate:
        raise datasets.DatasetError(f"{path}: no sample rate (no `rate` in "
                                    f"{path.with_suffix('.json').name}); pass one (--rate HZ)")
    names = sidecar.get("columns") if isinstance(sidecar.get("columns"), list) else header
    if len(names) != len(header):
        names = header
    units = sidecar.get("units")
    if not isinstance(units, list) or len(units) != len(header):
        units = ["N/A"] * len(header)
    board = str(sidecar.get("board") or "tinyml-edu")
    return {
        "protected": {"ver": "v1", "alg": "none", "iat": _issued_at(path, sidecar)},
        "signature": EMPTY_SIGNATURE,
        "payload": {
            "device_name": board,
            "device_type": board.upper().replace(" ", "_"),
            "interval_ms": 1000.0 / rate,
            "sensors": [{"name": str(n), "units": str(u)} for n, u in zip(names, units,
                                                                         strict=True)],
            "values": values,
        },
    }


_README = """\
{mark} {version}, from {folder}.

{summary}

Upload (when online) with Edge Impulse's CLI (Node.js): `npm install -g edge-impulse-cli`, then
from this folder

    edge-impulse-uploader --category split *.json *.wav

It asks you to log in and pick a project (or pass --api-key ei_... from the project's
Dashboard > Keys). `--category split` puts about 80 % of the samples in training and 20 % in
testing. The uploader takes each sample's label from its file name up to the first dot
(`W.W_20250101-120000_1.json` is labelled W).

IMU recordings are .json files in Edge Impulse's data acquisition format, unsigned
(protected.alg "none"): payload.interval_ms is 1000 / the sample rate, payload.sensors the CSV's
columns and units, payload.values one row per sample as recorded. Audio recordings are .wav files
(Edge Impulse reads the rate from the file).
"""


def _is_our_export(out_dir: Path) -> bool:
    readme = out_dir / "README.txt"
    return readme.is_file() and README_MARK in readme.read_text(encoding="utf-8",
                                                                errors="replace")


def export_ei_dataset(folder: Path | str, out_dir: Path | str,
                      rate: float | None = None) -> ExportedDataset:
    """Convert a recordings folder (``folder/<label>/<name>.csv|.wav|.flac``, what ``tinyml-edu
    capture`` writes) into files for ``edge-impulse-uploader``: ``<label>.<name>.json`` (IMU,
    data acquisition format) and ``<label>.<name>.wav`` (audio), plus a ``README.txt``.

    rate: the sample rate of CSV recordings without a sidecar giving one."""
    folder, out_dir = Path(folder), Path(out_dir)
    if not folder.is_dir():
        raise datasets.DatasetError(f"{folder} is not a folder; expected one sub-folder per "
                                    "label (what `tinyml-edu capture` writes)")
    label_dirs = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not label_dirs:
        raise datasets.DatasetError(f"{folder} has no label folders (e.g. {folder}/W/)")
    bad = [p.name for p in label_dirs if not EI_LABEL.match(p.name)]
    if bad:
        raise InputError(f"label folder(s) {bad}: Edge Impulse labels may only use letters, "
                         "digits, spaces, '-' and '_'; rename the folders")
    check_out_dir(out_dir, _is_our_export, "an export of ours")
    out_dir.mkdir(parents=True, exist_ok=True)
    result = ExportedDataset(out_dir)
    for label_dir in label_dirs:
        files = sorted(p for p in label_dir.iterdir()
                       if p.is_file() and p.suffix.lower() in datasets.USER_FORMATS)
        for path in files:
            suffix = path.suffix.lower()
            kind = ".json" if suffix == ".csv" else ".wav"
            target = out_dir / f"{label_dir.name}.{path.stem}{kind}"
            if suffix == ".csv":
                sample = acquisition_json(path, rate)
                write_atomic(target, json.dumps(sample) + "\n")
            elif suffix == ".wav":
                shutil.copyfile(path, target)
            else:  # FLAC: Edge Impulse takes WAV
                import soundfile

                audio, file_rate = soundfile.read(path, dtype="int16", always_2d=True)
                soundfile.write(target, audio, int(file_rate), subtype="PCM_16")
            result.files.append(target)
            result.per_label[label_dir.name] = result.per_label.get(label_dir.name, 0) + 1
    if not result.files:
        raise datasets.DatasetError(f"{folder}: no recordings (.csv, .wav or .flac) in its label "
                                    "folders")
    summary = "\n".join(f"  {label}: {n} recording(s)" for label, n in result.per_label.items())
    result.readme = out_dir / "README.txt"
    result.readme.write_text(_README.format(mark=README_MARK, version=__version__,
                                            folder=folder, summary=summary), encoding="utf-8")
    return result


