"""Which encoding a bureau's CSV file is in: UTF-8, GB18030 (Simplified Chinese Excel) or Big5
(Traditional Chinese Excel, e.g. from Hong Kong, Macao or Taiwan partners).

Why not just "UTF-8, else GB18030": GB18030 decodes almost any byte sequence, Big5 included, so a
Big5 file was imported as mojibake ("臺北市" → "滿カ"). Big5 text read as GB18030 is full of characters
no Chinese text uses (katakana, box drawing, private-use and rare ideographs outside GB2312), while
real GB text is almost all GB2312 ideographs and punctuation. So: UTF-8 if the whole file decodes;
else GB18030 when at most 5 % of its non-ASCII characters are implausible; else Big5 (cp950, what
Excel writes) if the whole file decodes as such; else GB18030 if it decodes; else an InputError that
says to save the file as UTF-8. Files are read in 1 MiB chunks (memory stays flat); the common UTF-8
case is one pass.
"""
from __future__ import annotations

import codecs
import re
from pathlib import Path

from bot.errors import InputError

CHUNK = 1 << 20
IMPLAUSIBLE_SHARE = 0.05  # of non-ASCII characters, above which GB18030 is taken for mojibake
# ASCII, CJK ideographs, CJK punctuation, full-width forms, general punctuation (“”—…), middle dot
_PLAUSIBLE = re.compile(r"[\x00-\x7f\u4e00-\u9fff\u3000-\u303f\uff00-\uffef\u2000-\u206f\u00b7]+")
_ASCII = re.compile(r"[\x00-\x7f]+")
_IDEOGRAPHS = re.compile(r"[\u4e00-\u9fff]+")
SAVE_AS_UTF8 = "save it as UTF-8 (Excel: 另存为 › “CSV UTF-8”) and import it again"


def _decodes(path: Path, encoding: str) -> bool:
    """The whole file decodes in `encoding`."""
    decoder = codecs.getincrementaldecoder(encoding)()
    try:
        with open(path, "rb") as f:
            while chunk := f.read(CHUNK):
                decoder.decode(chunk)
            decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


def _gb18030_implausible_share(path: Path) -> float | None:
    """Share of the non-ASCII characters that Chinese text would not contain, reading the file as
    GB18030; None when it does not decode so."""
    decoder = codecs.getincrementaldecoder("gb18030")()
    non_ascii = implausible = 0
    try:
        with open(path, "rb") as f:
            while True:
                chunk = f.read(CHUNK)
                text = decoder.decode(chunk, final=not chunk)
                non_ascii += len(_ASCII.sub("", text))
                implausible += len(_PLAUSIBLE.sub("", text))
                ideographs = "".join(_IDEOGRAPHS.findall(text))
                implausible += len(ideographs) - len(ideographs.encode("gb2312", errors="ignore")) // 2
                if not chunk:
                    break
    except UnicodeDecodeError:
        return None
    return implausible / non_ascii if non_ascii else 0.0


def detect_encoding(path: Path) -> str:
    """"utf-8-sig", "gb18030" or "cp950" (Big5) for a text file; InputError naming the file and the
    fix when it is none of them."""
    path = Path(path)
    if _decodes(path, "utf-8-sig"):
        return "utf-8-sig"
    share = _gb18030_implausible_share(path)
    if share is not None and share <= IMPLAUSIBLE_SHARE:
        return "gb18030"
    if _decodes(path, "cp950"):
        return "cp950"
    if share is not None:
        return "gb18030"
    raise InputError(f"{path}: not UTF-8, GB18030 or Big5 text: {SAVE_AS_UTF8}")
