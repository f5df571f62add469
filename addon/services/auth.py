"""Secure by default: which token `uplift serve` requires (both hosts, uvicorn and Ray).

- `--token` (or $UPLIFT_TOKEN): that token.
- loopback bind, no token: none (only this machine can connect).
- any other bind, no token: a random token, written with mode 0600 to a file whose path
  is printed with the URL and the token, once (as Jupyter does).
- `--no-token`: none, on purpose, for a trusted network; the command says so loudly.
"""
from __future__ import annotations

import os
import secrets
import socket
from dataclasses import dataclass
from pathlib import Path

from ..core.errors import ConfigError
from .client import is_loopback_host

TOKEN_BYTES = 32   # secrets.token_urlsafe: 43 URL-safe characters


@dataclass(frozen=True)
class ServeToken:
    token: str | None
    generated_file: Path | None = None   # where a generated token was written


def default_token_file(port: int) -> Path:
    """<config dir>/uplift/serve-PORT.token: $XDG_CONFIG_HOME, %APPDATA% or ~/.config."""
    base = os.environ.get("XDG_CONFIG_HOME") or os.environ.get("APPDATA") or Path.home() / ".config"
    return Path(base) / "uplift" / f"serve-{port}.token"


def resolve_token(host: str, port: int, token: str | None, no_token: bool = False,
                  token_file: str | os.PathLike | None = None) -> ServeToken:
    """The token the server will require; generates and stores one for a non-loopback bind."""
    from ..core.atomic import write_bytes_atomic

    if token and no_token:
        raise ConfigError("--token and --no-token contradict each other; give one")
    if token or no_token or is_loopback_host(host):
        return ServeToken(token or None)
    token = secrets.token_urlsafe(TOKEN_BYTES)
    path = Path(token_file) if token_file else default_token_file(port)
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as exc:
        raise ConfigError(f"cannot create {path.parent} for the server's token: {exc.strerror or exc}") from None
    write_bytes_atomic(path, (token + "\n").encode(), mode=0o600)
    return ServeToken(token, path)


def display_url(host: str, port: int) -> str:
    """The URL to give the Blenders: a wildcard bind shows this machine's name."""
    if host in ("0.0.0.0", "::", ""):
        host = socket.gethostname()
    return f"http://{'[' + host + ']' if ':' in host else host}:{port}"


def token_notice(host: str, port: int, serve_token: ServeToken) -> str:
    """The one-time message for a generated token."""
    return (f"uplift serve: listening on {host} without --token, so this server requires a token it made:\n"
            f"    URL:   {display_url(host, port)}\n"
            f"    token: {serve_token.token}\n"
            f"  (also in {serve_token.generated_file}, mode 0600). Put both in Blender: Edit > Preferences > "
            "Add-ons > Uplift; `uplift ... --server URL` reads the token from --token or $UPLIFT_TOKEN.\n"
            "  Give --token (or $UPLIFT_TOKEN) to choose your own, --no-token only on a trusted network.")


def no_token_warning(host: str, port: int) -> str:
    bar = "!" * 78
    return (f"{bar}\nuplift serve: WARNING: --no-token: {host}:{port} accepts requests from ANYONE who can reach it.\n"
            "  They can run the models on this machine's GPUs and upload images to it. Use this only on a\n"
            "  trusted network, or behind a reverse proxy that authenticates.\n" + bar)
