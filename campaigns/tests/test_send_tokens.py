"""The unsubscribe/VERP token's fast base32 is exactly base64.b32encode's (lower case,
no padding), and tokens still read back."""

from __future__ import annotations

import base64
import os

from campaigns.sending import tokens


def test_fast_base32_matches_the_standard_library() -> None:
    samples = [bytes(18), b"\xff" * 18, *(os.urandom(18) for _ in range(2000))]
    for raw in samples:
        assert tokens._base32(raw) == base64.b32encode(raw).decode().rstrip("=").lower()


def test_tokens_round_trip() -> None:
    for message_id in (0, 1, 127, 2**31, 2**63 - 1):
        for purpose in (tokens.UNSUBSCRIBE, tokens.BOUNCE):
            token = tokens.make(purpose, message_id)
            assert len(token) == 29
            assert tokens.read(purpose, token) == message_id
