"""Issue 17's "done when" on the demo data: the demo shows delivery proof and a legal
hold, ``retention_purge --dry-run`` and ``evidence_pack`` run on it, and the pack
verifies offline with the documented command."""

from __future__ import annotations

import io
import shutil
import subprocess
import zipfile

import pytest
from django.core.management import call_command

from campaigns import demo
from campaigns.evidence import pack
from campaigns.models import Campaign, DeliveryProof, Message
from contacts import demo as contacts_demo
from luxmail.models import HoldScope, LegalHold
from luxmail.testing import require

pytestmark = [pytest.mark.postgres, pytest.mark.smtp, pytest.mark.tools, pytest.mark.slow]


def test_commands_run_on_the_demo_data(postgres, admin, settings, tmp_path) -> None:
    settings.LUXMAIL_SINK_DIR = tmp_path / "mail"
    contacts_demo.populate(actor=admin)
    demo.populate(actor=admin)
    campaign = Campaign.objects.get(name=demo.CAMPAIGN)
    sent = Message.objects.filter(campaign=campaign, state="sent")
    proofs = DeliveryProof.objects.filter(message__in=sent)
    assert proofs.count() == sent.count() > 0
    assert all(p.tls_version.startswith("TLS") and p.cert_verified for p in proofs)
    hold = LegalHold.objects.get(scope=HoldScope.CONTACT, released_at=None)

    out = io.StringIO()
    call_command("retention_purge", "--dry-run", stdout=out)
    assert "Dry run: nothing is deleted." in out.getvalue()
    assert f"contacts #{hold.object_id}" in out.getvalue()
    assert Message.objects.filter(campaign=campaign).count() == campaign.messages.count()

    require(bool(shutil.which("openssl") and shutil.which("sha256sum")), "needs openssl")
    target = tmp_path / "pack.zip"
    call_command("evidence_pack", str(campaign.pk), "-o", str(target), stdout=io.StringIO())
    with zipfile.ZipFile(target) as archive:
        archive.extractall(tmp_path / "pack")
    folder = tmp_path / "pack" / pack.folder(campaign)
    checked = subprocess.run(
        ["bash", "-c", pack.VERIFY_COMMAND],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
