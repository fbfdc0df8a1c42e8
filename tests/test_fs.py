"""The write-then-swap helpers: an interrupted write leaves the old file or folder as it was."""

import pytest

from tinyml_edu._fs import check_out_dir, replacing, staged_dir, write_atomic
from tinyml_edu.errors import OutDirError


def test_a_failed_write_keeps_the_old_file_and_no_temporary(tmp_path):
    target = write_atomic(tmp_path / "a.json", "old")
    with pytest.raises(RuntimeError), replacing(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("interrupted")
    assert target.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["a.json"]
    assert write_atomic(target, b"new").read_bytes() == b"new"


def test_a_staged_folder_replaces_the_old_one_only_when_complete(tmp_path):
    dest = tmp_path / "run"
    with staged_dir(dest) as stage:
        (stage / "one").write_text("1")
    with pytest.raises(RuntimeError), staged_dir(dest) as stage:
        (stage / "two").write_text("2")
        raise RuntimeError("interrupted")
    assert [p.name for p in dest.iterdir()] == ["one"] and len(list(tmp_path.iterdir())) == 1


def test_out_dir_of_someone_else_is_refused(tmp_path):
    (tmp_path / "theirs").mkdir()
    (tmp_path / "theirs" / "thesis.tex").write_text("")
    with pytest.raises(OutDirError, match="not a run of ours; to keep them safe"):
        check_out_dir(tmp_path / "theirs", lambda d: False, "a run of ours")
    check_out_dir(tmp_path / "theirs", lambda d: True, "a run of ours")
    check_out_dir(tmp_path / "new", lambda d: False, "a run of ours")
