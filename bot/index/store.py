"""The index on disk: SQLite (documents, chunks, cached vectors, manifest) + FAISS + BM25.

Layout of DATA_DIR/index/: index.db, dense.faiss, bm25/. A build writes a new folder and swaps it
in at the end, so a failed build never damages the index that is being served.
"""
from __future__ import annotations

import json
import logging
import shutil
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import sqlite_utils

from bot.errors import IndexUnavailable  # noqa: F401  (re-exported: store.IndexUnavailable)

SCHEMA_VERSION = 4  # 4: questions of every unit (FAQ questions and section headings), table rows
logging.getLogger("bm25s").setLevel(logging.WARNING)  # it logs every index build at DEBUG


@dataclass
class ChunkRow:
    id: int
    doc_id: str
    ordinal: int
    section: list[str]
    heading: str  # "title › a › b"
    text: str  # display text
    search_text: str  # what BM25 and the dense model see
    kind: str
    faq_id: str | None
    hash: str
    tokens: list[str]
    cite: str | None = None  # a FAQ card's citation as written on the card
    ref: str | None = None  # a FAQ card's ref: DOC_ID or DOC_ID#text in one heading (the section it restates)


@dataclass
class QuestionRow:
    """A question a unit answers, matched against users' questions as a whole: a FAQ card's
    question or variant, or the heading of a section (materials' headings are questions)."""
    chunk_id: int  # the card's or section's chunk
    text: str  # normalised
    hash: str  # key of its vector in the vectors table
    kind: str = "faq"  # "faq" (question or variant of a card) | "heading" (a section's heading)


def open_db(path: Path) -> sqlite_utils.Database:
    return sqlite_utils.Database(sqlite3.connect(str(path), check_same_thread=False))


def write_index(
    folder: Path, manifest: dict, documents: list[dict], chunks: list[ChunkRow],
    vectors: dict[str, np.ndarray], questions: list[QuestionRow] = (),
) -> None:
    """Write a complete index into `folder` (which must not exist yet)."""
    import bm25s
    import faiss

    folder.mkdir(parents=True)
    db = open_db(folder / "index.db")
    db["manifest"].insert_all(
        [{"key": k, "value": json.dumps(v, ensure_ascii=False)} for k, v in manifest.items()], pk="key"
    )
    db["documents"].insert_all(documents, pk="doc_id")
    db["chunks"].insert_all(
        (
            {
                "id": c.id, "position": i, "doc_id": c.doc_id, "ordinal": c.ordinal,
                "section": json.dumps(c.section, ensure_ascii=False), "heading": c.heading,
                "text": c.text, "search_text": c.search_text, "kind": c.kind, "faq_id": c.faq_id,
                "hash": c.hash, "tokens": " ".join(c.tokens), "cite": c.cite,
                "ref": c.ref,
            }
            for i, c in enumerate(chunks)
        ),
        pk="id",
    )
    db["vectors"].insert_all(
        ({"hash": h, "vector": v.astype("float32").tobytes()} for h, v in vectors.items()), pk="hash"
    )
    db["questions"].create({"id": int, "chunk_id": int, "text": str, "hash": str, "kind": str}, pk="id")
    db["questions"].insert_all(
        {"id": n, "chunk_id": q.chunk_id, "text": q.text, "hash": q.hash, "kind": q.kind}
        for n, q in enumerate(questions))
    db["chunks"].create_index(["doc_id"])
    db.conn.commit()
    db.conn.close()
    dim = int(manifest["dimension"])
    dense = faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
    if chunks:
        matrix = np.stack([vectors[c.hash] for c in chunks]).astype("float32")
        dense.add_with_ids(matrix, np.array([c.id for c in chunks], dtype="int64"))
    faiss.write_index(dense, str(folder / "dense.faiss"))
    bm25 = bm25s.BM25()
    bm25.index([c.tokens or ["<empty>"] for c in chunks] or [["<empty>"]], show_progress=False)
    bm25.save(str(folder / "bm25"))


def swap_in(new: Path, target: Path) -> None:
    """Replace `target` by `new` (both folders), keeping the old one until the new is in place."""
    old = target.with_name(target.name + ".old")
    if old.exists():
        shutil.rmtree(old)
    if target.exists():
        target.rename(old)
    new.rename(target)
    if old.exists():
        shutil.rmtree(old)


def read_manifest(folder: Path) -> dict:
    db_path = folder / "index.db"
    if not db_path.exists():
        raise IndexUnavailable(f"no index at {folder}: run `ohbot build-index` first")
    try:
        db = open_db(db_path)
        manifest = {r["key"]: json.loads(r["value"]) for r in db["manifest"].rows}
        db.conn.close()
    except (sqlite3.DatabaseError, json.JSONDecodeError) as exc:
        raise IndexUnavailable(f"the index at {folder} is unreadable ({exc}): run `ohbot build-index --full`") from exc
    if manifest.get("schema") != SCHEMA_VERSION:
        raise IndexUnavailable(f"the index at {folder} has an old layout: run `ohbot build-index --full`")
    return manifest


def check_model(manifest: dict, model: str, folder: Path) -> None:
    if manifest.get("model") != model:
        raise IndexUnavailable(
            f"the index at {folder} was built with embedding model {manifest.get('model')!r} "
            f"(dimension {manifest.get('dimension')}), but {model!r} is configured: rebuild it with "
            f"`ohbot build-index --full`, or set OHBOT_EMBEDDING_MODEL={manifest.get('model')}"
        )


def read_chunks(folder: Path) -> tuple[list[ChunkRow], dict[str, dict]]:
    """Chunks in index order, and documents by id."""
    db = open_db(folder / "index.db")
    try:
        docs = {d["doc_id"]: d for d in db["documents"].rows}
        chunks = [
            ChunkRow(
                id=r["id"], doc_id=r["doc_id"], ordinal=r["ordinal"], section=json.loads(r["section"]),
                heading=r["heading"], text=r["text"], search_text=r["search_text"], kind=r["kind"],
                faq_id=r["faq_id"], hash=r["hash"], tokens=r["tokens"].split(), cite=r.get("cite"),
                ref=r.get("ref"),
            )
            for r in db["chunks"].rows_where(order_by="position")
        ]
    finally:
        db.conn.close()
    return chunks, docs


def read_vectors(folder: Path) -> dict[str, np.ndarray]:
    db = open_db(folder / "index.db")
    try:
        return {r["hash"]: np.frombuffer(r["vector"], dtype="float32") for r in db["vectors"].rows}
    finally:
        db.conn.close()


def read_questions(folder: Path) -> tuple[list[QuestionRow], np.ndarray]:
    """Every unit question (FAQ questions and variants, section headings) and their vectors as
    one matrix, in the same order."""
    db = open_db(folder / "index.db")
    try:
        rows = list(db.query(
            "select q.chunk_id, q.text, q.hash, q.kind, v.vector from questions q "
            "join vectors v on v.hash = q.hash order by q.id"))
    finally:
        db.conn.close()
    if not rows:
        return [], np.zeros((0, 0), dtype="float32")
    questions = [QuestionRow(r["chunk_id"], r["text"], r["hash"], r["kind"]) for r in rows]
    return questions, np.stack([np.frombuffer(r["vector"], dtype="float32") for r in rows])
