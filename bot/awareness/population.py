"""Population counts for post-stratified awareness rates (`ohbot report --population FILE.csv`).

Why: a monitoring sample rarely has each industry, enterprise size and region in the share it has
among workers. Weighting each respondent by (workers in their cell) / (respondents in their cell)
gives rates for the population rather than for the sample (bot/awareness/design.py).

File format (UTF-8 with or without BOM, GB18030 or Big5): one row per cell, the cell's profile fields
and its number of workers, e.g.
    industry,enterprise_size,region,count
    construction,small_micro,柳南区,1200
Cell columns: any of industry, enterprise_size, region, role, sex, age_band, education (the
report's three usual ones are industry × enterprise_size × region); coded fields accept the
taxonomy code or its Chinese label. count: a whole number ≥ 0. All or nothing: any problem is an
InputError listing each by line and column.
"""
from __future__ import annotations

import csv
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.errors import InputError
from bot.text.encoding import detect_encoding

#: Profile fields a population file may cross (enterprise is a PSU, never a population cell).
CELL_FIELDS = ("industry", "enterprise_size", "region", "role", "sex", "age_band", "education")
MAX_SHOWN = 20


@dataclass(frozen=True)
class Population:
    """Workers per cell: fields crossed (in file order) → {cell values tuple: count}."""

    fields: tuple[str, ...]
    counts: dict[tuple[str, ...], float] = field(default_factory=dict)
    source: str = ""

    def cell(self, profile: Mapping[str, Any]) -> tuple[str, ...] | None:
        """A respondent's cell, or None when a field of the cell is missing from their profile."""
        values = tuple(str(profile.get(f) or "").strip() for f in self.fields)
        return None if any(v == "" for v in values) else values


def load_population(path: Path, taxonomy: Mapping[str, Any]) -> Population:
    """Read a population file (see the module docstring); InputError naming every problem."""
    path = Path(path)
    with open(path, encoding=detect_encoding(path), newline="") as f:
        reader = csv.reader(f)
        try:
            return _read(path, reader, taxonomy)
        except csv.Error as exc:  # e.g. a field over csv.field_size_limit() (128 KiB): no cell is that long
            raise InputError(f"{path}: line {reader.line_num}: cannot read the CSV ({exc}): "
                             "is it a population file (industry,enterprise_size,region,count)?") from None


def _read(path: Path, reader: Any, taxonomy: Mapping[str, Any]) -> Population:
    """The rows of an open population file (see load_population)."""
    from bot.awareness.campaigns import _profile_value

    header = next(reader, None)
    if header is None:
        raise InputError(f"{path.name}: the file is empty")
    columns = [h.strip().lower() for h in header]
    fields = tuple(c for c in columns if c != "count")
    unknown = [c for c in fields if c not in CELL_FIELDS]
    problems: list[str] = []
    if "count" not in columns or not fields or unknown or len(set(columns)) != len(columns):
        raise InputError(f"{path.name}: line 1: the columns must be some of {', '.join(CELL_FIELDS)} "
                         f"(each once) and count; got {', '.join(columns)}")
    counts: dict[tuple[str, ...], float] = {}
    first_line: dict[tuple[str, ...], int] = {}
    for cells in reader:
        line = reader.line_num
        if not any(c.strip() for c in cells):
            continue
        if len(cells) != len(columns):
            problems.append(f"line {line}: {len(cells)} fields, the header has {len(columns)}")
            continue
        row = dict(zip(columns, cells))
        values = []
        for f in fields:
            try:
                value = _profile_value(f, row[f], taxonomy)
                if not value:
                    raise ValueError(f"{f} is empty")
                values.append(value)
            except ValueError as exc:
                problems.append(f"line {line}, column {f}: {exc}")
        raw = row["count"].strip()
        count = None
        try:
            count = int(raw)
            if count < 0:
                raise ValueError
        except ValueError:
            problems.append(f"line {line}, column count: {raw!r} is not a whole number ≥ 0")
        if len(values) != len(fields) or count is None:
            continue
        key = tuple(values)
        if key in counts:
            problems.append(f"line {line}: the cell {' × '.join(key)} is given already on line {first_line[key]}")
            continue
        counts[key] = float(count)
        first_line[key] = line
    if not problems and not any(counts.values()):
        problems.append("line 2: no cell with a count above 0")
    if problems:
        more = f"; … and {len(problems) - MAX_SHOWN} more" if len(problems) > MAX_SHOWN else ""
        raise InputError(f"{path.name}: " + "; ".join(problems[:MAX_SHOWN]) + more)
    return Population(fields, {k: v for k, v in counts.items() if v > 0}, path.name)
