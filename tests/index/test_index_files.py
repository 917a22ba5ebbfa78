"""The index files as serving reads them: checksums verified at load, BM25 without bm25s, vectors mapped."""
from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import numpy as np
import pytest

from bot.answering.retrieve import Retriever
from bot.errors import IndexUnavailable
from bot.index import store
from bot.index.encoder import Encoder
from bot.text.tokenize import query_tokens
from tests.helpers import REPO_ROOT

MODEL = "m3e-small"


@pytest.fixture
def index_copy(built_index: tuple, tmp_path: Path) -> Path:
    """A private copy of the session index, free to damage."""
    index_dir, _ = built_index
    copy = tmp_path / "index"
    shutil.copytree(index_dir, copy)
    return copy


def scramble(path: Path, seed: int = 11) -> None:
    """Overwrite a file with random bytes of the same size (what a bad disk or a bad copy leaves)."""
    size = path.stat().st_size
    path.write_bytes(random.Random(seed).randbytes(size))
    assert path.stat().st_size == size


def shuffle_faiss_vectors(index_dir: Path, seed: int = 11) -> None:
    """Shuffle the vectors inside dense.faiss, leaving its header and id map alone: the same size, a
    valid FAISS file, every vector now under another chunk's id (what a bad copy can leave)."""
    matrix = np.asarray(store.read_matrix(index_dir))
    path = index_dir / "dense.faiss"
    data = path.read_bytes()
    start = data.find(matrix.tobytes())
    assert start > 0
    shuffled = matrix[np.random.default_rng(seed).permutation(len(matrix))]
    path.write_bytes(data[:start] + shuffled.tobytes() + data[start + matrix.nbytes:])
    assert path.stat().st_size == len(data)


def test_a_scrambled_dense_faiss_of_the_same_size_is_refused_with_the_fix(index_copy: Path, encoder: Encoder) -> None:
    """Issue #11: a same-size scrambled dense.faiss used to load and answer with confidence 1.0."""
    import faiss

    shuffle_faiss_vectors(index_copy)
    assert faiss.read_index(str(index_copy / "dense.faiss")).ntotal == len(store.read_chunks(index_copy)[0])
    with pytest.raises(IndexUnavailable, match=r"dense\.faiss.*build-index --full"):
        Retriever(index_copy, MODEL, encoder=encoder)


@pytest.mark.parametrize("name", ["dense.npy", "bm25/data.csc.index.npy", "words.sqlite"])
def test_every_other_index_file_is_checked_too(index_copy: Path, encoder: Encoder, name: str) -> None:
    """The files serving reads directly (mapped vectors, BM25 arrays, dictionary) are checked as well."""
    scramble(index_copy / name)
    with pytest.raises(IndexUnavailable, match="build-index --full"):
        Retriever(index_copy, MODEL, encoder=encoder)


def test_a_missing_file_is_named(index_copy: Path, encoder: Encoder) -> None:
    """A file the manifest lists but the folder lacks: named in the message, with the fix."""
    (index_copy / "dense.npy").unlink()
    with pytest.raises(IndexUnavailable, match=r"dense\.npy is missing.*build-index --full"):
        Retriever(index_copy, MODEL, encoder=encoder)


def test_the_manifest_lists_a_checksum_of_every_file_but_the_database(built_index: tuple) -> None:
    """index.db holds the manifest, so it cannot hold its own checksum; every other file is listed."""
    index_dir, _ = built_index
    manifest = store.read_manifest(index_dir)
    files = sorted(p.relative_to(index_dir).as_posix() for p in index_dir.rglob("*") if p.is_file())
    assert sorted(manifest["checksums"]) == [f for f in files if f != "index.db"]
    assert manifest["checksums"]["dense.faiss"] == store.sha256_file(index_dir / "dense.faiss")


def test_bm25_scores_equal_those_of_bm25s(built_index: tuple) -> None:
    """The numpy reader gives bm25s's scores exactly, for every eval question."""
    import bm25s

    index_dir, _ = built_index
    ours = store.read_bm25(index_dir)
    theirs = bm25s.BM25.load(str(index_dir / "bm25"))
    assert ours.vocab_dict == theirs.vocab_dict
    questions = [q.get("q") or q["question"] for f in sorted((REPO_ROOT / "tests" / "eval").glob("*.jsonl"))
                 for q in map(json.loads, filter(str.strip, f.read_text(encoding="utf-8").splitlines()))]
    compared = 0
    for question in questions:
        tokens = [t for t in query_tokens(question) if t in ours.vocab_dict]
        if tokens:
            assert np.array_equal(ours.get_scores(tokens), theirs.get_scores(tokens)), question
            compared += 1
    assert compared > 200


def test_dense_matrix_is_the_faiss_index_in_chunk_order(built_index: tuple) -> None:
    """dense.npy (mapped read-only) holds the same vectors as dense.faiss, row i = chunk i."""
    import faiss

    index_dir, _ = built_index
    chunks, _ = store.read_chunks(index_dir)
    matrix = store.read_matrix(index_dir)
    dense = faiss.read_index(str(index_dir / "dense.faiss"))
    assert isinstance(matrix, np.memmap) and not matrix.flags.writeable
    assert [int(i) for i in faiss.vector_to_array(dense.id_map)] == [c.id for c in chunks]
    assert np.array_equal(np.asarray(matrix), faiss.downcast_index(dense.index).reconstruct_n(0, dense.ntotal))


def test_an_index_of_the_previous_layout_says_to_rebuild_and_its_vectors_are_reused(
        index_copy: Path, encoder: Encoder, knowledge_dir: Path) -> None:
    """Schema 3 had no checksums: serving refuses it with the fix; a build reuses its vectors."""
    import sqlite3

    from index_builder.build import build_index

    db = sqlite3.connect(str(index_copy / "index.db"))
    with db:
        db.execute("update manifest set value = '3' where key = 'schema'")
        db.execute("delete from manifest where key = 'checksums'")
    db.close()
    with pytest.raises(IndexUnavailable, match="old layout.*build-index --full"):
        Retriever(index_copy, MODEL, encoder=encoder)
    report = build_index(knowledge_dir, index_copy, MODEL, encoder=encoder)
    assert report.embedded == 0 and report.reused == report.chunks
    assert store.read_manifest(index_copy)["schema"] == store.SCHEMA_VERSION
    assert len(Retriever(index_copy, MODEL, encoder=encoder).chunks) == report.chunks
