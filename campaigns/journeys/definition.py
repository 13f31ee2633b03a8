"""What a journey version may contain, and the checks that make it runnable.

A definition (the API's JSON, and what the builder edits step by step)::

    {"trigger": {"kind": "date", "field": "next_appointment", "offset_days": -7},
     "reentry": {"mode": "after_days", "days": 30},
     "goal": {"all": [{"field": "custom.booked", "op": "exists"}]},   # or null
     "consent": "marketing",                                         # or "transactional"
     "entry": "s1",
     "steps": [{"key": "s1", "kind": "send", "name": "Reminder",
                "config": {"template": 3, "sender": 1}, "next": "s2"}, …]}

Step kinds: ``send`` (template + sender + secure policy), ``wait`` (a duration, until a
date field minus N days, or until a time window in the contact's time zone),
``branch`` (any segment rule tree, or engagement with an earlier send step — human
events only; ``next`` is the yes path, ``no`` the other), ``update`` (set a field, add
to or remove from a list) and ``exit``.

Two levels of checking:

* :func:`clean_trigger`, :func:`clean_step` … normalize what is *given* (types, ids
  that exist, rule trees through ``contacts.segments.validate``) and raise
  :class:`DefinitionError` — a draft may be incomplete (a send step without a
  template yet);
* :func:`problems` lists everything that stops a version from running: missing
  templates, dead ends, unreachable steps, cycles without a wait … Activation and
  publishing refuse a version with problems.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from campaigns.models import EmailTemplate, SenderIdentity
from campaigns.secure.errors import PolicyError
from campaigns.secure.policy import check_policy_allowed
from contacts import segments, upsert
from contacts.attributes import PROFILE_ATTRIBUTES, CustomFieldDef
from contacts.models import ContactList, CustomField, Segment
from luxmail.models import SecurePolicy

SEND = "send"
WAIT = "wait"
BRANCH = "branch"
UPDATE = "update"
EXIT = "exit"
KINDS: dict[str, str] = {
    SEND: "Send email",
    WAIT: "Wait",
    BRANCH: "Branch",
    UPDATE: "Update contact",
    EXIT: "Exit",
}

TRIGGER_KINDS: dict[str, str] = {
    "manual": "Manual enrollment only (UI or API)",
    "event": "An event pushed through the API (EHR, CDP)",
    "segment": "Contact enters a segment",
    "list": "Contact is added to a list",
    "date": "A date field reaches an offset",
}
ENGAGEMENT: dict[str, str] = {
    "opened": "opened",
    "clicked": "clicked a link in",
    "not_opened": "did not open",
    "not_clicked": "did not click a link in",
}
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
CONSENTS: dict[str, str] = {
    "marketing": "Marketing consent (PHI-marketing authorization for PHI templates)",
    "transactional": "Transactional consent (treatment and appointment communications)",
}

MAX_STEPS = 60
MAX_OFFSET_DAYS = 3650
MAX_WAIT_DAYS = 366
MAX_ENGAGEMENT_DAYS = 90
MAX_REENTRY_DAYS = 3650
KEY = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
EVENT_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
CLOCK = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


class JourneyError(Exception):
    """A request the user can fix; ``str()`` is a friendly sentence without PHI."""


@dataclass(frozen=True)
class Problem:
    """One reason a version cannot run (``step`` is a step key, or "" for the journey)."""

    step: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"step": self.step, "message": self.message}


class DefinitionError(JourneyError):
    """The given definition (or step) is malformed; ``problems`` says where and why."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__(
            "; ".join(f"{p.step}: {p.message}" if p.step else p.message for p in problems)
        )


def _fail(message: str, step: str = "") -> DefinitionError:
    return DefinitionError([Problem(step, message)])


# --- small value checks ---------------------------------------------------------------------


def _int(value: Any, label: str, lo: int, hi: int, step: str = "") -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise _fail(f"{label} must be a whole number.", step)
    try:
        number = int(value)
    except ValueError:
        raise _fail(f"{label} must be a whole number.", step) from None
    if not lo <= number <= hi:
        raise _fail(f"{label} must be between {lo} and {hi}.", step)
    return number


