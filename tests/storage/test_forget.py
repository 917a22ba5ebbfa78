"""/forget leaves no copy of what it deleted on disk (issue #11): not in ohbot.db, whose freed pages
SQLite would otherwise keep as they were, and not in ohbot.db-wal, where the deleted rows' old pages
stayed until the next checkpoint."""
from __future__ import annotations

from pathlib import Path

from bot.storage.state import State, User

MARKER = "ZQXJ职业史记录9731"  # in a question and a region: easy to find as bytes


def on_disk(folder: Path) -> dict[str, bool]:
    """Whether MARKER's UTF-8 bytes are in each file of the database."""
    needle = MARKER.encode("utf-8")
    return {p.name: needle in p.read_bytes() for p in sorted(folder.glob("ohbot.db*"))}


def test_forget_leaves_nothing_in_the_database_file_or_its_wal(tmp_path: Path) -> None:
    state = State(tmp_path / "ohbot.db", "salt")
    other = State(tmp_path / "ohbot.db", "salt")  # a second worker with its own connection, reading
    key = state.user_key("telegram", 42)
    state.save_user(User(key=key, profile={"role": "worker", "region": MARKER}))
    for n in range(30):
        state.log_unanswered(f"{MARKER} 第{n}个问题：我的尘肺病诊断要多久？", key)
        state.log_answer(key, f"{MARKER} 问题 {n}", "答复", "refuse")
    state.log_unanswered("别人的问题：噪声多大算超标", "someone-else")
    assert other.get_user(key).profile["region"] == MARKER
    assert any(on_disk(tmp_path).values())
    state.forget(key)
    assert other.get_user(key).profile.get("region") is None
    assert on_disk(tmp_path) and not any(on_disk(tmp_path).values()), on_disk(tmp_path)
    assert [g["example"] for g in state.gaps()] == ["别人的问题：噪声多大算超标"]  # the others' rows kept
