from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from campaigns.evidence import pack
from campaigns.models import Campaign


class Command(BaseCommand):
    help = (
        "Write a campaign's signed evidence pack (a zip) to FILE; check it offline with "
        "the command in its README.txt (docs/security.md 'Evidence packs')."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("campaign_id", type=int)
        parser.add_argument("-o", "--output", required=True, help="The zip file to write.")

    def handle(self, *args: Any, **options: Any) -> None:
        campaign = Campaign.objects.filter(pk=options["campaign_id"]).first()
        if campaign is None:
            raise CommandError(f"No campaign #{options['campaign_id']}.")
        path = Path(options["output"])
        with path.open("wb") as out:
            summary = pack.evidence_pack_write(
                campaign=campaign, out=out, actor="manage.py evidence_pack"
            )
        self.stdout.write(
            f"Wrote {path}: {summary.files} files, {summary.recipients} recipients, "
            f"signed by key {summary.key_fingerprint[:16]}…\n"
            f"Check it: unzip it, cd {pack.folder(campaign)} and run\n  {pack.VERIFY_COMMAND}"
        )
