"""Test Connection: ask the server what it is and report it."""
from __future__ import annotations

import bpy

from .. import jobs, preferences


def describe(info: dict) -> str:
    """One line from /v1/health's answer."""
    backends = info.get("backends") or {}
    if isinstance(backends, dict):
        names = ", ".join(f"{k}: {v.get('name', v) if isinstance(v, dict) else v}" for k, v in backends.items())
    else:
        names = ", ".join(map(str, backends))
    return (f"Uplift server {info.get('version', '?')} (API {info.get('api', '?')}) on "
            f"{info.get('device', '?')}" + (f" — {names}" if names else ""))


class UPLIFT_OT_test_connection(bpy.types.Operator, jobs.BackgroundStep):
    bl_idname = "uplift.test_connection"
    bl_label = "Test Connection"
    bl_description = "Ask the Uplift server at the preferences' URL what it is and which models it runs"
    bl_options = {"REGISTER", "UNDO"}
    busy_text = "Contacting the server"

    @classmethod
    def poll(cls, context):
        return jobs.explain(cls, bool(preferences.get(context).server_url.strip()),
                            "Set the server URL in Uplift's preferences")

    def prepare(self, context):
        return jobs.server_client(context)

    def work(self, client):
        return client.health()

    def apply(self, context, info) -> None:
        text = describe(info)
        preferences.connection_status.update(text=text, ok=True)
        self.report({"INFO"}, text)

    def _fail(self, exc):
        preferences.connection_status.update(text=str(exc), ok=False)
        return super()._fail(exc)


CLASSES = (UPLIFT_OT_test_connection,)
