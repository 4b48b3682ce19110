"""Plain words for decisions: each router's codes, worded honestly, on the badge and in `ask`'s summary."""

from __future__ import annotations

import pytest

from automix_local import routers as R
from automix_local.cascade import Step, Trace
from automix_local.explain import plain_reason, split_why
from automix_local.routers import Observation, Record
from automix_local.tui.widgets import badge_for_step, decision_badge


def obs(conf: float | None, tier: int = 0, n: int = 2) -> Observation:
    confs: list[float | None] = [None] * n
    confs[tier] = conf
    return Observation(tier, tuple(confs), n)


def words(d: R.Decision, to_tier: str | None = "large") -> str:
    return plain_reason(d.action, d.why, d.confidence, "small", to_tier if d.action == "route" else None)


def hopeless_records() -> list[Record]:
    """conf 0 ⇒ HOPELESS (neither tier right); conf 0.5 ⇒ NEEDY; conf 1 ⇒ GOOD."""
    recs = [Record((0.0, 0.0), (0.0, None)), Record((0.0, 1.0), (0.5, None)), Record((1.0, 1.0), (1.0, None))]
    return recs * 20


def needy_records() -> list[Record]:
    """High confidence ⇒ GOOD, low ⇒ NEEDY."""
    recs = [Record((1.0, 1.0), (c, None)) for c in (0.75, 0.875, 1.0)]
    recs += [Record((0.0, 1.0), (c, None)) for c in (0.0, 0.125, 0.25)]
    return recs * 20


# --------------------------------------------------------------------------- threshold routers


def test_threshold_router_at_the_default_threshold():
    r = R.ThresholdRouter(0.5)
    kept, routed = r.decide(obs(0.8)), r.decide(obs(0.21))
    assert (kept.why, kept.confidence, kept.reason) == ("confident", 0.8, "confidence 0.80 >= threshold 0.50")
    assert words(kept) == "kept: likely right (80 %)"
    assert (routed.why, routed.reason) == ("unsure", "confidence 0.21 < threshold 0.50")
    assert words(routed) == "checked with the larger model (large): the small answer looked unreliable (21 %)"


def test_a_low_threshold_keeps_without_claiming_the_answer_is_likely_right():
    d = R.ThresholdRouter(0.4).decide(obs(0.46))
    assert d.action == "keep" and d.why == "above_threshold:0.4"
    assert words(d) == "kept: above the threshold you set (46 % ≥ 40 %)"
    # rounding never makes the two look equal
    assert words(R.ThresholdRouter(0.4).decide(obs(0.404))) == "kept: above the threshold you set (40.4 % ≥ 40.0 %)"


def test_a_high_threshold_routes_without_calling_the_answer_unreliable():
    d = R.ThresholdRouter(0.8).decide(obs(0.6))
    assert d.action == "route" and split_why(d.why) == ("below_threshold", 0.8)
    assert words(d) == "checked with the larger model (large): below the threshold you set (60 % < 80 %)"
    assert words(R.ThresholdRouter(0.8).decide(obs(0.799))) == (
        "checked with the larger model (large): below the threshold you set (79.9 % < 80.0 %)"
    )


def test_threshold_router_without_a_confidence():
    d = R.ThresholdRouter(0.5).decide(obs(None))
    assert (d.why, d.reason) == ("unchecked", "threshold: no confidence available")
    assert words(d) == "checked with the larger model (large): the answer could not be checked"


def test_self_consistency():
    r = R.SelfConsistency()
    assert words(r.decide(obs(0.75))) == "kept: likely right (75 %)"
    assert (
        words(r.decide(obs(0.25)), None) == "checked with the larger model: the small answer looked unreliable (25 %)"
    )


# --------------------------------------------------------------------------- POMDP


def test_pomdp_keeps_a_hopeless_item_because_the_larger_model_would_not_do_better():
    r = R.POMDPRouter(lambda_=0.01, alpha=0.01, bandwidth=0).fit(hopeless_records(), [1, 10])
    d = r.decide(obs(0.0))
    assert d.action == "keep" and d.why == "no_better"
    assert d.reason.startswith("confidence 0.00; belief HOPELESS") and "keeping is best (E[P]" in d.reason
    assert words(d) == "kept: the larger model is unlikely to do better here (0 %)"
    good = r.decide(obs(1.0))
    assert (good.action, good.why) == ("keep", "confident")
    assert words(good) == "kept: likely right (100 %)"


