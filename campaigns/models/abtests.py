"""A/B tests: variants of one campaign sent to a random test share, the winner to the rest.

The campaign being tested (the *parent*) keeps the audience; each variant is a campaign
of its own (a *child* with the parent's audience, its own template, sender, subject and
send time), so reports, tracking and the human-only winner
(``reporting.reports.human_winner``) treat variants like any campaign.
"""

from __future__ import annotations

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from campaigns.models.campaigns import Campaign

MIN_VARIANTS = 2
MAX_VARIANTS = 4
VARIANT_LABELS = ("A", "B", "C", "D")


class WinnerMetric(models.TextChoices):
    OPEN_RATE = "open_rate", "Human open rate"
    CLICK_RATE = "click_rate", "Human click rate"
    CLICK_TO_OPEN_RATE = "click_to_open_rate", "Click-to-open rate (human)"


class ABTestState(models.TextChoices):
    DRAFT = "draft", "Draft"
    TESTING = "testing", "Testing"
    AWAITING_APPROVAL = "awaiting_approval", "Winner chosen, awaiting approval"
    WINNER_SENT = "winner_sent", "Winner sent to the rest"
    CANCELLED = "cancelled", "Cancelled"


class ABTest(models.Model):
    campaign = models.OneToOneField(Campaign, on_delete=models.CASCADE, related_name="abtest")
    test_percent = models.PositiveSmallIntegerField(
        default=20,
        validators=[MinValueValidator(2), MaxValueValidator(100)],
        help_text="Share of the audience that receives a variant (split evenly at random).",
    )
    metric = models.CharField(
        max_length=24, choices=WinnerMetric.choices, default=WinnerMetric.CLICK_RATE
    )
    wait_hours = models.PositiveSmallIntegerField(
        default=4,
        validators=[MinValueValidator(1), MaxValueValidator(24 * 14)],
        help_text="Hours after the test starts before the winner is chosen.",
    )
    min_sample = models.PositiveIntegerField(
        default=100,
        validators=[MinValueValidator(1)],
        help_text="Delivered messages each variant needs before a winner can be chosen.",
    )
    auto_send_winner = models.BooleanField(
        default=True,
        help_text="Send the winner to the rest of the audience at once; otherwise a person "
        "with send permission approves it.",
    )
    state = models.CharField(max_length=20, choices=ABTestState.choices, default=ABTestState.DRAFT)
    # The shuffle's seed (random.Random(seed) over the audience ids in id order): the
    # split can be recomputed and checked later.
    seed = models.BigIntegerField(null=True, blank=True)
    audience_size = models.PositiveIntegerField(default=0)
    started_at = models.DateTimeField(null=True, blank=True)
    decide_after = models.DateTimeField(null=True, blank=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    winner = models.ForeignKey(
        "ABVariant", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    p_value = models.FloatField(null=True, blank=True)
    # Why no winner yet, or how it was chosen (a sentence without PHI).
    decision_note = models.CharField(max_length=300, blank=True)

    class Meta:
        indexes = [models.Index(fields=["state", "decide_after"], name="abtest_due")]

    def __str__(self) -> str:
        return f"A/B test of campaign #{self.campaign_id}"


class ABVariant(models.Model):
    test = models.ForeignKey(ABTest, on_delete=models.CASCADE, related_name="variants")
    label = models.CharField(max_length=1)
    campaign = models.OneToOneField(Campaign, on_delete=models.CASCADE, related_name="abvariant")
    # Empty: the template's own subject.
    subject = models.CharField(max_length=300, blank=True)
    # Empty: as soon as the test starts.
    send_at = models.DateTimeField(null=True, blank=True)
    recipients = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["label"]
        constraints = [
            models.UniqueConstraint(fields=["test", "label"], name="abvariant_label_once")
        ]

    def __str__(self) -> str:
        return f"Variant {self.label}"
