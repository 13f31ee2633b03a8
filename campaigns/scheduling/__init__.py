"""Per-recipient timing of campaign messages: local-time sends, quiet hours and the
planned delivery curve (docs/architecture.md, "Local-time sending")."""
