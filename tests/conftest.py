"""Shared pytest fixtures: the embedding model and the index of the real knowledge/ folder.

Loading the model and embedding the whole knowledge base are the slow parts of the suite
(about 10–15 s and 30–60 s on a laptop CPU), so both happen at most once per test session and
only when a test asks for them. Every fixture here is session-scoped and must be treated as
READ-ONLY: a test that needs to change an index copies it first (``shutil.copytree``) or builds
its own small one into ``tmp_path`` with the shared ``encoder``.

Fixtures
--------
``knowledge_dir``   Path of the repository's real ``knowledge/`` folder.
``data_dir``        A session data directory laid out like production: ``DATA_DIR/models`` (the
                    exported ONNX model) and ``DATA_DIR/index`` (the index, once ``built_index``
                    has run). Point ``--data-dir`` / ``OHBOT_DATA_DIR`` here to drive ``ohbot`` commands
                    against the test index; the CLI then reuses the already exported model.
``encoder``         ``bot.index.encoder.Encoder`` for m3e-small (ONNX int8), loaded once. Pass it
                    as ``encoder=`` to ``build_index`` / ``Retriever`` so nothing loads it again.
``built_index``     ``(index_dir, report)``: ``build_index`` of the real ``knowledge/`` into
                    ``data_dir / "index"`` with ``encoder``; ``report`` is the ``BuildReport``.
``retriever``       ``bot.answering.retrieve.Retriever`` on ``built_index`` (reuses ``encoder``).

Example::

    def test_answers_noise(retriever):
        passages = retriever.search("噪声多大算超标", top_k=5)
        assert any("85" in p.chunk.text for p in passages)
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.helpers import REPO_ROOT

pytest_plugins = ["tests.db_fixtures"]  # db_url, pg_url, sqlite_url, state_url, engine_for (both backends)

MODEL = "m3e-small"
BACKEND = "onnx"


@pytest.fixture(scope="session", autouse=True)
def _private_config_home(tmp_path_factory: pytest.TempPathFactory):
    """The pseudonym key file's default place (~/.config/ohbot/pseudonym.key) moves to a session folder
    (XDG_CONFIG_HOME, inherited by the `ohbot` processes tests start): no test reads or writes the
    machine user's own key."""
    before = os.environ.get("XDG_CONFIG_HOME")
    os.environ["XDG_CONFIG_HOME"] = str(tmp_path_factory.mktemp("config-home"))
    yield
    if before is None:
        os.environ.pop("XDG_CONFIG_HOME", None)
    else:
        os.environ["XDG_CONFIG_HOME"] = before


@pytest.fixture(scope="session")
def knowledge_dir() -> Path:
    """The repository's real knowledge/ folder (never write into it)."""
    return REPO_ROOT / "knowledge"


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A session data directory: DATA_DIR/models (model export) and DATA_DIR/index (the index)."""
    return tmp_path_factory.mktemp("ohbot-data")


@pytest.fixture(scope="session")
def encoder(data_dir: Path):
    """The embedding model (m3e-small, int8 ONNX), exported into DATA_DIR/models once per session."""
    from bot.index.encoder import load_encoder

    try:
        return load_encoder(MODEL, BACKEND, cache_dir=data_dir / "models")
    except RuntimeError as exc:  # the model package is not installed: say why instead of erroring
        pytest.skip(f"embedding model {MODEL!r} unavailable: {exc}")


@pytest.fixture(scope="session")
def built_index(knowledge_dir: Path, data_dir: Path, encoder):
    """(index_dir, BuildReport) of the real knowledge/ folder, built once per session."""
    from index_builder.build import build_index

    index_dir = data_dir / "index"
    report = build_index(knowledge_dir, index_dir, MODEL, BACKEND, encoder=encoder, cache_dir=data_dir / "models")
    return index_dir, report


@pytest.fixture(scope="session")
def retriever(built_index, encoder):
    """A Retriever over the session index, sharing the session encoder."""
    from bot.answering.retrieve import Retriever

    index_dir, _ = built_index
    return Retriever(index_dir, MODEL, BACKEND, encoder=encoder)


SLOW_FIXTURES = {"encoder", "built_index", "retriever"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test that loads the model or the real index `slow` (`pytest -m "not slow"` skips them)."""
    for item in items:
        if SLOW_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)
