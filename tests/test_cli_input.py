"""Bad input to the real `ohbot chat` and `ohbot ask --json -` processes (issue #11): invalid UTF-8,
digits that are not decimal, over-long and failing lines never end the program or the batch."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot.dialogue.core import MAX_QUESTION_CHARS
from tests.helpers import REPO_ROOT, private_data_dir

OHBOT = Path(sys.executable).parent / "ohbot"


@pytest.fixture(scope="module")
def private_data(built_index, data_dir, tmp_path_factory) -> Path:
    """A data directory of our own (chat writes ohbot.db): the session index copied, the model linked."""
    return private_data_dir(built_index[0], data_dir, tmp_path_factory.mktemp("cli-input"))


def ohbot(data: Path, *args: str, stdin: bytes, locale: str = "C.UTF-8") -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OHBOT_", "TELEGRAM_", "LC_", "PYTHONIO"))}
    env.update(LC_ALL=locale, LANG=locale, PYTHONUTF8="0")
    return subprocess.run([str(OHBOT), "--data-dir", str(data), *args], input=stdin, capture_output=True,
                          cwd=REPO_ROOT, env=env, timeout=300)


@pytest.mark.parametrize("locale", ["C.UTF-8", "C"])
def test_chat_survives_invalid_utf8_and_digits_that_are_not_decimal(private_data, locale):
    typed = "\n".join(["1", "/region", "²", "𐩀", "/region", "\U00010a40"]).encode() + b"\n\xff\xfe\xc3(\n/quit\n"
    done = ohbot(private_data, "chat", stdin=typed, locale=locale)
    out = done.stdout.decode("utf-8", errors="replace")
    assert done.returncode == 0, done.stderr.decode(errors="replace")[-2000:]
    assert "Traceback" not in done.stderr.decode(errors="replace")
    assert out.count("> ") >= 7  # every line got its turn, up to /quit


def test_ask_json_batch_gives_one_object_per_line_always(private_data):
    long_question = "职业病" * (MAX_QUESTION_CHARS // 3 + 1)
    lines = ["体检费要我自己出吗？", "", long_question, "\udcff坏字节", "噪声多大算超标"]
    stdin = "\n".join(lines[:3]).encode() + b"\n\xff\xfe\xe5\x9d\x8f\xe5\xad\x97\xe8\x8a\x82\n" + lines[4].encode() + b"\n"
    done = ohbot(private_data, "ask", "--json", "-", stdin=stdin)
    assert done.returncode == 0, done.stderr.decode(errors="replace")[-2000:]
    objects = [json.loads(line) for line in done.stdout.decode().splitlines()]
    assert len(objects) == len(lines)
    assert objects[0]["answer"] and "error" not in objects[0]
    assert objects[1] == {"question": "", "error": "empty question"}
    assert objects[2]["question"] == long_question and "太长" in objects[2]["error"]
    assert "answer" not in objects[2]  # not an answer to its first 500 characters
    assert objects[3]["question"].endswith("坏字节") and "answer" in objects[3]
    assert objects[4]["question"] == lines[4] and objects[4]["answer"]


def test_ask_refuses_a_long_question_as_the_dialogue_does(private_data):
    done = ohbot(private_data, "ask", "职" * (MAX_QUESTION_CHARS + 1), stdin=b"")
    assert done.returncode == 1
    assert f"问题太长了（{MAX_QUESTION_CHARS + 1} 字）" in done.stdout.decode()
