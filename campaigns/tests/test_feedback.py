"""The feedback reader and classifier: bounces, complaints, reports, auto-replies, and
hostile input. Pure (no database): bytes in, Feedback out."""

from __future__ import annotations

import gzip
import io
import time
import zipfile

import pytest

from campaigns.sending.feedback import (
    FeedbackError,
    FeedbackKind,
    Reason,
    Scope,
    classify,
    parse,
)


def _report(report_type: str, parts: list[tuple[str, str]], headers: str = "") -> bytes:
    body = "".join(f"--b\r\nContent-Type: {ctype}\r\n\r\n{text}\r\n" for ctype, text in parts)
    return (
        f"From: MAILER-DAEMON@mx.example.test\r\nTo: bounces@clinic.example\r\n{headers}"
        "Subject: Undelivered Mail Returned to Sender\r\nMIME-Version: 1.0\r\n"
        f'Content-Type: multipart/report; report-type={report_type}; boundary="b"\r\n\r\n'
        f"{body}--b--\r\n"
    ).encode()


# --- classify -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "reply", "reason"),
    [
        (
            "5.7.1",
            "554 5.7.1 Service unavailable; Client host blocked using zen.spamhaus.org",
            "blocked",
        ),
        (
            "5.7.26",
            "550 5.7.26 Unauthenticated email is not accepted due to DMARC policy",
            "auth_failure",
        ),
        ("5.2.2", "552 5.2.2 mailbox full", "mailbox_full"),
        ("5.1.1", "550 5.1.1 user unknown", "user_unknown"),
        ("5.7.1", "554 5.7.1 This message was classified as spam", "spam_detected"),
        ("4.7.0", "421 4.7.0 Too many connections from your IP", "rate_limited"),
        ("5.1.1", "", "user_unknown"),
        ("5.1.2", "", "host_unknown"),
        ("5.7.1", "", "policy"),
        ("5.4.7", "", "expired"),
        ("5.0.0", "", "undefined"),
        ("", "550 Requested action not taken: mailbox unavailable", "user_unknown"),
        ("5.7.1", "550 5.7.1 Relaying denied", "relaying_denied"),
        ("5.3.4", "552 5.3.4 Message size exceeds fixed limit", "message_too_big"),
        ("5.2.1", "550 5.2.1 The email account that you tried to reach is disabled", "suspended"),
        ("5.7.1", "554 5.7.1 <a@b.test>: Recipient address rejected: Access denied", "policy"),
        ("5.1.1", "550 5.1.1 <a@b.test>: Recipient address rejected: b.test", "user_unknown"),
    ],
)
def test_classify_reads_text_before_status(status: str, reply: str, reason: str) -> None:
    found = classify(status=status, reply=reply)
    assert found is not None
    assert found.reason == reason, found.rule


def test_sender_side_refusals_are_never_hard() -> None:
    for reply in (
        "550 5.7.26 DMARC policy",
        "554 5.7.1 blocked using Spamhaus",
        "550 5.7.1 spam",
        "552 5.3.4 message too big",
        "550 5.7.1 relay denied",
    ):
        found = classify(status="", reply=reply)
        assert found is not None
        assert found.scope is Scope.SENDER and not found.hard, reply


def test_classify_keeps_the_evidence_and_skips_deliveries() -> None:
    found = classify(status="5.1.1", reply="550 5.1.1 No such user here")
    assert found is not None and found.hard and found.scope is Scope.RECIPIENT_PERMANENT
    assert found.rule == "text:user_unknown:unknown"
    assert classify(status="5.1.1", reply="", action="failed").rule == "status:5.1.1"  # type: ignore[union-attr]
    assert classify(status="2.0.0", action="delivered") is None
    assert classify(status="2.0.0", action="relayed") is None
    # A temporary "user unknown" (greylisting, a directory outage) is not for good.
    temporary = classify(status="4.1.1", reply="450 4.1.1 user unknown")
    assert temporary is not None and not temporary.hard


# --- RFC 3464 ---------------------------------------------------------------------------


