"""`ohbot build-index`: knowledge/ → cleaned, segmented, tokenised, embedded index.

Incremental: vectors and tokens are reused for every chunk whose normalised text (and model) is
unchanged, so a one-document edit re-embeds only that document's changed chunks.
"""
from __future__ import annotations

import hashlib
import json
import re
import shutil
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from bot.index import store
from bot.index.encoder import Encoder, load_encoder
from bot.text import reload_dictionaries, use_dictionaries
from bot.text.normalize import normalize, to_display
from bot.text.regions import region_label
from bot.text.tokenize import cache_fingerprint, dictionary_fingerprint, domain_words, tokens, write_cache
from index_builder.cards import Card, load_cards, load_variants
from index_builder.clean import clean_text
from index_builder.ingest import Document, load_documents
from index_builder.segment import segment

NEAR_DUPLICATE = 0.9  # Jaccard similarity of character 5-shingles


@dataclass
class BuildReport:
    documents: int = 0
    chunks: int = 0
    faq_cards: int = 0
    embedded: int = 0  # chunks whose vectors were computed this time
    reused: int = 0  # chunks whose vectors came from the previous index
    removed_chunks: int = 0  # chunks of the previous index that are gone
    duplicates: list[str] = field(default_factory=list)
    lines_removed: Counter = field(default_factory=Counter)
    missing_metadata: dict[str, list[str]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def summary(self) -> str:
        """The build in one line (what a non-interactive `build-index` prints, with any errors)."""
        return (f"index built: {self.documents} documents, {self.faq_cards} FAQ cards, {self.chunks} chunks "
                f"({self.embedded} embedded, {self.reused} reused, {self.removed_chunks} removed), "
                f"{len(self.errors)} errors, {self.seconds:.1f} s")

    def as_text(self) -> str:
        removed = ", ".join(f"{k} {v}" for k, v in sorted(self.lines_removed.items()) if v) or "none"
        lines = [
            f"documents: {self.documents}   FAQ cards: {self.faq_cards}   chunks: {self.chunks}",
            f"embedded: {self.embedded}   reused: {self.reused}   removed: {self.removed_chunks}",
            f"lines removed: {removed}",
            f"duplicate documents dropped: {len(self.duplicates)}",
            *[f"  {d}" for d in self.duplicates],
            *[f"missing metadata: {doc}: {', '.join(f)}" for doc, f in sorted(self.missing_metadata.items())],
            *[f"note: {n}" for n in self.notes],
            *[f"error: {e}" for e in self.errors],
            f"time: {self.seconds:.1f} s",
        ]
        return "\n".join(lines)


def _stable_id(*parts: str) -> int:
    """A 62-bit id that stays the same while the chunk's document, text and position do."""
    return int(hashlib.sha1("\x1f".join(parts).encode("utf-8")).hexdigest()[:15], 16)


def _shingles(text: str, n: int = 5) -> set[str]:
    text = re.sub(r"\s+", "", text)
    return {text[i : i + n] for i in range(max(1, len(text) - n + 1))}


def _heading(title: str, section: list[str]) -> str:
    return " › ".join([title, *section])


def table_rows(table: str, label: str) -> list[str]:
    """One retrieval unit per row of a rebuilt table ("caption\nheader\nrow…"): the row with its
    caption and the document's region, e.g. "柳南区 “十四五”职业病防治指标与目标：工业企业职业病危害项目
    申报率 ≥90%". A bureau asks for one figure; a whole table ranks below prose that mentions it."""
    lines = table.splitlines()
    header_at = next((i for i, line in enumerate(lines) if line.startswith("序号 | ")), None)
    if header_at is None:
        return []
    caption = " ".join(lines[:header_at]).strip()
    rows = []
    for line in lines[header_at + 1:]:
        cells = [c.strip() for c in line.split(" | ")]
        if len(cells) < 2:
            continue
        body = " ".join(c for c in cells[1:] if c)  # without the running number
        rows.append(" ".join(p for p in (label, f"{caption}：{body}" if caption else body) if p))
    return rows


def document_chunks(doc: Document) -> tuple[list[store.ChunkRow], Counter, str]:
    """Chunks of one document (tables also row by row), the lines its cleaning removed, and its
    cleaned text."""
    markdown = doc.path.suffix.lower() == ".md"
    title = to_display(doc.title)
    cleaned = clean_text(doc.text, None if markdown else doc.meta.get("title"), web=not markdown)
    label = region_label(doc.meta.get("region"))
    rows: list[store.ChunkRow] = []

    def add(section: list[str], text: str, kind: str) -> None:
        """Append one chunk of this document (its id stable while text and position are)."""
        ordinal = len(rows)
        heading = _heading(title, section)
        search_text = f"{heading}\n{text}"
        digest = hashlib.sha1(normalize(search_text).encode("utf-8")).hexdigest()
        rows.append(store.ChunkRow(
            id=_stable_id(doc.doc_id, digest, str(ordinal)), doc_id=doc.doc_id, ordinal=ordinal,
            section=section, heading=heading, text=text, search_text=search_text,
            kind=kind, faq_id=None, hash=digest, tokens=[],
        ))

    for chunk in segment(cleaned.lines, markdown=markdown):
        add(chunk.section, chunk.text, chunk.kind)
        if chunk.kind == "table":
            for row in table_rows(chunk.text, label):
                add(chunk.section, row, "row")
    return rows, cleaned.removed, "\n".join(cleaned.lines)


def heading_question(chunk: store.ChunkRow, markdown: bool) -> str | None:
    """The question a section answers, as matched against users' questions: a material's heading
    is itself a question ("中暑算职业病吗？"); a policy document's heading is a topic, so its title
    goes with it ("柳南区职业病防治规划 (三)规划目标"); a table row stands for itself."""
    if chunk.kind == "row":
        return chunk.text  # a table row is asked for by its indicator: the row is its own question
    if not chunk.section:
        return None
    title = chunk.heading.split(" › ")[0]
    return chunk.section[-1] if markdown else f"{title} {chunk.section[-1]}"


def card_chunk(card: Card, ordinal: int) -> store.ChunkRow:
    question = to_display(card.question)
    search_text = "\n".join([*(to_display(q) for q in card.questions), to_display(card.answer)])
    digest = hashlib.sha1(normalize(search_text).encode("utf-8")).hexdigest()
    return store.ChunkRow(
        id=_stable_id("faq", card.id), doc_id=f"faq/{card.file.rsplit('.', 1)[0]}", ordinal=ordinal,
        section=[question], heading=_heading("常见问题", [question]), text=to_display(card.answer),
        search_text=search_text, kind="faq", faq_id=card.id, hash=digest, tokens=[], cite=card.cite or None,
        ref=card.ref or None,
    )


def variant_targets(ref: str, chunks: list[store.ChunkRow]) -> list[store.ChunkRow]:
    """The units a variants entry belongs to: a card (by id), or every chunk of the first section
    of a document whose heading contains the text after '#'."""
    doc_id, sep, heading = ref.partition("#")
    if not sep:
        return [c for c in chunks if c.faq_id == ref]
    section = next((c.section for c in chunks if c.doc_id == doc_id and c.section and heading in c.section[-1]), None)
    return [c for c in chunks if c.doc_id == doc_id and c.section == section and c.kind != "row"] if section else []


def copy_dictionaries(source: Path, target: Path) -> None:
    """The dictionary folder a build used, copied into the new version (`target`, not existing yet):
    a serving process answers from a version with the words it was built with (README "Running at
    scale"). Only files: the folder holds no subfolders; none at all gives an empty folder."""
    target.mkdir()
    if source.is_dir():
        for path in sorted(source.iterdir()):
            if path.is_file():
                shutil.copy2(path, target / path.name)


def _previous(index_dir: Path, model: str) -> tuple[dict[str, np.ndarray], dict[str, list[str]], set[int], list[str]]:
    """Vectors and tokens of the current index by chunk hash (empty when unusable), its chunk ids."""
    notes: list[str] = []
    try:
        manifest = store.read_manifest(index_dir, schemas=store.REUSABLE_SCHEMAS)
        chunks, _ = store.read_chunks(index_dir)
        vectors = store.read_vectors(index_dir) if manifest.get("model") == model else {}
        if manifest.get("model") != model:
            notes.append(f"model changed from {manifest.get('model')!r} to {model!r}: every chunk is re-embedded")
    except store.IndexUnavailable as exc:
        if (index_dir / "index.db").exists():
            notes.append(f"previous index not reused: {exc}")
        return {}, {}, set(), notes
    except Exception as exc:  # a damaged file: build from scratch, say so
        notes.append(f"previous index not reused ({type(exc).__name__}: {exc})")
        return {}, {}, set(), notes
    # a chunk's tokens depend on the domain words too: reused only when they are the same
    if cache_fingerprint(index_dir / store.WORDS) != dictionary_fingerprint(domain_words()):
        notes.append("domain words changed: every chunk is tokenised again")
        return vectors, {}, {c.id for c in chunks}, notes
    return vectors, {c.hash: c.tokens for c in chunks}, {c.id for c in chunks}, notes


class _Progress:
    """A progress bar on standard error (tqdm) when asked for, else nothing."""

    def __init__(self, enabled: bool, total: int, label: str, unit: str) -> None:
        """A bar of `total` steps named `label`; a no-op unless `enabled` and total > 0."""
        self.bar = None
        if enabled and total > 0:
            from tqdm import tqdm

            self.bar = tqdm(total=total, desc=label, unit=unit, leave=False, dynamic_ncols=True)

    def update(self, n: int = 1) -> None:
        """Advance by `n` steps."""
        if self.bar is not None:
            self.bar.update(n)

    def close(self) -> None:
        """Remove the bar from the terminal."""
        if self.bar is not None:
            self.bar.close()


def build_index(
    knowledge_dir: Path, index_dir: Path, model: str, backend: str = "onnx",
    full: bool = False, encoder: Encoder | None = None, cache_dir: Path | None = None,
    progress: bool = False,
) -> BuildReport:
    """Build (or update) the index of `knowledge_dir` into `index_dir`; returns the report.
    `progress`: show progress bars (documents read, chunks embedded) on standard error."""
    started = time.perf_counter()
    dictionaries = Path(knowledge_dir) / "dict"
    use_dictionaries(dictionaries)
    reload_dictionaries()  # the files may have changed since this process read them
    report = BuildReport()
    documents, ingest_errors = load_documents(knowledge_dir)
    report.errors += [str(e) for e in ingest_errors]
    cards, card_errors = load_cards(knowledge_dir)
    report.errors += card_errors

    chunks: list[store.ChunkRow] = []
    doc_rows: list[dict] = []
    questions: list[store.QuestionRow] = []  # every card question and variant, every section heading
    kept_shingles: list[tuple[str, set[str], str]] = []
    bar = _Progress(progress, len(documents), "documents", "doc")
    for doc in documents:
        bar.update()
        rows, removed, cleaned = document_chunks(doc)
        report.lines_removed.update(removed)
        if not rows:
            report.errors.append(f"{doc.path}: nothing left after cleaning; check the file's content")
            continue
        grams = _shingles(normalize(cleaned))
        twin = next((d for d, g, _ in kept_shingles if len(grams & g) / len(grams | g) >= NEAR_DUPLICATE), None)
        if twin:
            report.duplicates.append(f"{doc.doc_id} ({doc.path.name}) duplicates {twin}: indexed once")
            continue
        kept_shingles.append((doc.doc_id, grams, cleaned))
        markdown = doc.path.suffix.lower() == ".md"
        for row in rows:
            text = heading_question(row, markdown)
            if text:
                text = normalize(text)
                questions.append(store.QuestionRow(row.id, text, hashlib.sha1(text.encode("utf-8")).hexdigest(),
                                                   "heading"))
        if doc.missing:
            report.missing_metadata[doc.doc_id] = doc.missing
        meta = {k: (str(v) if v is not None else None) for k, v in doc.meta.items() if k != "id"}
        doc_rows.append({
            "doc_id": doc.doc_id, "path": str(doc.path.relative_to(knowledge_dir)),
            "title": to_display(doc.title), "issuer": meta.get("issuer"), "region": meta.get("region"),
            "date": meta.get("date"), "doc_type": meta.get("doc_type"), "audience": meta.get("audience") or "all",
            "source": meta.get("source"), "status": meta.get("status") or "reviewed",
            "missing": json.dumps(doc.missing), "original": doc.text,
        })
        chunks += rows
    bar.close()
    faq_docs: dict[str, dict] = {}
    for n, card in enumerate(cards):
        row = card_chunk(card, n)
        chunks.append(row)
        for text in dict.fromkeys(normalize(q) for q in card.questions):
            questions.append(store.QuestionRow(row.id, text, hashlib.sha1(text.encode("utf-8")).hexdigest(), "faq"))
        faq_docs.setdefault(row.doc_id, {
            "doc_id": row.doc_id, "path": f"faq/{card.file}", "title": "常见问题", "issuer": "ohbot 编写组",
            "region": "全国", "date": None, "doc_type": "faq", "audience": "all", "source": "knowledge/faq",
            "status": "reviewed", "missing": "[]", "original": "",
        })
    doc_rows += faq_docs.values()
    variants, variant_errors = load_variants(knowledge_dir)
    report.errors += variant_errors
    for ref, texts in variants:
        targets = variant_targets(ref, chunks)
        if not targets:
            report.errors.append(f"variants: {ref!r} names no card and no section heading; its variants were skipped")
        for row in targets:
            for text in dict.fromkeys(normalize(v) for v in texts):
                questions.append(store.QuestionRow(row.id, text, hashlib.sha1(text.encode("utf-8")).hexdigest(),
                                                   "variant"))
    report.documents = len(doc_rows) - len(faq_docs)
    report.faq_cards = len(cards)
    report.chunks = len(chunks)

    old_vectors, old_tokens, old_ids, notes = ({}, {}, set(), []) if full else _previous(index_dir, model)
    report.notes += notes
    missing = [c for c in chunks if c.hash not in old_vectors]
    unique_missing = list({c.hash: c for c in missing}.values())
    vectors = {c.hash: old_vectors[c.hash] for c in chunks if c.hash in old_vectors}
    vectors.update({q.hash: old_vectors[q.hash] for q in questions if q.hash in old_vectors})
    missing_questions = list({q.hash: q for q in questions if q.hash not in vectors}.values())
    embed = bool(unique_missing or missing_questions or not old_vectors)
    if embed:  # before tokenising: a first export (child processes) then runs beside a small build process
        encoder = encoder or load_encoder(model, backend, cache_dir)
    for c in chunks:
        c.tokens = old_tokens.get(c.hash) or tokens(c.search_text)
    for q in questions:  # the unit questions' own BM25 (short texts: cheap to tokenise again)
        q.tokens = tokens(q.text)
    if embed:
        assert encoder is not None
        bar = _Progress(progress, len(unique_missing) + len(missing_questions), "embedding", "text")
        fresh = encoder.encode([c.search_text for c in unique_missing], progress=bar.update)
        vectors.update({c.hash: v for c, v in zip(unique_missing, fresh)})
        fresh = encoder.encode([q.text for q in missing_questions], progress=bar.update)
        vectors.update({q.hash: v for q, v in zip(missing_questions, fresh)})
        bar.close()
        dimension = encoder.dimension
    else:
        dimension = int(store.read_manifest(index_dir, schemas=store.REUSABLE_SCHEMAS)["dimension"])
    report.embedded = len(missing)
    report.reused = len(chunks) - len(missing)
    report.removed_chunks = len(old_ids - {c.id for c in chunks})

    manifest = {
        "schema": store.SCHEMA_VERSION, "model": model, "dimension": dimension, "backend": backend,
        "built_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "documents": report.documents, "chunks": len(chunks), "faq_cards": len(cards),
    }
    tmp = store.build_folder(index_dir)  # a new version beside the served one: serving workers swap it in
    texts = [c.search_text for c in chunks]
    try:
        store.write_index(tmp, manifest, doc_rows, chunks, vectors, questions,
                          extras={store.WORDS: lambda path: write_cache(path, texts),
                                  store.DICTIONARIES: lambda path: copy_dictionaries(dictionaries, path)})
        store.publish(tmp, index_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    report.seconds = time.perf_counter() - started
    return report
