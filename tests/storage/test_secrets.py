"""Issue #11, finding 6: the pseudonym secret is written atomically (never a 0-byte file after a
failed write, e.g. a full disk) and an empty one is refused with a clear message, never used."""
from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
import threading
from pathlib import Path

from bot.storage.secretfile import create_secret
from tests.helpers import REPO_ROOT

OHBOT = Path(sys.executable).parent / "ohbot"


def ohbot(data: Path, key_file: Path, *argv: str, fsize: int | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OHBOT_", "TELEGRAM_"))}
    env["OHBOT_PSEUDONYM_KEY_FILE"] = str(key_file)

    def limit() -> None:  # a full disk: every write past `fsize` bytes fails (EFBIG)
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))

    return subprocess.run([str(OHBOT), "--data-dir", str(data), *argv], cwd=REPO_ROOT, env=env, capture_output=True,
                          text=True, timeout=120, preexec_fn=limit if fsize is not None else None)


def test_a_failed_first_write_leaves_no_empty_secret(tmp_path):
    data, key = tmp_path / "data", tmp_path / "config" / "pseudonym.key"
    failed = ohbot(data, key, "campaign", "list", fsize=0)
    assert failed.returncode != 0
    assert not key.exists() or key.stat().st_size > 0, "a 0-byte secret was left behind"
    assert not [p for p in key.parent.iterdir() if p.name.endswith(".tmp")], "a temporary file was left behind"
    ok = ohbot(data, key, "campaign", "list")
    assert ok.returncode == 0, ok.stderr
    assert key.stat().st_size >= 32 and key.stat().st_mode & 0o777 == 0o600


def test_an_empty_secret_is_refused_with_a_clear_message(tmp_path):
    data, key = tmp_path / "data", tmp_path / "pseudonym.key"
    data.mkdir()
    (data / "salt").write_bytes(b"")  # what a first start of the old version on a full disk left
    result = ohbot(data, key, "campaign", "list")
    assert result.returncode == 2
    assert "salt" in result.stderr and "empty" in result.stderr and result.stderr.count("\n") == 1
    assert (data / "salt").read_bytes() == b"" and not key.exists()  # left to restore, not replaced
    (data / "salt").unlink()
    key.write_text("  \n", encoding="utf-8")
    result = ohbot(data, key, "campaign", "list")
    assert result.returncode == 2 and "pseudonym.key is empty" in result.stderr, result.stderr


def test_concurrent_first_starts_agree_on_one_secret(tmp_path):
    seen: list[str] = []
    barrier = threading.Barrier(8)
    path = tmp_path / "pseudonym.key"

    def first_start() -> None:
        barrier.wait()
        seen.append(create_secret(path))

    threads = [threading.Thread(target=first_start) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(seen)) == 1 and seen[0] == path.read_text(encoding="utf-8").strip()
