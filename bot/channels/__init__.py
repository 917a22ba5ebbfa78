"""Channels: thin adapters between a messaging platform and the platform-agnostic bot.dialogue."""