def test_pomdp_keeps_a_needy_item_when_escalating_costs_too_much():
    r = R.POMDPRouter(lambda_=1.0).fit(needy_records(), [1, 10])
    d = r.decide(obs(0.0))
    assert d.action == "keep" and d.why == "not_worth"
    assert words(d) == "kept: asking the larger model is not worth its cost here (0 %)"


def test_pomdp_route_codes_follow_the_exact_confidence_not_the_memoised_bin():
    r = R.POMDPRouter(lambda_=0.01, alpha=0.01, bandwidth=0).fit(hopeless_records(), [1, 10])
    low, high = r.decide(obs(0.45)), r.decide(obs(0.55))  # the same bin of 9: one memoised decision
    assert low.action == high.action == "route"
    assert (low.why, high.why) == ("unsure", "likely_better")
    assert low.reason.startswith("confidence 0.45; belief NEEDY") and "routing to tier 1 gains" in low.reason
    assert words(low) == "checked with the larger model (large): the small answer looked unreliable (45 %)"
    assert words(high) == "checked with the larger model (large): it is likely to do better here (55 %)"


def test_pomdp_keeping_a_doubtful_good_answer_is_not_called_likely_right():
    d = R.Decision("keep", None, "belief GOOD 0.40, …", "confident", 0.3)
    assert words(d) == "kept: probably as good as the larger model's answer (30 %)"


# --------------------------------------------------------------------------- the others


def test_fixed_and_random_routers():
    small = R.AlwaysSmall().decide(obs(None))
    assert small.why == "fixed" and words(small) == "kept: set to always keep the first answer"
    large = R.AlwaysLarge().decide(obs(None))
    assert (
        large.why == "fixed"
        and words(large) == "checked with the larger model (large): set to always use the largest model"
    )
    assert words(R.RandomRouter(p=1.0).decide(obs(None))) == "checked with the larger model (large): chosen at random"
    assert words(R.RandomRouter(p=0.0).decide(obs(None))) == "kept: chosen at random"


def test_final_tier_and_traces_saved_before_codes():
    assert plain_reason(None, None, None, "large") == "final answer"
    assert plain_reason("keep", None, 0.7, "small") == "kept: likely right (70 %)"
    assert plain_reason("keep", "", 0.3, "small") == "kept: confidence 30 %"
    assert plain_reason("keep", "some_future_code", None, "small") == "kept"
    assert plain_reason("route", None, 0.31, "small", "large") == (
        "checked with the larger model (large): the small answer looked unreliable (31 %)"
    )
    assert plain_reason("route", None, 0.9, "small") == "checked with the larger model: confidence 90 %"
    assert plain_reason("route", None, None, "small", pending=True) == "checking with the larger model"


ROUTERS = [
    R.ThresholdRouter(0.2),
    R.ThresholdRouter(0.5),
    R.ThresholdRouter(0.9),
    R.SelfConsistency(),
    R.POMDPRouter(lambda_=0.01, alpha=0.01, bandwidth=0).fit(hopeless_records(), [1, 10]),
    R.POMDPRouter(lambda_=0.01).fit(needy_records(), [1, 10]),
    R.POMDPRouter(lambda_=1.0).fit(needy_records(), [1, 10]),
]


@pytest.mark.parametrize(
    "router", ROUTERS, ids=lambda r: f"{r.kind}-{r.params().get('threshold', r.params().get('lambda_'))}"
)
def test_words_are_honest_about_the_confidence(router):
    for c in [i / 40 for i in range(41)]:
        d = router.decide(obs(c))
        text = words(d)
        assert text.startswith("kept: " if d.action == "keep" else "checked with the larger model (large): ")
        assert f"{round(100 * c)} %" in text or f"{100 * c:.1f} %" in text
        if "likely right" in text:
            assert c >= 0.5
        if "unreliable" in text:
            assert c < 0.5


# --------------------------------------------------------------------------- badges and the summary


