"""Issue #11, findings 1 and 3 in the dialogue: a region typed by hand is stored only when it is a
place name, and control characters never reach the database."""
from __future__ import annotations

import pytest

from bot.config import load_settings
from bot.dialogue.core import Dialogue, Message
from bot.storage.state import State


@pytest.fixture
def dialogue(retriever, knowledge_dir, tmp_path) -> Dialogue:
    settings = load_settings(str(tmp_path), str(knowledge_dir), env={})
    return Dialogue(retriever, State(settings.state_url, "test-salt"), settings)


def type_region(d: Dialogue, user: str, text: str) -> str:
    d.handle(user, Message(text="/region"))
    d.handle(user, Message(callback="region:text"))
    return "\n".join(r.text for r in d.handle(user, Message(text=text)))


@pytest.mark.parametrize("payload", [
    '=HYPERLINK("http://evil.example/?x","点此")', "+cmd|' /C calc'!A0", "@SUM(1+1)", "-2+3",
    "＝1+1", "<img src=x>", "柳州市" * 20,
])
def test_a_typed_region_that_is_not_a_place_name_is_refused(dialogue, payload):
    dialogue.handle("u1", Message(callback="region:0"))  # a region from the list first
    before = dialogue.state.get_user("u1").profile["region"]
    reply = type_region(dialogue, "u1", payload)
    assert "不像地区名称" in reply
    user = dialogue.state.get_user("u1")
    assert user.profile["region"] == before and not user.pending  # unchanged; the next message is a question


@pytest.mark.parametrize("typed, stored", [
    ("柳州市柳南区", "柳州市柳南区"), ("  广西 柳州市  ", "广西 柳州市"), ("柳南\x00区\x0b", "柳南区"),
    ("Liunan District (Liuzhou)", "Liunan District (Liuzhou)"), ("柳州市", "柳州市"),
])
def test_a_typed_place_name_is_stored_clean(dialogue, typed, stored):
    reply = type_region(dialogue, "u2", typed)
    assert "已设置地区" in reply
    assert dialogue.state.get_user("u2").profile["region"] == stored


def test_control_characters_never_reach_the_database(dialogue):
    dialogue.handle("u3", Message(text="怎么做红烧肉\x00\x01\x0b？"))
    rows = dialogue.state.gaps()
    assert rows and all("\x00" not in r["example"] and "\x0b" not in r["example"] for r in rows)
