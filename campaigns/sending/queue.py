"""The message queue in PostgreSQL: claims, leases, state writes (docs/architecture.md).

A worker batch:

1. **claims** up to N claimable rows (``queued`` and past its not-before time, if any —
   a local-time send or quiet hours, compared with the worker's clock so the planner and
   the queue share one — or ``deferred`` and due) whose lease is
   free or expired, with ``SELECT … FOR UPDATE SKIP LOCKED``, stamping a claim token
   and a lease; rows of contacts that were suppressed or unsubscribed since the start
   come back flagged and are marked ``skipped``;
2. marks a small **chunk** ``sending`` (committed) right before transmitting it;
3. writes the chunk's **outcomes** in one statement (committed).

A worker that dies leaves ``queued``/``deferred`` rows with a lease: once it expires
they are claimable again. Rows it left ``sending`` may or may not have reached the
server: :func:`recover_expired` marks them ``unknown`` — they are never sent again
automatically. Every write checks the claim token, so a batch whose lease expired
cannot overwrite what a newer claim wrote.

PostgreSQL gets set-based SQL (one statement per step); SQLite (``make run`` only)
gets the same semantics through the ORM, its writers being serialized anyway.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.db import connection, transaction
from django.db.models import BooleanField, F, Q, QuerySet
from django.db.models.expressions import RawSQL
from django.utils import timezone

from campaigns.models import Campaign, DeliveryProof, Message, MessageState, SendChain
from contacts.models import ContactPreference, Suppression
from contacts.selectors import consent_present

if TYPE_CHECKING:
    from campaigns.sending.transport import TlsSession

CLAIMABLE = (MessageState.QUEUED, MessageState.DEFERRED)

# "Still claimable", for statements that address a batch's rows by id. Written so the
# planner cannot match it to the partial index ``message_claimable`` (``state IN
# ('queued', 'deferred')``), whose statistics are stale whenever VACUUM last ran while
# nothing was queued (reltuples 0): the index then looks empty, and a full scan of it —
# every claimable row of every campaign — looks cheaper than the primary key for 20
# ids. Measured on the send benchmark's database: 2,251 buffers for a chunk's mark
# instead of 80. ``IS TRUE`` is not simplified away, so the id lists use the key.
HELD_SQL = "(state IN ('queued', 'deferred')) IS TRUE"


def _held() -> RawSQL:
    return RawSQL(HELD_SQL, (), output_field=BooleanField())  # noqa: S611 (constant)


OPEN_STATES = (MessageState.QUEUED, MessageState.SENDING, MessageState.DEFERRED)


@dataclass
class Claimed:
    id: int
    contact_id: int | None
    attempts: int
    blocked: bool
    # The contact's time zone name (empty or not an IANA zone: the organization's
    # default), for quiet hours.
    time_zone: str | None = None


@dataclass
class Result:
    id: int
    state: str
    code: int | None = None
    reply: str = ""
    next_attempt_at: datetime | None = None
    channel: str = ""
    channel_reason: str = ""
    # 1 when this try was not counted by mark_sending (nothing was transmitted).
    bump: int = 0
    # The SMTP session that answered, for the message's delivery proof.
    session: TlsSession | None = None


def _postgres() -> bool:
    return connection.vendor == "postgresql"


# A campaign's messages are all queued after the campaign row was created (``queued_at``
# is the insert time; the campaign's ``created_at`` its own): the claim passes that as a
# constant lower bound, so the planner prunes every older monthly partition
# (luxmail/partitions.py) instead of planning and probing all of them. The margin covers
# clock skew between the application servers (``created_at``) and PostgreSQL (``now()``).
CLAIM_SKEW_MARGIN = timedelta(days=1)

# The rows one claim takes (also timed on its own by bench/scale.py).
CANDIDATES_SQL = """
SELECT id FROM campaigns_message
 WHERE campaign_id = %(campaign)s
   AND queued_at >= %(since)s
   AND ((state = 'queued'
         AND (next_attempt_at IS NULL OR next_attempt_at <= %(now)s))
        OR (state = 'deferred' AND next_attempt_at <= statement_timestamp()))
   AND (lease_until IS NULL OR lease_until < statement_timestamp())
 ORDER BY id
 LIMIT %(limit)s
   FOR UPDATE SKIP LOCKED"""

# The candidates are selected (and locked) in a statement of their own, planned with
# sorting and JIT off (transaction-local), so they come from an ordered walk of
# ``message_claimable`` that stops after ``limit`` rows. When the statistics say almost
# nothing is queued — true whenever ANALYZE last ran between campaigns — the planner
# otherwise fetches every claimable row of the campaign and sorts them: each claim then
# reads the whole rest of the campaign (measured: 33,500 rows and 36,000 buffers for a
# batch of 500), so a campaign's claims cost O(n²). With sorting disabled the estimated
# cost passes ``jit_above_cost``: JIT compilation alone took 1.8 s per claim. The
# settings go back to their defaults before the lease UPDATE, whose statement trigger
# (reporting's rollups) must be planned normally.
CLAIM_PLAN_SQL = "SELECT set_config('enable_sort', 'off', true), set_config('jit', 'off', true)"
_CLAIM_PLAN_RESET_SQL = "SET LOCAL enable_sort TO DEFAULT; SET LOCAL jit TO DEFAULT"

_CLAIM_SQL = """
WITH claimed AS (
    UPDATE campaigns_message m
       SET claim_token = %(token)s,
           lease_until = statement_timestamp() + %(lease)s * interval '1 second'
     -- The candidates as one array (primary-key lookups); the queued_at bound prunes
     -- the monthly partitions (luxmail/partitions.py) before the campaign.
     WHERE m.queued_at >= %(since)s
       AND m.id = ANY(%(ids)s::bigint[])
    RETURNING m.id, m.contact_id, m.attempts
)
SELECT claimed.id, claimed.contact_id, claimed.attempts,
       (c.id IS NULL OR c.status <> 'active' OR s.suppressed IS NOT NULL OR k.present IS NULL
        OR (%(purpose)s <> 'transactional' AND EXISTS (
            SELECT 1 FROM contacts_contactpreference p
             WHERE p.contact_id = c.id
               AND (p.paused_until > statement_timestamp()
                    OR (p.frequency = 'monthly' AND EXISTS (
                        SELECT 1 FROM campaigns_message r
                          JOIN campaigns_campaign rc ON rc.id = r.campaign_id
                         WHERE r.contact_id = c.id AND r.state = 'sent'
                           AND NOT rc.transactional
                           AND r.finished_at > statement_timestamp() - interval '30 days')))))
       ) AS blocked,
       c.time_zone
  FROM claimed
  -- Each claimed row's contact, suppression and consent by key (LIMIT 1: the planner
  -- cannot pull these up into joins or hashed subplans). As plain joins and EXISTS, with
  -- fresh statistics it hashed every contact and every consent of the organization for
  -- each batch (50,000 each on the send benchmark: 45-70 of a claim's 60-90 ms).
  LEFT JOIN LATERAL (
        SELECT c.id, c.status, c.email_bidx, c.time_zone FROM contacts_contact c
         WHERE c.id = claimed.contact_id LIMIT 1) c ON true
  LEFT JOIN LATERAL (
        SELECT true AS suppressed FROM contacts_suppression s
         WHERE s.email_bidx = c.email_bidx AND s.removed_at IS NULL LIMIT 1) s ON true
  LEFT JOIN LATERAL (
        SELECT true AS present FROM contacts_consent k
         WHERE k.contact_id = c.id AND k.purpose = %(purpose)s AND k.revoked_at IS NULL
           AND k.granted_at <= statement_timestamp()
           AND (k.expires_at IS NULL OR k.expires_at > statement_timestamp())
         LIMIT 1) k ON true
 ORDER BY claimed.id
"""


def claim_since(campaign_id: int) -> datetime:
    """The oldest ``queued_at`` a message of the campaign can have (see CANDIDATES_SQL)."""
    created = Campaign.objects.filter(pk=campaign_id).values_list("created_at", flat=True).first()
    if created is None:  # deleted meanwhile: its messages went with it
        return timezone.now() - CLAIM_SKEW_MARGIN
    since = created - CLAIM_SKEW_MARGIN
    if len(_SINCE) > 1000:
        _SINCE.clear()
    _SINCE[campaign_id] = since
    return since


# The bound last used by this process's claims, per campaign: step() prunes with it (a
# campaign's created_at never changes) without a query per chunk.
_SINCE: dict[int, datetime] = {}


def _since(campaign_id: int) -> datetime:
    since = _SINCE.get(campaign_id)
    return since if since is not None else claim_since(campaign_id)


def _held_back(contact_id: int, now: datetime) -> bool:
    """The preference center holds marketing back: a running pause, or "monthly digest
    only" and a marketing message already sent in the last 30 days (SQLite path)."""
    pref = ContactPreference.objects.filter(contact_id=contact_id).first()
    if pref is None:
        return False
    if pref.paused_until is not None and pref.paused_until > now:
        return True
    return (
        pref.frequency == "monthly"
        and Message.objects.filter(
            contact_id=contact_id,
            state=MessageState.SENT,
            campaign__transactional=False,
            finished_at__gt=now - timedelta(days=30),
        ).exists()
    )


def claim(
    *, campaign_id: int, limit: int, lease_seconds: int, purpose: str = "marketing"
) -> tuple[uuid.UUID, list[Claimed]]:
    """Claim up to ``limit`` messages for one batch; returns the claim token and rows.

    A row is ``blocked`` (to be skipped) when its contact is gone, no longer active,
    suppressed, lacks a present consent for ``purpose``, or the preference center holds
    marketing back (a pause, or "monthly digest only" with a message in the last 30
    days) — checked at claim time so an unsubscribe or revocation takes effect within
    the current campaign.
    """
    token = uuid.uuid4()
    if _postgres():
        since = claim_since(campaign_id)
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(CLAIM_PLAN_SQL)
            cursor.execute(
                CANDIDATES_SQL,
                {"campaign": campaign_id, "since": since, "now": timezone.now(), "limit": limit},
            )
            ids = [row[0] for row in cursor.fetchall()]
            cursor.execute(_CLAIM_PLAN_RESET_SQL)
            if not ids:
                return token, []
            cursor.execute(
                _CLAIM_SQL,
                {
                    "token": token,
                    "lease": lease_seconds,
                    "purpose": purpose,
                    "since": since,
                    "ids": _int_array(ids),
                },
            )
            rows = [Claimed(*row) for row in cursor.fetchall()]
        return token, rows
    now = timezone.now()
    with transaction.atomic():
        ids = list(
            Message.objects.filter(campaign_id=campaign_id)
            .filter(
                Q(state=MessageState.QUEUED, next_attempt_at__isnull=True)
                | Q(state__in=CLAIMABLE, next_attempt_at__lte=now)
            )
            .filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now))
            .order_by("id")
            .values_list("id", flat=True)[:limit]
        )
        Message.objects.filter(id__in=ids).update(
            claim_token=token, lease_until=now + timedelta(seconds=lease_seconds)
        )

        rows = []
        for message in Message.objects.filter(id__in=ids).select_related("contact").order_by("id"):
            contact = message.contact
            blocked = (
                contact is None
                or contact.status != "active"
                or Suppression.objects.filter(
                    email_bidx=contact.email_bidx, removed_at__isnull=True
                ).exists()
                or not consent_present(contact=contact, purpose=purpose)
                or (purpose != "transactional" and _held_back(contact.pk, now))
            )
            rows.append(
                Claimed(
                    message.id,
                    message.contact_id,
                    message.attempts,
                    blocked,
                    contact.time_zone if contact is not None else None,
                )
            )
    return token, rows


