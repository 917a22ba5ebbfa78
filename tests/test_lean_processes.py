"""What a process imports and prints: serving without torch, management commands without the model,
a build without library chatter. Each runs in a child process (a clean sys.modules)."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bot.index.encoder import export_folder
from tests.helpers import REPO_ROOT

BUILD_TIME_ONLY = ("torch", "sentence_transformers", "transformers", "optimum")
NOT_FOR_SERVING = (*BUILD_TIME_ONLY, "faiss", "bm25s", "scipy", "sklearn")
MODEL_LIBRARIES = ("onnxruntime", "tokenizers", "jieba", "faiss", "bm25s", *BUILD_TIME_ONLY)


def run_python(code: str, timeout: int = 300) -> subprocess.CompletedProcess:
    """Run `code` in a fresh interpreter from the repository root; fail with its stderr if it fails."""
    env = {k: v for k, v in os.environ.items() if k not in ("OHBOT_SALT", "OHBOT_DATA_DIR")}
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True,
                            env=env, timeout=timeout)
    assert result.returncode == 0, result.stderr
    return result


def loaded(names: tuple[str, ...]) -> str:
    """Python that prints which of `names` are in sys.modules, as LOADED [...]."""
    return f"print('LOADED', sorted(m for m in {names!r} if m in sys.modules))\n"


def test_answering_questions_imports_neither_torch_nor_sentence_transformers(built_index: tuple, data_dir: Path) -> None:
    """ask, search and a dialogue answer in one process: no build-time or FAISS/BM25 library loaded."""
    index_dir, _ = built_index
    code = (
        "import sys, io, contextlib\n"
        "from bot.cli import main\n"
        "from bot.config import load_settings\n"
        "from bot.dialogue.core import open_dialogue\n"
        "from bot.dialogue.types import Message\n"
        "out = io.StringIO()\n"
        "with contextlib.redirect_stdout(out):\n"
        f"    assert main(['--data-dir', {str(data_dir)!r}, 'ask', '噪声多大算超标']) == 0\n"
        f"    assert main(['--data-dir', {str(data_dir)!r}, 'search', '粉尘', '--json']) == 0\n"
        f"dialogue = open_dialogue(load_settings({str(data_dir)!r}))\n"
        "replies = dialogue.handle('u1', Message(text='体检费谁出'))\n"
        "assert replies and '85' in out.getvalue()\n"
        + loaded(NOT_FOR_SERVING)
    )
    result = run_python(code)
    assert "LOADED []" in result.stdout, result.stdout


@pytest.mark.parametrize("argv", [
    ["report", "--campaign", "C1", "--json"], ["campaign", "list"], ["bank", "list", "--json"], ["gaps"],
    ["responses", "export", "--campaign", "C1"],
], ids=lambda a: " ".join(a[:2]))
def test_management_commands_load_no_model(tmp_path: Path, argv: list[str]) -> None:
    """report, campaign, responses, bank and gaps import no model library and no tokenizer."""
    data = tmp_path / "data"
    code = (
        "import sys, io, contextlib\n"
        "from bot.cli import main\n"
        f"main(['--data-dir', {str(data)!r}, 'campaign', 'create', 'C1', '--start', '2025-01-01', '--end', '2025-12-31'])\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        f"    code = main(['--data-dir', {str(data)!r}, *{argv!r}])\n"
        "assert code == 0, code\n"
        + loaded(MODEL_LIBRARIES)
    )
    result = run_python(code)
    assert "LOADED []" in result.stdout, result.stdout


def test_a_build_prints_one_summary_line_and_nothing_on_stderr(data_dir: Path, encoder: object, tmp_path: Path) -> None:
    """Not on a terminal, `ohbot build-index` prints its one-line summary: no progress bar, no DEBUG
    line, no library warning."""
    knowledge = tmp_path / "knowledge"
    (knowledge / "materials").mkdir(parents=True)
    (knowledge / "materials" / "a.md").write_text(
        "---\nid: doc-a\ntitle: 粉尘防护\nissuer: 测试\ndate: 2024-01-01\ndoc_type: material\n---\n"
        "# 粉尘防护\n\n## 湿式作业\n\n湿式作业能减少粉尘。佩戴防尘口罩。\n", encoding="utf-8")
    data = tmp_path / "data"
    shutil.copytree(export_folder("m3e-small", data_dir / "models"), export_folder("m3e-small", data / "models"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("OHBOT_")}
    result = subprocess.run(
        [sys.executable, "-m", "bot.cli", "--data-dir", str(data), "--knowledge-dir", str(knowledge), "build-index"],
        cwd=REPO_ROOT, capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    lines = result.stdout.splitlines()
    assert len(lines) == 1 and lines[0].startswith("index built: 1 documents") and "0 errors" in lines[0]
    assert (data / "index" / "words.sqlite").exists()


def test_loading_the_encoder_for_a_build_imports_no_torch_once_exported(data_dir: Path, encoder: object) -> None:
    """Loading the encoder for a build (the export exists) imports no torch in the build process."""
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from bot.index.encoder import load_encoder\n"
        f"e = load_encoder('m3e-small', 'onnx', cache_dir=Path({str(data_dir / 'models')!r}))\n"
        "assert e.encode(['粉尘']).shape == (1, 512)\n"
        + loaded(BUILD_TIME_ONLY)
    )
    assert "LOADED []" in run_python(code).stdout


def test_the_cli_module_is_importable_without_the_model() -> None:
    """`import bot.cli` (what every command starts with) pulls in no retrieval or model code."""
    code = "import sys\nimport bot.cli\n" + loaded((*MODEL_LIBRARIES, "numpy", "bot.answering.retrieve"))
    assert "LOADED []" in run_python(code).stdout
