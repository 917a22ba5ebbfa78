"""Fake platforms that tests and benchmarks run the real bot process against (on loopback).

``wechat_platform.FakeWeChatPlatform``: the WeChat Official Account (公众号) and WeCom (企业微信)
platform: signed (and encrypted) callbacks with WeChat's retries, access tokens, the send APIs and
the custom menu. ``fake_bot_api.FakeBotAPI``: the Telegram Bot API.
"""