def step(
    *,
    token: uuid.UUID,
    campaign_id: int,
    results: list[Result],
    sending: list[int],
    lease_seconds: int,
    renew: list[int] | None = None,
) -> list[int]:
    """In one transaction (one commit): write ``results`` of the previous chunk, then
    mark ``sending`` as about to be transmitted — only while the campaign is still
    ``sending`` (returns ``[]`` when it was paused or cancelled). Returns the ids
    marked: the only ones the caller may transmit. ``renew`` extends the lease of the
    batch's other claimed rows. The commit is durable: the mark must be on disk before
    anything goes on the wire.
    """
    if sending and _postgres():
        return _step_postgres(
            token=token,
            campaign_id=campaign_id,
            results=results,
            sending=sending,
            lease_seconds=lease_seconds,
            renew=renew,
        )
    with transaction.atomic():
        if results:
            _write(token, results)
        if not sending:
            return []
        return mark_sending(
            token=token,
            ids=sending,
            lease_seconds=lease_seconds,
            renew=renew,
            campaign_id=campaign_id,
        )


# The outcomes of a chunk, written only to rows that still carry its claim token: alone
# (write_results) or as the first statement of step().
_OUTCOME_SQL = """
UPDATE campaigns_message m
   SET state = v.state, smtp_code = v.code, smtp_reply = v.reply,
       next_attempt_at = v.next_at, channel = v.channel, channel_reason = v.reason,
       finished_at = CASE WHEN v.state IN ('deferred', 'queued') THEN NULL
                          ELSE statement_timestamp() END,
       attempts = m.attempts + v.bump, claim_token = NULL, lease_until = NULL
  FROM unnest(%(ids)s::bigint[], %(states)s::text[], %(codes)s::int[],
              %(replies)s::text[], %(next_at)s::timestamptz[], %(channels)s::text[],
              %(reasons)s::text[], %(bumps)s::int[])
       AS v(id, state, code, reply, next_at, channel, reason, bump)
 WHERE m.id = v.id AND m.claim_token = %(token)s
   -- Messages are partitioned by month (luxmail/partitions.py): without this the
   -- planner may hash-join the arrays against a scan of every partition.
   AND m.id = ANY(%(ids)s::bigint[])
"""

