"""The errors of the Edge Impulse modules: user errors, so they derive from TinyMLEduError."""

from __future__ import annotations

from tinyml_edu.errors import TinyMLEduError


class EdgeImpulseError(TinyMLEduError, RuntimeError):
    """An ``.eim`` could not be started or answered with an error; the message says why."""


class SDKMissingError(EdgeImpulseError):
    """Edge Impulse's Linux SDK (or one of the modules its package imports) is not installed."""
