"""A/B test results side by side and the winner decision, on **human** events only.

Automated events and privacy-proxy fetches never decide a test
(:data:`reporting.reports.HUMAN_ONLY`, :func:`reporting.reports.human_winner`). The
significance shown is a two-sided two-proportion z-test between the leader and the
runner-up on the test's metric. The beat task ``reporting.decide_ab_tests`` evaluates
each test whose wait is over and records the outcome through
``campaigns.services.abtests.abtest_decide`` (campaigns never import reporting).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from campaigns.models import ABTest, ABVariant, WinnerMetric
from campaigns.services import abtests as abtest_services
from reporting.reports import HUMAN_ONLY, Filters, Row, human_winner, split

# (successes, trials) of each metric.
_PARTS = {
    WinnerMetric.OPEN_RATE: ("opened", "delivered"),
    WinnerMetric.CLICK_RATE: ("clicked", "delivered"),
    WinnerMetric.CLICK_TO_OPEN_RATE: ("clicked", "opened"),
}
SIGNIFICANT = 0.05


def two_proportion_p_value(x1: int, n1: int, x2: int, n2: int) -> float | None:
    """Two-sided p-value of H0 "same rate" for x1/n1 vs x2/n2 (pooled z-test); ``None``
    when a sample is empty or the pooled rate is 0 or 1 (no variance)."""
    if n1 <= 0 or n2 <= 0:
        return None
    pooled = (x1 + x2) / (n1 + n2)
    variance = pooled * (1 - pooled) * (1 / n1 + 1 / n2)
    if variance <= 0:
        return None
    z = (x1 / n1 - x2 / n2) / math.sqrt(variance)
    return math.erfc(abs(z) / math.sqrt(2))


@dataclass
class VariantResult:
    variant: ABVariant
    row: Row | None

    def _metric(self, name: str) -> int:
        return int(getattr(self.row, name)) if self.row is not None else 0

    @property
    def sent(self) -> int:
        return self._metric("sent")

    @property
    def delivered(self) -> int:
        return self._metric("delivered")

    @property
    def opened(self) -> int:
        return self.row.opened if self.row is not None else 0

    @property
    def clicked(self) -> int:
        return self.row.clicked if self.row is not None else 0

    def rate(self, metric: str) -> float | None:
        return getattr(self.row, metric) if self.row is not None else None

    @property
    def open_rate(self) -> float | None:
        return self.rate("open_rate")

    @property
    def click_rate(self) -> float | None:
        return self.rate("click_rate")

    @property
    def click_to_open_rate(self) -> float | None:
        return self.rate("click_to_open_rate")

    def parts(self, metric: str) -> tuple[int, int]:
        successes, trials = _PARTS[WinnerMetric(metric)]
        return int(getattr(self, successes)), int(getattr(self, trials))


@dataclass
class Evaluation:
    test: ABTest
    results: list[VariantResult]
    leader: VariantResult | None
    p_value: float | None
    note: str

    @property
    def significant(self) -> bool:
        return self.p_value is not None and self.p_value < SIGNIFICANT

    @property
    def metric_label(self) -> str:
        return WinnerMetric(self.test.metric).label


def evaluate(test: ABTest) -> Evaluation:
    """Each variant's human-only figures, the leader (None while the sample is too small
    or the best rate is shared) and the p-value of leader vs runner-up."""
    variants = list(test.variants.select_related("campaign"))
    ids = [v.campaign_id for v in variants]
    rows = {
        row.campaign_id: row
        for row in split(
            filters=Filters(campaign_ids=tuple(ids)), by="campaign", counting=HUMAN_ONLY
        )
    }
    results = [VariantResult(variant=v, row=rows.get(v.campaign_id)) for v in variants]
    metric = test.metric
    small = [r.variant.label for r in results if r.delivered < test.min_sample]
    best = human_winner(campaign_ids=ids, metric=metric, min_delivered=test.min_sample)
    leader = next((r for r in results if best and r.variant.campaign_id == best.campaign_id), None)
    ranked = sorted(
        (r for r in results if r.rate(metric) is not None),
        key=lambda r: r.rate(metric) or 0.0,
        reverse=True,
    )
    p_value = None
    if len(ranked) >= 2:
        p_value = two_proportion_p_value(*ranked[0].parts(metric), *ranked[1].parts(metric))
    if small:
        note = (
            f"Waiting for {test.min_sample} delivered messages per variant "
            f"(not yet: {', '.join(small)})."
        )
        leader = None
    elif leader is None:
        note = "No winner yet: the best human rate is shared or nobody engaged."
    else:
        quality = (
            "significant" if p_value is not None and p_value < SIGNIFICANT else "not significant"
        )
        shown = "n/a" if p_value is None else f"{p_value:.3f}"
        note = (
            f"Variant {leader.variant.label} leads on {WinnerMetric(metric).label.lower()} "
            f"(p = {shown}, {quality} at 5 %)."
        )
    return Evaluation(test=test, results=results, leader=leader, p_value=p_value, note=note)


def abtest_for_campaign(campaign_id: int) -> Evaluation | None:
    """The evaluation shown on a report page: for the tested campaign or one of its
    variants; ``None`` for a campaign without an A/B test."""
    test = ABTest.objects.filter(campaign_id=campaign_id).first()
    if test is None:
        variant = ABVariant.objects.filter(campaign_id=campaign_id).select_related("test").first()
        test = variant.test if variant is not None else None
    if test is None or test.state == "draft":
        return None
    return evaluate(test)


def abtests_decide_due() -> int:
    """Evaluate every running test whose wait is over and record the outcome (beat).
    Returns how many got a winner."""
    decided = 0
    for test_id in abtest_services.abtests_due():
        test = ABTest.objects.get(pk=test_id)
        result = evaluate(test)
        winner_id = result.leader.variant.pk if result.leader is not None else None
        abtest_services.abtest_decide(
            test_id=test_id, winner_id=winner_id, p_value=result.p_value, note=result.note
        )
        decided += winner_id is not None
    return decided
