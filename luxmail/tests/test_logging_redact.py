"""The log redaction filter masks URL passwords and addresses, and keeps the rest of a URL."""

from __future__ import annotations

import logging

import pytest

from luxmail.logging import RedactPHIFilter, redact


@pytest.mark.parametrize(
    ("logged", "expected"),
    [
        # Celery's banner and kombu's reconnect messages print the broker URL.
        (
            "Connected to rediss://:s3cret@redis.internal.example-health.org:6380/0?ssl=1",
            "Connected to rediss://:***@redis.internal.example-health.org:6380/0?ssl=1",
        ),
        (
            "broker redis://luxmail:p@ss@10.0.0.5:6379/3.",
            "broker redis://luxmail:***@10.0.0.5:6379/3.",
        ),
        (
            "amqp://guest:guest@rabbit.example.org:5672//",
            "amqp://guest:***@rabbit.example.org:5672//",
        ),
        ("redis://127.0.0.1:6379/2", "redis://127.0.0.1:6379/2"),
        (
            "postgres://postgres@db.example.org:5432/luxmail",
            "postgres://postgres@db.example.org:5432/luxmail",
        ),
        ("to zebulon@patients.example", "to [redacted-email]"),
        (
            "smtp://bob@clinic.example:pw@mx.clinic.example:25 for alice@x.example",
            "smtp://[redacted-email]:***@mx.clinic.example:25 for [redacted-email]",
        ),
    ],
)
def test_redact_masks_passwords_and_addresses_only(logged, expected):
    assert redact(logged) == expected


def test_filter_keeps_broker_host_port_and_db_readable():
    record = logging.LogRecord(
        "celery", logging.ERROR, __file__, 1, "Cannot connect to %s: %s", None, None
    )
    record.args = ("redis://:hunter2@broker.example.org:6379/0", "refused")
    assert RedactPHIFilter().filter(record)
    assert record.getMessage() == (
        "Cannot connect to redis://:***@broker.example.org:6379/0: refused"
    )