def test_every_group_of_a_multi_recipient_dsn() -> None:
    raw = _report(
        "delivery-status",
        [
            ("text/plain", "Delivery failed."),
            (
                "message/delivery-status",
                "Final-Recipient: rfc822; first@example.test\r\nAction: failed\r\n"
                "Status: 5.1.1\r\nDiagnostic-Code: smtp; 550 5.1.1 User unknown\r\n\r\n"
                "Final-Recipient: rfc822; second@example.test\r\nAction: delayed\r\n"
                "Status: 4.2.2\r\nRemote-MTA: dns; mx.example.test\r\n"
                "Diagnostic-Code: smtp; 452 4.2.2 Mailbox full\r\n\r\n"
                "Original-Recipient: rfc822; third@example.test\r\n"
                "Final-Recipient: rfc822; third@sims-ms-daemon\r\nAction: failed\r\n"
                "Status: 5.7.1\r\n"
                "Diagnostic-Code: smtp; 554 5.7.1 blocked using b.barracudacentral.org",
            ),
        ],
    )
    read = parse(raw)
    assert read.kind is FeedbackKind.BOUNCE and read.format.startswith("rfc3464")
    got = {f.recipient: f for f in read.findings}
    assert list(got) == ["first@example.test", "second@example.test", "third@example.test"]
    assert got["first@example.test"].classification.reason is Reason.USER_UNKNOWN
    assert got["second@example.test"].classification.reason is Reason.MAILBOX_FULL
    assert got["second@example.test"].remote_mta == "mx.example.test"
    assert got["third@example.test"].classification.reason is Reason.BLOCKED


def test_a_success_dsn_is_delivered() -> None:
    raw = _report(
        "delivery-status",
        [
            (
                "message/delivery-status",
                "Reporting-MTA: dns; mx\r\n\r\nFinal-Recipient: rfc822; a@example.test\r\n"
                "Action: delivered\r\nStatus: 2.0.0",
            )
        ],
    )
    assert parse(raw).kind is FeedbackKind.DELIVERED


def test_a_bounce_without_a_dsn_part_is_read_from_its_text() -> None:
    raw = (
        b"From: Mail Delivery System <Mailer-Daemon@mx.example.test>\r\n"
        b"To: bounces@clinic.example\r\n"
        b"Subject: Mail delivery failed: returning message to sender\r\n"
        b"\r\nThis message was created automatically by mail delivery software.\r\n\r\n"
        b"A message that you sent could not be delivered to one or more of its\r\n"
        b"recipients. This is a permanent error. The following address(es) failed:\r\n\r\n"
        b"  patient@example.test\r\n    SMTP error from remote mail server after RCPT TO:"
        b"<patient@example.test>:\r\n    550 5.1.1 <patient@example.test>: Recipient address"
        b" rejected: User unknown in virtual mailbox table\r\n\r\n"
        b"------ This is a copy of the message, including all the headers. ------\r\n"
        b"To: other@example.test\r\nFrom: news@clinic.example\r\n\r\nHello\r\n"
    )
    read = parse(raw)
    assert read.kind is FeedbackKind.BOUNCE and read.format == "exim"
    (finding,) = read.findings
    assert finding.recipient == "patient@example.test"
    assert finding.status == "5.1.1" and finding.classification.hard


# --- complaints and reports ----------------------------------------------------------------


def test_arf_complaint_names_the_recipient() -> None:
    raw = _report(
        "feedback-report",
        [
            ("text/plain", "This is an abuse report"),
            (
                "message/feedback-report",
                "Feedback-Type: abuse\r\nUser-Agent: Yahoo!-Mail-Feedback/2.0\r\nVersion: 1\r\n"
                "Original-Rcpt-To: patient@example.test\r\nReporting-MTA: dns; mail.yahoo.com",
            ),
            ("text/rfc822-headers", "From: news@clinic.example\r\nTo: patient@example.test"),
        ],
    )
    read = parse(raw)
    assert read.kind is FeedbackKind.COMPLAINT and read.feedback_type == "abuse"
    assert read.complained_recipients == ("patient@example.test",)
    assert read.provider == "yahoo.com"


def test_auth_failure_reports_are_not_complaints() -> None:
    raw = _report(
        "feedback-report",
        [
            ("text/plain", "This is an authentication failure report"),
            (
                "message/feedback-report",
                "Feedback-Type: auth-failure\r\nVersion: 1\r\nAuth-Failure: dmarc\r\n"
                "Reported-Domain: clinic.example",
            ),
            ("text/rfc822-headers", "From: news@clinic.example\r\nTo: patient@example.test"),
        ],
    )
    read = parse(raw)
    assert read.kind is FeedbackKind.AUTH_FAILURE_REPORT
    assert read.feedback_type == "auth-failure"


