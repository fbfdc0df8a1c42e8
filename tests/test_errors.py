"""One exception root: user errors print `error: ...`, anything else is a bug with a traceback."""

import importlib
import inspect
import pkgutil

import pytest

import tinyml_edu
from tinyml_edu import cli, datasets
from tinyml_edu.errors import TinyMLEduError, UnknownNameError


def _library_modules():
    for info in pkgutil.walk_packages(tinyml_edu.__path__, "tinyml_edu."):
        if not info.name.endswith("__main__"):
            yield importlib.import_module(info.name)


def test_every_exception_class_of_the_library_derives_from_the_root():
    found, strays = [], []
    for module in _library_modules():
        for name, cls in inspect.getmembers(module, inspect.isclass):
            if (cls.__module__ != module.__name__ or not issubclass(cls, BaseException)
                    or name.startswith("_")):  # private ones are control flow, never shown
                continue
            found.append(name)
            if not issubclass(cls, TinyMLEduError):
                strays.append(f"{module.__name__}.{name}")
    assert strays == []
    assert {"DatasetError", "DeployError", "EdgeImpulseError", "CaptureError"} <= set(found)


def test_a_user_error_prints_its_message_and_exits_2(capsys):
    assert cli.main(["data", "info", "no-such-set"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "no-such-set" in err and "Traceback" not in err


def test_an_unknown_name_prints_a_sentence_not_a_quoted_key(capsys, tmp_path):
    model = tmp_path / "m.tflite"
    model.write_bytes(b"not a model")
    assert cli.main(["deploy", str(model), "--board", "uno", "--out", str(tmp_path / "s")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: unknown board 'uno'; known boards:"), err


def test_a_programming_bug_inside_a_command_keeps_its_traceback(monkeypatch):
    def buggy(name):
        return {}["x"]  # what a typo in the library looks like

    monkeypatch.setattr(datasets, "info", buggy)
    # main lets it through (so Python prints the traceback) instead of printing `error: 'x'`.
    with pytest.raises(KeyError, match="'x'"):
        cli.main(["data", "info", "sine"])


def test_builtin_bases_stay_for_callers_that_catch_them():
    with pytest.raises(KeyError):
        raise UnknownNameError("unknown thing")
    assert str(UnknownNameError("unknown thing")) == "unknown thing"
