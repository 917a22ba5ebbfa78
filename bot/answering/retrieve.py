"""Hybrid retrieval over the built index: BM25 (jieba tokens) and dense (FAISS), fused by
weighted reciprocal-rank fusion (BM25-heavy, by measurement: README "Indexing"), with optional
filters by region, document type and audience.

One `Retriever` is loaded per process (the only process-wide state the bot keeps); a serving process
holds it through a `LiveIndex`, which swaps in a newer build of the index without a restart.
"""
from __future__ import annotations

import logging
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import wraps
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar

import numpy as np

from bot.answering.query import Query
from bot.index import store
from bot.index.encoder import Encoder, load_encoder
from bot.text import dict_dir, reading, use_dictionaries
from bot.text.normalize import normalize
from bot.text.regions import is_local, names_region
from bot.text.tokenize import query_tokens
from bot.text.tokenize import use_cache as use_tokenizer_cache
from bot.text.tokenize import warm_up as warm_up_tokenizer

RRF_K = 60  # the usual constant of reciprocal-rank fusion: rank 1 → 1/61
# BM25's share of the fused score (dense gets the rest). Measured with `ohbot eval retrieval`
# (README "Indexing"): the even 50/50 fusion threw away BM25's lead where the dense model is weak
# (policy-plan questions, held-out question sets: BM25 alone MRR@10 0.92, 50/50 fusion 0.80);
# On our own sets (README "Indexing", session 4) BM25 alone was the worst and 0.8 lost to 0.5–0.7
# (real-b 0.655 vs 0.678); 0.7 keeps BM25 the larger share and is within 0.01 of the best on each.
BM25_WEIGHT = 0.7
# Questions about a policy plan (a region named, or a plan's words): BM25 finds the plan's own
# terms and figures (policy-plan dev questions: BM25 1.00, dense 0.78); dense breaks its ties.
BM25_WEIGHT_PLAN = 0.95
PLAN_WORDS = ("规划", "十四五", "十三五", "指标", "专栏", "工作要点", "主要任务", "目标", "达到", "覆盖率", "知晓率", "申报率", "监测率")
CANDIDATES = 50  # how deep each ranking is read before fusion
QUERY_CACHE = 4096  # query vectors kept (2 KB each)
CHECK_SECONDS = 2.0  # how often a serving process looks for a newer index (one stat)

log = logging.getLogger(__name__)
P = ParamSpec("P")
R = TypeVar("R")


def in_its_dictionaries(function: Callable[Concatenate[Any, P], R]) -> Callable[Concatenate[Any, P], R]:
    """`function(retriever, …)` (or a Retriever method) run with the dictionaries of that retriever's
    index version (`Retriever.dict_dir`): a question is tokenised with the words its index was built
    with, whichever version other threads of the process are answering from."""
    @wraps(function)
    def wrapper(retriever: Any, /, *args: P.args, **kwargs: P.kwargs) -> R:
        with reading(retriever.dict_dir):
            return function(retriever, *args, **kwargs)
    return wrapper


@dataclass
class Passage:
    chunk: store.ChunkRow
    doc: dict
    score: float
    bm25: float = 0.0  # raw BM25 score
    dense: float = 0.0  # cosine similarity
    ranks: dict[str, int] = field(default_factory=dict)  # method → rank (1-based)

    def as_json(self) -> dict:
        return {
            "text": self.chunk.text, "title": self.doc.get("title"), "section": " › ".join(self.chunk.section),
            "date": self.doc.get("date"), "score": round(self.score, 6), "doc_id": self.chunk.doc_id,
        }


_NOT_WORD = re.compile(r"[\W_]+")


def matvec(matrix: np.ndarray, vector: np.ndarray) -> np.ndarray:
    """matrix @ vector without BLAS: a few hundred rows take ~0.05 ms in einsum's own loop, while
    multi-threaded BLAS waits for its threads to be scheduled (measured ~7 ms per question on a
    busy two-core machine, README "Answering")."""
    return np.einsum("ij,j->i", matrix, vector)


def is_plan_question(text: str, regions: list[str | None]) -> bool:
    """A question about a policy plan: it names one of the plans' regions or uses a plan's words."""
    norm = normalize(text)
    return any(w in norm for w in PLAN_WORDS) or any(names_region(norm, r) for r in regions if is_local(r))


def bm25_weight(text: str, regions: list[str | None]) -> float:
    """BM25's share in the fused ranking of `search` for this question (see BM25_WEIGHT)."""
    return BM25_WEIGHT_PLAN if is_plan_question(text, regions) else BM25_WEIGHT


