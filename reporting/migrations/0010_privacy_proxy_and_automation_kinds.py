"""Privacy-proxy opens and automated events by kind (docs/tracking.md#labels).

Schema: ``Event.label`` grows to hold ``privacy_proxy``, ``Event.automation_kind`` is
new, and the per-message rows and every rollup gain privacy-proxy and per-kind columns.

Data: events stored under the old ruleset as automated ``apple_mpp`` opens become
``privacy_proxy``; automated events get the kind their reason names (the mapping is
frozen here, a copy of ``reporting.ingest.KIND_BY_REASON`` as of this migration). The
label ranks of ``MessageStat`` changed (privacy_proxy sits between automated and
unknown), so the triggers are reinstalled and every report row is rebuilt from the
events (``rollups.rebuild``, as ``manage.py rebuild_rollups`` does).
"""

from django.db import migrations, models

KIND_BY_REASON = {
    "scanner": (
        "security_scanner_agent", "gateway_network", "click_too_soon", "rapid_multi_link",
        "all_links_clicked", "multi_ip_burst", "honeypot", "sweep_member", "head_request",
        "non_get_method", "headless_browser_agent", "image_proxy_click",
    ),
    "link_preview": ("link_preview_agent",),
    "crawler": ("bot_agent", "http_library_agent", "missing_user_agent", "bare_user_agent"),
    "prefetch": ("prefetch_header", "gmail_prefetch"),
}  # fmt: skip


def _forward(apps, schema_editor):
    # The live rollup code: its trigger SQL and rebuild match the schema just migrated to.
    from reporting import rollups

    event = apps.get_model("reporting", "Event")
    event.objects.filter(label="automated", kind="open", reason="apple_mpp").update(
        label="privacy_proxy"
    )
    for kind, reasons in KIND_BY_REASON.items():
        event.objects.filter(label="automated", automation_kind="", reason__in=reasons).update(
            automation_kind=kind
        )
    rollups.uninstall_triggers()
    rollups.install_triggers()
    rollups.rebuild()


def _backward(apps, schema_editor):
    event = apps.get_model("reporting", "Event")
    event.objects.filter(label="privacy_proxy", reason="apple_mpp").update(label="automated")
    event.objects.filter(label="privacy_proxy").update(label="unknown")
    apps.get_model("reporting", "EventRollup").objects.filter(label="privacy_proxy").delete()
    # Run ``manage.py rebuild_rollups`` with the older code afterwards.


