"""Clean a raw document: drop web navigation and footers, injected spam, a cover letter before the
title, and a body that the page repeats; convert to clean Simplified display text.

Rules are general (layout and statistics), never a match on one page's spam words, and each removal
is counted so the build report can say what was dropped.
"""
from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

from bot.text.normalize import normalize, to_display

BOILERPLATE = re.compile(
    r"版权所有|copyright|©|icp备|公网安备|备案号|网站地图|网站信箱|网站标识码|联系我们|打印本页|关闭窗口"
    r"|【打印】|【关闭】|字号[:：]?\s*[大中小]|分享到|扫一扫|验证码|留言与评论|条评论|本文地址|本文链接"
    r"|仅代表作者观点|不代表本站立场|未经许可.{0,6}不得转载|联系方式[:：]?\s*\d|联系电话[:：]?\s*\d"
    r"|^全文$|浏览次数|阅读次数|上一篇|下一篇|返回顶部|主办单位|承办单位|^\S{2,20}承办$",
    re.I,
)
SOURCE_LINE = re.compile(r"^(来源|发布日期|发布时间|作者|信息来源)\s*[:：].{0,60}(发布日期|来源|浏览|$)")
BREADCRUMB = re.compile(r"^(当前位置|您的位置|你的位置)\s*[:：]|(\S+\s*[>›»]\s*){2,}\S+")
SENTENCE_PUNCT = re.compile(r"[。！？；!?;]")
LINK_LIST_SEPARATORS = re.compile(r"\s*[|｜]\s*")


@dataclass
class Cleaned:
    lines: list[str]  # display paragraphs, one per line of the source that survived
    removed: Counter = field(default_factory=Counter)  # reason → number of lines removed


def is_link_list(line: str) -> bool:
    """A line made of many short delimiter-separated phrases without sentences: a link farm or
    keyword-stuffing block, never prose."""
    parts = [p for p in LINK_LIST_SEPARATORS.split(line) if p.strip()]
    if len(parts) < 6:
        return False
    short = sum(len(p) <= 25 for p in parts) / len(parts)
    sentences = sum(bool(SENTENCE_PUNCT.search(p)) for p in parts) / len(parts)
    return short >= 0.8 and sentences <= 0.2


def _bigrams(text: str) -> set[str]:
    text = re.sub(r"[\W\d_]+", "", text)
    return {text[i : i + 2] for i in range(len(text) - 1)}


def is_off_topic(paragraph: str, rest: str) -> bool:
    """A long paragraph sharing almost no vocabulary (character bigrams) with the rest of a long
    document: injected content."""
    grams = _bigrams(paragraph)
    if len(paragraph) < 80 or len(rest) < 3000 or len(grams) < 30:
        return False
    return len(grams & _bigrams(rest)) / len(grams) < 0.15


def _drop_off_topic_runs(paras: list[str], removed: Counter) -> list[str]:
    """Within runs of short lines (a link list printed one link per line), the lines that share
    almost no vocabulary with the rest of the document, when there are four or more of them. A table
    whose layout was lost is also a run of short lines, but it speaks the document's own words."""
    drop: set[int] = set()
    i = 0
    while i < len(paras):
        j = i
        while j < len(paras) and len(paras[j]) <= 40 and not SENTENCE_PUNCT.search(paras[j]):
            j += 1
        if j - i >= 4:
            rest = _bigrams("".join(paras[:i] + paras[j:]))
            foreign = [k for k in range(i, j)
                       if len(g := _bigrams(paras[k])) >= 3 and len(g & rest) / len(g) < 0.2]
            if len(foreign) >= 4 and len(rest) >= 300:
                drop.update(foreign)
        i = max(j, i + 1)
    removed["spam"] += len(drop)
    return [p for k, p in enumerate(paras) if k not in drop]


def _pipe_row(line: str) -> str | None:
    """A table row flattened to 'a | b'; None for a row with no content (layout residue)."""
    if "|" not in line or not line.strip().startswith("|"):
        return line
    cells = [c.strip() for c in line.strip().strip("|").split("|")]
    cells = [c for c in cells if c]
    return " | ".join(cells) if cells else None


def _drop_repeated_body(paras: list[str], removed: Counter) -> list[str]:
    """Keep once a run of paragraphs that the page repeats (a body printed twice)."""
    keys = [normalize(p) for p in paras]
    n, best = len(keys), (0, 0, 0)  # (length, first start, second start)
    for i in range(n):
        for j in range(i + 1, n):
            length = 0
            while j + length < n and i + length < j and keys[i + length] == keys[j + length]:
                length += 1
            if length > best[0]:
                best = (length, i, j)
    length, _, second = best
    repeated_chars = sum(len(k) for k in keys[second : second + length])
    if length >= 3 and repeated_chars >= 300:
        removed["duplicate_body"] += length
        paras = paras[:second] + paras[second + length :]
        keys = keys[:second] + keys[second + length :]
    # any other paragraph repeated word for word (long enough not to be a legitimate short label)
    seen, kept = set(), []
    for para, key in zip(paras, keys):
        if len(key) >= 20 and key in seen:
            removed["duplicate_body"] += 1
            continue
        seen.add(key)
        kept.append(para)
    return kept


def clean_text(raw: str, title: str | None = None, web: bool = True) -> Cleaned:
    """Clean one document's raw text (any script) into display paragraphs.

    `web=False` (our own Markdown materials) skips the navigation and footer rules, which could
    mistake a hotline number for a page footer; spam and repetition rules still apply.
    """
    removed: Counter = Counter()
    nav_labels: set[str] = set()
    paras: list[str] = []
    for raw_line in raw.splitlines():
        line = to_display(raw_line)
        if not line:
            continue
        if web and BREADCRUMB.search(line) and len(line) <= 80:
            nav_labels.update(s.strip() for s in re.split(r"[>›»:：]", line) if s.strip())
            removed["boilerplate"] += 1
            continue
        if line == "|" or (line.startswith("|") and _pipe_row(line) is None):
            removed["layout"] += 1
            continue
        line = _pipe_row(line) or line
        if is_link_list(line):
            removed["spam"] += 1
            continue
        if web and ((len(line) <= 300 and BOILERPLATE.search(line)) or SOURCE_LINE.search(line)):
            removed["boilerplate"] += 1
            continue
        paras.append(line)
    # navigation labels repeated as stray lines ("政策解读")
    kept = []
    for para in paras:
        if para in nav_labels and len(para) <= 12:
            removed["boilerplate"] += 1
        else:
            kept.append(para)
    paras = kept
    # a cover letter or page header before the title line: the title starts the body
    if title:
        key = normalize(title)
        for i, para in enumerate(paras[:12]):
            if normalize(para) == key:
                if i:
                    removed["preamble"] += i
                paras = paras[i + 1 :]
                break
        repeated = [p for p in paras if normalize(p) == key]
        removed["duplicate_body"] += len(repeated)
        paras = [p for p in paras if normalize(p) != key]
    paras = _drop_repeated_body(paras, removed)
    paras = _drop_off_topic_runs(paras, removed)
    # injected content that shares no vocabulary with the document
    kept = []
    for i, para in enumerate(paras):
        rest = "".join(paras[:i] + paras[i + 1 :])
        if is_off_topic(para, rest):
            removed["spam"] += 1
        else:
            kept.append(para)
    return Cleaned(lines=kept, removed=removed)