def question_key(text: str) -> str:
    """A question's exact-match key: normalised, without punctuation or spaces."""
    return _NOT_WORD.sub("", normalize(text))


@dataclass
class UnitScores:
    """Scores of every unit for one question, in chunk order."""
    bm25: np.ndarray
    dense: np.ndarray
    q_dense: np.ndarray  # best cosine among the unit's questions; -1 for units without one
    q_bm25: np.ndarray  # best BM25 among the unit's questions; 0 for units without one


@dataclass
class Filters:
    region: str | None = None  # substring of the document's region, e.g. "柳南区"
    doc_type: str | None = None
    audience: str | None = None  # documents for this audience or for "all"

    def allows(self, doc: dict) -> bool:
        if self.region and self.region not in (doc.get("region") or "") and doc.get("region") != "全国":
            return False
        if self.doc_type and doc.get("doc_type") != self.doc_type:
            return False
        if self.audience and doc.get("audience") not in (self.audience, "all", None):
            return False
        return True


class Retriever:
    """The loaded index: chunks, BM25, FAISS and the query encoder."""

    def __init__(self, index_dir: Path, model: str, backend: str = "onnx",
                 encoder: Encoder | None = None, cache_dir: Path | None = None,
                 previous: Retriever | None = None) -> None:
        """Load the index `index_dir` leads to now (the link resolved once: every file comes from one
        version). `previous`: the index this one replaces, whose encoder and query vectors it reuses."""
        index_dir = Path(index_dir).resolve()  # a version's files never change: the link moves
        manifest = store.read_manifest(index_dir)
        self.signature = store.index_signature(index_dir)
        store.check_model(manifest, model, index_dir)
        store.verify_files(index_dir, manifest)
        try:
            self.chunks, self.docs = store.read_chunks(index_dir)
            # the vectors in chunk order, memory-mapped: scoring every chunk is one matrix product
            # (~0.1 ms for 1,000 chunks), where FAISS with k = all chunks costs ~15 ms of heap overhead
            self.matrix = store.read_matrix(index_dir)
            self.bm25 = store.read_bm25(index_dir)
        except Exception as exc:
            raise store.IndexUnavailable(
                f"the index at {index_dir} is damaged ({type(exc).__name__}: {exc}): run `ohbot build-index --full`"
            ) from exc
        if self.matrix.shape != (len(self.chunks), int(manifest["dimension"])):
            raise store.IndexUnavailable(f"the index at {index_dir} is inconsistent: run `ohbot build-index --full`")
        self.index_dir = index_dir
        self.manifest = manifest
        # the dictionaries this version was built with (its copy of knowledge/dict); an index from
        # before versions held them has none: the process's (knowledge/dict), as it was then
        own = index_dir / store.DICTIONARIES
        self.dict_dir = own if own.is_dir() else dict_dir()
        self.position = {c.id: i for i, c in enumerate(self.chunks)}
        self.by_faq = {c.faq_id: c for c in self.chunks if c.faq_id}
        if encoder is None and previous is not None:
            encoder = previous.encoder
        self.encoder: Encoder = encoder or load_encoder(model, backend, cache_dir, threads=1)
        if self.encoder.dimension != int(manifest["dimension"]):
            raise store.IndexUnavailable(
                f"model {model!r} gives {self.encoder.dimension}-d vectors, the index has {manifest['dimension']}-d: "
                "run `ohbot build-index --full`"
            )
        self.vocab = set(self.bm25.vocab_dict)
        self.questions, self.question_matrix = store.read_questions(index_dir)
        self.question_chunks = [q.chunk_id for q in self.questions]
        self.question_unit = np.array([self.position[q.chunk_id] for q in self.questions], dtype="int64")
        # questions grouped by unit, so that a unit's best question is one reduceat (ufunc.at is slow)
        self._q_order = np.argsort(self.question_unit, kind="stable")
        grouped = self.question_unit[self._q_order]
        self._q_starts = np.flatnonzero(np.r_[True, grouped[1:] != grouped[:-1]]) if len(grouped) else grouped
        self._q_units = grouped[self._q_starts] if len(grouped) else grouped
        self.question_bm25 = store.read_questions_bm25(index_dir)  # written at build time
        self.question_vocab = set(self.question_bm25.vocab_dict) if self.question_bm25 is not None else set()
        # a card's question or variant typed exactly (punctuation aside) is answered by that card:
        # a reviewed card added for a recurring question wins over everything retrieved
        self.exact_cards = {question_key(q.text): self.position[q.chunk_id] for q in self.questions if q.kind == "faq"}
        # each unit's questions in one string (the aspect match looks for words in them: aspect.py)
        self._unit_questions: dict[int, str] = {}
        for q in self.questions:
            i = self.position[q.chunk_id]
            self._unit_questions[i] = f"{self._unit_questions[i]} {q.text}" if i in self._unit_questions else q.text
        self.regions = [d.get("region") for d in self.docs.values()]
        self.local = np.array([is_local(self.docs.get(c.doc_id, {}).get("region")) for c in self.chunks], dtype=bool)
        self._sections: dict[tuple, list[store.ChunkRow]] = {}
        for c in self.chunks:
            self._sections.setdefault((c.doc_id, tuple(c.section)), []).append(c)
        doc_ids = np.array([c.doc_id for c in self.chunks], dtype=object)
        self._doc_masks = {d: doc_ids == d for d in self.docs}
        audiences = np.array([self.docs.get(c.doc_id, {}).get("audience") for c in self.chunks], dtype=object)
        self._audience_masks = {r: (audiences == r).astype("float32") for r in ("worker", "employer", "bureau")}
        self.query_cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self.cache_lock = threading.Lock()
        if previous is not None and previous.encoder is self.encoder:  # same model: same vectors
            self.query_cache, self.cache_lock = previous.query_cache, previous.cache_lock
        # last, once the index passed every check: the tokenizer of this version's dictionary folder
        # reads its dictionary from this version's file (another version's tokenizer is not touched)
        use_tokenizer_cache(index_dir / store.WORDS, self.dict_dir)
        self.warm_up()

    @in_its_dictionaries
    def warm_up(self) -> None:
        """Make the tokenizer and run the model once now, at start (each under its lock), so that
        the first requests, however many arrive at once, find both ready."""
        warm_up_tokenizer()
        self.encoder.warm_up()

    @property
    def dense_index(self) -> Any:
        """The FAISS index of dense.faiss (for FAISS tools; searching uses `matrix`), loaded on first use."""
        if getattr(self, "_dense_index", None) is None:
            import faiss

            self._dense_index = faiss.read_index(str(self.index_dir / "dense.faiss"))
        return self._dense_index

    def _mask(self, filters: Filters | None) -> np.ndarray | None:
        if filters is None or not (filters.region or filters.doc_type or filters.audience):
            return None
        return np.array([filters.allows(self.docs.get(c.doc_id, {})) for c in self.chunks], dtype=bool)

    @in_its_dictionaries
    def bm25_scores(self, query: str) -> np.ndarray:
        toks = [t for t in query_tokens(query) if t in self.vocab]
        if not toks:
            return np.zeros(len(self.chunks), dtype="float32")
        return np.asarray(self.bm25.get_scores(toks), dtype="float32")

    def unit_scores(self, query: Query) -> UnitScores:
        """Every unit (chunk) scored four ways for one analysed question: BM25 and dense over the
        unit's text, and the best dense and BM25 match among the questions the unit answers (a
        card's questions and variants, a section's heading)."""
        n = len(self.chunks)
        toks = [t for t in query.expanded if t in self.vocab]
        bm25 = np.asarray(self.bm25.get_scores(toks), dtype="float32") if toks else np.zeros(n, dtype="float32")
        dense = matvec(self.matrix, query.vector)
        q_dense = np.full(n, -1.0, dtype="float32")
        q_bm25 = np.zeros(n, dtype="float32")
        if self.questions:
            q_dense[self._q_units] = self._best_per_unit(matvec(self.question_matrix, query.vector))
            qt = [t for t in query.expanded if t in self.question_vocab]
            if qt and self.question_bm25 is not None:
                q_bm25[self._q_units] = self._best_per_unit(
                    np.asarray(self.question_bm25.get_scores(qt), dtype="float32"))
        return UnitScores(bm25=bm25, dense=dense, q_dense=q_dense, q_bm25=q_bm25)

    def idf(self, token: str) -> float:
        """The BM25 inverse document frequency of a token over the units (0 for an unknown word)."""
        i = self.bm25.vocab_dict.get(token)
        if i is None:
            return 0.0
        df = int(self.bm25.indptr[i + 1]) - int(self.bm25.indptr[i])
        return float(np.log(1.0 + (self.bm25.num_docs - df + 0.5) / (df + 0.5)))

    def _best_per_unit(self, per_question: np.ndarray) -> np.ndarray:
        """The best score among each unit's questions, for the units that have questions."""
        return np.maximum.reduceat(per_question[self._q_order], self._q_starts)

    def section_chunks(self, chunk: store.ChunkRow) -> list[store.ChunkRow]:
        """Every chunk of the section `chunk` belongs to (same document, same heading path), in order."""
        return sorted(self._sections.get((chunk.doc_id, tuple(chunk.section)), [chunk]), key=lambda c: c.ordinal)

    def ref_section(self, chunk: store.ChunkRow) -> list[store.ChunkRow]:
        """The material section a card restates (its ref "DOC_ID#text in one heading"), in order;
        empty when the card has no such ref or it names no section of the index."""
        doc_id, sep, heading = (chunk.ref or "").partition("#")
        if not sep or not heading:
            return []
        first = next((c for c in self.chunks if c.doc_id == doc_id and c.section and heading in c.section[-1]
                      and c.kind != "row"), None)
        return self.section_chunks(first) if first is not None else []

    def unit_questions(self, position: int) -> str:
        """The questions a unit answers (a card's question and variants, a section's heading), in one
        normalised string; a unit without any: its heading path."""
        found = self._unit_questions.get(position)
        return found if found is not None else normalize(" ".join(self.chunks[position].section))

    def doc_mask(self, doc_id: str) -> np.ndarray:
        """True for the units of one document."""
        return self._doc_masks.get(doc_id, np.zeros(len(self.chunks), dtype=bool))

    def audience_mask(self, role: str) -> np.ndarray:
        """1.0 for units of documents written for this audience, else 0.0."""
        return self._audience_masks.get(role, np.zeros(len(self.chunks), dtype="float32"))

    def encode(self, normalized: str) -> np.ndarray:
        """The unit vector of an already normalised text (cached)."""
        return self.query_vector(normalized)

    @in_its_dictionaries
    def dense_scores(self, query: str) -> np.ndarray:
        return matvec(self.matrix, self.query_vector(normalize(query)))

    @in_its_dictionaries
    def closest_card(self, query: str) -> tuple[store.ChunkRow | None, float]:
        """The FAQ card with a question (or variant) most similar to the query, and that cosine."""
        if not self.question_chunks:
            return None, 0.0
        sims = matvec(self.question_matrix, self.query_vector(normalize(query)))
        best = int(np.argmax(sims))
        return self.chunks[self.position[self.question_chunks[best]]], float(sims[best])

    def query_vector(self, normalized: str) -> np.ndarray:
        """The query's vector; the most frequent questions are asked again and again, so the
        last QUERY_CACHE vectors are kept (encoding is ~80 % of a question's CPU time)."""
        with self.cache_lock:
            vector = self.query_cache.get(normalized)
            if vector is not None:
                self.query_cache.move_to_end(normalized)
                return vector
        vector = self.encoder.encode([normalized])[0]
        with self.cache_lock:
            self.query_cache[normalized] = vector
            if len(self.query_cache) > QUERY_CACHE:
                self.query_cache.popitem(last=False)
        return vector

    def search(self, query: str, top_k: int = 5, filters: Filters | None = None,
               method: str = "hybrid") -> list[Passage]:
        """The top passages for `query` by "hybrid" (weighted RRF of both), "bm25" or "dense"."""
        return self.search_scored(query, top_k, filters, method)[0]

    @in_its_dictionaries
    def search_scored(self, query: str, top_k: int = 5, filters: Filters | None = None,
                      method: str = "hybrid") -> tuple[list[Passage], float, float]:
        """The top passages, plus the best dense cosine and best BM25 score over the whole index
        (what the answerer's confidence is computed from)."""
        if not normalize(query) or not self.chunks:
            return [], 0.0, 0.0
        mask = self._mask(filters)
        bm25 = self.bm25_scores(query) if method in ("hybrid", "bm25") else None
        dense = self.dense_scores(query) if method in ("hybrid", "dense") else None
        rankings: dict[str, list[int]] = {}
        for name, scores in (("bm25", bm25), ("dense", dense)):
            if scores is None:
                continue
            scores = scores.copy()
            if mask is not None:
                scores[~mask] = -np.inf
            top = np.argsort(-scores, kind="stable")[:CANDIDATES]
            valid = [int(i) for i in top if np.isfinite(scores[i]) and (name != "bm25" or scores[i] > 0)]
            rankings[name] = valid
        fused: dict[int, float] = {}
        ranks: dict[int, dict[str, int]] = {}
        w = bm25_weight(query, self.regions) if len(rankings) == 2 else 1.0
        share = {"bm25": w, "dense": 1.0 - w} if len(rankings) == 2 else {name: 1.0 for name in rankings}
        for name, order in rankings.items():
            for rank, i in enumerate(order, 1):
                fused[i] = fused.get(i, 0.0) + share[name] / (RRF_K + rank)
                ranks.setdefault(i, {})[name] = rank
        best = sorted(fused, key=lambda i: -fused[i])[:top_k]
        dense_best = float(dense.max()) if dense is not None else 0.0
        bm25_best = float(bm25.max()) if bm25 is not None else 0.0
        return [
            Passage(
                chunk=self.chunks[i], doc=self.docs.get(self.chunks[i].doc_id, {}), score=fused[i],
                bm25=float(bm25[i]) if bm25 is not None else 0.0,
                dense=float(dense[i]) if dense is not None else 0.0, ranks=ranks[i],
            )
            for i in best
        ], dense_best, bm25_best


