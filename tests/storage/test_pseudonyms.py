"""Issue #11, finding 5: pseudonyms cannot be reversed from the data directory.

The adversarial pass read the salt from DATA_DIR/salt and brute-forced sha256(salt:telegram:id) over
the small id space in 3 s. Now the pseudonym is HMAC-SHA256 with a key kept outside the data
directory (OHBOT_PSEUDONYM_KEY or a 0600 key file), an old installation keeps its users' pseudonyms
(its salt moves out of the data directory), and a key that is not the directory's is refused.
"""
from __future__ import annotations

import hashlib
import hmac
from pathlib import Path

import pytest

from bot.config import load_settings
from bot.errors import ConfigError
from bot.storage.state import State, User, open_state

IDS = range(5000)  # the attack's id space (small, as Telegram ids of one region's first users are)


def settings_for(data: Path, key_file: Path, **env: str):
    return load_settings(str(data), env={"OHBOT_PSEUDONYM_KEY_FILE": str(key_file), **env})


def brute_force(data: Path, pseudonym: str) -> int | None:
    """Every file of the data directory taken as the salt or key, every id tried: the id, or None."""
    candidates = [p.read_bytes().strip() for p in data.rglob("*") if p.is_file() and p.stat().st_size < 4096]
    for secret in candidates:
        text = secret.decode("utf-8", "replace")
        for n in IDS:
            if hashlib.sha256(f"{text}:telegram:{n}".encode()).hexdigest()[:32] == pseudonym:
                return n
            if hmac.new(secret, f"telegram:{n}".encode(), hashlib.sha256).hexdigest()[:32] == pseudonym:
                return n
    return None


def test_the_data_directory_alone_does_not_reverse_a_pseudonym(tmp_path):
    data, key_file = tmp_path / "data", tmp_path / "config" / "ohbot" / "pseudonym.key"
    state = open_state(settings_for(data, key_file))
    pseudonym = state.user_key("telegram", 4242)
    state.save_user(User(key=pseudonym, profile={"region": "柳南区"}))
    state.close()
    assert brute_force(data, pseudonym) is None
    key = key_file.read_text(encoding="utf-8").strip()
    assert key_file.stat().st_mode & 0o777 == 0o600 and len(key) >= 32
    assert pseudonym == hmac.new(key.encode(), b"telegram:4242", hashlib.sha256).hexdigest()[:32]
    assert not (data / "salt").exists()


def test_the_key_from_the_environment_and_enterprise_codes_use_the_same_function(tmp_path):
    key = "k" * 40
    state = open_state(settings_for(tmp_path / "data", tmp_path / "unused.key", OHBOT_PSEUDONYM_KEY=key))
    assert not (tmp_path / "unused.key").exists()
    from bot.awareness.responses import enterprise_key

    assert enterprise_key(state, "ENT-7") == hmac.new(key.encode(), b"enterprise:ENT-7",
                                                      hashlib.sha256).hexdigest()[:32]
    with pytest.raises(ConfigError, match="at least 16"):
        open_state(settings_for(tmp_path / "data", tmp_path / "unused.key", OHBOT_PSEUDONYM_KEY="short"))


def test_an_old_installation_keeps_its_users_and_its_salt_leaves_the_data_directory(tmp_path):
    data, key_file = tmp_path / "data", tmp_path / "config" / "pseudonym.key"
    data.mkdir()
    (data / "salt").write_text("0123456789abcdef0123456789abcdef", encoding="utf-8")
    old = hashlib.sha256(b"0123456789abcdef0123456789abcdef:telegram:4242").hexdigest()[:32]
    State(data / "ohbot.db", "x" * 20).save_user(User(key=old, profile={"region": "柳南区"}))  # the old rows
    state = open_state(settings_for(data, key_file))
    assert state.user_key("telegram", 4242) == old  # the same pseudonym: the user keeps profile and forms
    assert state.get_user(old).profile["region"] == "柳南区"
    assert not (data / "salt").exists() and key_file.stat().st_mode & 0o777 == 0o600
    again = open_state(settings_for(data, key_file))  # later starts read the moved key
    assert again.user_key("telegram", 4242) == old


def test_a_key_that_is_not_the_data_directorys_is_refused(tmp_path):
    data = tmp_path / "data"
    open_state(settings_for(data, tmp_path / "a.key")).close()
    with pytest.raises(ConfigError, match="not the one"):
        open_state(settings_for(data, tmp_path / "b.key"))  # e.g. another $HOME: would orphan every user
    (tmp_path / "c.key").write_bytes(b"")
    with pytest.raises(ConfigError, match="empty"):
        open_state(settings_for(tmp_path / "other", tmp_path / "c.key"))
