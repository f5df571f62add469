"""The shape shared by every operator that waits on a server or heavy compute.

An operator subclasses `BackgroundStep` and writes three methods:
- `prepare(context) -> payload`: read Blender (main thread), validate, snapshot;
- `work(payload) -> result`: the slow part; must not touch bpy (runs on a thread);
- `apply(context, result)`: write to Blender (main thread).

`execute` (scripts, tests, redo) runs the three in a row. `invoke` runs `work` on a
thread and waits in a modal loop, so Blender stays responsive; Esc cancels (the result
of the abandoned request is dropped when it arrives; the client's timeouts bound it) and sets
`self.cancelled`, which a `work` that writes files checks before it writes. A `work` that knows
how far it is reports to `self.progress` (`Progress.set`): the status bar shows it. `work` should
take both from its payload (`prepare` puts `self.progress.set`, `self.cancelled.is_set` there),
so that the thread never touches the operator, which Blender may free once the step ends.
Any `UpliftError` becomes `self.report({'ERROR'}, message)` and CANCELLED (`_fail`, which an
operator may extend); any other exception is turned into a report by `reporting.guard`.
"""
from __future__ import annotations

import threading

import bpy

from ..core.errors import UpliftError
from . import dependencies


def server_client(context=None):
    """An UpliftClient for the preferences' server, refusing non-loopback servers while
    Blender's online access is off."""
    from ..services.client import UpliftClient
    from . import preferences

    prefs = preferences.get(context)
    return UpliftClient(prefs.server_url.strip(), prefs.token or None, loopback_only=not bpy.app.online_access)


def explain(cls, ok: bool, reason: str) -> bool:
    """For polls: `ok`, and when it is False, show `reason` on the greyed-out button.
    Chain with `and` so later checks only run once earlier ones pass."""
    if not ok:
        cls.poll_message_set(reason)
    return bool(ok)


def poll_dependencies(cls) -> bool:
    """For polls: False (with the reason shown) when required packages are missing."""
    message = dependencies.missing_message()
    return explain(cls, not message, message)


class Progress:
    """How far a `work` is (0..1, None: unknown); set from its thread, read by the modal loop."""

    def __init__(self) -> None:
        self.fraction: float | None = None

    def set(self, fraction: float) -> None:
        self.fraction = min(max(float(fraction), 0.0), 1.0)


class Task:
    def __init__(self, fn, payload):
        self.result = None
        self.error: BaseException | None = None
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(fn, payload), daemon=True, name="uplift-step")
        self.thread.start()

    def _run(self, fn, payload):
        try:
            self.result = fn(payload)
        except BaseException as exc:  # handed to the main thread, reported there
            self.error = exc
        finally:
            self.done.set()


class BackgroundStep:
    """Mixin for bpy.types.Operator subclasses (see the module docstring)."""

    busy_text = "Uplift is working"

    def prepare(self, context):
        raise NotImplementedError

    def work(self, payload):
        raise NotImplementedError

    def apply(self, context, result) -> None:
        raise NotImplementedError

    def _status_text(self) -> str:
        done = "" if self.progress.fraction is None else f" {self.progress.fraction:.0%}"
        return f"{self.busy_text}…{done} (Esc to cancel)"

    def _fail(self, exc: UpliftError) -> set[str]:
        self.report({"ERROR"}, str(exc))
        return {"CANCELLED"}

    def execute(self, context):
        self.cancelled = threading.Event()  # `work` may watch it: set by Esc in the modal loop
        self.progress = Progress()
        try:
            payload = self.prepare(context)
            result = self.work(payload)
            self.apply(context, result)
        except UpliftError as exc:
            return self._fail(exc)
        return {"FINISHED"}

    def invoke(self, context, event):
        if bpy.app.background or context.window is None:
            return self.execute(context)
        self.cancelled = threading.Event()
        self.progress = Progress()
        try:
            payload = self.prepare(context)
        except UpliftError as exc:
            return self._fail(exc)
        self._task = Task(self.work, payload)
        wm = context.window_manager
        self._timer = wm.event_timer_add(0.1, window=context.window)
        wm.modal_handler_add(self)
        self._shown = None
        context.workspace.status_text_set(self._status_text())
        return {"RUNNING_MODAL"}

    def _finish_modal(self, context) -> None:
        if getattr(self, "_timer", None) is not None:
            context.window_manager.event_timer_remove(self._timer)
            self._timer = None
        context.workspace.status_text_set(None)

    def cleanup_after_error(self, context) -> None:
        """Called by `reporting` when an entry point raised: end a running modal loop."""
        if getattr(self, "_timer", None) is not None:
            self._finish_modal(context)

    def modal(self, context, event):
        if event.type == "ESC":
            self.cancelled.set()  # a `work` that watches it stops before writing anything
            self._finish_modal(context)
            self.report({"WARNING"}, f"{self.bl_label} cancelled")
            return {"CANCELLED"}
        if event.type != "TIMER" or not self._task.done.is_set():
            if event.type == "TIMER" and self.progress.fraction != self._shown:
                self._shown = self.progress.fraction
                context.workspace.status_text_set(self._status_text())
            return {"PASS_THROUGH"}
        self._finish_modal(context)
        if self._task.error is not None:
            if isinstance(self._task.error, UpliftError):
                return self._fail(self._task.error)
            raise self._task.error  # reporting.guard reports it
        try:
            self.apply(context, self._task.result)
        except UpliftError as exc:
            return self._fail(exc)
        return {"FINISHED"}
