"""Reading what students hand in, tolerantly: the first step of :mod:`.autograde`.

A hand-in is rarely the released notebook untouched. It may be renamed (``lesson (1).ipynb``),
sit next to other notebooks, be empty, truncated or not JSON at all, be saved in an old nbformat,
or have lost its cell metadata: VS Code, Colab and some LMS round trips strip the ``nbgrader``
metadata that tells nbgrader which cells are graded, and without it nbgrader would grade nothing.
Here we find the notebook to grade (:func:`find_notebook`), give back the metadata an editor
dropped by matching cells to the released notebook (:func:`recover_metadata`), and rebuild a
clean nbformat-4 notebook (:func:`read_submission`), each with messages that say what was wrong,
so the instructor sees it and the student's answers are still graded.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any


def _notebooks_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*.ipynb")
                  if ".ipynb_checkpoints" not in p.parts and p.is_file())


def find_notebook(folder: Path, notebook: str, known_ids: set[str]) -> tuple[Path | None,
                                                                            list[str]]:
    """The file to grade for ``notebook`` in a submission folder, tolerating a renamed copy."""
    wanted = folder / f"{notebook}.ipynb"
    if wanted.exists():
        return wanted, []
    candidates = _notebooks_in(folder)
    if not candidates:
        return None, [f"no notebook handed in (expected {wanted.name})"]

    def matches(path: Path) -> int:
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return 0
        return sum(f'"{gid}"' in text for gid in known_ids)

    best = max(candidates, key=matches)
    others = [p.name for p in candidates if p != best]
    msg = f"graded {best.name} (renamed from {wanted.name})"
    if others:
        msg += f"; also handed in, not graded: {', '.join(others)}"
    return best, [msg]


def _source(cell: dict[str, Any]) -> str:
    src = cell.get("source", "")
    if isinstance(src, list):
        return "".join(str(s) for s in src)
    return src if isinstance(src, str) else ""


def _grade_id(cell: dict[str, Any]) -> str | None:
    meta = cell.get("metadata")
    nbg = meta.get("nbgrader") if isinstance(meta, dict) else None
    return nbg.get("grade_id") if isinstance(nbg, dict) else None


def _similarity(a: str, b: str) -> float:
    import difflib

    return difflib.SequenceMatcher(None, a.strip(), b.strip()).ratio()


def _match_released(cells: list[dict[str, Any]], released: list[dict[str, Any]],
                    missing: list[int]) -> dict[int, tuple[int, str]]:
    """{released index: (submitted index, how)} for the released graded cells in ``missing``,
    among the submitted cells that have no nbgrader metadata: by cell id, then (locked cells)
    by identical source, then by position between cells already matched."""
    free = {i for i, c in enumerate(cells) if _grade_id(c) is None}
    pairs: dict[int, tuple[int, str]] = {}

    def take(r: int, i: int, how: str) -> None:
        pairs[r] = (i, how)
        free.discard(i)

    by_id = {c.get("id"): i for i, c in enumerate(cells) if c.get("id")}
    for r in missing:
        i = by_id.get(released[r].get("id"))
        if i in free and cells[i].get("cell_type") == released[r].get("cell_type"):
            take(r, i, "cell id")
    for r in (r for r in missing if r not in pairs):
        nbg = released[r]["metadata"]["nbgrader"]
        if nbg.get("locked") or (nbg.get("grade") and not nbg.get("solution")):
            same = [i for i in sorted(free) if _source(cells[i]).strip()
                    == _source(released[r]).strip()]
            if same:
                take(r, same[0], "content")
    # Anchors: every released cell whose submitted counterpart is known.
    anchors = {r: i for r, (i, _) in pairs.items()}
    for r, rel in enumerate(released):
        gid = _grade_id(rel)
        found = [i for i, c in enumerate(cells) if gid is not None and _grade_id(c) == gid]
        if found:
            anchors[r] = found[0]
    for r in (r for r in missing if r not in pairs):
        before = max((a for a in anchors if a < r), default=None)
        after = min((a for a in anchors if a > r), default=None)
        low = anchors[before] if before is not None else -1
        high = anchors[after] if after is not None else len(cells)
        kind = released[r].get("cell_type")
        options = [i for i in sorted(free) if low < i < high and cells[i].get("cell_type") == kind]
        if not options:
            continue
        guess = low + (r - before if before is not None else r + 1)
        best = guess if guess in options else max(
            options, key=lambda i: _similarity(_source(cells[i]), _source(released[r])))
        if best == guess or len(options) == 1 or _similarity(
                _source(cells[best]), _source(released[r])) > 0.3:
            take(r, best, "position")
            anchors[r] = best
    return pairs


def recover_metadata(cells: list[dict[str, Any]], released: list[dict[str, Any]],
                     known_ids: set[str]) -> list[str]:
    """Give back the nbgrader metadata an editor dropped (VS Code, Colab and some LMS round
    trips strip cell metadata), in place, by matching cells to the released notebook. Only
    graded cells the submission lacks are looked for; the messages say what was recovered."""
    present = {_grade_id(c) for c in cells}
    missing = [r for r, c in enumerate(released)
               if _grade_id(c) in known_ids and _grade_id(c) not in present]
    if not missing:
        return []
    pairs = _match_released(cells, released, missing)
    for r, (i, _) in pairs.items():
        meta = cells[i].get("metadata") if isinstance(cells[i].get("metadata"), dict) else {}
        cells[i]["metadata"] = {**meta, "nbgrader": copy.deepcopy(
            released[r]["metadata"]["nbgrader"])}
    messages = []
    if pairs:
        how = ", ".join(f"{_grade_id(released[r])} (by {h})"
                        for r, (_, h) in sorted(pairs.items()))
        messages.append(f"nbgrader metadata missing (an editor dropped it); recovered {len(pairs)}"
                        f" of {len(missing)} graded cells from the released notebook: {how}")
    lost = [str(_grade_id(released[r])) for r in missing if r not in pairs]
    if lost:
        messages.append(f"not found in the hand-in, graded as unanswered: {', '.join(lost)}")
    return messages


def read_submission(path: Path | None, known_ids: set[str],
                    released: list[dict[str, Any]] | None = None) -> tuple[Any, list[str]]:
    """A clean nbformat-4 notebook from whatever a student handed in, and what was wrong.

    Cells are rebuilt from their type, source and metadata, so missing, duplicated or changed
    cell ids, old nbformat versions and stray fields never reach nbgrader. Returns ``(None,
    messages)`` when nothing can be read."""
    import nbformat
    from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_raw_cell

    if path is None:
        return None, []
    raw = path.read_bytes()
    if not raw.strip():
        return None, [f"{path.name} is empty (0 points); ask for the file again"]
    text = raw.decode("utf-8-sig", errors="replace")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        return None, [f"{path.name} is not valid JSON ({err.msg}, line {err.lineno}): "
                      "a damaged save or download; 0 points; ask for the file again"]
    messages: list[str] = []
    major = data.get("nbformat") if isinstance(data, dict) else None
    if not isinstance(data, dict) or ("cells" not in data and "worksheets" not in data):
        return None, [f"{path.name} is JSON but not a notebook; 0 points"]
    if major != 4:
        try:  # nbformat converts v3 worksheets to v4 cells
            data = json.loads(nbformat.writes(nbformat.reads(text, as_version=4)))
            messages.append(f"saved as nbformat {major}; converted to 4")
        except Exception as err:  # noqa: BLE001 (any failure: we say so and grade nothing)
            return None, [f"{path.name}: nbformat {major} could not be converted ({err}); 0 pts"]
    makers = {"code": new_code_cell, "markdown": new_markdown_cell, "raw": new_raw_cell}
    cells = []
    dropped_ids: list[str] = []
    handed_in = [c for c in data.get("cells") or []
                 if isinstance(c, dict) and c.get("cell_type") in makers]
    for cell in handed_in:  # a grade id that is not ours counts as no metadata
        meta = cell.get("metadata")
        if isinstance(meta, dict) and "nbgrader" in meta and _grade_id(cell) not in known_ids:
            dropped_ids.append(str(_grade_id(cell)))
            del meta["nbgrader"]  # the real cell is restored from the gradebook
    if released:
        messages += recover_metadata(handed_in, released, known_ids)
    for cell in handed_in:
        meta = cell.get("metadata") if isinstance(cell.get("metadata"), dict) else {}
        meta = {k: v for k, v in meta.items() if k != "nbgrader"} | (
            {"nbgrader": meta["nbgrader"]} if isinstance(meta.get("nbgrader"), dict) else {})
        cells.append(makers[cell["cell_type"]](_source(cell), metadata=meta))
    if dropped_ids:
        messages.append(f"cells with unknown grade ids ignored: {', '.join(dropped_ids)}")
    meta = data.get("metadata") if isinstance(data.get("metadata"), dict) else {}
    return new_notebook(cells=cells, metadata=meta), messages