class LiveIndex:
    """The index a serving process answers from, replaced by a newer build without a restart.

    `current` is read once per question, so a question in flight finishes on the index it started
    with. At most every `check_seconds` a reader also stats the index (`store.index_signature`: the
    link DATA_DIR/index that `ohbot build-index` replaces atomically); when it leads to another
    version, a background thread loads that one (sharing the model and the query vectors), runs
    `warm` on it, and only then swaps the reference. An index that fails to load (damaged, another
    model, inconsistent) is refused with one log line and not tried again until the link changes;
    the old one keeps serving. The old index is freed once the last question using it is done."""

    def __init__(self, retriever: Retriever, index_dir: Path, model: str, backend: str = "onnx",
                 cache_dir: Path | None = None, check_seconds: float = CHECK_SECONDS,
                 warm: Callable[[Retriever], Any] | None = None) -> None:
        self._current = retriever
        self.index_dir = Path(index_dir)
        self.model, self.backend, self.cache_dir = model, backend, cache_dir
        self.check_seconds = check_seconds
        self.warm = warm
        self._lock = threading.Lock()
        self._next_check = time.monotonic() + check_seconds
        self._refused: tuple[int, int, int, int] | None = None
        self.loading: threading.Thread | None = None  # the background load under way, if any

    @property
    def current(self) -> Retriever:
        """The index to answer this question from (looking for a newer one when it is time)."""
        if time.monotonic() >= self._next_check:
            self.check()
        return self._current

    def check(self) -> bool:
        """Look for a newer index now; True when a background load of one was started. Never blocks
        a reader: a check already under way (or a load) makes this one return at once."""
        if not self._lock.acquire(blocking=False):
            return False
        try:
            self._next_check = time.monotonic() + self.check_seconds
            if self.loading is not None:
                return False
            try:
                signature = store.index_signature(self.index_dir)
            except OSError:  # no index there right now (being moved, removed): keep serving this one
                return False
            if signature in (self._current.signature, self._refused):
                return False
            self.loading = threading.Thread(target=self._load, name="index-swap", daemon=True)
            self.loading.start()
            return True
        finally:
            self._lock.release()

    def join(self, timeout: float | None = None) -> None:
        """Wait until the background load started by `check` (if any) has swapped or refused its index.
        A load may finish before its `check` returns, so read the thread once rather than assert on it."""
        thread = self.loading
        if thread is not None:
            thread.join(timeout)

    def _load(self) -> None:
        """Load the index the link leads to now and swap it in, or refuse it (background thread)."""
        old = self._current
        folder = self.index_dir.resolve()
        try:
            new = Retriever(folder, self.model, self.backend, cache_dir=self.cache_dir, previous=old)
            if self.warm is not None:
                self.warm(new)
        except Exception as exc:
            try:
                self._refused = store.index_signature(folder)
            except OSError:
                pass
            log.warning("new index at %s refused, still answering from %s: %s: %s",
                        folder, old.index_dir, type(exc).__name__, exc)
        else:
            self._current = new  # one reference assignment: readers get the old or the new index
            log.info("index swapped in without a restart: %s (built %s, %d chunks)",
                     folder, new.manifest.get("built_at"), len(new.chunks))
        finally:  # this thread's reference to the old index ends here: the last question using it frees it
            self.loading = None


def open_retriever(settings, build_if_missing: bool = False) -> Retriever:
    """The index of this data directory, built first when it does not exist and that is allowed."""
    if build_if_missing and not (settings.index_dir / "index.db").exists():
        import sys

        from index_builder.build import build_index

        print("正在建立知识库索引（首次运行，约需半分钟）…", file=sys.stderr)
        report = build_index(settings.knowledge_dir, settings.index_dir, settings.model, settings.backend,
                             cache_dir=settings.models_dir, progress=sys.stderr.isatty())
        print("\n".join([report.summary(), *(f"error: {e}" for e in report.errors)]), file=sys.stderr)
    use_dictionaries(settings.knowledge_dir / "dict")
    return Retriever(settings.index_dir, settings.model, settings.backend, cache_dir=settings.models_dir)
