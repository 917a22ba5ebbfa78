"""Long replies cut into the parts a platform accepts: one algorithm for every channel; each platform
counts length its own way (Telegram in UTF-16 code units, WeChat and WeCom in UTF-8 bytes)."""
from __future__ import annotations

from collections.abc import Callable

SENTENCE_ENDS = "。！？；.!?;"


def split_parts(text: str, limit: int, length: Callable[[str], int],
                fit: Callable[[str, int], int]) -> list[str]:
    """Parts of at most `limit` (as `length` counts): cut at a newline if one is in the second half
    of the part, else after a sentence end, else at a space, else hard. `fit(text, limit)` is the
    largest n such that text[:n] fits (at least 1). Blank parts are dropped."""
    parts: list[str] = []
    while length(text) > limit:
        n = fit(text, limit)
        head = text[:n]
        cut = head.rfind("\n")
        if cut >= n // 2:
            parts.append(head[:cut])
            text = text[cut + 1:]
            continue
        cut = max(head.rfind(c) for c in SENTENCE_ENDS)
        if cut < n // 2:
            cut = head.rfind(" ")
        if cut >= n // 2:
            parts.append(head[:cut + 1])
            text = text[cut + 1:]
        else:
            parts.append(head)
            text = text[n:]
    parts.append(text)
    return [p for p in parts if p.strip()]
