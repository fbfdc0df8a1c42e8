"""The virtual board's one exception."""

from __future__ import annotations


class VirtualBoardError(Exception):
    """The virtual board cannot start or cannot take a model; the message says why."""
