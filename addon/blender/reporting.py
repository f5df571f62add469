"""No exception leaves an Uplift operator as a traceback.

`guard(cls)` wraps the class's `execute`, `invoke` and `modal` (its own or inherited) so
that any exception becomes one `self.report({'ERROR'}, ...)` line and `{'CANCELLED'}`.
An `UpliftError` is the user's to fix and reads as its message; anything else is a bug,
so the report names its type and the full traceback goes to the system console.
Registration guards every operator class, so a new operator cannot forget it.
"""
from __future__ import annotations

import functools
import sys
import traceback

from ..core.errors import UpliftError

GUARDED_METHODS = ("execute", "invoke", "modal")


def describe(exc: BaseException) -> str:
    """One line for a panel or a report: our own errors as they read, others with their type."""
    return str(exc) if isinstance(exc, UpliftError) else f"unexpected {type(exc).__name__}: {exc}"


def message(exc: BaseException) -> str:
    """One line for an operator's report (the traceback went to the system console)."""
    text = describe(exc) + ("" if isinstance(exc, UpliftError) else " (details in the system console)")
    return " ".join(text.split()) or type(exc).__name__


def _fail(self, context, exc: Exception) -> set[str]:
    if not isinstance(exc, UpliftError):
        traceback.print_exc(file=sys.stderr)
    cleanup = getattr(self, "cleanup_after_error", None)
    if cleanup is not None:
        try:
            cleanup(context)
        except Exception:  # noqa: BLE001 - the first error is the one to report
            traceback.print_exc(file=sys.stderr)
    self.report({"ERROR"}, message(exc))
    return {"CANCELLED"}


def _guarded(method):
    # Blender checks each entry point's argument count, so each keeps its exact signature.
    if method.__name__ == "execute":
        @functools.wraps(method)
        def wrapper(self, context):
            try:
                return method(self, context)
            except Exception as exc:  # noqa: BLE001 - the point: nothing escapes to Blender
                return _fail(self, context, exc)
    else:
        @functools.wraps(method)
        def wrapper(self, context, event):
            try:
                return method(self, context, event)
            except Exception as exc:  # noqa: BLE001
                return _fail(self, context, exc)
    wrapper.uplift_guarded = True
    return wrapper


def guard(cls):
    """Wrap `cls`'s operator entry points (idempotent); returns `cls`."""
    for name in GUARDED_METHODS:
        method = getattr(cls, name, None)
        if method is not None and not getattr(method, "uplift_guarded", False):
            setattr(cls, name, _guarded(method))
    return cls


def is_guarded(cls) -> bool:
    """Every entry point `cls` has is wrapped."""
    methods = [getattr(cls, name, None) for name in GUARDED_METHODS]
    return all(getattr(method, "uplift_guarded", False) for method in methods if method is not None)
