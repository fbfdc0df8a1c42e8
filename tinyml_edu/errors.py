"""The one root of tinyml-edu's exceptions.

A :class:`TinyMLEduError` is a user error: bad input, a missing file, a missing tool. Its message
says what to do, and the command line prints just that message (``error: ...``). Any other
exception is a bug in tinyml-edu and shows its traceback.

The subclasses below also derive from the built-in exception a caller would expect (a missing
file is still a ``FileNotFoundError``), so ``except ValueError`` in a notebook keeps working.
"""

from __future__ import annotations


class TinyMLEduError(Exception):
    """A user error (bad input, missing file, missing tool) whose message says what to do;
    anything else is a bug and shows its traceback."""


class InputError(TinyMLEduError, ValueError):
    """An argument, a file's content or a run's settings cannot be used; the message says why."""


class MissingFileError(TinyMLEduError, FileNotFoundError):
    """A file or folder the user named (or that a command needs) is not there."""


class OutDirError(TinyMLEduError, FileExistsError):
    """An output folder would overwrite something that is not ours to replace."""


class UnknownNameError(TinyMLEduError, KeyError):
    """An unknown name (project, board, lesson, split); the message lists the known ones."""

    def __str__(self) -> str:
        # KeyError quotes its argument (it expects a key); this message is a sentence.
        return str(self.args[0]) if self.args else ""


class ToolError(TinyMLEduError, RuntimeError):
    """An outside tool is missing or failed (nbgrader, a synthesiser, the OS lacks a feature)."""
