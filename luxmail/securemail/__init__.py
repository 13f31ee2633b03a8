"""Key validation and secure MIME, shared by contacts (key upload) and campaigns (sending).

* :mod:`luxmail.securemail.pgp` — OpenPGP key validation and PGP/MIME (RFC 3156).
* :mod:`luxmail.securemail.smime` — certificate validation and S/MIME (RFC 8551, AES-256).
* :mod:`luxmail.securemail.mime` — the MIME helpers both use.
* :mod:`luxmail.securemail.errors` — the key-material exceptions, all with PHI-free messages.

Pure functions, no models: the platform layer, so that contacts need not import campaigns.
"""
