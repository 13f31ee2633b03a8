"""Senders: From identities and their DKIM keys (signing)."""
