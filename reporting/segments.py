"""Engagement conditions for segments: opened / clicked / did not open campaign X.

Registered in ``contacts.segments``' registry when the app loads
(``ReportingConfig.ready``). They read the per-message report rows
(``reporting_messagestat``), so a segment with them is still one SQL query. What
counts as an open or a click follows the organization's setting (by default human
events, and unknown ones when chosen), the same rule as the reports: a contact whose
message only Apple's privacy proxy or a link scanner fetched has not "opened".
"""

from __future__ import annotations

from typing import Any

from django.db.models import Q

from campaigns.models import Campaign, Message
from contacts import segments
from reporting.models import LABEL_RANK
from reporting.reports import Counting

OPS = ("eq", "ne", "in", "not_in")


def _campaign_id(value: Any) -> int:

    if isinstance(value, bool) or not isinstance(value, int | str):
        raise segments.RuleValueError("give a campaign id")
    try:
        pk = int(value)
    except ValueError:
        raise segments.RuleValueError("give a campaign id (a number)") from None
    if not Campaign.objects.filter(pk=pk).exists():
        raise segments.RuleValueError(f"there is no campaign with id {pk}")
    return pk


def _validate(op: str, value: Any) -> Any:
    if op in {"in", "not_in"}:
        if not isinstance(value, list) or not value:
            raise segments.RuleValueError("give a non-empty list of campaign ids")
        if len(value) > segments.MAX_IN_VALUES:
            raise segments.RuleValueError(f"at most {segments.MAX_IN_VALUES} campaigns")
        return sorted({_campaign_id(item) for item in value})
    if isinstance(value, list | dict) or value is None:
        raise segments.RuleValueError("give a single campaign id")
    return _campaign_id(value)


def _ids(value: Any) -> list[int]:
    return list(value) if isinstance(value, list) else [int(value)]


def counted_ranks() -> list[int]:
    """The label ranks that count as engagement under the organization's setting."""

    return [LABEL_RANK[label] for label in Counting.from_settings().labels]


def _engaged(column: str) -> Any:
    def compile_(op: str, value: Any, ctx: segments.Context) -> Q:

        messages = Message.objects.filter(
            campaign_id__in=_ids(value), **{f"report_stat__{column}__in": counted_ranks()}
        ).values("contact_id")
        q = Q(pk__in=messages)
        return ~q if op in {"ne", "not_in"} else q

    return compile_


def _not_opened(op: str, value: Any, ctx: segments.Context) -> Q:

    delivered = Message.objects.filter(
        campaign_id__in=_ids(value), report_stat__state="sent"
    ).exclude(report_stat__open_label__in=counted_ranks())
    return Q(pk__in=delivered.values("contact_id"))


KINDS = (
    segments.ConditionKind(
        field="opened_campaign",
        label="Opened campaign",
        value_type="number",
        ops=OPS,
        validate=_validate,
        compile=_engaged("open_label"),
        group="Engagement",
        phi=False,
        help="Campaign id. Counts opens as the reports do (automated opens excluded when "
        "the organization says so); a click counts as an open.",
    ),
    segments.ConditionKind(
        field="clicked_campaign",
        label="Clicked in campaign",
        value_type="number",
        ops=OPS,
        validate=_validate,
        compile=_engaged("click_label"),
        group="Engagement",
        phi=False,
        help="Campaign id. Link scanners' clicks do not count when automated events are excluded.",
    ),
    segments.ConditionKind(
        field="not_opened_campaign",
        label="Received but did not open campaign",
        value_type="number",
        ops=("eq", "in"),
        validate=_validate,
        compile=_not_opened,
        group="Engagement",
        phi=False,
        help="Campaign id. Delivered (not bounced) and no open that counts.",
    ),
)


def register() -> None:
    for kind in KINDS:
        segments.register(kind)
