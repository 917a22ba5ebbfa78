"""Text from outside, cleaned where it comes in: control characters and free-text profile values.

Why at input: a control character in a message or an imported cell (`\\x00`, `\\x0b`) breaks the
files made from it later (openpyxl refuses it in report.xlsx), and a free-text profile value is
printed into the bureau's spreadsheets and charts. So the dialogue and the CSV import both clean
text here before anything is stored, and free-text profile fields (the region: the taxonomy has no
list of every district of China) must match a bounded pattern: a name, not a formula or a script.
"""
from __future__ import annotations

import re
import unicodedata

#: C0 and C1 control characters other than tab and line feed (kept: a question may have lines), and
#: the Unicode line/paragraph separators; removed from every message and imported cell.
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029]")
#: A region as people write it: starts with a letter (any script), then letters, digits, spaces and
#: · ・ - ( ) . at most REGION_MAX characters ("广西壮族自治区柳州市柳南区", "Liunan District").
REGION_MAX = 40
_REGION = re.compile(r"[^\W\d_][\w ·・\-().]*")
_SURROGATE = re.compile(r"[\ud800-\udfff]")


def strip_controls(text: str) -> str:
    """The text without control characters (tab and line feed kept; CR LF becomes LF)."""
    text = text.replace("\r\n", "\n")
    return _CONTROLS.sub("", text) if _CONTROLS.search(text) else text


def clean_region(raw: str) -> str:
    """A region as stored: NFKC (full width → half width), controls removed, spaces folded. ValueError
    (English, for import errors) when it is not a place name of at most REGION_MAX characters."""
    value = " ".join(strip_controls(unicodedata.normalize("NFKC", raw)).split())
    if len(value) > REGION_MAX:
        raise ValueError(f"region is longer than {REGION_MAX} characters")
    if not _REGION.fullmatch(value):
        raise ValueError(f"region {value!r} is not a place name (letters first, then letters, digits, "
                         "spaces and · - ( ) . only)")
    return value


def scrub(text: str | None) -> str | None:
    """Lone UTF-16 surrogates replaced by U+FFFD. A JSON update may carry one ("\\ud800"), and
    Python reads undecodable bytes as such under a C locale; they cannot be encoded as UTF-8, so the
    database, OpenCC, the logs and every channel would fail on them. Channels call this first."""
    return _SURROGATE.sub("\ufffd", text) if text else text
