"""``portal.demo.populate`` is idempotent: a portal message with a reply, and a PGP message."""

from __future__ import annotations

import pytest

from campaigns.models import Message, OrgSigningKey
from luxmail import crypto
from portal import conversation_demo, demo
from portal.attachments import attachment_check
from portal.models import PortalAttachment, PortalMessage, PortalReply, PortalStaffReply
from portal.tests.helpers import parse

pytestmark = [pytest.mark.postgres, pytest.mark.smtp, pytest.mark.django_db]


def test_demo_shows_the_portal_and_pgp_once(postgres, admin, settings, tmp_path):
    settings.LUXMAIL_SINK_DIR = tmp_path / "mail"
    settings.VAR_DIR = tmp_path
    demo.populate(actor=admin)
    portal_message = PortalMessage.objects.get()
    reply = PortalReply.objects.get(portal_message=portal_message)
    access = crypto.phi_access(actor=None, purpose="test")
    assert "afternoon" in crypto.reveal(reply, "body", access=access)
    channels = sorted(Message.objects.values_list("channel", flat=True))
    assert channels == ["pgp", "portal"]
    sent = sorted((tmp_path / "mail").glob("*.eml"))
    assert len(sent) == 2
    types = sorted(parse(p.read_bytes()).get_content_type() for p in sent)
    assert types == ["multipart/alternative", "multipart/encrypted"]
    assert (tmp_path / "demo-pgp-secret-key.asc").read_text().startswith("-----BEGIN PGP PRIVATE")
    signing = OrgSigningKey.objects.get(kind="pgp")  # the PGP message went out signed with it
    public = (tmp_path / "demo-org-signing-key.asc").read_text()
    assert public == signing.public and public.startswith("-----BEGIN PGP PUBLIC")
    demo.populate(actor=admin)
    assert PortalMessage.objects.count() == 1 and Message.objects.count() == 2
    assert len(list((tmp_path / "mail").glob("*.eml"))) == 2
    assert OrgSigningKey.objects.get().fingerprint == signing.fingerprint


def test_demo_conversation_has_a_staff_answer_with_a_pdf_once(postgres, admin, settings, tmp_path):
    settings.LUXMAIL_SINK_DIR = tmp_path / "mail"
    settings.VAR_DIR = tmp_path
    settings.LUXMAIL_CLAMAV_ADDRESS = ""
    demo.populate(actor=admin)
    conversation_demo.populate(actor=admin)
    conversation_demo.populate(actor=admin)
    reply = PortalStaffReply.objects.get()
    attachment = PortalAttachment.objects.get(staff_reply=reply)
    access = crypto.phi_access(actor=None, purpose="test")
    data = crypto.reveal(attachment, "content", access=access)
    assert attachment_check(name="x.pdf", data=data).content_type == "application/pdf"
    assert reply.portal_message.assigned_to == admin
