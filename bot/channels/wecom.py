"""WeCom (企业微信) channel: a self-built app's callbacks at /wecom, the same adapter as the Official
Account's (bot/channels/wechat.py) with WeCom's formats: every callback is encrypted and signed
with msg_signature (the URL check too: its echostr comes back decrypted), replies are encrypted,
messages go out through the app message API (message/send, 2048 bytes of text at most)."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from wechatpy.exceptions import InvalidSignatureException
from wechatpy.work import WeChatClient as WorkClient
from wechatpy.work.crypto import WeChatCrypto as WorkCrypto
from wechatpy.work.exceptions import InvalidCorpIdException
from wechatpy.work.parser import parse_message
from wechatpy.work.replies import TextReply

from bot.channels.wechat import (
    QUOTA_AFTER_EVENT,
    QUOTA_AFTER_MESSAGE,
    CallbackChannel,
    Incoming,
    Malformed,
    Refused,
    StoredTokenMixin,
    classify,
    log,
    required,
    xml_text,
)
from bot.config import Settings
from bot.storage.channels import TokenStore


@contextmanager
def _decrypting(what: str) -> Iterator[None]:
    """wechatpy's decryption failures as the adapter's outcomes: a bad signature or another CorpID is
    refused, anything else (not Base64, bad padding, no Encrypt …) is a malformed callback."""
    try:
        yield
    except InvalidSignatureException:
        raise Refused("bad msg_signature") from None
    except InvalidCorpIdException:
        raise Refused("encrypted for another CorpID") from None
    except Exception as exc:
        raise Malformed(f"cannot decrypt {what} ({type(exc).__name__})") from None


class WeComClient(StoredTokenMixin, WorkClient):
    """wechatpy's WeCom client on the configured base URL and the shared token row."""

    def __init__(self, settings: Settings, tokens: TokenStore, timeout: float = 10.0) -> None:
        """From WECOM_* settings."""
        super().__init__(settings.wecom_corp_id, settings.wecom_secret, timeout=timeout)
        self._use_store(tokens, f"wecom:{settings.wecom_corp_id}:{settings.wecom_agent_id}",
                        settings.wecom_api_base_url, "gettoken",
                        {"corpid": settings.wecom_corp_id or "", "corpsecret": settings.wecom_secret or ""})


class WeComChannel(CallbackChannel):
    """/wecom: a WeCom self-built app (always encrypted)."""

    name = "wecom"

    def __init__(self, settings: Settings, dialogue: Any, client: Any = None, **kw: Any) -> None:
        """From WECOM_* settings; `client` defaults to the WeCom API client."""
        client = client or WeComClient(settings, TokenStore(dialogue.state))
        super().__init__(settings, dialogue, client, **kw)
        self.crypto = WorkCrypto(settings.wecom_token, settings.wecom_aes_key, settings.wecom_corp_id)

    def verify_url(self, query: dict[str, str]) -> str:
        """The decrypted echostr, after the msg_signature check."""
        signature, timestamp, nonce, echostr = required(query, "msg_signature", "timestamp", "nonce", "echostr")
        with _decrypting("echostr"):
            return self.crypto.check_signature(signature, timestamp, nonce, echostr)

    def open(self, query: dict[str, str], body: bytes) -> tuple[str, dict]:
        """Check msg_signature and decrypt."""
        signature, timestamp, nonce = required(query, "msg_signature", "timestamp", "nonce")
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            raise Malformed("body is not UTF-8") from None
        with _decrypting("message"):
            xml = self.crypto.decrypt_message(text, signature, timestamp, nonce)
        return xml, {"timestamp": timestamp, "nonce": nonce}

    def parse(self, xml: str) -> Incoming | None:
        """wechatpy's WeCom parser; enter_agent and other events need no reply."""
        return classify(self, lambda: parse_message(xml), QUOTA_AFTER_MESSAGE, QUOTA_AFTER_EVENT)

    def passive(self, incoming: Incoming, text: str, ctx: dict) -> str:
        """An encrypted text reply from the app."""
        document = TextReply(source=incoming.to, target=incoming.user, agent=self.settings.wecom_agent_id,
                             content=xml_text(text)).render()
        return self.crypto.encrypt_message(document, ctx["nonce"], ctx["timestamp"])

    def send(self, user: str, text: str) -> None:
        """An app message to one member."""
        result = self.client.message.send_text(self.settings.wecom_agent_id, user, text)
        if result.get("invaliduser"):
            log.warning("wecom: the member is not in the app's visible range (invaliduser)")