# In step(), every update also bounds ``queued_at``: from the campaign's claim bound (the
# rows a batch holds passed it when claimed) to a day past now (they were queued before
# their claim; the day covers clock skew, as CLAIM_SKEW_MARGIN): the planner prunes the
# older months and those created ahead instead of planning three updates over every
# partition for each chunk.
_SINCE_SQL = "AND queued_at >= %(since)s AND queued_at < %(until)s"


# step() on PostgreSQL: the outcomes, the mark and the lease renewal as one statement —
# one round trip and one (durable) commit per chunk instead of five round trips. The
# three updates touch disjoint rows (the previous chunk, this chunk, the batch's later
# rows), so sharing one snapshot changes nothing; ``marked`` is the same statement as
# _MARK_SQL and its RETURNING is still the only list of rows that may be transmitted.
_STEP_SELECT = "\nSELECT id FROM marked\n"
_STEP_SQL = (
    "WITH outcome AS ("  # noqa: S608 - module constants only
    + _OUTCOME_SQL.rstrip()
    + f""" {_SINCE_SQL.replace("queued_at", "m.queued_at")}
    RETURNING m.id
), marked AS (
    UPDATE campaigns_message SET state = 'sending', sending_at = statement_timestamp(),
           attempts = attempts + 1,
           lease_until = statement_timestamp() + %(lease)s * interval '1 second'
     WHERE id = ANY(%(sending)s::bigint[]) AND claim_token = %(token)s
       AND {HELD_SQL} {_SINCE_SQL}
       AND lease_until >= statement_timestamp()
       AND EXISTS (SELECT 1 FROM campaigns_campaign
                    WHERE id = %(campaign)s AND status = 'sending')
    RETURNING id
), renewed AS (
    UPDATE campaigns_message
       SET lease_until = statement_timestamp() + %(lease)s * interval '1 second'
     WHERE id = ANY(%(renew)s::bigint[]) AND claim_token = %(token)s
       AND {HELD_SQL} {_SINCE_SQL} AND EXISTS (SELECT 1 FROM marked)
    RETURNING id
)"""  # noqa: S608 (module constants only)
    + _STEP_SELECT
)

