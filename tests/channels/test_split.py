"""The one splitting algorithm behind Telegram's and WeChat's long replies (bot/channels/split.py)."""
from __future__ import annotations

from bot.channels.split import split_parts
from bot.channels.telegram import split_text, utf16_len
from bot.channels.wechat import split_utf8, utf8_len


def _chars(text: str, limit: int) -> int:
    return min(len(text), limit)


def test_cut_prefers_newline_then_sentence_end_then_space_then_hard() -> None:
    assert split_parts("aaaaaa\nbbbbbbbbbb", 10, len, _chars) == ["aaaaaa", "bbbbbbbbbb"]
    assert split_parts("aaaaa。bbbbbbbbb", 10, len, _chars) == ["aaaaa。", "bbbbbbbbb"]
    assert split_parts("aaaaaa bbbbbbbbbb", 10, len, _chars) == ["aaaaaa ", "bbbbbbbbbb"]
    assert split_parts("a" * 25, 10, len, _chars) == ["a" * 10, "a" * 10, "a" * 5]
    # a newline or sentence end in the first half is not used: the part would be too short
    assert split_parts("a\naaaaaaaaaaaa", 10, len, _chars) == ["a\naaaaaaaa", "aaaa"]


def test_each_platform_counts_its_own_units() -> None:
    words = " ".join(["occupational"] * 400)  # ASCII words: a cut between words, none broken
    for split, length, limit in ((split_text, utf16_len, 4096), (split_utf8, utf8_len, 2048)):
        parts = split(words)
        assert all(length(p) <= limit for p in parts) and "".join(parts) == words
        assert all(p.endswith(" ") for p in parts[:-1])
    emoji = "😷" * 3000  # 2 UTF-16 units, 4 UTF-8 bytes each
    assert [len(p) for p in split_text(emoji)] == [2048, 952]
    assert [len(p) for p in split_utf8(emoji)] == [512] * 5 + [440]


def test_blank_text() -> None:
    assert split_text("   ") == [] and split_utf8("   ") == ["…"]
