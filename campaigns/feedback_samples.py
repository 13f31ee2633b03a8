"""Feedback mail as real MTAs and providers send it, for the demo (``make run``) and the
tests (shapes of public corpora: Postfix,
McAfee/Trellix gateways, Gmail, an ISP behind Spamhaus, Yahoo/AOL-style ARF, an RFC 6591
auth-failure report, an Exchange out-of-office). Hand-written here from the RFC layouts
and the reply texts those systems use; only example.test/example.net hosts.

Each builder takes the VERP address the report is sent to, the original headers of the
message LuxMail sent (``text/rfc822-headers``), and the recipient's address.
"""

from __future__ import annotations


def _dsn(
    *,
    verp: str,
    headers: str,
    groups: list[str],
    reporting_mta: str,
    sender: str = "MAILER-DAEMON@mx.example.net",
    subject: str = "Undelivered Mail Returned to Sender",
    human: str = "This is the mail system at host mx.example.net.",
) -> bytes:
    per_recipient = "\r\n\r\n".join(group.strip().replace("\n", "\r\n") for group in groups)
    return (
        f"Return-Path: <>\r\nFrom: Mail Delivery System <{sender}>\r\n"
        f"To: {verp}\r\nSubject: {subject}\r\n"
        "Auto-Submitted: auto-replied\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status;\r\n\tboundary="DSN.b0"\r\n'
        "\r\n--DSN.b0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n"
        f"{human}\r\n\r\nI'm sorry to have to inform you that your message could not\r\n"
        "be delivered to one or more recipients.\r\n"
        "\r\n--DSN.b0\r\nContent-Type: message/delivery-status\r\n\r\n"
        f"Reporting-MTA: dns; {reporting_mta}\r\n"
        "Arrival-Date: Sun, 6 Dec 2026 10:00:00 +0000\r\n\r\n"
        f"{per_recipient}\r\n"
        "\r\n--DSN.b0\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        f"{headers}\r\n"
        "--DSN.b0--\r\n"
    ).encode()


def multi_group_user_unknown(*, verp: str, headers: str, recipient: str) -> bytes:
    """A McAfee/Trellix-style gateway DSN: two per-recipient groups, ours first (the
    group the old parser skipped), 5.1.1 user unknown."""
    return _dsn(
        verp=verp,
        headers=headers,
        reporting_mta="mx1.gateway.example.net",
        sender="postmaster@gateway.example.net",
        subject="Delivery Status Notification (Failure)",
        human="Delivery has failed to these recipients or groups.",
        groups=[
            f"Original-Recipient: rfc822;{recipient}\nFinal-Recipient: rfc822;{recipient}\n"
            "Action: failed\nStatus: 5.1.1\nRemote-MTA: dns; mail.example.net\n"
            f"Diagnostic-Code: smtp; 550 5.1.1 <{recipient}>: Recipient address rejected: "
            "User unknown in virtual mailbox table",
            "Final-Recipient: rfc822;someone.else@example.net\nAction: failed\nStatus: 5.1.1\n"
            "Diagnostic-Code: smtp; 550 5.1.1 User unknown",
        ],
    )


def dmarc_refusal(*, verp: str, headers: str, recipient: str) -> bytes:
    """Gmail refusing unauthenticated mail (5.7.26), relayed back by Postfix."""
    return _dsn(
        verp=verp,
        headers=headers,
        reporting_mta="relay.clinic.example",
        groups=[
            f"Final-Recipient: rfc822; {recipient}\nOriginal-Recipient: rfc822;{recipient}\n"
            "Action: failed\nStatus: 5.7.26\nRemote-MTA: dns; gmail-smtp-in.l.google.com\n"
            "Diagnostic-Code: smtp; 550-5.7.26 This mail is unauthenticated, which poses a\n"
            " security risk to the sender and Gmail users, and has been blocked. The\n"
            " sender must authenticate with at least one of SPF or DKIM. For this\n"
            " message, DKIM checks did not pass and SPF check for [clinic.example] did\n"
            " not pass with ip: [192.0.2.10]. 550 5.7.26 Learn more at\n"
            " https://support.google.com/mail/answer/81126#authentication - gsmtp"
        ],
    )


def spamhaus_block(
    *, verp: str, headers: str, recipient: str, mta: str = "mx1.bigisp.example"
) -> bytes:
    """An ISP refusing the sending IP listed on Spamhaus ZEN (5.7.1)."""
    return _dsn(
        verp=verp,
        headers=headers,
        reporting_mta="relay.clinic.example",
        groups=[
            f"Final-Recipient: rfc822; {recipient}\nAction: failed\nStatus: 5.7.1\n"
            f"Remote-MTA: dns; {mta}\n"
            "Diagnostic-Code: smtp; 554 5.7.1 Service unavailable; Client host\n"
            " [192.0.2.10] blocked using zen.spamhaus.org;\n"
            " https://www.spamhaus.org/query/ip/192.0.2.10"
        ],
    )


