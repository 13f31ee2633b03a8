"""The step statement's array parameters, written as PostgreSQL array literals, read
back as the values they came from — hostile text included."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from django.db import connection

from campaigns.sending import queue

pytestmark = pytest.mark.django_db

_TEXTS = [
    "",
    "250 2.0.0 Ok: queued as 4F",
    'say "hi"',
    'back\\slash \\" both',
    "{braces}, commas, NULL",
    "NULL",
    "  spaces kept  ",
    "tab\tand newline\nkept",
    "Ünïcödé — 550 5.7.1 ✉",
    None,
]


def _read(sql: str, literal: str) -> list:
    with connection.cursor() as cursor:
        cursor.execute(sql, [literal])
        return cursor.fetchone()[0]


def test_text_array_round_trips() -> None:
    assert _read("SELECT %s::text[]", queue._text_array(_TEXTS)) == _TEXTS
    assert _read("SELECT %s::text[]", queue._text_array([])) == []


def test_int_bool_and_time_arrays_round_trip() -> None:
    ids = [1, 0, None, 2**62, 42]
    assert _read("SELECT %s::bigint[]", queue._int_array(ids)) == ids
    assert _read("SELECT %s::bool[]", queue._bool_array([True, False])) == [True, False]
    times = [
        datetime(2026, 3, 1, 12, 30, 5, 123456, tzinfo=UTC),
        None,
        datetime(2026, 7, 1, 23, 0, tzinfo=timezone(timedelta(hours=-5))),
    ]
    assert _read("SELECT %s::timestamptz[]", queue._time_array(times)) == times


def test_outcome_arrays_unnest_as_results() -> None:
    results = [
        queue.Result(7, "sent", code=250, reply=t or "", channel="tls", channel_reason="r")
        for t in _TEXTS
    ]
    arrays = queue._outcome_arrays(results)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id, state, code, reply, channel, bump FROM unnest(%(ids)s::bigint[], "
            "%(states)s::text[], %(codes)s::int[], %(replies)s::text[], %(channels)s::text[], "
            "%(bumps)s::int[]) AS v(id, state, code, reply, channel, bump)",
            arrays,
        )
        rows = cursor.fetchall()
    assert [row[3] for row in rows] == [t or "" for t in _TEXTS]
    assert {(row[0], row[1], row[2], row[4], row[5]) for row in rows} == {
        (7, "sent", 250, "tls", 0)
    }
