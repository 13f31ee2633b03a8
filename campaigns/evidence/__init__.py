"""Evidence packs: a signed archive of what a campaign did, for an auditor (issue 17 §3).

``keys`` holds the organization's Ed25519 signing key; ``pack`` writes the archive.
docs/security.md "Evidence packs" documents the contents and the offline check.
"""
