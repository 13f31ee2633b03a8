"""Journeys: versioned graphs of steps that contacts move through one step at a time.

Fields and constraints only. Re-exported by ``campaigns/models/__init__.py`` so the models belong to
the campaigns app (``campaigns.change_journey`` is the ``journeys:write`` scope's
permission). Logic: ``definition.py`` (step kinds, validation), ``services.py``
(writes), ``engine.py`` (advancing enrollments), ``triggers.py`` (enrolling),
``selectors.py`` (reads). See docs/architecture.md "Journeys".
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models


class JourneyStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    ACTIVE = "active", "Active"
    PAUSED = "paused", "Paused"
    ARCHIVED = "archived", "Archived"


class Journey(models.Model):
    """A named journey. What it does is its ``current_version``; edits go to a draft
    version that publishing makes current (running enrollments stay on theirs)."""

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    name = models.CharField(max_length=200, unique=True)
    description = models.TextField(blank=True)
    status = models.CharField(
        max_length=16, choices=JourneyStatus.choices, default=JourneyStatus.DRAFT
    )
    current_version = models.ForeignKey(
        "campaigns.JourneyVersion",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    # Segment/list triggers: contacts already in the audience when the trigger was
    # published are recorded as seen (not enrolled) until this is set.
    seen_primed_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    activated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class JourneyVersion(models.Model):
    """One version of a journey's definition: trigger, re-entry rule, goal and steps.

    ``published_at`` is empty for the (at most one) draft. A published version never
    changes: enrollments pinned to it run its steps until they finish.
    """

    journey = models.ForeignKey(Journey, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    trigger = models.JSONField(default=dict, blank=True)
    reentry = models.JSONField(default=dict, blank=True)
    goal = models.JSONField(null=True, blank=True, help_text="Segment rule tree, or empty.")
    consent = models.CharField(max_length=16, default="marketing")
    entry_key = models.CharField(max_length=32, blank=True)
    published_at = models.DateTimeField(null=True, blank=True)
    published_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["journey", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["journey", "number"], name="journeyversion_number"),
            models.UniqueConstraint(
                fields=["journey"],
                condition=models.Q(published_at__isnull=True),
                name="journeyversion_one_draft",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.journey_id} v{self.number}"

    @property
    def is_draft(self) -> bool:
        return self.published_at is None


class JourneyStep(models.Model):
    """One step of one version. ``next_key`` (``no_key`` too for a branch: ``next_key``
    is the "yes" path) name other steps of the same version."""

    version = models.ForeignKey(JourneyVersion, on_delete=models.CASCADE, related_name="steps")
    key = models.SlugField(max_length=32)
    kind = models.CharField(max_length=16)
    name = models.CharField(max_length=120, blank=True)
    config = models.JSONField(default=dict, blank=True)
    next_key = models.CharField(max_length=32, blank=True)
    no_key = models.CharField(max_length=32, blank=True)

    class Meta:
        ordering = ["version", "id"]
        constraints = [
            models.UniqueConstraint(fields=["version", "key"], name="journeystep_key"),
        ]

    def __str__(self) -> str:
        return f"{self.key} ({self.kind})"


class JourneyStepCampaign(models.Model):
    """The hidden campaign a send step's messages belong to, so they go through the one
    send pipeline (claims, channel choice, DKIM, retries, reports) like any campaign.

    A contact who passes the same step again (a loop, or re-entry on the same version)
    gets their next message in the step's next ``round``: a campaign holds at most one
    message per contact.
    """

    step = models.ForeignKey(JourneyStep, on_delete=models.CASCADE, related_name="campaigns")
    round = models.PositiveIntegerField(default=1)
    campaign = models.OneToOneField(
        "campaigns.Campaign", on_delete=models.PROTECT, related_name="journey_step"
    )

    class Meta:
        ordering = ["step", "round"]
        constraints = [
            models.UniqueConstraint(fields=["step", "round"], name="journeystepcampaign_round"),
        ]

    def __str__(self) -> str:
        return f"step {self.step_id} round {self.round}"


class EnrollmentState(models.TextChoices):
    ACTIVE = "active", "In the journey"
    EXITED = "exited", "Finished"
    GOAL = "goal", "Goal reached"
    CANCELLED = "cancelled", "Removed"


class StepState(models.TextChoices):
    PENDING = "pending", "About to run"
    WAITING = "waiting", "Waiting"


class JourneyEnrollment(models.Model):
    """One contact's run through one journey version: where it is and when it moves.

    ``seq`` counts the steps run so far; with the step it is the key of the next step
    run (``JourneyStepRun``), which makes running a step idempotent. ``claim_token`` /
    ``lease_until`` belong to the engine batch processing it.
    """

    id = models.BigAutoField(primary_key=True)
    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    journey = models.ForeignKey(Journey, on_delete=models.CASCADE, related_name="enrollments")
    version = models.ForeignKey(JourneyVersion, on_delete=models.RESTRICT, related_name="+")
    contact = models.ForeignKey(
        "contacts.Contact", on_delete=models.CASCADE, related_name="journey_enrollments"
    )
    state = models.CharField(
        max_length=12, choices=EnrollmentState.choices, default=EnrollmentState.ACTIVE
    )
    current_step = models.ForeignKey(
        JourneyStep, null=True, on_delete=models.RESTRICT, related_name="+"
    )
    step_state = models.CharField(
        max_length=8, choices=StepState.choices, default=StepState.PENDING
    )
    seq = models.PositiveIntegerField(default=0)
    next_run_at = models.DateTimeField(null=True, blank=True)
    claim_token = models.UUIDField(null=True, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    source = models.CharField(max_length=12, help_text="segment, list, date, event or manual.")
    # Deduplicates automatic enrollments: the date occurrence ("2026-05-14") of a date
    # trigger; empty otherwise.
    trigger_key = models.CharField(max_length=64, blank=True)
    entered_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    exit_reason = models.CharField(max_length=32, blank=True)

    class Meta:
        ordering = ["-entered_at", "-id"]
        indexes = [
            models.Index(
                fields=["next_run_at"],
                name="journeyenrollment_due",
                condition=models.Q(state="active"),
            ),
            models.Index(fields=["journey", "contact"], name="journeyenrollment_contact"),
            models.Index(fields=["current_step", "state"], name="journeyenrollment_step"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["journey", "contact"],
                condition=models.Q(state="active"),
                name="journeyenrollment_one_active",
            ),
            models.UniqueConstraint(
                fields=["journey", "contact", "trigger_key"],
                condition=~models.Q(trigger_key=""),
                name="journeyenrollment_trigger_once",
            ),
        ]

    def __str__(self) -> str:
        return f"Enrollment #{self.pk} ({self.state})"


class JourneyStepRun(models.Model):
    """A step run for an enrollment: written in the same transaction as the step's
    effects, before them, and unique per (enrollment, step, seq) — so a step whose
    transaction committed can never run again. A send step's ``message`` is the row
    the send pipeline delivers at most once."""

    id = models.BigAutoField(primary_key=True)
    enrollment = models.ForeignKey(JourneyEnrollment, on_delete=models.CASCADE, related_name="runs")
    step = models.ForeignKey(JourneyStep, on_delete=models.CASCADE, related_name="runs")
    seq = models.PositiveIntegerField()
    outcome = models.CharField(max_length=16, blank=True)
    detail = models.CharField(max_length=100, blank=True)
    message = models.OneToOneField(
        "campaigns.Message",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="journey_run",
        db_constraint=False,  # messages are partitioned (luxmail/partitions.py)
    )
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["enrollment", "seq"]
        constraints = [
            models.UniqueConstraint(
                fields=["enrollment", "step", "seq"], name="journeysteprun_once"
            ),
        ]
        indexes = [models.Index(fields=["step", "outcome"], name="journeysteprun_step")]

    def __str__(self) -> str:
        return f"run {self.seq} of enrollment {self.enrollment_id}: {self.outcome}"


class JourneyEvent(models.Model):
    """A trigger event pushed through the API (an EHR: missed appointment …).

    The client's idempotency key is stored hashed (it is the client's text: it might
    carry something identifying). ``name`` is a slug such as ``missed_appointment``.
    """

    id = models.BigAutoField(primary_key=True)
    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    journey = models.ForeignKey(Journey, on_delete=models.CASCADE, related_name="events")
    name = models.SlugField(max_length=64)
    key_hash = models.CharField(max_length=64)
    contact = models.ForeignKey(
        "contacts.Contact", null=True, on_delete=models.SET_NULL, related_name="+"
    )
    enrollment = models.ForeignKey(
        JourneyEnrollment, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    outcome = models.CharField(max_length=24)
    occurred_at = models.DateTimeField(null=True, blank=True)
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-received_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["journey", "key_hash"], name="journeyevent_idempotent")
        ]

    def __str__(self) -> str:
        return f"{self.name} → journey {self.journey_id} ({self.outcome})"


class JourneySeen(models.Model):
    """Contacts a segment/list trigger has seen in its audience. Entering means
    "in the audience and not seen"; a contact who leaves is forgotten, so coming back
    is entering again (subject to the re-entry rule)."""

    id = models.BigAutoField(primary_key=True)
    journey = models.ForeignKey(Journey, on_delete=models.CASCADE, related_name="+")
    contact = models.ForeignKey("contacts.Contact", on_delete=models.CASCADE, related_name="+")
    seen_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["journey", "contact"], name="journeyseen_once")
        ]

    def __str__(self) -> str:
        return f"contact {self.contact_id} seen by journey {self.journey_id}"
