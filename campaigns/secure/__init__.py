"""Secure-channel building blocks for delivery (issue 5): pure functions, no models.

* :mod:`campaigns.secure.tls` — verified-TLS relay connection, direct-to-MX probing
  with MTA-STS, per-domain capability cache.
* :mod:`campaigns.secure.policy` — the channel decision from facts.
* :mod:`campaigns.secure.errors` — the exceptions, all with PHI-free messages.

The send pipeline imports the submodule it needs; nothing here touches the database.
"""
