"""The values the dialogue core exchanges with channels: a message in, replies with buttons out."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Button:
    label: str
    data: str  # ≤ 64 bytes (Telegram's limit for callback data)


@dataclass
class Reply:
    text: str
    buttons: list[list[Button]] = field(default_factory=list)


@dataclass
class Message:
    text: str | None = None  # None: a sticker, photo or anything else without text
    callback: str | None = None  # data of a pressed button
    is_admin: bool = False
