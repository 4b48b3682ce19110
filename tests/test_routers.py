"""Meta-verifiers on synthetic records whose optimal policy is known by construction."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from automix_local import routers as R
from automix_local.metrics import delta_ibc, ibc
from automix_local.routers import Observation, Record, simulate


def obs(conf: float, tier: int = 0, n: int = 2) -> Observation:
    confs: list[float | None] = [None] * n
    confs[tier] = conf
    return Observation(tier, tuple(confs), n)


def records_good_needy(n: int = 200) -> list[Record]:
    """High confidence ⇒ the small answer is right (GOOD); low ⇒ only the large one is (NEEDY)."""
    rng = random.Random(0)
    out = []
    for _ in range(n):
        if rng.random() < 0.5:
            out.append(Record((1.0, 1.0), (rng.choice([0.75, 0.875, 1.0]), None)))
        else:
            out.append(Record((0.0, 1.0), (rng.choice([0.0, 0.125, 0.25]), None)))
    return out


def records_with_hopeless(n: int = 300) -> list[Record]:
    """conf 0 ⇒ HOPELESS (neither tier right); conf 0.5 ⇒ NEEDY; conf 1 ⇒ GOOD."""
    out = []
    for i in range(n):
        kind = i % 3
        if kind == 0:
            out.append(Record((0.0, 0.0), (0.0, None)))
        elif kind == 1:
            out.append(Record((0.0, 1.0), (0.5, None)))
        else:
            out.append(Record((1.0, 1.0), (1.0, None)))
    return out


def test_ibc_and_delta_ibc_match_the_paper_definitions():
    # straight line from (1, 0.4) to (51, 0.6): slope 0.004
    assert ibc(0.6, 51, 0.4, 1) == pytest.approx(0.004)
    # a method reaching 0.55 at cost 11: slope 0.015 → (0.015 - 0.004)/0.004 = +275 %
    assert delta_ibc(0.55, 11, 0.4, 1, 0.6, 51) == pytest.approx(275.0)
    # a point on the line is 0 %
    assert delta_ibc(0.5, 26, 0.4, 1, 0.6, 51) == pytest.approx(0.0)


def test_always_small_and_always_large():
    recs = records_good_needy()
    small = simulate(R.AlwaysSmall(), recs, [1, 10])
    large = simulate(R.AlwaysLarge(), recs, [1, 10])
    assert small.cost == 1 and small.escalation == 0
    assert large.cost == 10 and large.escalation == 1 and large.performance == 1.0
    assert R.AlwaysLarge().start(3) == 2 and R.AlwaysSmall().start(3) == 0


def test_random_router_routes_about_p_and_is_seeded():
    recs = records_good_needy(1000)
    a = simulate(R.RandomRouter(p=0.3, seed=1), recs, [1, 10])
    b = simulate(R.RandomRouter(p=0.3, seed=1), recs, [1, 10])
    assert a.final_tiers == b.final_tiers
    assert 0.25 < a.escalation < 0.35


def test_threshold_router_decides_by_confidence():
    r = R.ThresholdRouter(0.5)
    assert r.decide(obs(0.4)).action == "route"
    assert r.decide(obs(0.5)).action == "keep"
    assert r.decide(obs(0.4)).target == 1


def test_threshold_fit_finds_the_separating_threshold():
    recs = records_good_needy()
    r = R.ThresholdRouter().fit(recs, [1, 10])
    assert 0.25 < r.threshold <= 0.75
    out = simulate(r, recs, [1, 10])
    assert out.performance == 1.0
    assert out.escalation == pytest.approx(sum(x.scores[0] == 0 for x in recs) / len(recs))


def test_threshold_fit_to_target_escalation():
    recs = records_good_needy()
    r = R.ThresholdRouter(target_escalation=0.0).fit(recs, [1, 10])
    assert simulate(r, recs, [1, 10]).escalation == 0.0


def test_self_consistency_is_fixed_at_half():
    r = R.SelfConsistency().fit(records_good_needy(), [1, 10])
    assert r.threshold == 0.5
    assert r.decide(obs(0.49)).action == "route" and r.decide(obs(0.5)).action == "keep"


def test_confidence_bins_map_the_nine_sampled_values_one_to_one():
    assert [R.confidence_bin(k / 8, 9) for k in range(9)] == list(range(9))


def test_pomdp_routes_needy_keeps_good():
    recs = records_good_needy()
    r = R.POMDPRouter(lambda_=0.01).fit(recs, [1, 10])
    assert r.decide(obs(0.0)).action == "route"
    assert r.decide(obs(0.125)).action == "route"
    assert r.decide(obs(1.0)).action == "keep"
    assert r.decide(obs(0.875)).action == "keep"
    assert "belief" in r.decide(obs(0.0)).reason


def test_pomdp_never_routes_when_cost_outweighs_any_gain():
    recs = records_good_needy()
    r = R.POMDPRouter(lambda_=1.0).fit(recs, [1, 10])  # routing costs 10 for at most +1 performance
    assert all(r.decide(obs(c / 8)).action == "keep" for c in range(9))


def test_pomdp_does_not_route_hopeless_items():
    recs = records_with_hopeless()
    r = R.POMDPRouter(lambda_=0.01, alpha=0.01, bandwidth=0).fit(recs, [1, 10])
    assert r.decide(obs(0.0)).action == "keep"  # HOPELESS: the large tier fails too, routing only costs
    assert r.decide(obs(0.5)).action == "route"  # NEEDY
    assert r.decide(obs(1.0)).action == "keep"  # GOOD
    # a threshold cannot express this policy; the POMDP is strictly cheaper at equal quality
    pomdp = simulate(r, recs, [1, 10])
    thr = simulate(R.ThresholdRouter(0.75), recs, [1, 10])
    assert pomdp.performance == thr.performance and pomdp.cost < thr.cost


def test_pomdp_three_tiers_skips_a_useless_middle_tier():
    """Middle tier never better than the small one: from a doubtful small answer go straight to tier 2."""
    recs = []
    for i in range(300):
        if i % 2:
            recs.append(Record((1.0, 0.0, 1.0), (1.0, 0.0, None)))
        else:
            recs.append(Record((0.0, 0.0, 1.0), (0.0, 0.0, None)))
    r = R.POMDPRouter(lambda_=0.01).fit(recs, [1, 2, 10])
    d = r.decide(obs(0.0, 0, 3))
    assert d.action == "route" and d.target == 2
    assert r.decide(obs(1.0, 0, 3)).action == "keep"
    out = simulate(r, recs, [1, 2, 10])
    assert out.performance == 1.0 and 1 not in out.final_tiers


def test_pomdp_three_tiers_uses_an_informative_middle_tier():
    """Middle tier solves half the hard items and its verifier says which: try it before the last."""
    recs = []
    for i in range(400):
        k = i % 4
        if k in (0, 1):
            recs.append(Record((1.0, 1.0, 1.0), (1.0, 1.0, None)))
        elif k == 2:
            recs.append(Record((0.0, 1.0, 1.0), (0.0, 1.0, None)))
        else:
            recs.append(Record((0.0, 0.0, 1.0), (0.0, 0.0, None)))
    r = R.POMDPRouter(lambda_=0.001).fit(recs, [1, 2, 20])
    assert r.decide(obs(0.0, 0, 3)).target == 1
    assert r.decide(Observation(1, (0.0, 0.0, None), 3)).target == 2
    assert r.decide(Observation(1, (0.0, 1.0, None), 3)).action == "keep"
    out = simulate(r, recs, [1, 2, 20])
    assert out.performance == 1.0


def test_pomdp_fit_chooses_lambda_by_training_ibc():
    recs = records_good_needy()
    r = R.POMDPRouter().fit(recs, [1, 10])
    assert r.lambda_ is not None
    out = simulate(r, recs, [1, 10])
    assert out.performance == 1.0 and out.escalation < 0.6


@pytest.mark.parametrize(
    "router",
    [
        R.AlwaysSmall(),
        R.AlwaysLarge(),
        R.RandomRouter(0.2, seed=3),
        R.ThresholdRouter(0.3),
        R.SelfConsistency(),
        R.POMDPRouter(lambda_=0.002),
    ],
    ids=lambda r: r.kind,
)
def test_save_load_roundtrip_gives_same_decisions(router: R.Router, tmp_path: Path):
    router.fit(records_good_needy(), [1, 10])
    path = tmp_path / "router.json"
    router.save(path)
    loaded = R.load(path)
    assert loaded.kind == router.kind and loaded.costs == (1.0, 10.0)
    assert loaded.abstain == {}
    router.abstain = {"small": 0.35}
    router.save(path)
    assert R.load(path).abstain == {"small": 0.35}
    for c in range(9):
        a, b = router.decide(obs(c / 8)), loaded.decide(obs(c / 8))
        if router.kind != "random":
            assert (a.action, a.target) == (b.action, b.target)


def test_load_rejects_bad_files(tmp_path: Path):
    bad = tmp_path / "r.json"
    bad.write_text("not json")
    with pytest.raises(R.RouterError, match="cannot read router file"):
        R.load(bad)
    bad.write_text(json.dumps({"format": "automix-local-router", "version": 1, "kind": "magic"}))
    with pytest.raises(R.RouterError, match="unknown router kind"):
        R.load(bad)
    with pytest.raises(R.RouterError, match="not found"):
        R.load(tmp_path / "missing.json")
    data = R.ThresholdRouter(0.5).to_json() | {"abstain": {"small": 2}}
    bad.write_text(json.dumps(data))
    with pytest.raises(R.RouterError, match='"abstain" must map tier names to probabilities'):
        R.load(bad)


def test_unfitted_pomdp_says_so():
    with pytest.raises(R.RouterError, match="not fitted"):
        R.POMDPRouter().decide(obs(0.5))
