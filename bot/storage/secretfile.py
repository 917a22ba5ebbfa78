"""Secrets on disk (the pseudonym key): created once, atomically, readable by the owner only.

Why: a first start on a full disk left a 0-byte salt file, which later starts used silently as the
salt, giving every user a new pseudonym (each could then start a second counted form). Here a secret
is written to a private temporary file (mode 0600 from its creation), flushed to disk, then linked to
its name, which succeeds only if no other process got there first (that one's secret wins and is read
back); a failed write leaves nothing behind. An existing empty file is refused, never used.
"""
from __future__ import annotations

import os
import secrets
from pathlib import Path

from bot.errors import ConfigError


def read_secret(path: Path) -> str | None:
    """The secret in `path` (whitespace stripped); None when there is no such file; ConfigError when
    it is empty (a failed write, or a file truncated by hand): restore it, never replace it."""
    try:
        value = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    if not value:
        raise ConfigError(f"{path} is empty (a write that failed, e.g. on a full disk?): restore it from a backup. "
                          "Deleting it would give every user a new pseudonym and lose the link to their forms")
    return value


def create_secret(path: Path, value: str | None = None) -> str:
    """Create `path` holding `value` (default: 32 random bytes as hex) with mode 0600, atomically; if
    another process created it first, its secret is returned instead."""
    value = value or secrets.token_hex(32)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        try:
            data = (value + "\n").encode("utf-8")
            while data:
                data = data[os.write(fd, data):]
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(tmp, path)  # never replaces an existing file
        except FileExistsError:
            existing = read_secret(path)
            if existing is None:  # removed in between: try once more
                return create_secret(path, value)
            return existing
        fsync_dir(path.parent)
        return value
    finally:
        try:
            os.unlink(tmp)
        except OSError:
            pass


def fsync_dir(folder: Path) -> None:
    """Make a new directory entry or a rename inside `folder` durable (best effort: not every file system
    allows it; also used by the index's publish step)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