# The delivery proofs of the previous chunk's answered messages (insert, or replace on a
# later try), as one more data-modifying CTE of the step statement: PostgreSQL runs it
# whether or not the final SELECT reads it. ``dane`` is never checked (empty).
_PROOF_CTE = """, proof AS (
    INSERT INTO campaigns_deliveryproof
           (message_id, host, port, route, tls_version, tls_cipher, peer_cert_sha256,
            cert_verified, mta_sts, dane, secured_at, replied_at)
    SELECT p.id, p.host, p.port, p.route, p.version, p.cipher, p.cert, p.verified, p.sts,
           '', p.secured_at, statement_timestamp()
      FROM unnest(%(p_ids)s::bigint[], %(p_hosts)s::text[], %(p_ports)s::int[],
                  %(p_routes)s::text[], %(p_versions)s::text[], %(p_ciphers)s::text[],
                  %(p_certs)s::text[], %(p_verified)s::bool[], %(p_sts)s::text[],
                  %(p_secured)s::timestamptz[])
           AS p(id, host, port, route, version, cipher, cert, verified, sts, secured_at)
    ON CONFLICT (message_id) DO UPDATE SET
       host = EXCLUDED.host, port = EXCLUDED.port, route = EXCLUDED.route,
       tls_version = EXCLUDED.tls_version, tls_cipher = EXCLUDED.tls_cipher,
       peer_cert_sha256 = EXCLUDED.peer_cert_sha256, cert_verified = EXCLUDED.cert_verified,
       mta_sts = EXCLUDED.mta_sts, secured_at = EXCLUDED.secured_at,
       replied_at = EXCLUDED.replied_at
    RETURNING message_id
)
"""
_STEP_WITH_PROOFS_SQL = _STEP_SQL.replace(_STEP_SELECT, _PROOF_CTE + _STEP_SELECT)


