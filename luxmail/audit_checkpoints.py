"""Signed checkpoints that anchor both ends of the audit chain (docs/security.md#audit-chain).

The hash chain alone shows edits and deletions *inside* the chain, but not rows cut
off either end: after deleting the newest (or the oldest) events, what remains still
links up. A checkpoint records, at one moment, how many events the chain held, its
first event (id and hash) and its last event (id and hash). ``audit.verify`` then
checks the table against the latest checkpoint: the first event must still be the
same, the checkpoint's last event must still be there with the same hash, and as
many events as counted must remain up to it.

Checkpoints live outside the database, as lines appended to one file per database in
``LUXMAIL_AUDIT_CHECKPOINT_DIR``; whoever owns the audit table cannot rewrite them
silently. Each line carries an HMAC-SHA256 (``LUXMAIL_AUDIT_CHECKPOINT_KEYS``, a key
ring: the first key signs, every key verifies) over its content *and* the previous
line's signature, so a forged, edited, reordered or removed middle line is detected.
Removing the file's last lines is detectable only against a copy outside the host:
ship the file to write-once storage or a remote log sink (docs/operations.md).
"""

from __future__ import annotations

import fcntl
import hashlib
import hmac
import json
import os
import re
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from django.conf import settings
from django.db import connection

FORMAT_VERSION = 1
GENESIS_SIGNATURE = "0" * 64
# A checkpoint line is a few hundred bytes; anything far longer is not one of ours.
_MAX_LINE_BYTES = 4096
_TAIL_BYTES = 64 * 1024


class CheckpointError(Exception):
    """The checkpoint file cannot be trusted (the message names the line and why)."""


@dataclass(frozen=True)
class Checkpoint:
    count: int
    first_id: int | None
    first_hash: str
    last_id: int | None
    last_hash: str
    at: str  # ISO 8601, UTC
    reason: str  # what wrote it: "verify", "periodic", "purge"
    line: int = 0  # 1-based line number in the file (0: not written yet)

    @property
    def at_datetime(self) -> datetime:
        return datetime.fromisoformat(self.at)


def parse_keys(value: str) -> list[tuple[str, bytes]]:
    """``id:secret,id:secret`` → [(id, secret)]; the first signs. Raises ``ValueError``."""
    ring: list[tuple[str, bytes]] = []
    for part in value.split(","):
        key_id, separator, secret = part.strip().partition(":")
        if not separator or not re.fullmatch(r"[A-Za-z0-9_-]{1,32}", key_id):
            raise ValueError("each entry must be id:secret (id: letters, digits, - or _)")
        if len(secret) < 32:
            raise ValueError(f"the secret of key {key_id!r} is shorter than 32 characters")
        ring.append((key_id, secret.encode()))
    if len({key_id for key_id, _ in ring}) != len(ring):
        raise ValueError("two keys share an id")
    return ring


def _ring() -> list[tuple[str, bytes]]:
    return parse_keys(settings.LUXMAIL_AUDIT_CHECKPOINT_KEYS)


def path() -> Path:
    """The checkpoint file of the database in use (one file per database name)."""
    name = Path(str(connection.settings_dict.get("NAME") or "default")).name
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", name).lstrip(".") or "default"
    return Path(settings.LUXMAIL_AUDIT_CHECKPOINT_DIR) / f"{safe}.audit-checkpoints"


def _signed_body(checkpoint: Checkpoint, *, prev: str, key_id: str) -> dict[str, Any]:
    body = asdict(checkpoint)
    body.pop("line")
    body.update({"v": FORMAT_VERSION, "prev": prev, "kid": key_id})
    return body


def _signature(body: dict[str, Any], secret: bytes) -> str:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    return hmac.new(secret, canonical, hashlib.sha256).hexdigest()


def _parse_line(raw: bytes, number: int, prev: str | None) -> tuple[Checkpoint, str]:
    """One line → (checkpoint, its signature). ``prev=None``: do not check the link."""
    try:
        record = json.loads(raw)
        signature = record.pop("sig")
        key_id = record["kid"]
        checkpoint = Checkpoint(
            count=int(record["count"]),
            first_id=record["first_id"],
            first_hash=str(record["first_hash"]),
            last_id=record["last_id"],
            last_hash=str(record["last_hash"]),
            at=str(record["at"]),
            reason=str(record["reason"]),
            line=number,
        )
    except (ValueError, KeyError, TypeError, AttributeError):
        raise CheckpointError(f"line {number} is not a checkpoint") from None
    secret = dict(_ring()).get(key_id)
    if secret is None:
        raise CheckpointError(f"line {number} is signed with key {key_id!r}, which is not set")
    if not isinstance(signature, str) or not hmac.compare_digest(
        signature, _signature(record, secret)
    ):
        raise CheckpointError(f"line {number}: its signature does not verify (edited or forged)")
    if prev is not None and record.get("prev") != prev:
        raise CheckpointError(
            f"line {number} does not follow line {number - 1} "
            "(a line was removed, inserted or reordered)"
        )
    return checkpoint, signature