def _optional_id(value: Any, label: str, model: Any, step: str = "") -> int | None:
    if value in (None, ""):
        return None
    pk = _int(value, label, 1, 2**63 - 1, step)
    if not model.objects.filter(pk=pk).exists():
        raise _fail(f"There is no {label.lower()} with id {pk}.", step)
    return pk


def _bool(value: Any, default: bool) -> bool:
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in {"true", "1", "yes", "on"}:
        return True
    if isinstance(value, str) and value.lower() in {"false", "0", "no", "off", ""}:
        return False
    raise _fail("Use true or false.")


def _clock(value: Any, label: str, step: str) -> str:
    text = str(value or "").strip()
    if not CLOCK.match(text):
        raise _fail(f"{label} must be a time as HH:MM (24-hour).", step)
    return text


def _mapping(value: Any, what: str, step: str = "") -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise _fail(f"{what} must be an object.", step)
    return value


# --- date fields ------------------------------------------------------------------------------


def date_fields() -> dict[str, segments.ConditionKind]:
    """Date attributes a trigger or wait can use: the token-indexed date kinds of the
    segment engine (birth date, last visit, next appointment, date custom fields)."""
    return {
        kind.field: kind
        for kind in segments.available_kinds()
        if kind.value_type == "date" and "exists" in kind.ops
    }


def date_token_field(field: str) -> str:
    """The blind-index token field behind a date attribute (``contacts/tokens.py``)."""

    if field.startswith("custom."):
        custom = CustomField.objects.filter(key=field.removeprefix("custom.")).first()
        if custom is None:
            raise _fail(f"The date field '{field[:60]}' no longer exists.")
        return CustomFieldDef.of(custom).token_field
    return PROFILE_ATTRIBUTES[field].token_field


def _date_field(value: Any, step: str = "") -> str:
    field = str(value or "").strip()
    if field not in date_fields():
        raise _fail("Choose a date field (e.g. next appointment, a date custom field).", step)
    return field


# --- journey-level parts ----------------------------------------------------------------------


def clean_trigger(data: Any) -> dict[str, Any]:
    """The normalized trigger; raises :class:`DefinitionError`."""

    data = _mapping(data, "The trigger")
    kind = str(data.get("kind") or "manual")
    if kind not in TRIGGER_KINDS:
        raise _fail(f"Unknown trigger '{kind[:30]}'; use one of {', '.join(TRIGGER_KINDS)}.")
    if kind == "manual":
        return {"kind": kind}
    if kind == "event":
        names = data.get("events") or []
        if isinstance(names, str):
            names = [n for n in re.split(r"[,\s]+", names) if n]
        if not isinstance(names, list) or len(names) > 50:
            raise _fail("Events must be a list of at most 50 event names.")
        cleaned = []
        for name in names:
            text = str(name).strip().lower()
            if not EVENT_NAME.match(text):
                raise _fail(
                    "Event names use lower-case letters, digits, '_', '-' and '.' "
                    "(e.g. missed_appointment)."
                )
            if text not in cleaned:
                cleaned.append(text)
        return {"kind": kind, "events": cleaned}
    if kind in ("segment", "list"):
        model = Segment if kind == "segment" else ContactList
        label = "Segment" if kind == "segment" else "List"
        pk = _optional_id(data.get(kind), label, model)
        return {
            "kind": kind,
            kind: pk,
            "include_existing": _bool(data.get("include_existing"), False),
        }
    field = data.get("field")
    return {
        "kind": kind,
        "field": _date_field(field) if field else "",
        "offset_days": _int(
            data.get("offset_days", 0), "The offset", -MAX_OFFSET_DAYS, MAX_OFFSET_DAYS
        ),
        "yearly": _bool(data.get("yearly"), False),
    }


def clean_reentry(data: Any) -> dict[str, Any]:
    data = _mapping(data, "The re-entry rule")
    mode = str(data.get("mode") or "once")
    if mode == "once":
        return {"mode": "once"}
    if mode == "after_days":
        return {
            "mode": mode,
            "days": _int(data.get("days"), "Re-entry days", 1, MAX_REENTRY_DAYS),
        }
    raise _fail("Re-entry is 'once' or 'after_days' (with days).")


def clean_goal(rules: Any) -> dict[str, Any] | None:
    if rules in (None, {}, ""):
        return None
    try:
        return segments.validate(rules)
    except segments.SegmentRuleError as error:
        raise DefinitionError(
            [Problem("", f"Goal, {p.path}: {p.message}") for p in error.problems]
        ) from None