def step(**kw) -> dict:
    base = {"tier": "small", "confidence": None, "decision": None, "reason": None, "egress_id": None}
    return {**base, **kw}


def test_badges_read_in_plain_words():
    kept = step(confidence=0.46, decision="keep", reason="confidence 0.46 >= threshold 0.40", why="above_threshold:0.4")
    assert badge_for_step(kept, True, "small") == ("✓ small · kept: above the threshold you set (46 % ≥ 40 %)", "kept")
    routed = step(confidence=0.21, decision="route", reason="confidence 0.21 < threshold 0.50", why="unsure")
    assert badge_for_step(routed, False, "large", "large") == (
        "✗ small · checked with the larger model (large): the small answer looked unreliable (21 %)",
        "escalated",
    )
    assert badge_for_step(step(tier="large"), True, "large") == ("✓ large · final answer", "kept")


def test_badges_of_a_conversation_saved_before_codes():
    old = step(confidence=0.31, decision="route", reason="confidence 0.31 < threshold 0.50")  # no "why" key
    assert badge_for_step(old, False, "large") == (
        "✗ small · checked with the larger model: the small answer looked unreliable (31 %)",
        "escalated",
    )
    old_keep = step(confidence=0.9, decision="keep", reason="confidence 0.90 >= threshold 0.50")
    assert badge_for_step(old_keep, True, "small")[0] == "✓ small · kept: likely right (90 %)"


def test_blocked_and_remote_badges_keep_their_wording():
    reason = "confidence 0.21 < threshold 0.50; not escalated: remote tiers are off"
    blocked = step(confidence=0.21, decision="route", reason=reason, why="unsure")
    assert badge_for_step(blocked, True, "small") == (f"⚠ small · answered locally — {reason}", "kept")
    remote = step(tier="cloud", egress_id=3, sent="relevant", redactions={"email": 1})
    assert badge_for_step(remote, True, "cloud") == (
        "☁ cloud · final answer · sent relevant (audit #3, 1 redacted)",
        "kept",
    )


def test_decision_badge_for_the_live_app():
    r = R.ThresholdRouter(0.5)
    assert decision_badge("small", r.decide(obs(0.46)), next_tier="large") == (
        "✗ small · checking with the larger model (large): the small answer looked unreliable (46 %)",
        "escalated",
    )
    assert decision_badge("small", r.decide(obs(0.7))) == ("✓ small · kept: likely right (70 %)", "kept")
    # a confidence passed in is used when the decision carries none
    assert (
        decision_badge("small", R.Decision("keep", None, "x", "confident"), 0.9)[0]
        == "✓ small · kept: likely right (90 %)"
    )


def _step(tier: str, confidence: float | None, decision: str | None, why: str | None, **kw) -> Step:
    return Step(
        tier=tier,
        model="m.gguf",
        answer="Rollo",
        confidence=confidence,
        tokens_in=10,
        tokens_out=2,
        seconds=1.0,
        cost=1.0,
        answer_seconds=0.5,
        verify_seconds=0.5,
        abstained=False,
        decision=decision,
        reason="r",
        why=why,
        **kw,
    )


def test_summary_in_plain_words():
    steps = [_step("small", 0.21, "route", "unsure"), _step("large", None, None, None)]
    trace = Trace("q", "Rollo", "large", "m.gguf", "route", None, 2.0, 2.0, steps=steps)
    assert trace.summary() == (
        "answered by large · small: checked with the larger model (large): the small answer looked unreliable "
        "(21 %), 1.0s · large: final answer, 1.0s · total 2.0s, cost 2.00"
    )
    kept = Trace(
        "q", "Rollo", "small", "m.gguf", "keep", 0.8, 1.0, 1.0, steps=[_step("small", 0.8, "keep", "confident")]
    )
    assert kept.summary() == "answered by small · small: kept: likely right (80 %), 1.0s · total 1.0s, cost 1.00"
    blocked = Trace(
        "q",
        "Rollo",
        "small",
        "m.gguf",
        "blocked",
        0.2,
        1.0,
        1.0,
        steps=[_step("small", 0.2, "route", "unsure")],
        notice="no",
    )
    assert blocked.summary() == "answered by small · small: answered locally, 1.0s · total 1.0s, cost 1.00\nnote: no"
