"""Reading the mail that receivers send back: bounces (RFC 3464 DSNs and the common
non-standard formats), complaints (RFC 5965 ARF and its variants), authentication-failure
and DMARC reports, and auto-replies.

Pure: bytes in, :class:`~campaigns.sending.feedback.types.Feedback` out, no database.
:mod:`campaigns.sending.bounces` applies what is read (events, suppression, sender health).
"""
