"""The index on disk: SQLite (documents, chunks, cached vectors, manifest) + FAISS + BM25.

Layout of DATA_DIR/index/: index.db, dense.faiss, dense.npy, bm25/, words.sqlite, dict/. DATA_DIR/index is
a symbolic link to one complete version, DATA_DIR/index.versions/<UTC time>-<pid>/: a build writes a
new version beside the served one and then replaces the link in one rename (`publish`), so a reader
resolves either the old or the new index, never half of one, and a failed build changes nothing.
Serving processes notice the new link and swap the new version in (bot/answering/retrieve.py,
`LiveIndex`). The current and the previous version are kept; older ones are removed.

Serving reads the dense vectors from dense.npy (float32, one row per chunk in index order) and the
BM25 arrays of bm25/, both memory-mapped, without importing faiss, bm25s or scipy (~0.6 s and
~30 MB per process); dense.faiss holds the same vectors for FAISS tools (`Retriever.dense_index`).
words.sqlite is the tokenizer's dictionary and its tokens of every text block of the chunks
(bot/text/tokenize.py); dict/ is the copy of the dictionary folder (knowledge/dict) the version was
built with, which a process answering from the version reads its dictionaries from (bot/text `reading`). The manifest records a sha256
of every file but index.db (which holds the manifest), checked at every load: a damaged or
swapped file is refused with the fix instead of answering from garbage.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from bot.errors import IndexUnavailable  # noqa: F401  (re-exported: store.IndexUnavailable)
from bot.storage.secretfile import fsync_dir

SCHEMA_VERSION = 5  # 4: dense.npy, words.sqlite and checksums; 5: every unit's questions, table rows, card refs
REUSABLE_SCHEMAS = (3, 4, 5)  # indexes whose vectors and tokens a build may reuse (same tables)
DENSE_MATRIX = "dense.npy"
WORDS = "words.sqlite"
DICTIONARIES = "dict"  # the copy of knowledge/dict the version was built with (read by serving)
QUESTIONS_BM25 = "bm25-questions"  # BM25 over the unit questions (FAQ questions, headings, variants)
BM25_METHODS = ("robertson", "lucene", "atire")  # bm25s methods without a non-occurrence array


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
    kind: str = "faq"  # "faq" (a card's question or variant) | "heading" (a section's) | "variant" (variants.yaml)
    tokens: list[str] = field(default_factory=list)  # search tokens, for the questions' BM25 (build time)


def open_db(path: Path) -> Any:
    """The index database as a sqlite_utils.Database (imported here: serving reads with sqlite3 alone)."""
    import sqlite_utils

    return sqlite_utils.Database(sqlite3.connect(str(path), check_same_thread=False))


def _connect(path: Path) -> sqlite3.Connection:
    """A read-only connection whose rows are dicts by column name."""
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
    db.row_factory = lambda cursor, row: {c[0]: v for c, v in zip(cursor.description, row)}
    return db


def sha256_file(path: Path) -> str:
    """The sha256 of a file, read in 1 MB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def checksums(folder: Path) -> dict[str, str]:
    """sha256 of every file of an index folder but index.db, by path relative to the folder."""
    return {
        p.relative_to(folder).as_posix(): sha256_file(p)
        for p in sorted(folder.rglob("*")) if p.is_file() and p.name != "index.db"
    }


def write_index(
    folder: Path, manifest: dict, documents: list[dict], chunks: list[ChunkRow],
    vectors: dict[str, np.ndarray], questions: Sequence[QuestionRow] = (),
    extras: dict[str, Callable[[Path], None]] | None = None,
) -> None:
    """Write a complete index into `folder` (which must not exist yet). `extras`: more files of the
    index, each written by its function given the path (the tokenizer's dictionary). The checksums
    of all files are added to the manifest last."""
    import bm25s
    import faiss

    logging.getLogger("bm25s").setLevel(logging.WARNING)  # bm25s sets DEBUG on import and logs each build
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
    matrix = np.zeros((0, dim), dtype="float32")
    if chunks:
        matrix = np.stack([vectors[c.hash] for c in chunks]).astype("float32")
        dense.add_with_ids(matrix, np.array([c.id for c in chunks], dtype="int64"))
    faiss.write_index(dense, str(folder / "dense.faiss"))
    np.save(folder / DENSE_MATRIX, np.ascontiguousarray(matrix))
    bm25 = bm25s.BM25()
    bm25.index([c.tokens or ["<empty>"] for c in chunks] or [["<empty>"]], show_progress=False)
    bm25.save(str(folder / "bm25"))
    if questions:
        questions_bm25 = bm25s.BM25()
        questions_bm25.index([q.tokens or ["<empty>"] for q in questions], show_progress=False)
        questions_bm25.save(str(folder / QUESTIONS_BM25))
    for name, write in (extras or {}).items():
        write(folder / name)
    db = sqlite3.connect(str(folder / "index.db"))
    with db:
        db.execute("insert into manifest (key, value) values (?, ?)", ("checksums", json.dumps(checksums(folder))))
    db.close()


