"""Known response files for the console's tests and benchmark: respondents with chosen scores.

`plan_rows` writes the import CSV (long layout) for respondents described by (industry, region, score,
count) over the first `size` single-choice items of the bank: a respondent with score s answers the
first s items right and the rest wrong, so aware / not aware is known in advance.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

from tests.helpers import write_csv as helpers_write_csv

HEADER = ["respondent_id", "item_id", "answer", "answered_at", "industry", "region", "enterprise_size", "role",
          "sex", "age_band", "education"]


def single_items(bank: Sequence, size: int = 10) -> list:
    """The first `size` single-choice items of the bank."""
    return [i for i in bank if i.type == "single"][:size]


def wrong(item) -> str:
    """A wrong option of a single-choice item."""
    return next(letter for letter in item.options if letter != item.answer)


def plan_rows(items: Sequence, plan: Iterable[tuple[str, str, int, int]], prefix: str = "r",
              months: Sequence[str] = ("2024-03-05 10:00", "2024-04-05 10:00")) -> list[list[str]]:
    """CSV rows (without header) for (industry, region, score, count) groups of respondents."""
    rows: list[list[str]] = []
    n = 0
    for industry, region, score, count in plan:
        for _ in range(count):
            when = months[n % len(months)]
            for k, item in enumerate(items):
                answer = item.answer if k < score else wrong(item)
                rows.append([f"{prefix}{n:06d}", item.id, answer, when, industry, region, "small_micro", "worker", "", "",
                             ""])
            n += 1
    return rows


def write_csv(path: Path, rows: Iterable[Sequence[str]]) -> Path:
    """The rows under HEADER, UTF-8."""
    return helpers_write_csv(path, rows, HEADER)
