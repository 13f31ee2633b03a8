from django.apps import AppConfig

from luxmail import partitions


class CampaignsConfig(AppConfig):
    name = "campaigns"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # in ready(): these modules import models, loaded only now
        from campaigns import contact_filters, notification_hooks, retention
        from campaigns.contact_panel import bounces_panel
        from campaigns.models.sending import MESSAGE_FILLFACTOR
        from campaigns.scheduling import planner
        from campaigns.sending import hooks
        from campaigns.services import approvals
        from contacts import browse_sources, panels

        retention.register()  # messages and bounces in the retention purge
        partitions.register(
            partitions.PartitionedTable("campaigns_message", "queued_at", MESSAGE_FILLFACTOR)
        )
        panels.register(bounces_panel)  # the contact page lists bounces with their reasons
        browse_sources.register_bounce_source(contact_filters.SOURCE)  # bounce-reason filter
        approvals.connect()  # edits of segments and senders withdraw approvals
        notification_hooks.connect()  # finished campaigns and approval requests notify
        hooks.register_quiet_gate(planner.QUIET_GATE)  # quiet hours held at claim time