def test_jmrp_and_header_only_abuse_reports_are_complaints() -> None:
    jmrp = (
        b"From: staff@hotmail.com\r\nTo: fbl@clinic.example\r\nSubject: complaint about message"
        b" from 192.0.2.1\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
        b"--b\r\nContent-Type: text/plain\r\n\r\nJMRP report\r\n--b\r\n"
        b"Content-Type: message/rfc822\r\n\r\nX-HmXmrOriginalRecipient: <patient@outlook.test>\r\n"
        b"From: news@clinic.example\r\nTo: patient@outlook.test\r\n\r\nhello\r\n--b--\r\n"
    )
    read = parse(jmrp)
    assert read.kind is FeedbackKind.COMPLAINT and read.format == "jmrp"
    assert read.complained_recipients == ("patient@outlook.test",)
    headers_only = (
        b"From: abuse@isp.example\r\nTo: postmaster@clinic.example\r\nSubject: Abuse report\r\n"
        b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
        b"--b\r\nContent-Type: text/plain\r\n\r\nSpam received\r\n--b\r\n"
        b"Content-Type: text/rfc822-headers\r\n\r\nFrom: news@clinic.example\r\n"
        b"To: member@isp.example\r\nSubject: News\r\n--b--\r\n"
    )
    read = parse(headers_only)
    assert read.kind is FeedbackKind.COMPLAINT
    assert read.complained_recipients == ("member@isp.example",)


def _dmarc_mail(attachment: bytes, ctype: str, filename: str) -> bytes:
    import base64  # only this helper encodes attachments

    encoded = base64.encodebytes(attachment).decode()
    return (
        "From: noreply-dmarc-support@google.com\r\nTo: dmarc@clinic.example\r\n"
        "Subject: Report domain: clinic.example Submitter: google.com Report-ID: 1\r\n"
        "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
        f"--b\r\nContent-Type: {ctype}\r\nContent-Transfer-Encoding: base64\r\n"
        f'Content-Disposition: attachment; filename="{filename}"\r\n\r\n{encoded}\r\n--b--\r\n'
    ).encode()


XML = (
    b'<?xml version="1.0"?><feedback><report_metadata><org_name>x</org_name>'
    b"</report_metadata></feedback>"
)


def test_dmarc_aggregate_reports_zip_and_gzip() -> None:
    assert parse(_dmarc_mail(gzip.compress(XML), "application/gzip", "r.xml.gz")).kind is (
        FeedbackKind.DMARC_REPORT
    )
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("r.xml", XML)
    assert parse(_dmarc_mail(buffer.getvalue(), "application/zip", "r.zip")).kind is (
        FeedbackKind.DMARC_REPORT
    )


def test_a_decompression_bomb_is_read_in_bounded_memory() -> None:
    bomb = gzip.compress(b"<feedback>" + b"\0" * 50_000_000, compresslevel=9)
    assert len(bomb) < 200_000
    start = time.monotonic()
    read = parse(_dmarc_mail(bomb, "application/gzip", "r.xml.gz"))
    assert read.kind is FeedbackKind.DMARC_REPORT
    assert time.monotonic() - start < 30  # generous: bounded, not a timing benchmark


# --- auto-replies -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        "Auto-Submitted: auto-replied\r\nSubject: Re: News",
        "X-Autoreply: yes\r\nSubject: Re: News",
        "X-Autorespond: yes\r\nSubject: Re: News",
        "Precedence: auto_reply\r\nSubject: Re: News",
        "Subject: Out of Office: News",
        "Subject: Automatic reply: News",
        "Subject: Abwesenheitsnotiz: News",
        "Subject: =?utf-8?q?R=C3=A9ponse_automatique?= : News",
        "Subject: Respuesta automática: News",
        "Subject: I am on vacation",
    ],
)
def test_auto_replies_are_never_bounces(headers: str) -> None:
    raw = (
        "Return-Path: <>\r\n"  # RFC 3834 §3.3: auto-replies go to the null sender too
        f"From: Patient <patient@example.test>\r\nTo: news@clinic.example\r\n{headers}\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n\r\n"
        "I am away until Monday; mail to colleague@example.test is not delivered to me.\r\n"
    ).encode()
    read = parse(raw)
    assert read.kind is FeedbackKind.AUTO_REPLY
    assert read.findings == ()


# --- what is not readable, and hostile input ---------------------------------------------


def test_plain_mail_is_unrecognized_and_non_mail_raises() -> None:
    assert parse(b"Subject: hi\r\n\r\nhello").kind is FeedbackKind.UNRECOGNIZED
    for junk in (b"", b"\x00\x01binary", b"<html><body>no</body></html>", b"   \r\n\r\n"):
        with pytest.raises(FeedbackError):
            parse(junk)
    with pytest.raises(FeedbackError):
        parse(b"Subject: big\r\n\r\n" + b"x" * (2 * 1024 * 1024))


