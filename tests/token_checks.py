"""Checks shared by the uvicorn and Ray hosts' tests of a generated token."""
from __future__ import annotations

from pathlib import Path


def assert_generated_token(token_file: Path, log: Path, port: int, url: str, host_kind: str) -> str:
    """The token `uplift serve` made for a non-loopback bind: long, in a 0600 file, printed once with
    the URL and the file's path, and accepted by the server (whose health names its host) -> the token."""
    from uplift.services.client import UpliftClient

    token = token_file.read_text().strip()
    assert len(token) >= 40 and (token_file.stat().st_mode & 0o777) == 0o600
    text = log.read_text()
    assert text.count(token) == 1 and str(token_file) in text and f":{port}" in text
    info = UpliftClient(url, token=token, retries=0).health()
    assert info["auth"] is True and info["host"]["kind"] == host_kind and info["host"]["replicas"] == 1
    return token