# Array parameters as PostgreSQL array literals (text cast by the statement: ``::int[]``
# …). The connection quotes parameters client-side, and psycopg's list dumper looks up
# and calls a dumper for every element: for the step statement's dozen arrays of a
# chunk, that per-element work cost more worker CPU than the rest of the statement.
# Inside a double-quoted element only the backslash and the double quote are special.


def _int_array(values: Sequence[int | None]) -> str:
    return "{" + ",".join(["NULL" if v is None else str(int(v)) for v in values]) + "}"


def _bool_array(values: Sequence[bool]) -> str:
    return "{" + ",".join(["t" if v else "f" for v in values]) + "}"


def _quote_element(value: str) -> str:
    if "\\" in value or '"' in value:
        value = value.replace("\\", "\\\\").replace('"', '\\"')
    return '"' + value + '"'


def _text_array(values: Sequence[str | None]) -> str:
    return "{" + ",".join(["NULL" if v is None else _quote_element(v) for v in values]) + "}"


def _time_array(values: Sequence[datetime | None]) -> str:
    return "{" + ",".join(["NULL" if v is None else f'"{v.isoformat()}"' for v in values]) + "}"


def _proof_arrays(results: list[Result]) -> dict[str, str]:
    answered = [(r.id, r.session) for r in results if r.session is not None]
    if not answered:
        return {}
    return {
        "p_ids": _int_array([i for i, _ in answered]),
        "p_hosts": _text_array([s.host[:253] for _, s in answered]),
        "p_ports": _int_array([s.port for _, s in answered]),
        "p_routes": _text_array([s.route for _, s in answered]),
        "p_versions": _text_array([s.version for _, s in answered]),
        "p_ciphers": _text_array([s.cipher[:100] for _, s in answered]),
        "p_certs": _text_array([s.cert_sha256 for _, s in answered]),
        "p_verified": _bool_array([s.verified for _, s in answered]),
        "p_sts": _text_array([s.mta_sts for _, s in answered]),
        "p_secured": _time_array([s.secured_at for _, s in answered]),
    }


def _step_postgres(
    *,
    token: uuid.UUID,
    campaign_id: int,
    results: list[Result],
    sending: list[int],
    lease_seconds: int,
    renew: list[int] | None,
) -> list[int]:
    sql, params = step_statement(
        token=token,
        campaign_id=campaign_id,
        results=results,
        sending=sending,
        lease_seconds=lease_seconds,
        renew=renew,
    )
    # One statement, so one round trip and one commit (durable: the mark must be on disk
    # before anything goes on the wire), or part of the caller's transaction when there
    # is one.
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [row[0] for row in cursor.fetchall()]