def _hostile() -> dict[str, bytes]:
    deep = b"".join(
        f'Content-Type: multipart/mixed; boundary="b{i}"\r\n\r\n--b{i}\r\n'.encode()
        for i in range(3000)
    )
    many = b"".join(
        b"--b\r\nContent-Type: message/delivery-status\r\n\r\n"
        b"Final-Recipient: rfc822; x@example.test\r\nAction: failed\r\nStatus: 5.1.1\r\n"
        for _ in range(5000)
    )
    return {
        "deep nesting": b"From: a@b.test\r\nSubject: x\r\nMIME-Version: 1.0\r\n" + deep,
        "deep attached messages": b"From: a@b.test\r\nSubject: x\r\n"
        + b"Content-Type: message/rfc822\r\n\r\n" * 20_000
        + b"Subject: y\r\n\r\nbody",
        "many parts": b"From: MAILER-DAEMON@b.test\r\nSubject: x\r\nContent-Type: multipart/report;"
        b" boundary=b\r\n\r\n" + many + b"--b--\r\n",
        "huge header": b"From: MAILER-DAEMON@b.test\r\nSubject: "
        + b"a" * 1_500_000
        + b"\r\n\r\nbody",
        "many headers": b"".join(b"X-H%d: v\r\n" % i for i in range(60_000)) + b"\r\nbody",
        "bad charset": b"From: MAILER-DAEMON@b.test\r\nSubject: Undeliverable\r\nContent-Type: "
        b"text/plain; charset=x-no-such-charset\r\n\r\n\xff\xfe a@b.test 550 5.1.1 unknown\r\n",
        "bad base64": b"From: MAILER-DAEMON@b.test\r\nSubject: Undeliverable\r\nContent-Type: "
        b"text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\n!!!not*base64===\r\n",
        "bad encoded word": b"From: x@b.test\r\nSubject: =?no-such?B?////?= "
        b"=?utf-8?Q?=ZZ?=\r\n\r\nx",
        "address storm": b"From: MAILER-DAEMON@b.test\r\nSubject: failure notice\r\n\r\n"
        + b"".join(b"u%d@example.test 550 unknown\r\n" % i for i in range(40_000)),
        "regex stress": b"From: MAILER-DAEMON@b.test\r\nSubject: failure notice\r\n\r\n"
        + b"account " * 100_000
        + b"@" * 100_000,
    }


@pytest.mark.parametrize("name", list(_hostile()))
def test_hostile_mail_is_read_in_bounded_time(name: str) -> None:
    raw = _hostile()[name]
    assert len(raw) <= 2 * 1024 * 1024, name
    start = time.monotonic()
    read = parse(raw)
    assert time.monotonic() - start < 30, name  # generous bound: no runaway, not a benchmark
    assert len(read.findings) <= 100


def test_tokens_from_returned_headers_and_inline_quotes() -> None:
    token, other = "a" * 29, "b" * 29
    returned = _report(
        "delivery-status",
        [
            (
                "message/delivery-status",
                "Final-Recipient: rfc822; a@example.test\r\nAction: failed\r\nStatus: 5.1.1",
            ),
            (
                "message/rfc822",
                f"Return-Path: <bounces+{token}@clinic.example>\r\n"
                f"Message-ID: <{other}.1@clinic.example>\r\nSubject: News\r\n\r\nHello",
            ),
        ],
    )
    assert set(parse(returned).header_tokens) == {token, other}
    inline = (
        b"From: MAILER-DAEMON@mx.example.test\r\nTo: x@clinic.example\r\n"
        b"Subject: failure notice\r\n\r\nHi. This is the qmail-send program at mx.example.test.\r\n"
        b"<patient@example.test>:\r\nSorry, no mailbox here by that name. (#5.1.1)\r\n\r\n"
        b"--- Below this line is a copy of the message.\r\n\r\n"
        b"Return-Path: <bounces+" + token.encode() + b"@clinic.example>\r\nSubject: News\r\n"
    )
    read = parse(inline)
    assert read.format == "qmail" and read.header_tokens == (token,)
    assert [f.recipient for f in read.findings] == ["patient@example.test"]
    assert read.findings[0].classification.reason is Reason.USER_UNKNOWN


def test_an_address_named_alone_takes_the_reply_quoted_further_down() -> None:
    raw = (
        b"From: Mail Delivery Subsystem <mailer-daemon@googlemail.com>\r\n"
        b"To: news@clinic.example\r\nSubject: Delivery Status Notification (Failure)\r\n\r\n"
        b"Delivery to the following recipient failed permanently:\r\n\r\n"
        b"     patient@example.test\r\n\r\nTechnical details of permanent failure:\r\n"
        b"Google tried to deliver your message, but it was rejected by the server for the"
        b" recipient domain example.test by mx.example.test. [192.0.2.1].\r\n\r\n"
        b"The error that the other server returned was:\r\n"
        b"550 5.1.1 <patient@example.test>: Recipient address rejected: User unknown\r\n"
    )
    (finding,) = parse(raw).findings
    assert finding.recipient == "patient@example.test"
    assert finding.status == "5.1.1"
    assert finding.classification.reason is Reason.USER_UNKNOWN
