"""FAQ card drafts written from the console's gaps page (issue #13): a reviewer turns a refused or 👎
question into a card, which the next (incremental) index build picks up like any card.

What: `save_draft` checks the fields as index_builder/cards.py reads them and appends the card to
`KNOWLEDGE_DIR/faq/console-drafts.yaml` with a new id (`faq-draft-NNN`, never reused) and who drafted it
when. The file is rewritten whole into a temporary file and renamed (a reader never sees half a
file), under a lock file, so two workers saving at once lose nothing.
Why a file of its own: the hand-written card files keep their layout and comments; the drafts stay
easy to review (`git diff knowledge/faq/console-drafts.yaml`) and to move into a topic file later.
"""
from __future__ import annotations

import fcntl
import os
import re
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import yaml

from bot.errors import InputError

DRAFTS_FILE = "console-drafts.yaml"
ID_PREFIX = "faq-draft-"
MAX_ANSWER_CHARS = 300  # knowledge/README.md: a card's answer is at most 300 characters
MAX_QUESTION_CHARS = 200
MAX_VARIANTS = 10
AUDIENCES = ("all", "worker", "employer")
HEADER = ("# FAQ card drafts written in the web console (gaps page) by reviewers: one card each, picked up by\n"
          "# the next `ohbot build-index`. Move a card into a topic file when it has been reviewed again.\n")


@dataclass(frozen=True)
class Draft:
    id: str
    path: Path


def _clean(text: str, what: str, limit: int) -> str:
    """One field: trimmed, not empty, at most `limit` characters."""
    value = " ".join(str(text).split())
    if not value:
        raise InputError(f"the card needs a {what}")
    if len(value) > limit:
        raise InputError(f"the {what} is longer than {limit} characters ({len(value)})")
    return value


def save_draft(knowledge_dir: Path, question: str, variants: list[str], answer: str, cite: str, ref: str = "",
               audience: str = "all", author: str = "", gap: str = "") -> Draft:
    """Append one card draft to faq/console-drafts.yaml; its id and the file. InputError for a card the
    index builder could not use (a field missing or too long, an unknown audience)."""
    question = _clean(question, "question", MAX_QUESTION_CHARS)
    answer = _clean(answer, "answer", MAX_ANSWER_CHARS)
    cite = _clean(cite, "citation", 200)
    variants = [v for v in (" ".join(str(x).split()) for x in variants) if v and v != question]
    variants = list(dict.fromkeys(variants))
    if len(variants) > MAX_VARIANTS or any(len(v) > MAX_QUESTION_CHARS for v in variants):
        raise InputError(f"at most {MAX_VARIANTS} variants of at most {MAX_QUESTION_CHARS} characters each")
    if audience not in AUDIENCES:
        raise InputError(f"audience must be one of {', '.join(AUDIENCES)}")
    folder = Path(knowledge_dir) / "faq"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / DRAFTS_FILE
    with open(folder / ".console-drafts.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        cards = yaml.safe_load(path.read_text(encoding="utf-8")) if path.exists() else []
        cards = cards if isinstance(cards, list) else []
        taken = [int(m.group(1)) for c in cards if isinstance(c, dict)
                 for m in [re.fullmatch(re.escape(ID_PREFIX) + r"(\d+)", str(c.get("id", "")))] if m]
        card_id = f"{ID_PREFIX}{max(taken, default=0) + 1:03d}"
        card = {"id": card_id, "question": question, "variants": variants, "answer": answer, "audience": audience,
                "cite": cite, "ref": ref.strip(), "status": "draft", "drafted_by": author,
                "drafted_at": datetime.now(UTC).isoformat(timespec="seconds")}
        if gap:
            card["gap"] = gap[:200]
        cards.append(card)
        text = HEADER + yaml.safe_dump(cards, allow_unicode=True, sort_keys=False, width=1000)
        handle, temporary = tempfile.mkstemp(dir=folder, prefix=".console-drafts-", suffix=".yaml")
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as out:
                out.write(text)
            os.chmod(temporary, 0o644)  # knowledge files are readable like the others
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
    return Draft(card_id, path)