def versions_dir(index_dir: Path) -> Path:
    """Where the versions of the index at `index_dir` live: DATA_DIR/index.versions/."""
    return index_dir.with_name(index_dir.name + ".versions")


def build_folder(index_dir: Path) -> Path:
    """A fresh folder path for a build of the index at `index_dir` to write into (not created; removed
    first when a crashed build of this process id left it), on the same file system as the versions."""
    folder = versions_dir(index_dir) / f".building-{os.getpid()}"
    if folder.exists():
        shutil.rmtree(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    return folder


def index_signature(index_dir: Path) -> tuple[int, int, int, int]:
    """What identifies the index a path leads to now: device, inode, size and mtime of its index.db
    (one stat, following the link; a new version is a new file). OSError when there is none."""
    st = os.stat(index_dir / "index.db")
    return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns


def publish(built: Path, index_dir: Path, keep: int = 2) -> Path:
    """Make the complete index in `built` (from `build_folder`) the one at `index_dir`: it becomes the
    version DATA_DIR/index.versions/<UTC time>-<pid>, and the link `index_dir` is replaced by one to it
    in a single rename, atomic for readers. An index folder from before versions (a real directory)
    becomes the previous version first (the one moment `index_dir` is missing lasts two renames).
    Then every version but the newest `keep` (the current one always among them) is removed, and
    build folders of processes that no longer run. Returns the new version's folder."""
    versions = versions_dir(index_dir)
    versions.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    version = versions / f"{stamp}-{os.getpid()}"
    built.rename(version)
    link = index_dir.with_name(f".{index_dir.name}.link-{os.getpid()}")
    if os.path.lexists(link):
        link.unlink()
    os.symlink(os.path.relpath(version, index_dir.parent), link)
    if index_dir.is_dir() and not index_dir.is_symlink():
        index_dir.rename(versions / f"{stamp}-0")  # sorts just before the new version: the previous one
    os.replace(link, index_dir)
    fsync_dir(index_dir.parent)
    prune(index_dir, keep)
    return version


def _running(pid: int) -> bool:
    """Whether a process with this id exists (on this host)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def prune(index_dir: Path, keep: int = 2) -> list[Path]:
    """Remove the versions of the index at `index_dir` but the current one and the newest others up to
    `keep` in all, and build folders left by processes that no longer run; returns what was removed.
    A serving process that still answers from a removed version is unaffected (its files are open or
    memory-mapped; POSIX frees them when it lets go) and swaps to the current one at its next check."""
    versions = versions_dir(index_dir)
    if not versions.is_dir():
        return []
    current = index_dir.resolve()
    removed = []
    done = sorted((p for p in versions.iterdir() if p.is_dir() and not p.name.startswith(".")), reverse=True)
    kept = [p for p in done if p.resolve() == current]
    for folder in done:
        if folder.resolve() == current:
            continue
        if len(kept) < keep:
            kept.append(folder)
            continue
        shutil.rmtree(folder, ignore_errors=True)
        removed.append(folder)
    for folder in versions.glob(".building-*"):
        pid = folder.name.rpartition("-")[2]
        if pid.isdecimal() and not _running(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


def read_manifest(folder: Path, schemas: tuple[int, ...] = (SCHEMA_VERSION,)) -> dict:
    """The manifest of the index in `folder`; IndexUnavailable (with the fix) when there is no index,
    it is unreadable, or its layout is not one of `schemas`."""
    db_path = folder / "index.db"
    if not db_path.exists():
        raise IndexUnavailable(f"no index at {folder}: run `ohbot build-index` first")
    try:
        db = _connect(db_path)
        try:
            manifest = {r["key"]: json.loads(r["value"]) for r in db.execute("select key, value from manifest")}
        finally:
            db.close()
    except (sqlite3.DatabaseError, json.JSONDecodeError) as exc:
        raise IndexUnavailable(f"the index at {folder} is unreadable ({exc}): run `ohbot build-index --full`") from exc
    if manifest.get("schema") not in schemas:
        raise IndexUnavailable(f"the index at {folder} has an old layout: run `ohbot build-index --full`")
    return manifest


def verify_files(folder: Path, manifest: dict) -> None:
    """Check every file the manifest lists against its sha256: IndexUnavailable saying which file is
    missing or damaged and to rebuild. (A same-size scrambled dense.faiss once loaded and answered
    with confidence 1.0.)"""
    expected = manifest.get("checksums")
    if not isinstance(expected, dict) or not expected:
        raise IndexUnavailable(f"the index at {folder} has no checksums: run `ohbot build-index --full`")
    for name, digest in expected.items():
        path = folder / name
        if not path.is_file():
            raise IndexUnavailable(f"the index at {folder} is incomplete ({name} is missing): "
                                   "run `ohbot build-index --full`")
        if sha256_file(path) != digest:
            raise IndexUnavailable(f"the index at {folder} is damaged ({name} does not match its checksum): "
                                   "run `ohbot build-index --full`")


def check_model(manifest: dict, model: str, folder: Path) -> None:
    """IndexUnavailable, naming both models and the fix, when the index was built with another model."""
    if manifest.get("model") != model:
        raise IndexUnavailable(
            f"the index at {folder} was built with embedding model {manifest.get('model')!r} "
            f"(dimension {manifest.get('dimension')}), but {model!r} is configured: rebuild it with "
            f"`ohbot build-index --full`, or set OHBOT_EMBEDDING_MODEL={manifest.get('model')}"
        )


def read_chunks(folder: Path) -> tuple[list[ChunkRow], dict[str, dict]]:
    """Chunks in index order, and documents by id (without their original text, which only the
    builder reads back)."""
    db = _connect(folder / "index.db")
    try:
        columns = [r["name"] for r in db.execute("pragma table_info(documents)") if r["name"] != "original"]
        docs = {d["doc_id"]: d for d in db.execute(f"select {', '.join(columns)} from documents")}
        chunks = [
            ChunkRow(
                id=r["id"], doc_id=r["doc_id"], ordinal=r["ordinal"], section=json.loads(r["section"]),
                heading=r["heading"], text=r["text"], search_text=r["search_text"], kind=r["kind"],
                faq_id=r["faq_id"], hash=r["hash"], tokens=r["tokens"].split(), cite=r.get("cite"),
                ref=r.get("ref"),
            )
            for r in db.execute("select * from chunks order by position")
        ]
    finally:
        db.close()
    return chunks, docs


def read_vectors(folder: Path) -> dict[str, np.ndarray]:
    """Every vector of the index by the hash of its text (chunks and FAQ questions)."""
    db = _connect(folder / "index.db")
    try:
        return {r["hash"]: np.frombuffer(r["vector"], dtype="float32") for r in db.execute("select * from vectors")}
    finally:
        db.close()


def read_matrix(folder: Path) -> np.ndarray:
    """The chunk vectors, one row per chunk in index order, memory-mapped from dense.npy (read-only,
    shared by every worker through the page cache)."""
    return np.load(folder / DENSE_MATRIX, mmap_mode="r")


def read_questions(folder: Path) -> tuple[list[QuestionRow], np.ndarray]:
    """Every unit question (FAQ questions and variants, section headings) and their vectors as
    one matrix, in the same order."""
    db = _connect(folder / "index.db")
    try:
        rows = list(db.execute(
            "select q.chunk_id, q.text, q.hash, q.kind, v.vector from questions q "
            "join vectors v on v.hash = q.hash order by q.id"))
    finally:
        db.close()
    if not rows:
        return [], np.zeros((0, 0), dtype="float32")
    questions = [QuestionRow(r["chunk_id"], r["text"], r["hash"], r["kind"]) for r in rows]
    return questions, np.stack([np.frombuffer(r["vector"], dtype="float32") for r in rows])


class Bm25:
    """The BM25 index bm25s saved (bm25/), read with numpy alone: the same scores as
    `bm25s.BM25.load(folder).get_scores(tokens)` (same float32 sums in the same order; a test
    compares them), from memory-mapped arrays, without importing bm25s and scipy."""

    def __init__(self, folder: Path) -> None:
        """Open the saved index in `folder` (params, vocabulary, the CSC score arrays)."""
        folder = Path(folder)
        params = json.loads((folder / "params.index.json").read_text(encoding="utf-8"))
        if params.get("method", "lucene") not in BM25_METHODS:
            raise IndexUnavailable(f"BM25 method {params.get('method')!r} of {folder} is not supported: "
                                   "run `ohbot build-index --full`")
        self.vocab_dict: dict[str, int] = json.loads((folder / "vocab.index.json").read_text(encoding="utf-8"))
        self.data = np.load(folder / "data.csc.index.npy", mmap_mode="r")
        self.indices = np.load(folder / "indices.csc.index.npy", mmap_mode="r")
        self.indptr = np.load(folder / "indptr.csc.index.npy", mmap_mode="r")
        self.num_docs = int(params["num_docs"])
        self.dtype = np.dtype(params.get("dtype", "float32"))

    def get_scores(self, tokens: list[str]) -> np.ndarray:
        """BM25 score of every document for the query `tokens` (words outside the vocabulary are
        skipped; a repeated word counts again, as in bm25s)."""
        scores = np.zeros(self.num_docs, dtype=self.dtype)
        for token in tokens:
            token_id = self.vocab_dict.get(token)
            if token_id is None:
                continue
            start, end = int(self.indptr[token_id]), int(self.indptr[token_id + 1])
            np.add.at(scores, self.indices[start:end], self.data[start:end])
        return scores


def read_bm25(folder: Path) -> Bm25:
    """The BM25 index of an index folder."""
    return Bm25(folder / "bm25")


def read_questions_bm25(folder: Path) -> Bm25 | None:
    """The unit questions' BM25 (bm25-questions/), or None for an index without questions."""
    return Bm25(folder / QUESTIONS_BM25) if (folder / QUESTIONS_BM25).is_dir() else None