class Migration(migrations.Migration):
    dependencies = [
        ("reporting", "0009_rebuild_with_implied_opens"),
    ]

    operations = [
        migrations.AddField(
            model_name="campaignrollup",
            name="clicks_auto_crawler",
            field=models.IntegerField(default=0),
        ),
        migrations.AddField(
            model_name="campaignrollup",
            name="clicks_auto_link_preview",
            field=models.IntegerField(default=0),
        ),
        migrations.AddField(
            model_name="campaignrollup",
            name="clicks_auto_prefetch",
            field=models.IntegerField(default=0),
        ),
        migrations.AddField(
            model_name="campaignrollup",
            name="clicks_auto_scanner",
            field=models.IntegerField(default=0),
        ),
        migrations.AddField(
            model_name="campaignrollup",
            name="opened_privacy_proxy",
            field=models.IntegerField(default=0),
        ),
        migrations.AddField(
            model_name="campaignrollup",
            name="opens_auto_crawler",
            field=models.IntegerField(default=0),
        ),
        migrations.AddField(
            model_name="campaignrollup",
            name="opens_auto_link_preview",
            field=models.IntegerField(default=0),
        ),
        migrations.AddField(
            model_name="campaignrollup",
            name="opens_auto_prefetch",
            field=models.IntegerField(default=0),
        ),
        migrations.AddField(
            model_name="campaignrollup",
            name="opens_auto_scanner",
            field=models.IntegerField(default=0),
        ),
        migrations.AddField(
            model_name="campaignrollup",
            name="opens_privacy_proxy",
            field=models.IntegerField(default=0),
        ),
        migrations.AddField(
            model_name="domaindayrollup",
            name="clicks_auto_crawler",
            field=models.IntegerField(default=0),
        ),
        migrations.AddField(
            model_name="domaindayrollup",
            name="clicks_auto_link_preview",
            field=models.IntegerField(default=0),
        ),
        migrations.AddField(
            model_name="domaindayrollup",
            name="clicks_auto_prefetch",
            field=models.IntegerField(default=0),
        ),
        migrations.AddField(
            model_name="domaindayrollup",
            name="clicks_auto_scanner",
            field=models.IntegerField(default=0),
        ),
        migrations.AddField(
            model_name="domaindayrollup",
            name="opened_privacy_proxy",
            field=models.IntegerField(default=0),
        ),
        migrations.AddField(
            model_name="domaindayrollup",
            name="opens_auto_crawler",
            field=models.IntegerField(default=0),
        ),
        migrations.AddField(
            model_name="domaindayrollup",
            name="opens_auto_link_preview",
            field=models.IntegerField(default=0),
        ),
        migrations.AddField(
            model_name="domaindayrollup",
            name="opens_auto_prefetch",
            field=models.IntegerField(default=0),
        ),
        migrations.AddField(
            model_name="domaindayrollup",
            name="opens_auto_scanner",
            field=models.IntegerField(default=0),
        ),
        migrations.AddField(
            model_name="domaindayrollup",
            name="opens_privacy_proxy",
            field=models.IntegerField(default=0),
        ),
        migrations.AddField(
            model_name="domainmonthrollup",
            name="clicks_auto_crawler",
            field=models.IntegerField(default=0),
        ),
        migrations.AddField(
            model_name="domainmonthrollup",
            name="clicks_auto_link_preview",
            field=models.IntegerField(default=0),
        ),
        migrations.AddField(
            model_name="domainmonthrollup",
            name="clicks_auto_prefetch",
            field=models.IntegerField(default=0),
        ),
        migrations.AddField(
            model_name="domainmonthrollup",
            name="clicks_auto_scanner",
            field=models.IntegerField(default=0),
        ),
        migrations.AddField(
            model_name="domainmonthrollup",
            name="opened_privacy_proxy",
            field=models.IntegerField(default=0),
        ),
        migrations.AddField(
            model_name="domainmonthrollup",
            name="opens_auto_crawler",
            field=models.IntegerField(default=0),
        ),
        migrations.AddField(
            model_name="domainmonthrollup",
            name="opens_auto_link_preview",
            field=models.IntegerField(default=0),
        ),
        migrations.AddField(
            model_name="domainmonthrollup",
            name="opens_auto_prefetch",
            field=models.IntegerField(default=0),
        ),
        migrations.AddField(
            model_name="domainmonthrollup",
            name="opens_auto_scanner",
            field=models.IntegerField(default=0),
        ),
        migrations.AddField(
            model_name="domainmonthrollup",
            name="opens_privacy_proxy",
            field=models.IntegerField(default=0),
        ),
        migrations.AddField(
            model_name="domainrollup",
            name="clicks_auto_crawler",
            field=models.IntegerField(default=0),
        ),
        migrations.AddField(
            model_name="domainrollup",
            name="clicks_auto_link_preview",
            field=models.IntegerField(default=0),
        ),
        migrations.AddField(
            model_name="domainrollup",
            name="clicks_auto_prefetch",
            field=models.IntegerField(default=0),
        ),
        migrations.AddField(
            model_name="domainrollup",
            name="clicks_auto_scanner",
            field=models.IntegerField(default=0),
        ),
        migrations.AddField(
            model_name="domainrollup",
            name="opened_privacy_proxy",
            field=models.IntegerField(default=0),
        ),
        migrations.AddField(
            model_name="domainrollup",
            name="opens_auto_crawler",
            field=models.IntegerField(default=0),
        ),
        migrations.AddField(
            model_name="domainrollup",
            name="opens_auto_link_preview",
            field=models.IntegerField(default=0),
        ),
        migrations.AddField(
            model_name="domainrollup",
            name="opens_auto_prefetch",
            field=models.IntegerField(default=0),
        ),
        migrations.AddField(
            model_name="domainrollup",
            name="opens_auto_scanner",
            field=models.IntegerField(default=0),
        ),
        migrations.AddField(
            model_name="domainrollup",
            name="opens_privacy_proxy",
            field=models.IntegerField(default=0),
        ),
        migrations.AddField(
            model_name="domaintotalrollup",
            name="clicks_auto_crawler",
            field=models.IntegerField(default=0),
        ),
        migrations.AddField(
            model_name="domaintotalrollup",
            name="clicks_auto_link_preview",
            field=models.IntegerField(default=0),
        ),
        migrations.AddField(
            model_name="domaintotalrollup",
            name="clicks_auto_prefetch",
            field=models.IntegerField(default=0),
        ),
        migrations.AddField(
            model_name="domaintotalrollup",
            name="clicks_auto_scanner",
            field=models.IntegerField(default=0),
        ),
        migrations.AddField(
            model_name="domaintotalrollup",
            name="opened_privacy_proxy",
            field=models.IntegerField(default=0),
        ),
        migrations.AddField(
            model_name="domaintotalrollup",
            name="opens_auto_crawler",
            field=models.IntegerField(default=0),
        ),
        migrations.AddField(
            model_name="domaintotalrollup",
            name="opens_auto_link_preview",
            field=models.IntegerField(default=0),
        ),
        migrations.AddField(
            model_name="domaintotalrollup",
            name="opens_auto_prefetch",
            field=models.IntegerField(default=0),
        ),
        migrations.AddField(
            model_name="domaintotalrollup",
            name="opens_auto_scanner",
            field=models.IntegerField(default=0),
        ),
        migrations.AddField(
            model_name="domaintotalrollup",
            name="opens_privacy_proxy",
            field=models.IntegerField(default=0),
        ),
        migrations.AddField(
            model_name="domainweekrollup",
            name="clicks_auto_crawler",
            field=models.IntegerField(default=0),
        ),
        migrations.AddField(
            model_name="domainweekrollup",
            name="clicks_auto_link_preview",
            field=models.IntegerField(default=0),
        ),
        migrations.AddField(
            model_name="domainweekrollup",
            name="clicks_auto_prefetch",
            field=models.IntegerField(default=0),
        ),
        migrations.AddField(
            model_name="domainweekrollup",
            name="clicks_auto_scanner",
            field=models.IntegerField(default=0),
        ),
        migrations.AddField(
            model_name="domainweekrollup",
            name="opened_privacy_proxy",
            field=models.IntegerField(default=0),
        ),
        migrations.AddField(
            model_name="domainweekrollup",
            name="opens_auto_crawler",
            field=models.IntegerField(default=0),
        ),
        migrations.AddField(
            model_name="domainweekrollup",
            name="opens_auto_link_preview",
            field=models.IntegerField(default=0),
        ),
        migrations.AddField(
            model_name="domainweekrollup",
            name="opens_auto_prefetch",
            field=models.IntegerField(default=0),
        ),
        migrations.AddField(
            model_name="domainweekrollup",
            name="opens_auto_scanner",
            field=models.IntegerField(default=0),
        ),
        migrations.AddField(
            model_name="domainweekrollup",
            name="opens_privacy_proxy",
            field=models.IntegerField(default=0),
        ),
        migrations.AddField(
            model_name="event",
            name="automation_kind",
            field=models.CharField(
                blank=True,
                choices=[
                    ("scanner", "Security scanner"),
                    ("link_preview", "Link preview"),
                    ("crawler", "Crawler / bot"),
                    ("prefetch", "Prefetch"),
                ],
                default="",
                max_length=16,
            ),
        ),
        migrations.AddField(
            model_name="messagestat",
            name="clicks_auto_crawler",
            field=models.IntegerField(db_default=0, default=0),
        ),
        migrations.AddField(
            model_name="messagestat",
            name="clicks_auto_link_preview",
            field=models.IntegerField(db_default=0, default=0),
        ),
        migrations.AddField(
            model_name="messagestat",
            name="clicks_auto_prefetch",
            field=models.IntegerField(db_default=0, default=0),
        ),
        migrations.AddField(
            model_name="messagestat",
            name="clicks_auto_scanner",
            field=models.IntegerField(db_default=0, default=0),
        ),
        migrations.AddField(
            model_name="messagestat",
            name="opens_auto_crawler",
            field=models.IntegerField(db_default=0, default=0),
        ),
        migrations.AddField(
            model_name="messagestat",
            name="opens_auto_link_preview",
            field=models.IntegerField(db_default=0, default=0),
        ),
        migrations.AddField(
            model_name="messagestat",
            name="opens_auto_prefetch",
            field=models.IntegerField(db_default=0, default=0),
        ),
        migrations.AddField(
            model_name="messagestat",
            name="opens_auto_scanner",
            field=models.IntegerField(db_default=0, default=0),
        ),
        migrations.AddField(
            model_name="messagestat",
            name="opens_privacy_proxy",
            field=models.IntegerField(db_default=0, default=0),
        ),
        migrations.AddField(
            model_name="rollupjournal",
            name="clicks_auto_crawler",
            field=models.IntegerField(default=0),
        ),
        migrations.AddField(
            model_name="rollupjournal",
            name="clicks_auto_link_preview",
            field=models.IntegerField(default=0),
        ),
        migrations.AddField(
            model_name="rollupjournal",
            name="clicks_auto_prefetch",
            field=models.IntegerField(default=0),
        ),
        migrations.AddField(
            model_name="rollupjournal",
            name="clicks_auto_scanner",
            field=models.IntegerField(default=0),
        ),
        migrations.AddField(
            model_name="rollupjournal",
            name="opened_privacy_proxy",
            field=models.IntegerField(default=0),
        ),
        migrations.AddField(
            model_name="rollupjournal",
            name="opens_auto_crawler",
            field=models.IntegerField(default=0),
        ),
        migrations.AddField(
            model_name="rollupjournal",
            name="opens_auto_link_preview",
            field=models.IntegerField(default=0),
        ),
        migrations.AddField(
            model_name="rollupjournal",
            name="opens_auto_prefetch",
            field=models.IntegerField(default=0),
        ),
        migrations.AddField(
            model_name="rollupjournal",
            name="opens_auto_scanner",
            field=models.IntegerField(default=0),
        ),
        migrations.AddField(
            model_name="rollupjournal",
            name="opens_privacy_proxy",
            field=models.IntegerField(default=0),
        ),
        migrations.AlterField(
            model_name="event",
            name="label",
            field=models.CharField(
                choices=[
                    ("human", "Human"),
                    ("unknown", "Unknown"),
                    ("privacy_proxy", "Privacy proxy"),
                    ("automated", "Automated"),
                ],
                max_length=16,
            ),
        ),
        migrations.AlterField(
            model_name="eventrollup",
            name="label",
            field=models.CharField(max_length=16),
        ),
        migrations.RunPython(_forward, _backward),
    ]
