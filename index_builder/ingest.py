"""Read every source document under knowledge/ with its metadata.

Supported: .txt .md .html/.htm .docx .pdf (text layer). Metadata comes from Markdown front matter or
a sidecar `FILE.meta.yaml`; what is missing is inferred where possible and reported.
"""
from __future__ import annotations

import hashlib
import html
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

SUPPORTED = {".txt", ".md", ".html", ".htm", ".docx", ".pdf"}
# Folders of knowledge/ that are not source documents for the passage index.
NOT_DOCUMENTS = {"faq", "quiz", "dict"}
METADATA_FIELDS = ("title", "issuer", "region", "date", "doc_type", "audience", "source")
SIDECAR_SUFFIX = ".meta.yaml"


@dataclass
class Document:
    doc_id: str
    path: Path
    text: str  # raw text as read (original script), for citation
    meta: dict = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)  # metadata fields neither given nor inferred

    @property
    def title(self) -> str:
        return self.meta.get("title") or self.doc_id


@dataclass
class IngestError:
    path: Path
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


def split_front_matter(text: str) -> tuple[dict, str]:
    """Split `---\\nyaml\\n---\\nbody`; returns ({}, text) when there is no front matter."""
    if not text.startswith("---"):
        return {}, text
    match = re.match(r"^---[ \t]*\r?\n(.*?)\r?\n---[ \t]*(?:\r?\n|$)", text, re.S)
    if not match:
        raise ValueError("front matter starts with '---' but has no closing '---' line")
    meta = yaml.safe_load(match.group(1)) or {}
    if not isinstance(meta, dict):
        raise ValueError("front matter is not a YAML mapping")
    return meta, text[match.end():]


def _read_html(path: Path) -> str:
    raw = path.read_text(encoding="utf-8", errors="replace")
    raw = re.sub(r"(?is)<(script|style|nav|header|footer)\b.*?</\1>", "\n", raw)
    raw = re.sub(r"(?i)<br\s*/?>|</(p|div|h[1-6]|li|tr|table|section|article)>", "\n", raw)
    raw = re.sub(r"(?i)</t[dh]>", " | ", raw)
    return html.unescape(re.sub(r"<[^>]+>", "", raw))


def _read_docx(path: Path) -> str:
    import docx

    try:
        document = docx.Document(str(path))
    except Exception as exc:  # python-docx raises zip, XML and key errors for a damaged file
        raise ValueError(f"not a readable .docx (Word 2007 or later) file ({type(exc).__name__})") from exc
    parts = [p.text for p in document.paragraphs]
    for table in document.tables:
        for row in table.rows:
            parts.append(" | ".join(cell.text.strip() for cell in row.cells))
    return "\n".join(parts)


def _read_pdf(path: Path) -> str:
    from pypdf import PdfReader

    text = "\n".join(page.extract_text() or "" for page in PdfReader(str(path)).pages)
    if not text.strip():
        raise ValueError("the PDF has no text layer (scanned?); OCR it or add a .txt version")
    return text


def read_text(path: Path) -> tuple[dict, str]:
    """Read one file's (front-matter metadata, text). Raises ValueError with a readable reason."""
    suffix = path.suffix.lower()
    if suffix in (".txt", ".md"):
        try:
            text = path.read_text(encoding="utf-8-sig")
        except UnicodeDecodeError:
            text = path.read_text(encoding="gb18030")  # older Chinese government pages
        return split_front_matter(text) if suffix == ".md" else ({}, text)
    if suffix in (".html", ".htm"):
        return {}, _read_html(path)
    if suffix == ".docx":
        return {}, _read_docx(path)
    if suffix == ".pdf":
        return {}, _read_pdf(path)
    raise ValueError(f"unknown extension {suffix!r} (supported: {', '.join(sorted(SUPPORTED))})")


_DATE = re.compile(r"(?:发布日期|發布日期|发布时间|發布時間|成文日期)\s*[:：]\s*(\d{4})[-年/.](\d{1,2})[-月/.](\d{1,2})")


def infer_metadata(meta: dict, text: str, path: Path) -> dict:
    """Fill what the text itself says: a title from the first heading or line, a date from a
    "发布日期:" line. Never guesses an issuer or region."""
    meta = dict(meta)
    if not meta.get("title"):
        for line in text.splitlines():
            line = line.strip().lstrip("#").strip()
            if line:
                meta["title"] = line[:80]
                break
    if not meta.get("date"):
        match = _DATE.search(text)
        if match:
            y, m, d = match.groups()
            meta["date"] = f"{y}-{int(m):02d}-{int(d):02d}"
    if meta.get("date") is not None:
        meta["date"] = str(meta["date"])
    meta.setdefault("audience", "all")
    return meta


def document_paths(knowledge_dir: Path) -> list[Path]:
    """Every file that should be a source document (sorted, so builds are reproducible)."""
    paths = []
    for path in sorted(knowledge_dir.rglob("*")):
        rel = path.relative_to(knowledge_dir)
        if not path.is_file() or rel.parts[0] in NOT_DOCUMENTS or path.name.startswith("."):
            continue
        if path.name.endswith(SIDECAR_SUFFIX) or len(rel.parts) == 1:
            continue  # sidecars, and top-level files such as README.md and taxonomy.yaml
        paths.append(path)
    return paths


def load_document(path: Path, knowledge_dir: Path) -> Document:
    """Read one document with its metadata; raises ValueError naming what is wrong."""
    meta, text = read_text(path)
    sidecar = path.with_name(path.name + SIDECAR_SUFFIX)
    if sidecar.exists():
        side = yaml.safe_load(sidecar.read_text(encoding="utf-8")) or {}
        if not isinstance(side, dict):
            raise ValueError(f"sidecar {sidecar.name} is not a YAML mapping")
        meta = {**side, **meta}
    if not text.strip():
        raise ValueError("the file is empty")
    meta = infer_metadata(meta, text, path)
    doc_id = str(meta.get("id") or path.relative_to(knowledge_dir).with_suffix("").as_posix())
    missing = [f for f in METADATA_FIELDS if not meta.get(f)]
    return Document(doc_id=doc_id, path=path, text=text, meta=meta, missing=missing)


def load_documents(knowledge_dir: Path) -> tuple[list[Document], list[IngestError]]:
    """All documents that could be read, and one error per file that could not."""
    docs: list[Document] = []
    errors: list[IngestError] = []
    seen: dict[str, Path] = {}
    for path in document_paths(knowledge_dir):
        try:
            doc = load_document(path, knowledge_dir)
        except Exception as exc:  # any parser failure: report the file, keep building the rest
            # one line: a YAML error spans several (the line, a caret under the column)
            reason = " ".join(str(exc).split()) or type(exc).__name__
            errors.append(IngestError(path, f"{reason}; fix or remove the file, the rest was indexed"))
            continue
        if doc.doc_id in seen:
            errors.append(IngestError(path, f"duplicate id {doc.doc_id!r} (also {seen[doc.doc_id]}); give it its own id"))
            continue
        seen[doc.doc_id] = path
        docs.append(doc)
    return docs, errors


def content_hash(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()
