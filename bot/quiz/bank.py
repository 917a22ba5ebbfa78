"""The quiz bank (knowledge/quiz/*.yaml): loading and validation. Item ids are stable forever:
stored responses refer to them."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import yaml

from bot.errors import InputError
from bot.text import SAFE_LOADER

TYPES = {"single", "multiple", "truefalse"}


@dataclass(frozen=True)
class Item:
    id: str
    type: str
    stem: str
    options: dict[str, str]
    answer: str  # option letters, sorted ("B", "ACD", "T")
    explanation: str
    cite: str
    ref: str
    dimension: str
    audience: str
    industries: tuple[str, ...]
    hazard: str
    difficulty: int
    retired: bool = False  # kept to read stored answers; never drawn into a new form
    replaced_by: str = ""  # the id of the corrected item that took its place

    def as_json(self) -> dict:
        data = asdict(self)
        data["industries"] = list(self.industries)
        return data


def load_bank(knowledge_dir: Path) -> list[Item]:
    """Every item of the bank, in file order. Raises ValueError naming the file and item."""
    items = []
    for path in sorted((knowledge_dir / "quiz").glob("*.y*ml")):
        # libyaml when PyYAML has it: 0.05 s instead of 0.35 s, and every `ohbot responses` and `report` reads it
        for n, raw in enumerate(yaml.load(path.read_text(encoding="utf-8"), Loader=SAFE_LOADER) or [], 1):
            try:
                items.append(Item(
                    id=str(raw["id"]), type=str(raw["type"]), stem=str(raw["stem"]),
                    options={str(k): str(v) for k, v in raw["options"].items()}, answer=str(raw["answer"]),
                    explanation=str(raw.get("explanation") or ""), cite=str(raw.get("cite") or ""),
                    ref=str(raw.get("ref") or ""), dimension=str(raw["dimension"]),
                    audience=str(raw["audience"]), industries=tuple(str(i) for i in raw.get("industries") or ["all"]),
                    hazard=str(raw.get("hazard") or "general"), difficulty=int(raw.get("difficulty") or 1),
                    retired=bool(raw.get("retired")), replaced_by=str(raw.get("replaced_by") or ""),
                ))
            except (KeyError, TypeError, AttributeError, ValueError) as exc:
                raise InputError(f"{path.name}: item {n} is malformed ({exc!r})") from exc
    return items


def problems(item: Item, taxonomy: dict) -> list[str]:
    """What is wrong with one item (empty when it is valid)."""
    out = []
    if item.type not in TYPES:
        out.append(f"type {item.type!r}")
    if item.type == "truefalse" and set(item.options) != {"T", "F"}:
        out.append("true/false options must be exactly T and F")
    if item.type in ("single", "multiple") and len(item.options) < 2:
        out.append("fewer than two options")
    if not item.answer or any(a not in item.options for a in item.answer):
        out.append(f"answer {item.answer!r} not among the options")
    if "".join(sorted(item.answer)) != item.answer or len(set(item.answer)) != len(item.answer):
        out.append("answer letters must be unique and sorted")
    if item.type in ("single", "truefalse") and len(item.answer) != 1:
        out.append("single/true-false items take exactly one answer")
    if item.type == "multiple" and len(item.answer) < 2:
        out.append("multiple-choice items take at least two answers")
    if not item.stem.strip() or not item.explanation.strip() or not item.cite.strip():
        out.append("empty stem, explanation or citation")
    if item.dimension not in taxonomy["dimensions"]:
        out.append(f"dimension {item.dimension!r}")
    if item.audience not in taxonomy["audiences"]:
        out.append(f"audience {item.audience!r}")
    if item.hazard not in taxonomy["hazards"]:
        out.append(f"hazard {item.hazard!r}")
    if any(i != "all" and i not in taxonomy["industries"] for i in item.industries):
        out.append(f"industries {item.industries!r}")
    if item.difficulty not in (1, 2, 3):
        out.append(f"difficulty {item.difficulty!r}")
    return out
