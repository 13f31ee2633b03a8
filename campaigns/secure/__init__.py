"""Secure-channel building blocks for delivery (issue 5): pure functions, no models.

* :mod:`campaigns.secure.pgp` — OpenPGP key validation and PGP/MIME (RFC 3156).
* :mod:`campaigns.secure.smime` — certificate validation and S/MIME (RFC 8551, AES-256).
* :mod:`campaigns.secure.tls` — verified-TLS relay connection, direct-to-MX probing
  with MTA-STS, per-domain capability cache.
* :mod:`campaigns.secure.policy` — the channel decision from facts.
* :mod:`campaigns.secure.errors` — the exceptions, all with PHI-free messages.

The send pipeline imports the submodule it needs; nothing here touches the database.
"""
