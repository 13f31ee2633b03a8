"""Reporting writes: proxy ranges and outbound webhooks.

One module per entity or use case.

Every service owns its transaction, audits what an Admin changed, and enqueues
Celery work with ``transaction.on_commit`` (ids only). See docs/tracking.md
(proxy ranges) and docs/api.md#webhooks (webhooks).

Re-exported here by name because many callers (views, API, tasks, tests) use
``reporting.services.<name>``; new code may import from the submodule.
"""

from reporting.services.proxy_ranges import (
    ProxyRangeLoadError,
    ReplaceResult,
    proxy_range_save,
    proxy_ranges_changed,
    proxy_ranges_delete,
    proxy_ranges_replace,
    proxy_ranges_set_active,
)
from reporting.services.report_schedules import (
    ReportScheduleError,
    report_schedule_create,
    report_schedule_delete,
    report_schedules_send_due,
)
from reporting.services.tracking import (
    TrackingOptionsError,
    portal_read_record,
    rollups_rebuild,
    tracking_events_ingest,
    tracking_options_set,
)
from reporting.services.webhook_delivery import (
    _claim,
    _record,
    webhook_delivery_attempt,
    webhook_delivery_redeliver,
    webhook_disabled_notify,
    webhook_dispatch_due,
    webhook_emit,
    webhook_emit_many,
    webhook_send_test,
    webhook_subscribers,
)
from reporting.services.webhook_endpoints import (
    EVENT_TYPES,
    POLICY,
    IssuedSecret,
    WebhookConfigError,
    WebhookPolicy,
    _name,
    webhook_endpoint_create,
    webhook_endpoint_delete,
    webhook_endpoint_disable,
    webhook_endpoint_enable,
    webhook_endpoint_rotate_secret,
    webhook_endpoint_update,
    webhook_event_types_validate,
    webhook_url_validate,
)

__all__ = [
    "EVENT_TYPES",
    "POLICY",
    "IssuedSecret",
    "ProxyRangeLoadError",
    "ReplaceResult",
    "ReportScheduleError",
    "TrackingOptionsError",
    "WebhookConfigError",
    "WebhookPolicy",
    "_claim",
    "_name",
    "_record",
    "portal_read_record",
    "proxy_range_save",
    "proxy_ranges_changed",
    "proxy_ranges_delete",
    "proxy_ranges_replace",
    "proxy_ranges_set_active",
    "report_schedule_create",
    "report_schedule_delete",
    "report_schedules_send_due",
    "rollups_rebuild",
    "tracking_events_ingest",
    "tracking_options_set",
    "webhook_delivery_attempt",
    "webhook_delivery_redeliver",
    "webhook_disabled_notify",
    "webhook_dispatch_due",
    "webhook_emit",
    "webhook_emit_many",
    "webhook_endpoint_create",
    "webhook_endpoint_delete",
    "webhook_endpoint_disable",
    "webhook_endpoint_enable",
    "webhook_endpoint_rotate_secret",
    "webhook_endpoint_update",
    "webhook_event_types_validate",
    "webhook_send_test",
    "webhook_subscribers",
    "webhook_url_validate",
]