def step_statement(
    *,
    token: uuid.UUID,
    campaign_id: int,
    results: list[Result],
    sending: list[int],
    lease_seconds: int,
    renew: list[int] | None,
) -> tuple[str, dict[str, Any]]:
    """step()'s statement and parameters on PostgreSQL (also read by the plan tests)."""
    params: dict[str, Any] = {
        **_outcome_arrays(results),
        "token": token,
        "lease": lease_seconds,
        "sending": _int_array(sending),
        "campaign": campaign_id,
        "renew": _int_array(renew or []),
        "since": _since(campaign_id),
        "until": timezone.now() + CLAIM_SKEW_MARGIN,
    }
    # The delivery proofs ride along as a fourth CTE when some outcome came from an SMTP
    # session — no ORM objects, no BEGIN/COMMIT around a separate INSERT.
    proofs = _proof_arrays(results)
    if proofs:
        params.update(proofs)
        return _STEP_WITH_PROOFS_SQL, params
    return _STEP_SQL, params


def _outcome_arrays(results: list[Result]) -> dict[str, str]:
    return {
        "ids": _int_array([r.id for r in results]),
        "states": _text_array([r.state for r in results]),
        "codes": _int_array([r.code for r in results]),
        "replies": _text_array([r.reply for r in results]),
        "next_at": _time_array([r.next_attempt_at for r in results]),
        "channels": _text_array([r.channel for r in results]),
        "reasons": _text_array([r.channel_reason[:200] for r in results]),
        "bumps": _int_array([r.bump for r in results]),
    }


_MARK_SQL = f"""
UPDATE campaigns_message SET state = 'sending', sending_at = statement_timestamp(),
       attempts = attempts + 1,
       lease_until = statement_timestamp() + %s * interval '1 second'
 WHERE id = ANY(%s) AND claim_token = %s AND {HELD_SQL}
   AND lease_until >= statement_timestamp()
   AND (%s::bigint IS NULL OR EXISTS (SELECT 1 FROM campaigns_campaign
                                       WHERE id = %s AND status = 'sending'))
RETURNING id
"""  # noqa: S608 (module constant)

_RENEW_SQL = (
    "UPDATE campaigns_message "  # noqa: S608 (module constant)
    "SET lease_until = statement_timestamp() + %s * interval '1 second' "
    f"WHERE id = ANY(%s) AND claim_token = %s AND {HELD_SQL}"
)


def mark_sending(
    *,
    token: uuid.UUID,
    ids: list[int],
    lease_seconds: int,
    renew: list[int] | None = None,
    campaign_id: int | None = None,
) -> list[int]:
    """Commit ``sending`` for a chunk about to be transmitted; returns the ids marked.

    Only rows this batch still holds are marked: its claim token, a lease that has not
    expired (once it has, another worker may have claimed the row) and still
    ``queued``/``deferred``. The database, not the worker's memory, says what may be
    sent: the caller transmits exactly the returned ids. With ``campaign_id``, nothing
    is marked unless that campaign is ``sending``. ``renew`` lists the batch's other
    claimed rows whose lease to extend.
    """
    if not ids:
        return []
    if _postgres():
        # No savepoint when step() already opened the transaction: two round trips less.
        with transaction.atomic(savepoint=False), connection.cursor() as cursor:
            cursor.execute(_MARK_SQL, [lease_seconds, ids, token, campaign_id, campaign_id])
            marked = [row[0] for row in cursor.fetchall()]
            if renew and marked:
                cursor.execute(_RENEW_SQL, [lease_seconds, renew, token])
        return marked

    # SQLite (make run): the UPDATE takes the database's write lock, held until commit,
    # so the rows read back right after it are exactly the ones it changed.
    now = timezone.now()
    lease = now + timedelta(seconds=lease_seconds)
    with transaction.atomic(savepoint=False):
        if (
            campaign_id is not None
            and not Campaign.objects.filter(pk=campaign_id, status="sending").exists()
        ):
            return []
        Message.objects.filter(
            id__in=ids, claim_token=token, state__in=CLAIMABLE, lease_until__gte=now
        ).update(
            state=MessageState.SENDING,
            sending_at=now,
            attempts=F("attempts") + 1,
            lease_until=lease,
        )
        marked = list(
            Message.objects.filter(
                id__in=ids, claim_token=token, state=MessageState.SENDING, sending_at=now
            ).values_list("id", flat=True)
        )
        if renew and marked:
            Message.objects.filter(id__in=renew, claim_token=token, state__in=CLAIMABLE).update(
                lease_until=lease
            )
    return marked