def mailbox_full(*, verp: str, headers: str, recipient: str) -> bytes:
    """The relay gave up: the recipient's mailbox stayed over quota (4.2.2) until the
    message's queue lifetime ran out (a delay warning before it does not count)."""
    return _dsn(
        verp=verp,
        headers=headers,
        reporting_mta="relay.clinic.example",
        subject="Undelivered Mail Returned to Sender",
        groups=[
            f"Final-Recipient: rfc822; {recipient}\nAction: failed\nStatus: 4.2.2\n"
            "Remote-MTA: dns; mx.mailhost.example.net\n"
            "Diagnostic-Code: smtp; 452 4.2.2 The email account that you tried to reach is\n"
            " over quota. Please direct the recipient to https://support.example.net/quota"
        ],
    )


def arf_abuse(*, verp: str, headers: str, recipient: str) -> bytes:
    """A Yahoo/AOL-style feedback-loop complaint (RFC 5965) quoting the whole message."""
    return (
        "From: feedbackloop@fbl.mail.example.net\r\n"
        "To: fbl@clinic.example\r\n"
        "Subject: FW: Our evening hours\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=feedback-report; boundary="arf.1"\r\n'
        "\r\n--arf.1\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n"
        "This is an email abuse report for an email message received from IP\r\n"
        "192.0.2.10 on Sun, 6 Dec 2026 10:00:00 +0000.\r\n"
        "\r\n--arf.1\r\nContent-Type: message/feedback-report\r\n\r\n"
        "Feedback-Type: abuse\r\nUser-Agent: Yahoo!-Mail-Feedback/2.0\r\nVersion: 1\r\n"
        f"Original-Mail-From: <{verp}>\r\nOriginal-Rcpt-To: <{recipient}>\r\n"
        "Arrival-Date: Sun, 6 Dec 2026 10:00:00 +0000\r\n"
        "Source-IP: 192.0.2.10\r\nReported-Domain: clinic.example\r\n"
        "\r\n--arf.1\r\nContent-Type: message/rfc822\r\nContent-Disposition: inline\r\n\r\n"
        f"{headers}\r\n\r\n(body removed)\r\n"
        "--arf.1--\r\n"
    ).encode()


def auth_failure_report(*, verp: str, headers: str, recipient: str) -> bytes:
    """An RFC 6591 authentication-failure report (ARF, Feedback-Type: auth-failure)."""
    return (
        "From: dmarc-noreply@reports.example.net\r\n"
        "To: dmarc-forensic@clinic.example\r\n"
        "Subject: FW: Authentication failure report for clinic.example\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=feedback-report; boundary="af.2"\r\n'
        "\r\n--af.2\r\nContent-Type: text/plain\r\n\r\n"
        "This is an authentication failure report for an email message received from\r\n"
        "IP 192.0.2.10.\r\n"
        "\r\n--af.2\r\nContent-Type: message/feedback-report\r\n\r\n"
        "Feedback-Type: auth-failure\r\nUser-Agent: OpenDMARC/1.4\r\nVersion: 1\r\n"
        f"Original-Mail-From: <{verp}>\r\nOriginal-Rcpt-To: <{recipient}>\r\n"
        "Auth-Failure: dkim\r\nDelivery-Result: reject\r\n"
        "DKIM-Domain: clinic.example\r\nDKIM-Selector: lux1\r\n"
        "Reported-Domain: clinic.example\r\nSource-IP: 192.0.2.10\r\n"
        "\r\n--af.2\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        f"{headers}\r\n"
        "--af.2--\r\n"
    ).encode()


def out_of_office(*, verp: str, headers: str, recipient: str) -> bytes:
    """An Exchange out-of-office reply sent to the return path (RFC 3834)."""
    return (
        f"From: Pat <{recipient}>\r\nTo: {verp}\r\n"
        "Subject: Automatic reply: Our evening hours\r\n"
        "Auto-Submitted: auto-replied\r\nX-Auto-Response-Suppress: All\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n\r\n"
        "I am out of the office until Monday.\r\n"
    ).encode()


def unreadable(*, verp: str, headers: str, recipient: str) -> bytes:
    """A home-grown bounce no parser reads: plain text, no DSN, no known phrasing."""
    return (
        f"From: robot@tiny-isp.example.net\r\nTo: {verp}\r\n"
        "Subject: message returned\r\nContent-Type: text/plain\r\n\r\n"
        "Hello, your letter came back. Contact our helpdesk.\r\n\r\n"
        f"{headers}\r\n"
    ).encode()
