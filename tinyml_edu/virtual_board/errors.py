"""The virtual board's one exception."""

from __future__ import annotations

from tinyml_edu.errors import TinyMLEduError


class VirtualBoardError(TinyMLEduError):
    """The virtual board cannot start or cannot take a model; the message says why."""