def clean_consent(value: Any) -> str:
    text = str(value or "marketing")
    if text not in CONSENTS:
        raise _fail("Consent is 'marketing' or 'transactional'.")
    return text


# --- steps --------------------------------------------------------------------------------------


def clean_step_config(kind: str, config: Any, *, step: str = "") -> dict[str, Any]:
    """Normalize one step's configuration. Incomplete is fine (see :func:`problems`);
    malformed values and ids that do not exist raise :class:`DefinitionError`."""
    config = _mapping(config, "A step's configuration", step)
    if kind == SEND:
        return _clean_send(config, step)
    if kind == WAIT:
        return _clean_wait(config, step)
    if kind == BRANCH:
        return _clean_branch(config, step)
    if kind == UPDATE:
        return _clean_update(config, step)
    if kind == EXIT:
        return {}
    raise _fail(f"Unknown step kind '{str(kind)[:20]}'; use one of {', '.join(KINDS)}.", step)


def _clean_send(config: Mapping[str, Any], step: str) -> dict[str, Any]:

    policy = str(config.get("secure_policy") or "")
    if policy and policy not in SecurePolicy.values:
        raise _fail("Unknown secure-delivery policy.", step)
    return {
        "template": _optional_id(config.get("template"), "Template", EmailTemplate, step),
        "sender": _optional_id(config.get("sender"), "Sender identity", SenderIdentity, step),
        "secure_policy": policy,
        "track_opens": _bool(config.get("track_opens"), True),
        "track_clicks": _bool(config.get("track_clicks"), True),
        "encrypted_subject_visible": _bool(config.get("encrypted_subject_visible"), False),
    }


def _clean_wait(config: Mapping[str, Any], step: str) -> dict[str, Any]:
    mode = str(config.get("mode") or "duration")
    if mode == "duration":
        days = _int(config.get("days") or 0, "Days", 0, MAX_WAIT_DAYS, step)
        hours = _int(config.get("hours") or 0, "Hours", 0, 23, step)
        minutes = _int(config.get("minutes") or 0, "Minutes", 0, 59, step)
        return {"mode": mode, "days": days, "hours": hours, "minutes": minutes}
    if mode == "until_date":
        field = config.get("field")
        if_missing = str(config.get("if_missing") or "exit")
        if if_missing not in ("exit", "continue"):
            raise _fail("When the date is missing: 'exit' or 'continue'.", step)
        return {
            "mode": mode,
            "field": _date_field(field, step) if field else "",
            "offset_days": _int(
                config.get("offset_days", 0), "The offset", -MAX_OFFSET_DAYS, MAX_OFFSET_DAYS, step
            ),
            "at": _clock(config.get("at") or "09:00", "The time of day", step),
            "if_missing": if_missing,
        }
    if mode == "window":
        given = config.get("days")
        weekdays: Any = [0, 1, 2, 3, 4] if given is None else given
        if not isinstance(weekdays, list):
            raise _fail("Window days must be a list of weekdays (0 = Monday … 6 = Sunday).", step)
        cleaned = sorted({_int(day, "A weekday", 0, 6, step) for day in weekdays})
        return {
            "mode": mode,
            "days": cleaned,
            "start": _clock(config.get("start") or "09:00", "The window start", step),
            "end": _clock(config.get("end") or "17:00", "The window end", step),
        }
    raise _fail("A wait is 'duration', 'until_date' or 'window'.", step)


def _clean_branch(config: Mapping[str, Any], step: str) -> dict[str, Any]:
    mode = str(config.get("mode") or "segment")
    if mode == "segment":
        rules = config.get("rules")
        if rules in (None, {}, ""):
            return {"mode": mode, "rules": None}
        try:
            return {"mode": mode, "rules": segments.validate(rules)}
        except segments.SegmentRuleError as error:
            raise DefinitionError(
                [Problem(step, f"Condition, {p.path}: {p.message}") for p in error.problems]
            ) from None
    if mode == "engagement":
        event = str(config.get("event") or "opened")
        if event not in ENGAGEMENT:
            raise _fail(f"Engagement is one of {', '.join(ENGAGEMENT)}.", step)
        target = str(config.get("step") or "")
        if target and not KEY.match(target):
            raise _fail("Name the earlier send step by its key.", step)
        return {
            "mode": mode,
            "event": event,
            "step": target,
            "within_days": _int(
                config.get("within_days") or 1, "Within days", 1, MAX_ENGAGEMENT_DAYS, step
            ),
        }
    raise _fail("A branch is on a 'segment' rule or on 'engagement'.", step)