def _lines(handle: IO[bytes]) -> Iterator[tuple[int, bytes]]:
    handle.seek(0)
    for number, raw in enumerate(handle, start=1):
        if len(raw) > _MAX_LINE_BYTES:
            raise CheckpointError(f"line {number} is not a checkpoint (too long)")
        if not raw.endswith(b"\n"):
            raise CheckpointError(f"line {number} is incomplete (no line end)")
        yield number, raw


def _read_chain(handle: IO[bytes]) -> tuple[Checkpoint | None, str]:
    """Check every line and its link; return the last checkpoint and its signature."""
    latest: Checkpoint | None = None
    prev = GENESIS_SIGNATURE
    for number, raw in _lines(handle):
        checkpoint, signature = _parse_line(raw, number, prev)
        if (
            latest is not None
            and latest.last_id is not None
            and (checkpoint.last_id is None or checkpoint.last_id < latest.last_id)
        ):
            raise CheckpointError(f"line {number} goes back behind line {number - 1}")
        latest, prev = checkpoint, signature
    return latest, prev


def latest() -> Checkpoint | None:
    """The newest checkpoint after checking every line of the file; ``None`` if none.

    Raises :class:`CheckpointError` when any line is unreadable, forged or unlinked.
    """
    try:
        with path().open("rb") as handle:
            return _read_chain(handle)[0]
    except FileNotFoundError:
        return None


def _last_line(handle: IO[bytes]) -> tuple[Checkpoint, str] | None:
    """The last line, its signature checked (not its link: see :func:`latest`)."""
    size = handle.seek(0, os.SEEK_END)
    handle.seek(max(0, size - _TAIL_BYTES))
    tail = handle.read().splitlines(keepends=True)
    if not tail:
        return None
    if not tail[-1].endswith(b"\n"):
        raise CheckpointError("the last line is incomplete (no line end)")
    return _parse_line(tail[-1], 0, None)


def _line_count(handle: IO[bytes]) -> int:
    handle.seek(0)
    return sum(chunk.count(b"\n") for chunk in iter(lambda: handle.read(1 << 20), b""))


def latest_quick() -> Checkpoint | None:
    """The newest checkpoint, checking only the last line's signature (for pages)."""
    try:
        with path().open("rb") as handle:
            last = _last_line(handle)
    except FileNotFoundError:
        return None
    return last[0] if last else None


def append(candidate: Checkpoint) -> Checkpoint:
    """Append ``candidate`` (signed, linked to the last line) and return it as written.

    Serialized with an exclusive lock on the file. Nothing is written when the file
    already ends with a checkpoint of the same chain state, or a newer one (a
    concurrent writer got there first); that checkpoint is returned instead. Only the
    last line's signature is checked here: callers check the whole file first
    (:func:`latest`), and every verification does again.
    """
    key_id, secret = _ring()[0]
    directory = Path(settings.LUXMAIL_AUDIT_CHECKPOINT_DIR)
    directory.mkdir(parents=True, exist_ok=True, mode=0o750)
    descriptor = os.open(path(), os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o640)
    with os.fdopen(descriptor, "a+b") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        found = _last_line(handle)
        last, prev = found if found else (None, GENESIS_SIGNATURE)
        if last is not None and (
            (last.last_id or 0) > (candidate.last_id or 0)
            or (
                last.last_id == candidate.last_id
                and last.count == candidate.count
                and last.first_id == candidate.first_id
            )
        ):
            return Checkpoint(**{**asdict(last), "line": _line_count(handle)})
        body = _signed_body(candidate, prev=prev, key_id=key_id)
        body["sig"] = _signature(body, secret)
        number = _line_count(handle) + 1
        handle.write(json.dumps(body, sort_keys=True, separators=(",", ":")).encode() + b"\n")
        handle.flush()
        os.fsync(handle.fileno())
    return Checkpoint(**{**asdict(candidate), "line": number})


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
