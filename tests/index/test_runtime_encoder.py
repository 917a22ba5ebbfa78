"""The serving encoder (onnxruntime + `tokenizers`) against sentence-transformers on the same export.

The reference is sentence-transformers running the same int8 ONNX file through optimum, as ohbot
served queries before: the runtime must give the same vectors (cosine ≥ 0.999) for every text of
the knowledge base, with the pooling the model folder's configuration names.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from bot.errors import ModelUnavailable
from bot.index import store
from bot.index.encoder import QUANTIZED, Encoder, export_folder, is_complete
from index_builder.export import TorchEncoder

MODEL = "m3e-small"


@pytest.fixture(scope="module")
def export_dir(data_dir: Path, encoder: Encoder) -> Path:
    """The session's exported model folder (DATA_DIR/models/m3e-small-onnx)."""
    folder = export_folder(MODEL, data_dir / "models")
    assert is_complete(folder)
    return folder


@pytest.fixture(scope="module")
def reference(export_dir: Path) -> TorchEncoder:
    """sentence-transformers (optimum + onnxruntime) on the same int8 file."""
    from index_builder.export import load_reference_encoder

    return load_reference_encoder(MODEL, export_dir)


def min_cosine(a: np.ndarray, b: np.ndarray) -> float:
    """The smallest row-wise cosine of two matrices of unit vectors, computed from scratch."""
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return float((a * b).sum(axis=1).min())


def test_runtime_vectors_equal_sentence_transformers_on_the_whole_knowledge_base(
        built_index: tuple, encoder: Encoder, reference: TorchEncoder) -> None:
    """Every chunk and FAQ question, in one call each, as the build embeds them."""
    index_dir, _ = built_index
    chunks, _ = store.read_chunks(index_dir)
    questions = [q.get("text") for q in _question_rows(index_dir)]
    texts = [c.search_text for c in chunks] + questions
    assert len(texts) > 500
    assert isinstance(encoder, Encoder)  # the session encoder is the serving runtime, not sentence-transformers
    ours = encoder.encode(texts)
    theirs = reference.encode(texts)
    assert ours.shape == theirs.shape == (len(texts), 512)
    assert min_cosine(ours, theirs) >= 0.999
    assert np.allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)


def test_the_index_holds_the_runtime_vectors(built_index: tuple, encoder: Encoder) -> None:
    """The build embeds with the serving runtime: encoding the chunks as the build does (each text
    once, in index order) gives the stored vectors."""
    index_dir, _ = built_index
    chunks, _ = store.read_chunks(index_dir)
    texts = list(dict.fromkeys(c.search_text for c in chunks))
    fresh = dict(zip(texts, encoder.encode(texts)))
    matrix = store.read_matrix(index_dir)
    assert min_cosine(np.stack([fresh[c.search_text] for c in chunks]), np.asarray(matrix)) >= 0.99999


def test_a_texts_vector_does_not_depend_on_the_texts_encoded_with_it(encoder: Encoder) -> None:
    """A text encoded with others (a full build) gets exactly the vector it gets alone (an incremental
    build, a question): the int8 model's activation ranges are per run, so batch-mates used to shift it."""
    short = "噪声作业工人多久体检一次"
    others = ["职业病诊断需要带哪些材料？用人单位不提供职业史和职业病危害接触史怎么办？" * 4, "粉尘", "高温津贴"]
    together = encoder.encode([*others, short])
    assert np.array_equal(together[-1], encoder.encode([short])[0])
    assert np.array_equal(together[0], encoder.encode(others[:1])[0])


@pytest.mark.parametrize("mode", ["cls", "max", "mean_sqrt_len_tokens", "weightedmean", "lasttoken"])
def test_pooling_follows_the_model_folder_configuration(export_dir: Path, tmp_path: Path, mode: str) -> None:
    """Change the pooling of a copy of the export: the runtime follows the config as ST does."""
    from index_builder.export import load_reference_encoder

    folder = tmp_path / "model"
    shutil.copytree(export_dir, folder)
    config = json.loads((folder / "1_Pooling" / "config.json").read_text(encoding="utf-8"))
    config["pooling_mode"] = mode
    (folder / "1_Pooling" / "config.json").write_text(json.dumps(config), encoding="utf-8")
    texts = ["噪声多大算超标", "职业病诊断需要带哪些材料？" * 3, "体检 checkup 费用由谁承担", "粉尘"]
    ours = Encoder(MODEL, folder).encode(texts)
    theirs = load_reference_encoder(MODEL, folder).encode(texts)
    assert min_cosine(ours, theirs) >= 0.999


def test_legacy_pooling_flags_are_read(export_dir: Path, tmp_path: Path) -> None:
    """Folders saved by sentence-transformers < 5 name the mode with pooling_mode_*_tokens flags."""
    folder = tmp_path / "model"
    shutil.copytree(export_dir, folder)
    (folder / "1_Pooling" / "config.json").write_text(json.dumps(
        {"word_embedding_dimension": 512, "pooling_mode_cls_token": True, "pooling_mode_mean_tokens": False}))
    legacy = Encoder(MODEL, folder)
    assert legacy.modes == ("cls",)
    (folder / "1_Pooling" / "config.json").write_text(json.dumps({"embedding_dimension": 512, "pooling_mode": "cls"}))
    assert np.allclose(legacy.encode(["粉尘"]), Encoder(MODEL, folder).encode(["粉尘"]))


def test_a_module_the_runtime_cannot_run_is_refused_with_the_fix(export_dir: Path, tmp_path: Path) -> None:
    """A Dense layer after pooling is not run by the runtime: refused, pointing to the torch backend."""
    folder = tmp_path / "model"
    shutil.copytree(export_dir, folder)
    modules = json.loads((folder / "modules.json").read_text(encoding="utf-8"))
    modules.append({"idx": 2, "name": "2", "path": "2_Dense", "type": "sentence_transformers.models.Dense"})
    (folder / "modules.json").write_text(json.dumps(modules), encoding="utf-8")
    with pytest.raises(ModelUnavailable, match="backend torch"):
        Encoder(MODEL, folder)


def test_a_fresh_data_dir_copies_the_machine_export_instead_of_exporting(
        export_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With the machine cache holding this model's export, a new data directory gets a copy, no export."""
    from index_builder import export

    def no_export(*args: object, **kwargs: object) -> None:
        """Stands in for the export steps: reaching it fails the test."""
        raise AssertionError("exported again")

    monkeypatch.setattr(export, "_child", no_export)
    shared = tmp_path / "shared"
    source = export.resolve_model(MODEL)
    shutil.copytree(export_dir, export_folder(f"{MODEL}-{export.fingerprint(source)}", shared))
    folder = export.ensure_export(MODEL, tmp_path / "data" / "models", shared=shared)
    assert folder == export_folder(MODEL, tmp_path / "data" / "models") and is_complete(folder)
    assert (folder / QUANTIZED).read_bytes() == (export_dir / QUANTIZED).read_bytes()
    assert Encoder(MODEL, folder).encode(["粉尘"]).shape == (1, 512)


def _question_rows(index_dir: Path) -> list[dict]:
    """The question rows of an index (FAQ questions and section headings, matched question to question)."""
    import sqlite3

    db = sqlite3.connect(str(index_dir / "index.db"))
    try:
        return [{"text": t} for (t,) in db.execute("select text from questions order by id")]
    finally:
        db.close()