def settable_fields() -> dict[str, tuple[str, bool]]:
    """Fields an update step may set: ``{name: (label, is PHI)}``."""

    found = {"journey_stage": ("Care-journey stage", True)}
    for custom in CustomField.objects.order_by("key"):
        found[f"custom.{custom.key}"] = (custom.label, bool(custom.phi))
    return found


def _clean_update(config: Mapping[str, Any], step: str) -> dict[str, Any]:

    action = str(config.get("action") or "set_field")
    if action in ("add_to_list", "remove_from_list"):
        return {
            "action": action,
            "list": _optional_id(config.get("list"), "List", ContactList, step),
        }
    if action != "set_field":
        raise _fail("An update sets a field, or adds to / removes from a list.", step)
    field = str(config.get("field") or "")
    value = config.get("value")
    if not field:
        return {"action": action, "field": "", "value": None}
    if field not in settable_fields():
        raise _fail("Choose the care-journey stage or a custom field to set.", step)
    if isinstance(value, list | dict):
        raise _fail("Give a single value (empty clears the field).", step)
    values, errors = upsert.normalize_row(
        {field: value}, row=1, defs=upsert.definitions(), require_email=False, blank_clears=True
    )
    if errors:
        raise _fail(errors[0].message, step)
    # Store what was given, normalized the way the contacts app will store it.
    if field.startswith("custom."):
        stored = values.custom.get(field.removeprefix("custom."))
    else:
        stored = values.profile.get(field)
    return {"action": action, "field": field, "value": stored}


def clean_step(data: Any, *, index: int = 0) -> dict[str, Any]:
    """One step of a definition: ``{key, kind, name, config, next, no}``."""
    data = _mapping(data, f"Step {index + 1}")
    key = str(data.get("key") or "").strip()
    if not KEY.match(key):
        raise _fail(
            f"Step {index + 1}: a key is 1 to 32 lower-case letters, digits, '_' or '-', "
            "starting with a letter."
        )
    kind = str(data.get("kind") or "")
    if kind not in KINDS:
        raise _fail(f"Unknown step kind '{kind[:20]}'; use one of {', '.join(KINDS)}.", key)
    name = " ".join(str(data.get("name") or "").split())[:120]
    follow = str(data.get("next") or "")
    no = str(data.get("no") or "")
    for ref in (follow, no):
        if ref and not KEY.match(ref):
            raise _fail("'next' and 'no' name other steps by their keys.", key)
    if kind == EXIT:
        follow = no = ""
    if kind != BRANCH:
        no = ""
    return {
        "key": key,
        "kind": kind,
        "name": name,
        "config": clean_step_config(kind, data.get("config"), step=key),
        "next": follow,
        "no": no,
    }


def clean(definition: Any) -> dict[str, Any]:
    """A whole definition, normalized (may still have :func:`problems`)."""
    definition = _mapping(definition, "The definition")
    raw_steps = definition.get("steps") or []
    if not isinstance(raw_steps, list):
        raise _fail("'steps' must be a list.")
    if len(raw_steps) > MAX_STEPS:
        raise _fail(f"A journey has at most {MAX_STEPS} steps.")
    steps = [clean_step(item, index=i) for i, item in enumerate(raw_steps)]
    keys = [s["key"] for s in steps]
    duplicates = sorted({k for k in keys if keys.count(k) > 1})
    if duplicates:
        raise _fail(f"Step keys must be unique; repeated: {', '.join(duplicates)}.")
    entry = str(definition.get("entry") or (keys[0] if keys else ""))
    if entry and entry not in keys:
        raise _fail(f"The entry step '{entry[:32]}' is not one of the steps.")
    return {
        "trigger": clean_trigger(definition.get("trigger")),
        "reentry": clean_reentry(definition.get("reentry")),
        "goal": clean_goal(definition.get("goal")),
        "consent": clean_consent(definition.get("consent")),
        "entry": entry,
        "steps": steps,
    }


