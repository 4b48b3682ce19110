"""`eval report` on a fixed recorded run whose numbers are known by hand."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from automix_local.report import (
    ReportError,
    auroc,
    bootstrap_delta_ibc,
    build_results,
    calibrate,
    load_run,
    reliability,
    render_markdown,
    value_at_cost,
    write_paper_format,
    write_report,
)

from .conftest import ROOT


def tier(f1: float, seconds: float, verification: dict | None = None, features: dict | None = None) -> dict:
    return {
        "answer": "x" if f1 else "y",
        "f1": f1,
        "em": f1,
        "abstained": False,
        "tokens_in": 100,
        "tokens_out": 3,
        "tokens_evaluated": 100,
        "seconds": seconds,
        "prompt_seconds": seconds / 2,
        "gen_seconds": seconds / 2,
        "features": features or {},
        "verification": verification or {},
    }


@pytest.fixture
def fixed_run(tmp_path: Path) -> Path:
    """40 items: 20 the small tier gets right (verifier 0.9), 20 only the large one does (verifier 0.2).

    Seconds: small answer 2, logprob verification 5, large answer 3 — a local regime where escalating
    after a verification costs more than always asking the large model.
    """
    d = tmp_path / "run"
    d.mkdir()
    meta = {
        "data": "fixed.jsonl",
        "limit": 40,
        "seed": None,
        "tiers": [{"name": "small", "source": "a", "cost": 1.0}, {"name": "large", "source": "b", "cost": 50.0}],
        "verifiers": ["logprob", "sampled"],
    }
    (d / "run.json").write_text(json.dumps(meta))
    lines = []
    for i in range(40):
        good = i % 2 == 0
        conf = 0.9 if good else 0.2
        ver = {
            "logprob": {
                "confidence": conf,
                "seconds": 5.0,
                "tokens_in": 700,
                "tokens_out": 0,
                "tokens_evaluated": 700,
                "verdicts": [],
            },
            "sampled": {
                "confidence": 1.0 if good else 0.125,
                "seconds": 20.0,
                "tokens_in": 700,
                "tokens_out": 300,
                "tokens_evaluated": 700,
                "verdicts": [],
            },
        }
        lines.append(
            {
                "id": f"q{i}",
                "dataset": "fixed",
                "unanswerable": False,
                "tiers": {"small": tier(1.0 if good else 0.0, 2.0, ver), "large": tier(1.0, 3.0)},
            }
        )
    lines.append({"id": "long", "error": "small: the context is too long"})
    (d / "items.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    return d


def test_auroc_and_reliability_by_hand():
    assert auroc([0.1, 0.4, 0.35, 0.8], [False, False, True, True]) == pytest.approx(0.75)
    assert auroc([0.5, 0.5], [False, True]) == pytest.approx(0.5)  # ties count half
    assert math.isnan(auroc([0.1, 0.2], [True, True]))
    rel = reliability([0.2, 0.2, 0.9, 0.9], [False, False, True, True])
    assert [b.count for b in rel.bins] == [2, 2]
    assert rel.ece == pytest.approx(0.5 * 0.2 + 0.5 * 0.1)


def test_value_at_cost_reads_the_upper_envelope():
    curve = [{"cost": 1, "performance": 0.5}, {"cost": 3, "performance": 0.9}, {"cost": 5, "performance": 0.8}]
    assert value_at_cost(curve, 2) == pytest.approx(0.7)
    assert value_at_cost(curve, 4) == pytest.approx(0.9)  # the cheaper, better point stays reachable
    assert math.isnan(value_at_cost(curve, 0.5))


def test_fixed_run_numbers(fixed_run: Path):
    run = load_run(fixed_run)
    assert len(run.items) == 40 and run.errors == 1
    res = build_results(run, [1.0, 50.0], seeds=1, train_sizes=[20])
    assert res.tiers["small"].f1 == 0.5 and res.tiers["large"].f1 == 1.0
    assert res.tiers["small"].answer_seconds == 2.0 and res.tiers["large"].answer_seconds == 3.0
    sig = res.signals["verifier_logprob"]
    assert sig.auroc_raw == 1.0 and sig.verify_seconds == 5.0
    assert sig.reliability.ece == pytest.approx(0.15)  # |0.2 - 0| / 2 + |0.9 - 1| / 2
    assert res.signals["verifier_sampled"].auroc_raw == 1.0

    fixed, secs = res.cost_settings
    assert fixed.name == "fixed 1:50" and secs.name == "measured seconds"
    r = fixed.routers
    assert r["always_small"].cost.mean == 1.0 and r["always_large"].cost.mean == 50.0
    assert r["always_large"].performance.mean == 1.0
    thr = r["threshold · verifier_logprob"]
    assert thr.performance.mean == 1.0  # perfect separation: every wrong small answer escalates
    f_b = thr.escalation.mean  # the share of "large only" items in the test part
    assert thr.cost.mean == pytest.approx(1 + 1 + 50 * f_b)  # small + verification (1 unit) + large
    # ΔIBC by hand: IBC_M = f_B / (1 + 50 f_B), IBC_BASE = f_B / 49
    assert thr.delta_ibc.mean == pytest.approx((49 / (1 + 50 * f_b) - 1) * 100)
    assert r["pomdp · verifier_sampled"].performance.mean == 1.0
    assert r["self_consistency · verifier_sampled"].performance.mean == 1.0
    assert "paper regime" in fixed.regime and not fixed.warnings

    s = secs.routers
    assert secs.verify_costs == {"logprob": [5.0], "sampled": [20.0]}
    assert s["always_large"].cost.mean == 3.0
    assert s["threshold · verifier_logprob"].cost.mean == pytest.approx(2 + 5 + 3 * f_b)
    assert "local regime" in secs.regime and "1.5×" in secs.regime
    assert any("always_large is at least as good and no dearer than every router" in w for w in secs.warnings)


def test_verify_cost_scales_the_fixed_verification_charge(fixed_run: Path):
    run = load_run(fixed_run)
    res = build_results(run, [1.0, 50.0], seeds=1, train_sizes=[20], verify_cost=0.2)
    fixed = res.cost_settings[0]
    assert fixed.name == "fixed 1:50, verification 0.2× a call" and fixed.verify_costs["logprob"] == [0.2]
    thr = fixed.routers["threshold · verifier_logprob"]
    assert thr.cost.mean == pytest.approx(1 + 0.2 + 50 * thr.escalation.mean)
    assert res.cost_settings[1].verify_costs["logprob"] == [5.0]  # measured seconds stay measured
    with pytest.raises(ReportError, match="--verify-cost"):
        build_results(run, [1.0, 50.0], seeds=1, train_sizes=[20], verify_cost=-1)


def test_bootstrap_interval_of_delta_ibc(fixed_run: Path):
    res = build_results(load_run(fixed_run), [1.0, 50.0], seeds=2, train_sizes=[20])
    r = res.cost_settings[0].routers
    large, small = r["always_large"].delta_ibc_ci, r["always_small"].delta_ibc_ci
    assert large.low == pytest.approx(0.0) and large.high == pytest.approx(0.0)  # it is the baseline's end
    assert math.isnan(small.low)  # costs nothing more than itself: no IBC
    thr = r["threshold · verifier_logprob"]
    ci = thr.delta_ibc_ci  # perfect separation: every resample gains
    assert ci.p_positive == 1.0 and 0 < ci.low <= thr.delta_ibc.mean <= ci.high


def test_bootstrap_by_hand():
    """Two items, one seed: a replicate that weighs the items equally gives the plain ΔIBC;
    one that draws only the item both tiers get right gives none (no gap between the tiers)."""

    class Out:  # a router's per-item outcome on the test part: escalated item 1 only
        item_scores = [1.0, 1.0]
        item_costs = [2.0, 52.0]

    small, large = np.array([1.0, 0.0]), np.array([1.0, 1.0])
    weights = np.array([[1, 1], [1, 1], [2, 0]])
    ci = bootstrap_delta_ibc([(np.array([0, 1]), Out())], small, large, [1.0, 50.0], weights)
    # IBC_M = (1 - 0.5) / (27 - 1), IBC_BASE = 0.5 / 49 → ΔIBC = (49 / 26 - 1) × 100
    assert ci.replicates == 2 and ci.low == ci.high == pytest.approx((49 / 26 - 1) * 100)


def test_write_report_files_and_markdown(fixed_run: Path, tmp_path: Path):
    out = tmp_path / "report"
    write_report(fixed_run, out, [1, 50], seeds=3, train_sizes=[10, 20], command="automix-local eval report run")
    md = (out / "report.md").read_text()
    assert "| small | 0.500 |" in md and "verifier_logprob | 1.000" in md
    assert "**Warning:** with measured seconds costs, always_large" in md
    assert "Reproduce: `automix-local eval report run`" in md
    res = json.loads((out / "results.json").read_text())
    assert res["train_sizes"] == [10, 20] and res["seeds"] == 3
    assert set(res["cost_settings"][0]["learning_curve"]["delta_ibc"]) == {"10", "20"}
    assert (out / "cost_quality.png").read_bytes()[:4] == b"\x89PNG"
    # the verifier tells the 20 wrong small answers apart: all the oracle's gain at 25 % and 50 % escalated
    osh = res["oracle_share"]
    assert osh["rates"] == [0.25, 0.5]
    for rate in ("0.25", "0.5"):
        assert osh["signals"]["verifier_logprob"]["rates"][rate]["share"] == pytest.approx(1.0)
    assert osh["signals"]["verifier_logprob"]["cost_ratio"] == pytest.approx(5.0 / 2.0)
    assert osh["random_vs_large"]["0.25"] == pytest.approx(0.5 + 0.25 * 0.5)
    assert "## Signals at a fixed escalation rate: the share of the oracle's gain" in md
    assert "| verifier_logprob | 1.00 (1.00 to 1.00) | 1.00 (1.00 to 1.00) | 2.50 |" in md


def test_paper_format_replay_gives_the_same_numbers(fixed_run: Path, tmp_path: Path):
    ours = load_run(fixed_run)
    paper_file = tmp_path / "paper.jsonl"
    write_paper_format(ours, paper_file)
    row = json.loads(paper_file.read_text().splitlines()[1])
    assert {
        "llama13b_pred_ans",
        "llama70b_pred_ans",
        "p_ver_13b",
        "llama13b_f1",
        "llama70b_f1",
        "split",
        "dataset",
    } <= row.keys()
    paper = load_run(paper_file)
    assert paper.source == "automix-paper" and paper.signals == ["verifier_sampled"]
    a = build_results(ours, [1, 50], seeds=2, train_sizes=[20]).cost_settings[0].routers
    b = build_results(paper, [1, 50], seeds=2, train_sizes=[20]).cost_settings[0].routers
    for key in ("threshold · verifier_sampled", "pomdp · verifier_sampled", "always_large"):
        assert a[key].delta_ibc.mean == pytest.approx(b[key].delta_ibc.mean, nan_ok=True)
        assert a[key].cost.mean == pytest.approx(b[key].cost.mean)


def test_calibrate_fits_on_the_whole_run(fixed_run: Path, tmp_path: Path):
    router, spec, _ = calibrate(fixed_run, "pomdp", None, [1.0, 50.0])
    assert router.prompt == {"layout": "paper", "answer_examples": False, "turns": False}  # before the keys: paper
    assert spec.name in ("verifier_logprob", "verifier_sampled", "free + verifier_logprob", "free + verifier_sampled")
    assert router.signal is not None and router.costs is not None
    from automix_local.routers import Observation

    low = router.decide(
        Observation(0, (router.signal.confidence({"verifier_logprob": 0.2, "verifier_sampled": 0.125}), None), 2)
    )
    high = router.decide(
        Observation(0, (router.signal.confidence({"verifier_logprob": 0.9, "verifier_sampled": 1.0}), None), 2)
    )
    assert (low.action, high.action) == ("route", "keep")


def test_report_errors_are_one_line(tmp_path: Path):
    from automix_local.report import ReportError

    with pytest.raises(ReportError, match="no run at"):
        load_run(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ReportError, match="not an eval run directory"):
        load_run(tmp_path / "empty")
    bad = tmp_path / "x.jsonl"
    bad.write_text('{"foo": 1}\n')
    with pytest.raises(ReportError, match="not the AutoMix paper format"):
        load_run(bad)


def test_calibrate_fits_for_a_target_escalation(fixed_run: Path):
    from automix_local.report import _records
    from automix_local.routers import simulate

    run = load_run(fixed_run)
    for target in (0.0, 1.0):
        router, _, _ = calibrate(fixed_run, "threshold", "verifier_logprob", [1.0, 50.0], target_escalation=target)
        out = simulate(router, _records(run.items, router.signal), [2.0, 50.0])
        assert out.escalation == target


def test_fit_abstain_by_hand():
    from automix_local.report import fit_abstain

    # p:      0.9   0.8   0.5   0.2   0.1
    # unans:  yes   yes   no    yes   no    (abstaining scores 1 on an unanswerable item, 0 otherwise)
    # scores: 0     0     1     0     1
    p, scores, una = [0.9, 0.8, 0.5, 0.2, 0.1], [0, 0, 1, 0, 1], [True, True, False, True, False]
    assert fit_abstain(p, scores, una) == pytest.approx((0.8 + 0.5) / 2)  # the two top items, halfway to the next
    assert fit_abstain(p, [1, 1, 1, 1, 1], [False] * 5) is None  # never better: no threshold


def test_calibrate_writes_abstention_thresholds(tmp_path: Path):
    """On a run with unanswerable items whose P(abstain) is high, calibrate fits a threshold per tier."""
    d = tmp_path / "run"
    d.mkdir()
    meta = {
        "data": "x.jsonl",
        "tiers": [{"name": "small", "source": "a", "cost": 1.0}, {"name": "large", "source": "b", "cost": 50.0}],
        "verifiers": ["logprob"],
    }
    (d / "run.json").write_text(json.dumps(meta))
    lines = []
    for i in range(60):
        una = i % 3 == 0
        feats = {"mean_logprob": -0.1 - (i % 7) / 10, "p_abstain": 0.6 if una else 0.01}
        ver = {"logprob": {"confidence": 0.5, "seconds": 1.0, "tokens_in": 1, "tokens_out": 0, "verdicts": []}}
        small = tier(0.0 if una else float(i % 2), 1.0, ver, feats) | {"tokens_evaluated": 1}
        large = tier(0.0 if una else 1.0, 2.0, None, feats)
        lines.append({"id": f"q{i}", "unanswerable": una, "tiers": {"small": small, "large": large}})
    (d / "items.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    router, _, _ = calibrate(d, "threshold", "mean_logprob", [1.0, 50.0], seeds=2)
    assert set(router.abstain) == {"small", "large"}
    assert all(0.01 < t <= 0.6 for t in router.abstain.values())
    quiet, _, _ = calibrate(d, "threshold", "mean_logprob", [1.0, 50.0], seeds=2, abstain=False)
    assert quiet.abstain == {} and quiet.threshold == router.threshold  # `calibrate --no-abstain`
    res = build_results(load_run(d), [1.0, 50.0], seeds=2, train_sizes=[30])
    assert res.abstain is not None
    assert res.abstain["large"].f1_heldout_with_threshold.mean > res.abstain["large"].f1.mean
    assert "## Abstaining at the first token" in render_markdown(res)


def _run_judged_by_the_default(tmp_path: Path, reverse: bool) -> Path:
    """80 items with real feature vectors (the committed squad300-signals run); the small answer is right
    exactly where the shipped default's signal is the more confident half (reversed: the other half)."""
    from importlib import resources

    from automix_local.routers import load

    default = load(Path(str(resources.files("automix_local") / "data" / "router-default.json"))).signal
    assert default is not None
    recorded = ROOT / "docs" / "results" / "squad300-signals" / "run" / "items.jsonl"
    feats = [json.loads(line)["tiers"]["small"]["features"] for line in recorded.read_text().splitlines()[:80]]
    conf = [default.confidence(f) for f in feats]
    cut = sorted(conf)[len(conf) // 2]
    d = tmp_path / ("rev" if reverse else "fwd")
    d.mkdir()
    meta = {"data": "x.jsonl", "tiers": [{"name": "small", "cost": 1.0}, {"name": "large", "cost": 50.0}]}
    (d / "run.json").write_text(json.dumps(meta))
    lines = []
    for i, (f, c) in enumerate(zip(feats, conf, strict=True)):
        right = (c >= cut) != reverse
        f = {k: v for k, v in f.items() if k != "length"} | {"length": 3.0}  # a feature that says nothing
        lines.append({"id": f"q{i}", "tiers": {"small": tier(float(right), 1.0, None, f), "large": tier(1.0, 2.0)}})
    (d / "items.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    return d


def test_calibrate_says_when_a_run_does_not_beat_the_shipped_default(tmp_path: Path):
    from automix_local.report import SignalSpec, versus_default

    default_features = tuple(
        json.loads((ROOT / "automix_local" / "data" / "router-default.json").read_text())["signal"]["features"]
    )
    fitted = SignalSpec("refitted", default_features, False)
    useless = SignalSpec("length", ("length",), False)
    # where the default's own signal decides who is right, a feature that says nothing does not beat it;
    # where it runs the other way round, the same features fitted on this run do
    assert versus_default(load_run(_run_judged_by_the_default(tmp_path, reverse=True)), fitted) is None
    note = versus_default(load_run(_run_judged_by_the_default(tmp_path, reverse=False)), useless)
    assert note is not None and "does not beat the default" in note and "80 items" in note


def test_grounding_is_computed_for_runs_recorded_before_it(tmp_path: Path):
    """An older run (no grounding features) gets them from its data file when the file's sha256 is the one
    recorded; with another file it is reported as recorded."""
    import hashlib

    from automix_local.grounding import GROUNDING_FEATURES

    data = tmp_path / "data.jsonl"
    rows = [
        {"id": f"q{i}", "context": "Rollo led the Norse raiders. Normandy was founded in 911.", "question": "Who led?"}
        for i in range(6)
    ]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    d = tmp_path / "run"
    d.mkdir()
    meta = {
        "data": str(data),
        "data_sha256": hashlib.sha256(data.read_bytes()).hexdigest(),
        "tiers": [{"name": "small", "cost": 1.0}, {"name": "large", "cost": 50.0}],
    }
    (d / "run.json").write_text(json.dumps(meta))
    items = []
    for i in range(6):
        small = tier(1.0, 1.0, None, {"mean_logprob": -0.1}) | {"answer": "Rollo" if i % 2 else "Charles"}
        items.append(
            {"id": f"q{i}", "question": "Who led the raiders?", "tiers": {"small": small, "large": tier(1.0, 2.0)}}
        )
    (d / "items.jsonl").write_text("".join(json.dumps(x) + "\n" for x in items))
    run = load_run(d)
    assert set(GROUNDING_FEATURES) <= set(run.signals) and "computed from data.jsonl" in run.meta["grounding"]
    assert [it.features[0]["in_context"] for it in run.items] == [0.0, 1.0] * 3
    # a run concatenated from two runs lists both files
    other = tmp_path / "other.jsonl"
    other.write_text(json.dumps({"id": "z0", "context": "Kell holds a fair in August.", "question": "When?"}) + "\n")
    extra = tier(1.0, 1.0, None, {"mean_logprob": -0.1}) | {"answer": "in August"}
    with (d / "items.jsonl").open("a") as f:
        f.write(
            json.dumps({"id": "z0", "question": "When?", "tiers": {"small": extra, "large": tier(1.0, 2.0)}}) + "\n"
        )
    assert not set(GROUNDING_FEATURES) & set(load_run(d).signals)  # z0 is in neither recorded file
    files = [{"path": str(p), "sha256": hashlib.sha256(p.read_bytes()).hexdigest()} for p in (data, other)]
    (d / "run.json").write_text(json.dumps(meta | {"data_files": files}))
    both = load_run(d)
    assert set(GROUNDING_FEATURES) <= set(both.signals) and both.items[-1].features[0]["in_context"] == 1.0
    assert "data.jsonl, other.jsonl" in both.meta["grounding"]
    data.write_text(data.read_text() + "\n")  # not the file the run was recorded on
    assert not set(GROUNDING_FEATURES) & set(load_run(d).signals)


# --- the trust score: +1 right, 0 abstained, -1 wrong (issue 22) ------------------------------------------------

# one block of 8 items: (unanswerable, small (F1, abstained), large (F1, abstained)) and each answer's trust by hand
TRUST_BLOCK = [
    (False, (1.0, False), (1.0, False)),  # +1 +1
    (False, (0.0, False), (1.0, False)),  # -1 +1
    (False, (0.4, False), (0.6, False)),  # -1 +1: right from F1 0.5
    (False, (0.0, True), (0.0, False)),  # 0 -1: an abstention where there is an answer
    (True, (0.0, False), (1.0, True)),  # -1 +1: an abstention on an unanswerable question is right
    (True, (0.0, False), (0.0, False)),  # -1 -1: answering it is wrong
    (True, (1.0, True), (0.0, False)),  # +1 -1
    (False, (0.0, False), (0.0, False)),  # -1 -1
]
TRUST_SMALL = [1, -1, -1, 0, -1, -1, 1, -1]
TRUST_LARGE = [1, 1, 1, -1, 1, -1, -1, -1]
TRUST_LARGE_AT_TAU = [1, 1, 1, -1, 1, 1, 1, -1]  # the large tier abstains on every unanswerable question at its τ


@pytest.fixture
def trust_run(tmp_path: Path) -> Path:
    """40 items, the block above five times. The large tier's P(abstain) is 0.9 on unanswerable questions and 0.01
    elsewhere, so its fitted first-token threshold abstains exactly there; the small tier records none (no τ)."""
    d = tmp_path / "trust"
    d.mkdir()
    meta = {
        "data": "x.jsonl",
        "tiers": [{"name": "small", "source": "a", "cost": 1.0}, {"name": "large", "source": "b", "cost": 50.0}],
    }
    (d / "run.json").write_text(json.dumps(meta))
    lines = []
    for i in range(40):
        una, (f1_s, ab_s), (f1_l, ab_l) = TRUST_BLOCK[i % 8]
        small = tier(f1_s, 1.0, None, {"mean_logprob": -0.1 if f1_s >= 0.5 else -1.0 - i / 100}) | {"abstained": ab_s}
        large = tier(f1_l, 2.0, None, {"p_abstain": 0.9 if una else 0.01}) | {"abstained": ab_l}
        lines.append({"id": f"q{i}", "unanswerable": una, "tiers": {"small": small, "large": large}})
    (d / "items.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    return d


def test_trust_score_by_hand(trust_run: Path):
    from automix_local.report.stats import _split

    res = build_results(load_run(trust_run), [1.0, 50.0], seeds=3, train_sizes=[20])
    tr = res.trust
    assert tr is not None
    small, large = tr.tiers["small"], tr.tiers["large"]
    assert small.mean == pytest.approx(-3 / 8) and large.mean == pytest.approx(0.0)
    assert (small.right, small.abstained, small.wrong) == pytest.approx((2 / 8, 1 / 8, 5 / 8))
    assert small.std is None and small.ci.low < small.mean < small.ci.high and small.ci.replicates == 1000
    oracles = list(tr.oracles.values())
    assert oracles[0].mean == pytest.approx(3 / 8)  # the better tier
    assert oracles[1].mean == pytest.approx(6 / 8)  # … or an abstention: +1 on item 5, 0 on item 7
    assert oracles[2].mean == pytest.approx(5 / 8)  # the same, abstentions scored 0
    # held out, with first-token abstention: the large tier abstains on the unanswerable questions of each test part
    assert tr.tiers_with_abstention is not None and set(tr.tiers_with_abstention) == {"small", "large"}
    at_tau = np.array(TRUST_LARGE_AT_TAU * 5, dtype=float)
    tests = [_split(40, 20, seed)[1] for seed in range(3)]
    expected = np.mean([at_tau[te].mean() for te in tests])
    assert tr.tiers_with_abstention["large"].mean == pytest.approx(expected)
    assert tr.tiers_with_abstention["large"].std == pytest.approx(np.std([at_tau[te].mean() for te in tests], ddof=1))
    small_plain, plain = np.array(TRUST_SMALL * 5, dtype=float), np.array(TRUST_LARGE * 5, dtype=float)
    held_small = np.mean([small_plain[te].mean() for te in tests])
    assert tr.tiers_with_abstention["small"].mean == pytest.approx(held_small)  # no P(abstain) recorded: no τ
    # the routers held out: always_large is the large tier on the test parts, as recorded and with its τ
    fixed = tr.cost_settings[0]
    assert fixed.name == res.cost_settings[0].name
    assert fixed.routers["always_small"].recorded.mean == pytest.approx(held_small)
    always_large = fixed.routers["always_large"]
    assert always_large.recorded.mean == pytest.approx(np.mean([plain[te].mean() for te in tests]))
    assert always_large.with_abstention is not None
    assert always_large.with_abstention.mean == pytest.approx(expected)
    assert fixed.best is not None and fixed.best.fitted


def test_results_json_carries_the_trust_score(trust_run: Path, tmp_path: Path):
    out = tmp_path / "report"
    write_report(trust_run, out, [1, 50], seeds=2, train_sizes=[20])
    res = json.loads((out / "results.json").read_text())
    assert list(res)[-1] == "trust" and list(res)[:2] == ["run", "correct_f1"]
    tr = res["trust"]
    assert tr["tiers"]["small"]["mean"] == pytest.approx(-3 / 8) and tr["tiers"]["large"]["mean"] == 0.0
    assert set(tr["tiers"]["small"]["ci"]) == {"low", "high", "p_positive", "replicates"}
    assert [cs["name"] for cs in tr["cost_settings"]] == [cs["name"] for cs in res["cost_settings"]]
    assert "always_large" in tr["cost_settings"][0]["routers"]
    assert "held_out" not in res["cost_settings"][0]["routers"]["always_large"]  # the outcomes stay out of the JSON
    md = (out / "report.md").read_text()
    assert "## Trust score" in md and "**+1 when right**" in md
    assert "| always small | -0.38 |" in md and "| oracle: the better tier, or abstain | +0.75 |" in md
    assert "### Trust score of the routers held out — fixed 1:50 costs" in md


def test_trust_score_of_a_recorded_run_from_its_answers():
    """docs/results/squad60-both (60 SQuAD 2.0 questions, half unanswerable, recorded by `eval run`): each tier's
    trust score equals the one recomputed from the recorded answer texts against the items' gold answers."""
    from automix_local.report.trust import trust_matrix
    from automix_local.scoring import trust_item

    d = ROOT / "docs" / "results" / "squad60-both" / "run"
    recs = [json.loads(line) for line in (d / "items.jsonl").read_text().splitlines()]
    run = load_run(d)
    by_answer = np.array([[trust_item(r["tiers"][t]["answer"], r) for t in run.tiers] for r in recs], dtype=float)
    assert np.array_equal(trust_matrix(run), by_answer)
    assert (by_answer[[r["unanswerable"] for r in recs]] != 0).all()  # unanswerable: never 0, right or wrong


def test_bootstrap_mean_by_hand():
    from automix_local.report.stats import bootstrap_mean

    values = np.array([1.0, -1.0])
    weights = np.array([[1, 1], [2, 0], [0, 2], [2, 0]])  # the replicates' means: 0, +1, -1, +1
    ci = bootstrap_mean([(np.array([0, 1]), values)], weights)
    assert ci.replicates == 4 and ci.p_positive == 0.5
    assert (ci.low, ci.high) == pytest.approx(tuple(np.percentile([0, 1, -1, 1], [2.5, 97.5])))
    # two parts (seeds) over the same items: each replicate averages the parts' weighted means
    two = bootstrap_mean([(np.array([0, 1]), values), (np.array([1]), values[[1]])], weights[:1])
    assert two.low == two.high == pytest.approx((0 + -1) / 2)
