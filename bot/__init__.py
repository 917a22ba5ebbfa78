"""ohbot: dialogue core, answering, quiz and channels of the occupational-health bot."""
