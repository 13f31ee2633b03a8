"""Sample DSN (RFC 3464) and ARF (RFC 5965) documents as relays produce them."""

from __future__ import annotations


def dsn(
    *,
    to: str,
    original_headers: str,
    status: str = "5.1.1",
    action: str = "failed",
    diagnostic: str = "",
) -> bytes:
    # The reply text is evidence too (the classifier reads it before the status), so by
    # default it says what the status says.
    diagnostic = diagnostic or ("mailbox unknown" if status.startswith("5.1.") else "refused")
    return (
        "From: MAILER-DAEMON@mx.example.test\r\n"
        f"To: {to}\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="b1"\r\n'
        "\r\n"
        "--b1\r\n"
        "Content-Type: text/plain\r\n\r\n"
        "Your message could not be delivered.\r\n"
        "--b1\r\n"
        "Content-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.example.test\r\n"
        "\r\n"
        "Final-Recipient: rfc822; someone@example.test\r\n"
        f"Action: {action}\r\n"
        f"Status: {status}\r\n"
        f"Diagnostic-Code: smtp; 550 {status} <someone@example.test>: {diagnostic}\r\n"
        "\r\n"
        "--b1\r\n"
        "Content-Type: text/rfc822-headers\r\n\r\n"
        f"{original_headers}\r\n"
        "--b1--\r\n"
    ).encode()


def arf(*, original_headers: str) -> bytes:
    return (
        "From: fbl@isp.example.test\r\n"
        "To: abuse@clinic.example\r\n"
        "Subject: complaint\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=feedback-report; boundary="b2"\r\n'
        "\r\n"
        "--b2\r\n"
        "Content-Type: text/plain\r\n\r\n"
        "This is an abuse report.\r\n"
        "--b2\r\n"
        "Content-Type: message/feedback-report\r\n\r\n"
        "Feedback-Type: abuse\r\n"
        "User-Agent: ISP-FBL/1.0\r\n"
        "Version: 1\r\n"
        "\r\n"
        "--b2\r\n"
        "Content-Type: text/rfc822-headers\r\n\r\n"
        f"{original_headers}\r\n"
        "--b2--\r\n"
    ).encode()
