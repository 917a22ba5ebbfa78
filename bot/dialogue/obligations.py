"""The employer self-check: a few questions, then the duties that apply (each with its article)
and which of them the employer has not yet confirmed. The duty list is data (knowledge/obligations.yaml).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml


@dataclass(frozen=True)
class Duty:
    id: str
    duty: str
    cite: str
    applies: str


@lru_cache(maxsize=4)
def load_duties(knowledge_dir: Path) -> tuple[Duty, ...]:
    items = yaml.safe_load((knowledge_dir / "obligations.yaml").read_text(encoding="utf-8")) or []
    return tuple(Duty(str(i["id"]), str(i["duty"]), str(i["cite"]), str(i["applies"])) for i in items)


def applicable(duties: tuple[Duty, ...], hazards: set[str], situations: set[str]) -> list[Duty]:
    """The duties that apply to an employer with these hazards and situations.

    `applies` is `always`, `hazard` (any hazard at all), a hazard code (`heat`, `radiation` …), a
    situation code (`dispatched` …), or several of these joined by `+`, which must all hold
    (`heat+women_minors`)."""
    def holds(condition: str) -> bool:
        if condition == "always":
            return True
        if condition == "hazard":
            return bool(hazards)
        return condition in hazards or condition in situations

    return [d for d in duties if all(holds(c.strip()) for c in d.applies.split("+"))]


def summary(duties: list[Duty], done: set[str], headcount_label: str | None, industry_label: str | None) -> str:
    """The self-check result: every applicable duty with its article, marked done or not yet."""
    missing = [d for d in duties if d.id not in done]
    lines = ["【用人单位职业病防治义务自查结果】"]
    context = "、".join(x for x in (industry_label, headcount_label) if x)
    if context:
        lines.append(f"单位情况：{context}")
    lines.append(f"适用的义务共 {len(duties)} 项，已落实 {len(duties) - len(missing)} 项，待落实 {len(missing)} 项。")
    for d in duties:
        mark = "✅ " if d.id in done else "❌ 待落实："
        lines.append(f"{mark}{d.duty}（{d.cite}）")
    if missing:
        lines.append("未落实的义务可能面临处罚（《职业病防治法》第七十一条、第七十二条）。可向当地卫生健康主管部门咨询。")
    return "\n".join(lines)
