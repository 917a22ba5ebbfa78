"""FAQ cards (knowledge/faq/*.yaml): loaded, checked, and turned into one index chunk each."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml


@dataclass
class Card:
    id: str
    question: str
    variants: list[str]
    answer: str
    audience: str
    cite: str
    ref: str
    file: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def questions(self) -> list[str]:
        return [self.question, *self.variants]


def load_cards(knowledge_dir: Path) -> tuple[list[Card], list[str]]:
    """Every FAQ card, and one readable error per card or file that cannot be used."""
    cards, errors, seen = [], [], set()
    for path in sorted((knowledge_dir / "faq").glob("*.y*ml")):
        try:
            items = yaml.safe_load(path.read_text(encoding="utf-8")) or []
        except yaml.YAMLError as exc:
            errors.append(f"{path}: not valid YAML ({exc}); the file was skipped")
            continue
        if not isinstance(items, list):
            errors.append(f"{path}: expected a list of cards; the file was skipped")
            continue
        for n, item in enumerate(items, 1):
            try:
                card = Card(
                    id=str(item["id"]), question=str(item["question"]).strip(),
                    variants=[str(v).strip() for v in item.get("variants") or []],
                    answer=str(item["answer"]).strip(), audience=str(item.get("audience", "all")),
                    cite=str(item.get("cite", "")), ref=str(item.get("ref", "")), file=path.name,
                )
            except (KeyError, TypeError) as exc:
                errors.append(f"{path}: card {n} lacks field {exc}; the card was skipped")
                continue
            if card.id in seen:
                errors.append(f"{path}: duplicate card id {card.id}; the card was skipped")
                continue
            seen.add(card.id)
            cards.append(card)
    return cards, errors


VARIANTS_FILE = "dict/variants.yaml"


def load_variants(knowledge_dir: Path) -> tuple[list[tuple[str, list[str]]], list[str]]:
    """Extra paraphrases of the questions units answer (knowledge/dict/variants.yaml): a list of
    `{ref: CARD_ID or DOC_ID#text in one heading, variants: [...]}`; and one error per bad entry."""
    path = knowledge_dir / VARIANTS_FILE
    if not path.exists():
        return [], []
    try:
        items = yaml.safe_load(path.read_text(encoding="utf-8")) or []
    except yaml.YAMLError as exc:
        return [], [f"{path}: not valid YAML ({exc}); no variants were used"]
    out, errors = [], []
    for n, item in enumerate(items if isinstance(items, list) else [], 1):
        ref = str((item or {}).get("ref", "")).strip() if isinstance(item, dict) else ""
        variants = [str(v).strip() for v in (item.get("variants") or [])] if ref else []
        if not ref or not variants:
            errors.append(f"{path}: entry {n} needs a ref and at least one variant; skipped")
            continue
        out.append((ref, [v for v in variants if v]))
    if not isinstance(items, list):
        errors.append(f"{path}: expected a list of {{ref, variants}}; no variants were used")
    return out, errors
