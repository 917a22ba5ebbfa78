"""The one vocabulary (knowledge/taxonomy.yaml): roles, profile fields and their options, hazards,
head-count bands, industries, enterprise sizes, dimensions. Code reads codes and labels from here
and never re-declares them.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from bot.errors import InputError


@dataclass(frozen=True)
class ProfileField:
    """One profile field: its code (a database column), label, the question asking it and its options
    (code → label; empty for free text such as the region)."""

    code: str
    label: str
    question: str
    options: dict[str, str]
    optional: bool


@lru_cache(maxsize=8)
def _load(path: Path, mtime: float) -> dict[str, Any]:
    return yaml.safe_load(path.read_text(encoding="utf-8")) or {}


def load_taxonomy(knowledge_dir: Path) -> dict[str, Any]:
    """The codes and labels of `knowledge_dir/taxonomy.yaml` (read again when the file changes)."""
    path = Path(knowledge_dir) / "taxonomy.yaml"
    try:
        return copy.deepcopy(_load(path, path.stat().st_mtime))
    except (OSError, yaml.YAMLError) as exc:
        raise InputError(f"cannot read the vocabulary {path}: {exc}") from exc


def profile_fields(taxonomy: dict[str, Any]) -> list[ProfileField]:
    """The profile fields in the order they are asked, with their options resolved."""
    out = []
    for raw in taxonomy.get("profile") or []:
        options = raw.get("options") or {}
        if isinstance(options, str):  # the name of another section of the taxonomy
            options = taxonomy.get(options) or {}
        out.append(ProfileField(
            code=str(raw["code"]), label=str(raw.get("label") or raw["code"]),
            question=str(raw.get("question") or ""), options={str(k): str(v) for k, v in options.items()},
            optional=bool(raw.get("optional")),
        ))
    return out


def field_labels(taxonomy: dict[str, Any]) -> dict[str, str]:
    """Profile field code → label, plus the report's completion month."""
    return {f.code: f.label for f in profile_fields(taxonomy)} | {"month": "月份"}


def self_check_hazards(taxonomy: dict[str, Any]) -> dict[str, str]:
    """The hazards the employer self-check asks about: code → label."""
    labels = (taxonomy.get("hazards") or {}) | (taxonomy.get("other_hazards") or {})
    return {str(code): str(labels[code]) for code in (taxonomy.get("self_check") or {}).get("hazards") or []}


def self_check_options(taxonomy: dict[str, Any], section: str) -> dict[str, str]:
    """`headcounts` or `situations` of the self-check: code → label."""
    return {str(k): str(v) for k, v in ((taxonomy.get("self_check") or {}).get(section) or {}).items()}
