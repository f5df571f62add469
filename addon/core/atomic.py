"""Atomic file output: a temporary sibling, then a rename, so a failed or interrupted
write never leaves a half file where the user's file was."""
from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from .errors import OutputWriteError


def _default_file_mode() -> int:
    # mkstemp creates 0600 files; a user's outputs should get the usual umask mode.
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, mode: int | None = None):
    """Yield a temporary sibling path to write; on success it replaces `path` with `mode`
    (default: the umask's). Any OS failure becomes an OutputWriteError and leaves no
    temporary file behind."""
    path = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
    except OSError as exc:
        raise OutputWriteError(f"cannot write {path}: {exc.strerror or exc}") from None
    try:
        yield Path(tmp)
        os.chmod(tmp, _default_file_mode() if mode is None else mode)
        os.replace(tmp, path)
    except OSError as exc:
        raise OutputWriteError(f"cannot write {path}: {exc.strerror or exc}") from None
    finally:
        Path(tmp).unlink(missing_ok=True)


def write_bytes_atomic(path: str | os.PathLike, data: bytes, mode: int | None = None) -> None:
    """Write `data` to `path` atomically (a secret: mode=0o600); any OS failure becomes an OutputWriteError."""
    with atomic_path(path, mode) as tmp:
        tmp.write_bytes(data)
