"""Demo data for ``make run`` (issue 20): the portal demo patient's reply gets a staff
answer with a PDF attached (Secure messages → Conversations), so the patient's thread
shows both sides; the demo Admin asked for portal-reply notifications by e-mail, and
the bell shows the reply and the finished demo campaign. Idempotent. Registered by
``portal/demo.py`` after the portal demo it builds on."""

from __future__ import annotations

from luxmail import notifications
from luxmail.actors import Actor, user_of
from portal.models import PortalMessage, PortalStaffReply
from portal.services import conversations

ANSWER = (
    "Of course. We can offer Tuesday at 2:30 pm or Thursday at 4:00 pm; the attached "
    "sheet lists both with directions. Reply here with the one you prefer."
)


def demo_pdf(lines: list[str]) -> bytes:
    """A small valid one-page PDF showing ``lines`` (plain ASCII text, Helvetica)."""
    text = (
        "BT /F1 14 Tf 72 720 Td 18 TL "
        + " ".join(
            "(" + line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)") + ") '"
            for line in lines
        )
        + " ET"
    )
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources "
        b"<< /Font << /F1 5 0 R >> >> /Contents 4 0 R >>",
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(text), text.encode()),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


def populate(*, actor: Actor) -> None:
    portal_message = (
        PortalMessage.objects.filter(replies__isnull=False, revoked_at__isnull=True)
        .order_by("id")
        .first()
    )
    if (
        portal_message is None
        or PortalStaffReply.objects.filter(portal_message=portal_message).exists()
    ):
        return
    attachment = demo_pdf(
        [
            "Demo Health - appointment options",
            "Tuesday 2:30 pm, Building B, 2nd floor",
            "Thursday 4:00 pm, Building B, 2nd floor",
        ]
    )
    conversations.conversation_reply_create(
        portal_message=portal_message,
        actor=actor,
        body=ANSWER,
        files=[("appointment-options.pdf", attachment)],
    )
    user = user_of(actor)
    if user is not None:
        conversations.conversation_assign(portal_message=portal_message, assignee=user, actor=actor)
        notifications.preferences_set(
            user=user, kinds=["portal_reply", "campaign_auto_paused"], actor=actor
        )