# --- runnability ----------------------------------------------------------------------------


def _send_problems(config: Mapping[str, Any], *, marketing: bool) -> list[str]:

    found = []
    template = EmailTemplate.objects.filter(pk=config.get("template") or 0).first()
    sender = SenderIdentity.objects.filter(pk=config.get("sender") or 0).first()
    if template is None:
        found.append("Choose the template this step sends.")
    elif marketing and not template.has_locked_footer:
        # Marketing steps need the organization's locked footer (issue 19 item 2).
        found.append(
            f"The template '{template.name}' has no organization footer, so a marketing "
            "journey cannot send it. Add the organization footer to the template, or choose "
            "another."
        )
    if sender is None:
        found.append("Choose a sender identity.")
    elif not sender.has_dkim and not sender.allow_without_dkim:
        found.append(
            f"Sender identity '{sender.name}' has no DKIM key. Generate one, or ask an Admin "
            "to allow sending without DKIM."
        )
    if template is not None and config.get("secure_policy"):
        try:
            check_policy_allowed(config["secure_policy"], phi_bearing=template.phi_bearing)
        except PolicyError as error:
            found.append(str(error))
    return found


def _wait_problems(config: Mapping[str, Any]) -> list[str]:
    mode = config.get("mode")
    if mode == "duration":
        total = (
            int(config.get("days") or 0) * 1440
            + int(config.get("hours") or 0) * 60
            + int(config.get("minutes") or 0)
        )
        if total <= 0:
            return ["Give the wait a duration (at least one minute)."]
    elif mode == "until_date":
        if not config.get("field"):
            return ["Choose the date field to wait for."]
        try:
            date_token_field(config["field"])
        except DefinitionError as error:
            return [str(error)]
    elif mode == "window":
        if not config.get("days"):
            return ["Choose at least one weekday for the window."]
        if str(config.get("start")) >= str(config.get("end")):
            return ["The window must end after it starts (same day)."]
    return []


def _update_problems(config: Mapping[str, Any]) -> list[str]:

    if config.get("action") == "set_field":
        if not config.get("field"):
            return ["Choose the field to set."]
        if config["field"] not in settable_fields():
            return ["The field to set no longer exists."]
        return []
    if not ContactList.objects.filter(pk=config.get("list") or 0).exists():
        return ["Choose the list."]
    return []


def _trigger_problems(trigger: Mapping[str, Any]) -> list[str]:

    kind = trigger.get("kind")
    if kind == "segment" and not Segment.objects.filter(pk=trigger.get("segment") or 0).exists():
        return ["Choose the segment whose new members enter the journey."]
    if kind == "list" and not ContactList.objects.filter(pk=trigger.get("list") or 0).exists():
        return ["Choose the list whose new members enter the journey."]
    if kind == "date":
        if not trigger.get("field"):
            return ["Choose the date field of the trigger."]
        if trigger["field"] not in date_fields():
            return ["The trigger's date field no longer exists."]
    return []


def _successors(step: Mapping[str, Any]) -> list[str]:
    return [k for k in (step["next"], step["no"]) if k]


def problems(definition: Mapping[str, Any]) -> list[Problem]:
    """Everything that stops this (cleaned) definition from running, in step order."""
    found: list[Problem] = []
    found += [Problem("", m) for m in _trigger_problems(definition["trigger"])]
    steps: list[Mapping[str, Any]] = definition["steps"]
    by_key = {s["key"]: s for s in steps}
    if not steps:
        return [*found, Problem("", "Add at least one step.")]
    entry = definition.get("entry") or ""
    if entry not in by_key:
        found.append(Problem("", "Choose the first step."))
        return found
    for step in steps:
        key, kind, config = step["key"], step["kind"], step["config"]
        messages: list[str] = []
        if kind == SEND:
            messages += _send_problems(config, marketing=definition.get("consent") == "marketing")
        elif kind == WAIT:
            messages += _wait_problems(config)
        elif kind == UPDATE:
            messages += _update_problems(config)
        elif kind == BRANCH:
            messages += _branch_problems(step, by_key, entry)
        if kind == BRANCH:
            if not step["next"]:
                messages.append("The 'yes' path leads nowhere: add a step or an exit.")
            if not step["no"]:
                messages.append("The 'no' path leads nowhere: add a step or an exit.")
        elif kind != EXIT and not step["next"]:
            messages.append("This step leads nowhere: add a step after it or an exit.")
        for ref in _successors(step):
            if ref not in by_key:
                messages.append(f"It continues with step '{ref}', which does not exist.")
        found += [Problem(key, m) for m in messages]
    reachable = _reachable(entry, by_key)
    for step in steps:
        if step["key"] not in reachable:
            found.append(Problem(step["key"], "No path from the first step reaches this step."))
    for cycle in _cycles_without_wait(steps, by_key):
        found.append(
            Problem(
                cycle[0],
                "These steps loop without a wait ("
                + " → ".join([*cycle, cycle[0]])
                + "); put a wait step in the loop.",
            )
        )
    return found


