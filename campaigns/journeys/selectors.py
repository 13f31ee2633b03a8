"""Reads of journeys: lists, the readable flow of a version, per-step statistics.

Statistics per step: *entered* (step runs), *waiting* (active enrollments at the step),
*sent* / *opened* / *clicked* (the step campaigns' report rows, counted as the reports
count them: the organization's human-engagement setting), *exited* and *goal reached*
(enrollments that ended at the step). No PHI: contacts appear as ids.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Count, Q, QuerySet

from campaigns.journeys import definition as d
from campaigns.models import (
    EmailTemplate,
    EnrollmentState,
    Journey,
    JourneyEnrollment,
    JourneyStep,
    JourneyStepCampaign,
    JourneyStepRun,
    JourneyVersion,
    SenderIdentity,
)
from contacts import segments
from contacts.models import Contact, ContactList, Segment
from contacts.selectors import contact_by_email
from reporting.reports import Counting, Filters, split


def journeys_list() -> QuerySet[Journey]:
    """Journeys with their enrollment counts (archived last)."""
    return (
        Journey.objects.select_related("current_version")
        .annotate(
            enrolled=Count("enrollments"),
            active_count=Count("enrollments", filter=Q(enrollments__state=EnrollmentState.ACTIVE)),
            goal_count=Count("enrollments", filter=Q(enrollments__state=EnrollmentState.GOAL)),
        )
        .order_by("name")
    )


def versions(journey: Journey) -> QuerySet[JourneyVersion]:
    return JourneyVersion.objects.filter(journey=journey).order_by("-number")


def version_shown(journey: Journey, number: int | None = None) -> JourneyVersion | None:
    """The version a page shows: the one asked for, else the draft, else the current."""
    found = versions(journey)
    if number is not None:
        return found.filter(number=number).first()
    return found.filter(published_at__isnull=True).first() or journey.current_version


@dataclass
class StepStats:
    entered: int = 0
    waiting: int = 0
    sent: int = 0
    opened: int = 0
    clicked: int = 0
    exited: int = 0
    goal: int = 0


def step_stats(version: JourneyVersion) -> dict[str, StepStats]:
    """Statistics per step key of a published version (empty for a draft)."""

    stats: dict[str, StepStats] = {}
    if version.published_at is None:
        return stats
    keys = dict(JourneyStep.objects.filter(version=version).values_list("pk", "key"))
    for key in keys.values():
        stats[key] = StepStats()
    for step_id, count in (
        JourneyStepRun.objects.filter(step__version=version)
        .values_list("step_id")
        .annotate(n=Count("id"))
    ):
        stats[keys[step_id]].entered = count
    enrollments = JourneyEnrollment.objects.filter(version=version)
    for step_id, state, count in (
        enrollments.values_list("current_step_id", "state").annotate(n=Count("id")).order_by()
    ):
        if step_id not in keys:
            continue
        line = stats[keys[step_id]]
        if state == EnrollmentState.ACTIVE:
            line.waiting += count
        elif state == EnrollmentState.GOAL:
            line.goal += count
        else:
            line.exited += count
    step_of = dict(
        JourneyStepCampaign.objects.filter(step__version=version).values_list(
            "campaign_id", "step_id"
        )
    )
    if step_of:
        rows = split(
            filters=Filters(campaign_ids=tuple(sorted(step_of))),
            by="campaign",
            counting=Counting.from_settings(),
        )
        for row in rows:
            if row.campaign_id in step_of:
                line = stats[keys[step_of[row.campaign_id]]]
                line.sent += row.metrics.get("sent", 0)
                line.opened += row.opened
                line.clicked += row.clicked
    return stats


@dataclass
class Summary:
    enrolled: int = 0
    active: int = 0
    exited: int = 0
    goal: int = 0
    removed: int = 0

    @property
    def goal_rate(self) -> float | None:
        finished = self.exited + self.goal
        return self.goal / finished if finished else None


def summary(journey: Journey, version: JourneyVersion | None = None) -> Summary:
    found = Summary()
    enrollments = JourneyEnrollment.objects.filter(journey=journey)
    if version is not None:
        enrollments = enrollments.filter(version=version)
    for state, count in enrollments.values_list("state").annotate(n=Count("id")).order_by():
        found.enrolled += count
        if state == EnrollmentState.ACTIVE:
            found.active = count
        elif state == EnrollmentState.EXITED:
            found.exited = count
        elif state == EnrollmentState.GOAL:
            found.goal = count
        else:
            found.removed = count
    return found


# --- the readable flow ------------------------------------------------------------------------


@dataclass
class FlowNode:
    """One line of the vertical flow: a step, or "go to" an earlier step."""

    step: JourneyStep
    goto: bool = False
    text: str = ""
    stats: StepStats | None = None
    problems: list[str] = field(default_factory=list)
    yes: list[FlowNode] = field(default_factory=list)
    no: list[FlowNode] = field(default_factory=list)
    # The branch paths end where both continue (shown after the branch block).
    merges: bool = False

    @property
    def kind_label(self) -> str:
        return d.KINDS.get(self.step.kind, self.step.kind)

    @property
    def open_end(self) -> bool:
        """A non-branch step whose path stops here without an exit."""
        return self.step.kind not in (d.EXIT, d.BRANCH) and not self.step.next_key


@dataclass
class Flow:
    nodes: list[FlowNode]
    detached: list[FlowNode]
    problems: list[d.Problem]


def _distances(start: str, steps: Mapping[str, JourneyStep], skip: str) -> dict[str, int]:
    found: dict[str, int] = {}
    queue = deque([(start, 0)])
    while queue:
        key, distance = queue.popleft()
        if not key or key == skip or key in found or key not in steps:
            continue
        found[key] = distance
        step = steps[key]
        queue.extend((k, distance + 1) for k in (step.next_key, step.no_key) if k)
    return found


def _merge_point(branch: JourneyStep, steps: Mapping[str, JourneyStep]) -> str:
    """Where the yes and no paths of ``branch`` meet first, or ""."""
    yes = _distances(branch.next_key, steps, branch.key)
    no = _distances(branch.no_key, steps, branch.key)
    common = set(yes) & set(no)
    if not common:
        return ""
    return min(common, key=lambda k: (max(yes[k], no[k]), yes[k] + no[k], k))


def flow(
    version: JourneyVersion,
    *,
    stats: Mapping[str, StepStats] | None = None,
    problems: list[d.Problem] | None = None,
) -> Flow:
    """The version as nested lines: branches hold their yes/no paths, which end where
    they meet; a path that returns to an earlier step shows "go to"."""
    steps = {s.key: s for s in version.steps.all()}
    problems = problems if problems is not None else []
    by_step: dict[str, list[str]] = {}
    for problem in problems:
        if problem.step:
            by_step.setdefault(problem.step, []).append(problem.message)
    describer = _Describer(steps)
    placed: set[str] = set()

    def node(step: JourneyStep, goto: bool = False) -> FlowNode:
        return FlowNode(
            step=step,
            goto=goto,
            text=describer.describe(step),
            stats=(stats or {}).get(step.key),
            problems=[] if goto else by_step.get(step.key, []),
        )

    def sequence(start: str, stop: frozenset[str]) -> list[FlowNode]:
        out: list[FlowNode] = []
        key = start
        while key and key not in stop:
            step = steps.get(key)
            if step is None:
                break
            if key in placed:
                out.append(node(step, goto=True))
                break
            placed.add(key)
            current = node(step)
            out.append(current)
            if step.kind == d.BRANCH:
                merge = _merge_point(step, steps)
                inner = stop | {merge} if merge else stop
                current.yes = sequence(step.next_key, inner)
                current.no = sequence(step.no_key, inner)
                current.merges = bool(merge)
                key = merge
            elif step.kind == d.EXIT:
                break
            else:
                key = step.next_key
        return out

    nodes = sequence(version.entry_key, frozenset())
    detached = [node(s) for k, s in sorted(steps.items(), key=lambda i: i[1].pk) if k not in placed]
    return Flow(nodes=nodes, detached=detached, problems=problems)


class _Describer:
    """One readable sentence per step (names of templates, senders, lists; no PHI)."""

    def __init__(self, steps: Mapping[str, JourneyStep]):

        self.steps = steps
        ids: dict[str, set[int]] = {"template": set(), "sender": set(), "list": set()}
        for step in steps.values():
            for name in ids:
                value = step.config.get(name)
                if isinstance(value, int):
                    ids[name].add(value)
        self.templates = dict(
            EmailTemplate.objects.filter(pk__in=ids["template"]).values_list("pk", "name")
        )
        self.senders = dict(
            SenderIdentity.objects.filter(pk__in=ids["sender"]).values_list("pk", "name")
        )
        self.lists = dict(ContactList.objects.filter(pk__in=ids["list"]).values_list("pk", "name"))

    def describe(self, step: JourneyStep) -> str:
        config = step.config
        if step.kind == d.SEND:
            template = self.templates.get(config.get("template"))
            sender = self.senders.get(config.get("sender"))
            text = f"Send “{template}”" if template else "Send (no template chosen)"
            if sender:
                text += f" from {sender}"
            if config.get("secure_policy"):
                text += f" · {config['secure_policy'].replace('_', ' ')}"
            return text
        if step.kind == d.WAIT:
            return describe_wait(config)
        if step.kind == d.BRANCH:
            if config.get("mode") == "engagement":
                target = self.steps.get(config.get("step") or "")
                name = (target.name or target.key) if target else "an earlier step"
                days = config.get("within_days")
                return (
                    f"Yes if the contact {d.ENGAGEMENT.get(config.get('event', ''), '?')} "
                    f"“{name}” within {days} day{'s' if days != 1 else ''} "
                    "(human engagement only)"
                )
            return "Yes if the contact matches: " + describe_rules(config.get("rules"), self.lists)
        if step.kind == d.UPDATE:
            if config.get("action") == "set_field":
                label = d.settable_fields().get(config.get("field") or "", ("(no field chosen)",))[
                    0
                ]
                value = config.get("value")
                return f"Set {label} to {value}" if value not in (None, "") else f"Clear {label}"
            name = self.lists.get(config.get("list"), "(no list chosen)")
            verb = "Add to" if config.get("action") == "add_to_list" else "Remove from"
            return f"{verb} list “{name}”"
        return "End of the journey"


def _field_label(name: str) -> str:

    kind = segments.kind_for(name) if name else None
    return kind.label if kind is not None else name or "(no field)"


def describe_wait(config: Mapping[str, Any]) -> str:
    mode = config.get("mode")
    if mode == "duration":
        parts = []
        for unit in ("days", "hours", "minutes"):
            value = int(config.get(unit) or 0)
            if value:
                parts.append(f"{value} {unit if value != 1 else unit[:-1]}")
        return "Wait " + (", ".join(parts) or "(no duration)")
    if mode == "until_date":
        offset = int(config.get("offset_days") or 0)
        field_label = _field_label(config.get("field") or "")
        when = (
            f"{-offset} day{'s' if offset != -1 else ''} before"
            if offset < 0
            else f"{offset} day{'s' if offset != 1 else ''} after"
            if offset > 0
            else "the day of"
        )
        missing = "exit" if config.get("if_missing", "exit") == "exit" else "continue"
        return (
            f"Wait until {when} {field_label}, at {config.get('at')} (contact's time zone); "
            f"without a date: {missing}"
        )
    if mode == "window":
        days = ", ".join(d.WEEKDAYS[i] for i in config.get("days") or [])
        return f"Wait for {days} {config.get('start')} to {config.get('end')} (contact's time zone)"
    return "Wait"


def describe_rules(rules: Any, lists: Mapping[int, str] | None = None) -> str:
    """A rule tree as a sentence (criteria, never a person's data)."""

    if not rules:
        return "(no condition yet)"

    def walk(node: Any) -> str:
        if "field" in node:
            kind = segments.kind_for(node["field"])
            label = kind.label if kind else node["field"]
            op = segments.OPERATORS.get(node["op"], node["op"])
            value = node.get("value")
            if node["field"] == "list" and lists is not None:
                value = lists.get(value, value) if not isinstance(value, list) else value
            if node["op"] == "exists":
                return f"{label} {'is set' if value is not False else 'is not set'}"
            if isinstance(value, list):
                value = ", ".join(str(v) for v in value)
            return f"{label} {op} {value}"
        if "all" in node:
            return "(" + " and ".join(walk(c) for c in node["all"]) + ")"
        if "any" in node:
            return "(" + " or ".join(walk(c) for c in node["any"]) + ")"
        inner = node["not"]
        return "not " + walk(inner if isinstance(inner, dict) else {"all": inner})

    text = walk(rules)
    return text[1:-1] if text.startswith("(") and text.endswith(")") else text


def describe_trigger(trigger: Mapping[str, Any]) -> str:

    kind = trigger.get("kind") or "manual"
    if kind == "event":
        names = trigger.get("events") or []
        return "API event " + (", ".join(names) if names else "(any event name)")
    if kind == "segment":
        segment = Segment.objects.filter(pk=trigger.get("segment") or 0).first()
        name = segment.name if segment else "(no segment chosen)"
        return f"Contact enters segment “{name}”" + (
            " (current members too)" if trigger.get("include_existing") else ""
        )
    if kind == "list":
        contact_list = ContactList.objects.filter(pk=trigger.get("list") or 0).first()
        name = contact_list.name if contact_list else "(no list chosen)"
        return f"Contact is added to list “{name}”" + (
            " (current members too)" if trigger.get("include_existing") else ""
        )
    if kind == "date":
        offset = int(trigger.get("offset_days") or 0)
        label = _field_label(trigger.get("field") or "")
        when = (
            f"{-offset} days before"
            if offset < 0
            else f"{offset} days after"
            if offset > 0
            else "on"
        )
        return (
            f"{when} {label}"
            + (", every year" if trigger.get("yearly") else "")
            + (" (contact's local date)")
        )
    return "Manual enrollment only"


def describe_reentry(reentry: Mapping[str, Any]) -> str:
    if (reentry or {}).get("mode") == "after_days":
        return f"Again after {reentry['days']} days"
    return "Once per contact"


# --- enrollments --------------------------------------------------------------------------------


def enrollments_recent(journey: Journey, *, limit: int = 25) -> QuerySet[JourneyEnrollment]:
    return (
        JourneyEnrollment.objects.filter(journey=journey)
        .select_related("version", "current_step", "contact")
        .order_by("-entered_at", "-id")[:limit]
    )


def contact_by_reference(*, uuid_text: str = "", external_id: str = "", email: str = "") -> Any:
    """A contact by UUID, external id or address (blind index), or None."""

    if uuid_text:
        try:
            return Contact.objects.filter(uuid=uuid.UUID(str(uuid_text))).first()
        except ValueError:
            return None
    if external_id:
        return Contact.objects.filter(external_id=str(external_id).strip()).first()
    if email:
        return contact_by_email(email=email)
    return None


def next_due(journey: Journey) -> dt.datetime | None:
    return (
        JourneyEnrollment.objects.filter(journey=journey, state=EnrollmentState.ACTIVE)
        .order_by("next_run_at")
        .values_list("next_run_at", flat=True)
        .first()
    )
