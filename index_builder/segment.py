"""Split a cleaned document along its own structure into bounded chunks with heading paths.

Headings: Markdown #, 第N章, 第N节, 一、, （一）, 专栏N, 第N条. Numbered items (1. 2.) are list
paragraphs, kept with their section. Tables that lost their layout (number / name / value on
separate lines) are rebuilt as rows and kept whole with caption and header.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import jieba

from bot.text.normalize import normalize

MAX_CHARS = 350
MIN_CHARS = 60  # a shorter tail is merged into the previous chunk of the same section
CN_NUM = "一二三四五六七八九十百零〇两"
HEADINGS: list[tuple[int, re.Pattern]] = [
    (1, re.compile(rf"^第[{CN_NUM}\d]+章")),
    (2, re.compile(rf"^第[{CN_NUM}\d]+节")),
    (3, re.compile(rf"^[{CN_NUM}]+[、.．]")),
    (4, re.compile(rf"^[(（][{CN_NUM}]+[)）]")),
    (6, re.compile(r"^专栏\s*\d+")),
    (7, re.compile(rf"^第[{CN_NUM}\d]+条")),
]
MARKDOWN_HEADING = re.compile(r"^(#{1,6})\s+(.*)$")
SENTENCE_END = re.compile(r"(?<=[。！？；!?;])")
CLAUSE_END = re.compile(r"(?<=[，,、：:])")
BARE_NUMBER = re.compile(r"^\d{1,3}$")


@dataclass
class Chunk:
    section: list[str]  # heading path below the title
    text: str  # display text of the body
    kind: str = "text"  # "text" | "table"


def parse_heading(line: str, markdown: bool) -> tuple[int, str, str] | None:
    """(rank, heading, body on the same line) if the line opens a section."""
    if markdown:
        match = MARKDOWN_HEADING.match(line)
        if match:
            return len(match.group(1)) - 1, match.group(2).strip(), ""
        return None
    for rank, pattern in HEADINGS:
        matched = pattern.match(line)
        if matched:
            if rank == 7:  # an article: "第三十五条 text…"
                head = matched.group(0)
                return rank, head, line[len(head):].strip()
            if len(line) <= 50:
                return rank, line.rstrip("。. "), ""
            cut = re.search(r"[。：:]", line[:40])
            if cut:
                return rank, line[: cut.start()], line[cut.end():].strip()
            return None  # a long numbered paragraph, not a heading
    return None


def _is_table_line(line: str) -> bool:
    return len(line) <= 40 and "。" not in line and parse_heading(line, False) is None


def rebuild_table(lines: list[str]) -> str | None:
    """Lines of a table whose layout was lost → 'caption\\nheader\\nrow…'; None if not a table."""
    starts = [i for i, line in enumerate(lines) if BARE_NUMBER.match(line)]
    if len(starts) < 2:
        return None
    rows = []
    for a, b in zip(starts, starts[1:] + [len(lines)]):
        rows.append([lines[a]] + lines[a + 1 : b])
    width = max(set(len(r) for r in rows), key=[len(r) for r in rows].count)
    pre = lines[: starts[0]]
    header_cells = width - 1
    caption = pre[: max(0, len(pre) - header_cells)]
    header = pre[len(caption):]
    out = [" ".join(caption)] if caption else []
    if header:
        out.append(" | ".join(["序号"] + header))
    out += [" | ".join(row) for row in rows]
    return "\n".join(out)


def _group_tables(paras: list[str]) -> list[tuple[str, str]]:
    """Paragraphs as (kind, text), runs of short table lines merged into one table."""
    out: list[tuple[str, str]] = []
    i = 0
    while i < len(paras):
        j = i
        while j < len(paras) and _is_table_line(paras[j]):
            j += 1
        if j - i >= 6:
            table = rebuild_table(paras[i:j])
            if table:
                out.append(("table", table))
                i = j
                continue
        out.append(("text", paras[i]))
        i += 1
    return out


def _split_long(text: str, limit: int) -> list[str]:
    """Pieces ≤ limit, cut at sentence ends, else at clause ends, else between jieba words."""
    if len(text) <= limit:
        return [text]
    for splitter in (SENTENCE_END, CLAUSE_END):
        parts = [p for p in splitter.split(text) if p]
        if len(parts) > 1:
            return _pack([q for p in parts for q in _split_long(p, limit)], limit, sep="")
    pieces, current = [], ""
    for word in jieba.cut(text):
        if current and len(current) + len(word) > limit:
            pieces.append(current)
            current = ""
        current += word
    return pieces + ([current] if current else [])


def _pack(parts: list[str], limit: int, sep: str = "\n") -> list[str]:
    chunks, current = [], ""
    for part in parts:
        if current and len(current) + len(sep) + len(part) > limit:
            chunks.append(current)
            current = part
        else:
            current = f"{current}{sep}{part}" if current else part
    if current:
        if chunks and len(current) < MIN_CHARS and len(chunks[-1]) + len(current) <= limit + MIN_CHARS:
            chunks[-1] = f"{chunks[-1]}{sep}{current}"
        else:
            chunks.append(current)
    return chunks


def segment(paras: list[str], markdown: bool = False, max_chars: int = MAX_CHARS) -> list[Chunk]:
    """Chunks of a document's cleaned paragraphs, each with its heading path."""
    chunks: list[Chunk] = []
    stack: list[tuple[int, str]] = []
    body: list[tuple[str, str]] = []

    def flush() -> None:
        path = [h for _, h in stack]
        texts: list[str] = []
        for kind, text in body:
            if kind == "table":
                chunks.extend(Chunk(path, t) for t in _pack(texts, max_chars))
                texts = []
                chunks.append(Chunk(path, text, "table"))
            else:
                texts.extend(_split_long(text, max_chars))
        chunks.extend(Chunk(path, t) for t in _pack(texts, max_chars))
        body.clear()

    grouped = _group_tables(paras) if not markdown else [("text", p) for p in paras]
    for kind, text in grouped:
        heading = parse_heading(text, markdown) if kind == "text" else None
        if heading is None:
            body.append((kind, text))
            continue
        rank, title, rest = heading
        flush()
        if markdown and rank == 0:
            continue  # the document title: already the first element of every path
        while stack and stack[-1][0] >= rank:
            stack.pop()
        stack.append((rank, title))
        if rest:
            body.append(("text", rest))
    flush()
    for c in chunks:
        c.text = c.text.strip()
    return [c for c in chunks if normalize(c.text)]