def write_results(*, token: uuid.UUID, results: list[Result], durable: bool = True) -> int:
    """Write outcomes in one statement; returns the rows written.

    ``durable=False`` commits without waiting for the disk (PostgreSQL
    ``synchronous_commit = off``): losing such a write in a database crash leaves the
    rows ``sending``, which recovery turns into ``unknown`` — never a second send.
    """
    if not results:
        return 0
    with transaction.atomic():
        if not durable and _postgres():
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL synchronous_commit TO OFF")
        return _write(token, results)


_PROOF_FIELDS = [
    "host",
    "port",
    "route",
    "tls_version",
    "tls_cipher",
    "peer_cert_sha256",
    "cert_verified",
    "mta_sts",
    "secured_at",
    "replied_at",
]


def _write_proofs(results: list[Result]) -> None:
    """Record (or, on a later try, replace) each answered message's delivery proof."""
    now = timezone.now()
    proofs = [
        DeliveryProof(
            message_id=r.id,
            host=r.session.host[:253],
            port=r.session.port,
            route=r.session.route,
            tls_version=r.session.version,
            tls_cipher=r.session.cipher[:100],
            peer_cert_sha256=r.session.cert_sha256,
            cert_verified=r.session.verified,
            mta_sts=r.session.mta_sts,
            secured_at=r.session.secured_at,
            replied_at=now,
        )
        for r in results
        if r.session is not None
    ]
    if proofs:
        DeliveryProof.objects.bulk_create(
            proofs, update_conflicts=True, unique_fields=["message"], update_fields=_PROOF_FIELDS
        )


def _write(token: uuid.UUID, results: list[Result]) -> int:
    _write_proofs(results)
    if _postgres():
        with connection.cursor() as cursor:
            cursor.execute(_OUTCOME_SQL, {**_outcome_arrays(results), "token": token})
            return cursor.rowcount
    now = timezone.now()
    written = 0
    for r in results:
        written += Message.objects.filter(id=r.id, claim_token=token).update(
            state=r.state,
            smtp_code=r.code,
            smtp_reply=r.reply,
            next_attempt_at=r.next_attempt_at,
            channel=r.channel,
            channel_reason=r.channel_reason[:200],
            finished_at=None if r.state in CLAIMABLE else now,
            claim_token=None,
            lease_until=None,
            attempts=F("attempts") + r.bump,
        )
    return written


def hold(*, token: uuid.UUID, until: dict[datetime, list[int]]) -> int:
    """Give back claimed rows with a later not-before time (quiet hours in their
    recipients' zones): one UPDATE per distinct time, the rows keep their state and are
    claimable again from then on. Returns how many were held."""
    held = 0
    for moment, ids in until.items():
        if ids:
            held += Message.objects.filter(_held(), id__any_of=ids, claim_token=token).update(
                next_attempt_at=moment, claim_token=None, lease_until=None
            )
    return held


def release(*, token: uuid.UUID, ids: list[int]) -> int:
    """Give back the claimed rows a batch did not touch (pause, cancel, early stop)."""
    if not ids:
        return 0
    return Message.objects.filter(_held(), id__any_of=ids, claim_token=token).update(
        claim_token=None, lease_until=None
    )


def recover_expired(*, campaign_id: int | None = None) -> int:
    """Mark ``sending`` rows whose lease expired as ``unknown``; returns how many.

    Their worker died between marking them and writing the outcome: the server may
    have accepted them, so they are never requeued automatically (operator decides).
    Expired ``queued``/``deferred`` claims need nothing: they are claimable again.
    """
    rows = Message.objects.filter(state=MessageState.SENDING, lease_until__lt=timezone.now())
    if campaign_id is not None:
        rows = rows.filter(campaign_id=campaign_id)
    return rows.update(
        state=MessageState.UNKNOWN,
        smtp_reply="worker lost while sending; the relay may have accepted it",
        claim_token=None,
        lease_until=None,
        finished_at=timezone.now(),
    )


def has_open(*, campaign_id: int) -> bool:
    return Message.objects.filter(campaign_id=campaign_id, state__in=OPEN_STATES).exists()


