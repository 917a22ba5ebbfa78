"""`ohbot gaps`: refused questions and 👎 answers together, most frequent first (no model needed; both backends)."""
from __future__ import annotations

import json

from bot.cli import main
from bot.config import load_settings
from bot.storage.state import open_state
from tests.helpers import count


def test_gaps_command_lists_refusals_and_thumbs_down_most_frequent_first(tmp_path, capsys, state_url):
    state = open_state(load_settings(str(tmp_path), database_url=state_url))
    for user in ("a", "b"):
        state.log_unanswered("夜班费怎么算？", user)
    state.log_unanswered("夜班费怎么算", "c")  # the same question without its question mark
    for user in ("a", "b", "c", "d"):
        shown = state.log_answer(user, "噪声多大算超标", "85 dB(A)……", "answer", confidence=0.8)
        feedback = state.add_feedback(shown, user, "down")
    state.set_feedback_reason(feedback, "没说夜班")
    liked = state.log_answer("e", "体检费谁出", "用人单位……", "answer")
    state.add_feedback(liked, "e", "up")  # a 👍 is not a gap
    state.log_unanswered("噪声多大算超标？", "f")  # refused once, 👎 four times: one row of five

    assert main(["--data-dir", str(tmp_path), "--database-url", state_url, "gaps", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["example"], r["n"], r["refused"], r["down"]) for r in rows] == [
        ("噪声多大算超标？", 5, 1, 4), ("夜班费怎么算", 3, 3, 0)]
    assert rows[0]["reasons"] == ["没说夜班"]

    assert main(["--data-dir", str(tmp_path), "--database-url", state_url, "gaps"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split()[0] == "5" and "👎 4" in out[0] and "未回答 1" in out[0]
    assert "原因：没说夜班" in out[1]


def test_feedback_on_an_unknown_answer_is_ignored_and_votes_are_checked(tmp_path, state_url):
    state = open_state(load_settings(str(tmp_path), database_url=state_url))
    assert state.add_feedback(999, "a", "up") is None
    shown = state.log_answer("a", "q", "t", "answer")
    try:
        state.add_feedback(shown, "a", "meh")
    except ValueError as exc:
        assert "vote" in str(exc)
    else:
        raise AssertionError("an unknown vote was stored")
    assert state.add_feedback(shown, "a", "up") == state.add_feedback(shown, "a", "down")  # one vote per user
    assert count(state, "feedback") == 1