def _branch_problems(step: Mapping[str, Any], by_key: Mapping[str, Any], entry: str) -> list[str]:
    config = step["config"]
    if config.get("mode") == "segment":
        if not config.get("rules"):
            return ["Give the branch a condition."]
        return []
    target = config.get("step") or ""
    if not target:
        return ["Choose the earlier send step whose engagement decides the branch."]
    earlier = by_key.get(target)
    if earlier is None or earlier["kind"] != SEND:
        return [f"Step '{target}' is not a send step of this journey."]
    if step["key"] not in _reachable(target, by_key):
        return [f"Send step '{target}' does not come before this branch."]
    return []


def _reachable(start: str, by_key: Mapping[str, Mapping[str, Any]]) -> set[str]:
    seen: set[str] = set()
    queue = deque([start])
    while queue:
        key = queue.popleft()
        if key in seen or key not in by_key:
            continue
        seen.add(key)
        queue.extend(_successors(by_key[key]))
    return seen


def _cycles_without_wait(
    steps: Iterable[Mapping[str, Any]], by_key: Mapping[str, Mapping[str, Any]]
) -> list[list[str]]:
    """Cycles of the graph that pass through no wait step (each reported once)."""
    graph = {
        s["key"]: [k for k in _successors(s) if k in by_key and by_key[k]["kind"] != WAIT]
        for s in steps
        if s["kind"] != WAIT
    }
    cycles: list[list[str]] = []
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        path.append(node)
        for child in graph.get(node, []):
            if state.get(child) == 1:
                cycles.append(path[path.index(child) :])
            elif child not in state:
                visit(child)
        path.pop()
        state[node] = 2

    for node in graph:
        if node not in state:
            visit(node)
    return cycles


# --- PHI use --------------------------------------------------------------------------------------


def uses_phi(definition: Mapping[str, Any]) -> bool:
    """Whether the definition selects or writes by PHI: rule trees with PHI fields, PHI
    date fields in the trigger or a wait, setting a PHI field. Editing such a journey
    is for PHI roles, like segments on PHI (unknown fields count as PHI)."""

    def rules_phi(rules: Any) -> bool:
        for name in segments.fields_used(rules or {}):
            kind = segments.kind_for(name)
            if kind is None or kind.phi:
                return True
        return False

    def date_phi(field: str) -> bool:
        kind = date_fields().get(field)
        return bool(field) and (kind is None or kind.phi)

    trigger = definition.get("trigger") or {}
    if rules_phi(definition.get("goal")):
        return True
    if trigger.get("kind") == "date" and date_phi(trigger.get("field") or ""):
        return True
    if trigger.get("kind") == "segment":
        segment = Segment.objects.filter(pk=trigger.get("segment") or 0).first()
        if segment is not None and rules_phi(segment.rules):
            return True
    settable = settable_fields()
    for step in definition.get("steps") or []:
        config = step.get("config") or {}
        if (
            step["kind"] == BRANCH
            and config.get("mode") == "segment"
            and rules_phi(config.get("rules"))
        ):
            return True
        if (
            step["kind"] == WAIT
            and config.get("mode") == "until_date"
            and date_phi(config.get("field") or "")
        ):
            return True
        if step["kind"] == UPDATE and config.get("action") == "set_field":
            field = config.get("field") or ""
            if field and settable.get(field, ("", True))[1]:
                return True
    return False
