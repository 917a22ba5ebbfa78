"""An exclusive lock on the data directory, held for a process's life: one poller per directory.

Why: two `ohbot telegram` processes long-polling with one data directory (and so one token and one
database) each take updates from Telegram, which hands the same updates to both in turn: users get
answers twice (the adversarial pass saw 20 of 70 updates answered twice). Polling mode takes this
lock first and exits with one line when another process holds it. Webhook workers (`ohbot serve`)
do not take it: several of them behind a load balancer is how ohbot scales.

The lock is `flock` on `DATA_DIR/<name>.lock`: the kernel releases it when the holder exits, also
on SIGKILL or a crash, so a stale lock file never blocks a restart. The file holds the holder's pid
for the message.
"""
from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import IO

from bot.errors import OhbotError


class DataDirLocked(OhbotError, RuntimeError):
    """Another process holds the data directory's lock."""


class DataDirLock:
    """The held lock (keep a reference: closing the file, or exiting, releases it)."""

    def __init__(self, path: Path, handle: IO[str]) -> None:
        self.path = path
        self._handle: IO[str] | None = handle

    def release(self) -> None:
        """Give the lock up (also done by the kernel when the process exits)."""
        if self._handle is not None:
            fcntl.flock(self._handle, fcntl.LOCK_UN)
            self._handle.close()
            self._handle = None


def hold(data_dir: Path, name: str, what: str) -> DataDirLock:
    """Take `DATA_DIR/<name>.lock` without waiting; DataDirLocked (saying `what` the holder does and
    its pid) when another process has it."""
    data_dir = Path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / f"{name}.lock"
    handle = open(path, "a+", encoding="utf-8")  # noqa: SIM115 -- kept open while the lock is held
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "unknown"
        handle.close()
        raise DataDirLocked(f"another ohbot process (pid {holder}) is already {what} with the data directory "
                            f"{data_dir}: stop it first (two would answer every message twice)") from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"{os.getpid()}\n")
    handle.flush()
    return DataDirLock(path, handle)
