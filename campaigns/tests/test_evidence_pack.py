"""Evidence packs (issue 17 §3): the archive's contents, the documented offline check
run for real with openssl and sha256sum, a tampered pack failing it, no PHI inside,
and the permission-checked, audited download."""

from __future__ import annotations

import io
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest
from django.core.management import call_command

from campaigns import services
from campaigns.evidence import pack
from campaigns.models import BounceEvent, Campaign, EvidenceKey
from campaigns.sending import delivery
from campaigns.tests.factories import make_campaign, make_contacts
from luxmail import audit
from luxmail.models import AuditEvent
from luxmail.testing import require

pytestmark = [pytest.mark.postgres, pytest.mark.smtp, pytest.mark.tools, pytest.mark.django_db]


def _tools() -> None:
    require(bool(shutil.which("openssl") and shutil.which("sha256sum")), "needs openssl, sha256sum")


def _documented_command() -> str:
    """The one line docs/security.md gives auditors (kept equal to pack.VERIFY_COMMAND)."""
    docs = (Path(__file__).resolve().parents[2] / "docs" / "security.md").read_text()
    assert pack.VERIFY_COMMAND in docs
    return pack.VERIFY_COMMAND


def _verify(folder: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-c", _documented_command()],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture
def sent_campaign(postgres, sink, admin) -> Campaign:
    ids = make_contacts(4, first_name="Zebulon")
    campaign = make_campaign(contact_ids=ids, actor=admin)
    services.campaign_start(campaign=campaign, actor=admin)
    delivery.send_batch(campaign_id=campaign.pk, limit=50)
    message = campaign.messages.order_by("pk").first()
    audit.record(
        "recipient.unsubscribe",
        actor="portal-recipient",
        target=message.contact,
        details={"message_id": message.pk, "campaign_id": campaign.pk, "method": "one_click"},
    )
    BounceEvent.objects.create(
        message=message, contact=message.contact, kind="complaint", source="api", suppressed=True
    )
    return campaign


def _extract(zip_path: Path, into: Path) -> Path:
    with zipfile.ZipFile(zip_path) as archive:
        archive.extractall(into)
    (folder,) = [p for p in into.iterdir() if p.is_dir()]
    return folder


def test_pack_verifies_offline_and_a_tampered_one_fails(sent_campaign, tmp_path) -> None:
    _tools()
    out = tmp_path / "pack.zip"
    call_command("evidence_pack", str(sent_campaign.pk), "-o", str(out), stdout=io.StringIO())
    folder = _extract(out, tmp_path / "x")
    assert folder.name == f"evidence-campaign-{sent_campaign.pk}"
    names = {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()}
    assert {
        "README.txt",
        "campaign.json",
        "template/subject.txt",
        "template/body.html",
        "audience.json",
        "recipients.csv",
        "delivery.csv",
        "unsubscribes_complaints.csv",
        "audit.jsonl",
        "pubkey.pem",
        "MANIFEST",
        "MANIFEST.sig",
    } <= names
    ok = _verify(folder)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "Signature Verified Successfully" in ok.stdout

    recipients = (folder / "recipients.csv").read_text().splitlines()
    assert len(recipients) == 5 and "marketing" in recipients[1]
    assert all(row.split(",")[6] for row in recipients[1:])  # a consent id per recipient
    opt_outs = (folder / "unsubscribes_complaints.csv").read_text()
    assert "unsubscribe" in opt_outs and "complaint" in opt_outs
    assert "campaign.start" in (folder / "audit.jsonl").read_text()
    key = EvidenceKey.objects.get(retired_at__isnull=True)
    assert (folder / "pubkey.pem").read_text() == key.public_pem
    # No PHI: neither names nor addresses.
    for path in folder.rglob("*"):
        if path.is_file() and path.name != "MANIFEST.sig":
            text = path.read_text()
            assert "Zebulon" not in text and "@example.test" not in text, path

    # Change one recipient line: the hash check fails.
    tampered = tmp_path / "tampered"
    shutil.copytree(folder, tampered)
    delivery_csv = tampered / "delivery.csv"
    delivery_csv.write_text(delivery_csv.read_text().replace("sent", "failed", 1))
    bad = _verify(tampered)
    assert bad.returncode != 0
    assert "FAILED" in bad.stdout + bad.stderr

    # Rewrite MANIFEST to match the change: now the signature fails.
    import hashlib

    manifest = tampered / "MANIFEST"
    lines = [
        f"{hashlib.sha256((tampered / name).read_bytes()).hexdigest()}  {name}"
        for _, name in (line.split("  ", 1) for line in manifest.read_text().splitlines())
    ]
    manifest.write_text("\n".join(lines) + "\n")
    forged = _verify(tampered)
    assert forged.returncode != 0
    assert "Signature Verified Successfully" not in forged.stdout


def test_download_button_is_permission_checked_and_audited(sent_campaign, staff_client) -> None:
    marketer = staff_client("Marketer")
    assert marketer.post(f"/campaigns/{sent_campaign.pk}/evidence-pack/").status_code == 403
    officer = staff_client("Compliance Officer")
    page = officer.get(f"/campaigns/{sent_campaign.pk}/").content.decode()
    assert "Download evidence pack" in page
    response = officer.post(f"/campaigns/{sent_campaign.pk}/evidence-pack/")
    assert response.status_code == 200
    assert response["Content-Disposition"].startswith("attachment")
    data = b"".join(response.streaming_content)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert f"evidence-campaign-{sent_campaign.pk}/MANIFEST.sig" in archive.namelist()
    event = AuditEvent.objects.filter(action="evidence.export").latest("id")
    assert event.actor_id == officer.user.pk
    assert event.details["campaign_id"] == sent_campaign.pk
    assert officer.get(f"/campaigns/{sent_campaign.pk}/evidence-pack/").status_code == 405