def next_due(*, campaign_id: int) -> datetime | None:
    """When the earliest open message becomes due: now when one is queued without a
    not-before time, else the earliest deferred retry or local-time/quiet-hours wait."""
    if Message.objects.filter(
        campaign_id=campaign_id, state=MessageState.QUEUED, next_attempt_at__isnull=True
    ).exists():
        return timezone.now()
    row = (
        Message.objects.filter(campaign_id=campaign_id, state__in=CLAIMABLE)
        .order_by("next_attempt_at")
        .values_list("next_attempt_at", flat=True)
        .first()
    )
    return row


# --- dispatch chain slots (at most ``slots`` chains per campaign) ------------------------


def _slot_free(now: datetime) -> Q:
    return Q(token__isnull=True) | Q(lease_until__isnull=True) | Q(lease_until__lt=now)


def chain_acquire(
    *, campaign_id: int, slots: int, lease_seconds: float
) -> tuple[int, uuid.UUID] | None:
    """Take a free or expired slot of ``campaign_id`` (one of ``range(slots)``) with a
    new fencing token; ``None`` when every slot is held by a live chain.

    The take is a compare-and-set (an UPDATE re-checking that the slot is still free),
    so two tasks racing for one slot cannot both win, on PostgreSQL or SQLite.
    """

    existing = set(SendChain.objects.filter(campaign_id=campaign_id).values_list("slot", flat=True))
    missing = [
        SendChain(campaign_id=campaign_id, slot=n) for n in range(slots) if n not in existing
    ]
    if missing:
        SendChain.objects.bulk_create(missing, ignore_conflicts=True)
    now = timezone.now()
    candidates = (
        SendChain.objects.filter(campaign_id=campaign_id, slot__lt=slots)
        .filter(_slot_free(now))
        .order_by("slot")
        .values_list("pk", "slot")
    )
    for pk, slot in candidates:
        token = uuid.uuid4()
        won = (
            SendChain.objects.filter(pk=pk)
            .filter(_slot_free(now))
            .update(token=token, lease_until=now + timedelta(seconds=lease_seconds))
        )
        if won:
            return slot, token
    return None


def chain_renew(*, campaign_id: int, slot: int, token: uuid.UUID, seconds: float) -> bool:
    """Extend the lease of a held slot; ``False`` when ``token`` was superseded (the
    chain must stop)."""

    return bool(
        SendChain.objects.filter(campaign_id=campaign_id, slot=slot, token=token).update(
            lease_until=timezone.now() + timedelta(seconds=seconds)
        )
    )


def chain_release(*, campaign_id: int, slot: int, token: uuid.UUID) -> None:

    SendChain.objects.filter(campaign_id=campaign_id, slot=slot, token=token).update(
        token=None, lease_until=None
    )


def chains_live(*, campaign_id: int) -> int:
    """How many chains hold a slot of ``campaign_id`` right now."""

    return SendChain.objects.filter(
        campaign_id=campaign_id, token__isnull=False, lease_until__gte=timezone.now()
    ).count()


# "Still open" (claimed or in flight) for the heartbeat's id-addressed renewal, written
# like HELD_SQL so that no index on ``state`` looks usable: the primary key is.
_OPEN_SQL = "(state IN ('queued', 'sending', 'deferred')) IS TRUE"


def batch_rows(*, token: uuid.UUID, ids: list[int]) -> QuerySet[Message]:
    """The rows of ``ids`` that the batch of ``token`` still holds, by primary key."""
    open_rows = RawSQL(_OPEN_SQL, (), output_field=BooleanField())  # noqa: S611 (constant)
    return Message.objects.filter(open_rows, id__any_of=ids, claim_token=token)


def renew_batch(*, token: uuid.UUID, lease_seconds: float, ids: list[int]) -> int:
    """Heartbeat: extend the lease of every row of ``ids`` (the batch's claimed rows)
    that the batch still holds, claimed or in flight — by primary key: the claim token
    has no index, and the campaign's open rows as the range meant reading every one of
    them (165 ms per heartbeat in a 50,000-message campaign on the send bench)."""
    lease = timezone.now() + timedelta(seconds=lease_seconds)
    return batch_rows(token=token, ids=ids).update(lease_until=lease)
