"""Three outcomes (abstain.py): the trust router keeps, escalates or says it is not sure — its operating point on
a table, its file, and the cascade, the ask service, the CLI's JSON and `serve` on scripted tiers."""

from __future__ import annotations

import json
import math
from pathlib import Path

import httpx
import numpy as np
import pytest

from automix_local import routers as R
from automix_local.abstain import BALANCED_TIME, Table, TrustRouter, check_target, choose, play, points
from automix_local.ask import AskService, Question, Source
from automix_local.cascade import Cascade
from automix_local.explain import NOT_SURE_TEXT
from automix_local.routers import RouterError
from automix_local.signals import Signal
from automix_local.streams import Returning

from .fake_tier import Reply, Script, kinds, run_events, scripted_config, scripted_factory, use_scripted
from .test_server import running

CONTEXT = "Carol Diaz joined the company in 2001. Alice Moreau joined in 2010. Carol Diaz left the company in 2015."
Q = "When did Carol Diaz leave?"

# four kinds of question, ten of each: (small P(right), small value, large P(right), large value, unanswerable)
KINDS = [
    (0.9, 1, 0.9, 1, 0),  # the small tier is right and sure: keep it
    (0.5, -1, 0.8, 1, 0),  # the small tier is unsure and wrong, the large one right and sure: escalate
    (0.1, -1, 0.1, -1, 0),  # neither knows, and the small tier can tell: not sure at once
    (0.5, -1, 0.2, -1, 1),  # no answer in the text: the large tier answers anyway, unsure: not sure
]


def table(kinds: list[tuple[float, int, float, int, int]] = KINDS, n: int = 10) -> Table:
    rows = [k for k in kinds for _ in range(n)]
    return Table(
        ("small", "large"),
        np.array([[r[0], r[2]] for r in rows]),
        np.array([[r[1], r[3]] for r in rows], dtype=float),
        np.array([r[4] for r in rows], dtype=float),
        np.array([[1.0, 2.0]] * len(rows)),
        np.array([[[100, 2], [100, 2]]] * len(rows), dtype=float),
    )


def test_play_keeps_escalates_and_holds_back_as_the_thresholds_say():
    t = table()
    o = play(t, keep=0.9, give_up=0.5, final=0.8)
    kind = np.repeat(np.arange(4), 10)
    assert list(o.value[kind == 0]) == [1] * 10 and list(o.value[kind == 1]) == [1] * 10
    assert not o.escalated[kind == 0].any() and o.escalated[kind == 1].all() and o.escalated[kind == 3].all()
    assert o.abstained[kind == 2].all() and not o.escalated[kind == 2].any()  # not sure at once: no large call
    assert o.abstained[kind == 3].all() and list(o.value[kind == 3]) == [1] * 10  # right: nothing to answer
    assert o.seconds[kind == 0][0] == 1.0 and o.seconds[kind == 1][0] == 3.0


def test_the_best_point_keeps_the_sure_escalates_the_unsure_and_holds_back_the_hopeless():
    best = choose(points(table()), 1.0, not_sure=0.3, last_trust=0.0)
    assert 0.5 < best.keep <= 0.9 and 0.1 < best.give_up <= 0.5 and 0.2 < best.final <= 0.8
    assert best.trust == pytest.approx(0.75) and best.lost == 0.0 and best.abstained == pytest.approx(0.5)
    assert best.escalated == pytest.approx(0.5) and best.time == pytest.approx((10 + 30 + 10 + 30) / 80)


def test_targets_bound_the_time_and_not_sure_bounds_what_is_held_back():
    pts = points(table())
    fast = choose(pts, "fast", 0.3, 0.0)
    assert fast.escalated == 0 and fast.time == pytest.approx(0.5)
    balanced = choose(pts, "balanced", 0.3, 0.0)
    assert balanced.time <= BALANCED_TIME and balanced.trust >= fast.trust
    capped = choose(pts, 0.25, 0.3, 0.0)
    assert capped.escalated <= 0.25
    # "quality": as good as always asking the large tier (here +0.0) at the least time
    last = float(np.mean(table().value[:, -1]))
    quality = choose(pts, "quality", 0.3, last)
    assert quality.trust >= last and quality.time == min(p.time for p in pts if p.trust >= last and p.lost <= 0.3)
    # holding back only what no tier got right
    t = table([(0.9, 1, 0.9, 1, 0), (0.3, -1, 0.3, 1, 0), (0.1, -1, 0.1, -1, 0)])
    strict = choose(points(t), 1.0, 0.0, 0.0)
    assert strict.lost == 0.0 and strict.trust == pytest.approx(2 / 3) and strict.abstained == pytest.approx(1 / 3)
    # where the wrong answers look like the right ones, not_sure = 0 holds nothing back; a looser bound does
    t = table([(0.9, 1, 0.9, 1, 0), (0.2, -1, 0.2, 1, 0)] + [(0.2, -1, 0.2, -1, 0)] * 3)
    assert choose(points(t), 1.0, 0.0, 0.0).abstained == 0.0
    loose = choose(points(t), 1.0, 1.0, 0.0)
    assert loose.abstained == pytest.approx(0.8) and loose.trust == pytest.approx(0.2)


def test_targets_read_as_the_config_gives_them():
    assert check_target("Quality") == "quality" and check_target(0.25) == 0.25 and check_target("0.5") == 0.5
    for bad in ("best", 1.5, -0.1, True):
        with pytest.raises(RouterError, match="expected one of quality, balanced, fast or a share 0–1"):
            check_target(bad)


def _signals() -> tuple[Signal, Signal]:
    """P(right) = sigmoid(mean_logprob + 3) for the small tier; sigmoid(4·agreement_previous − 2) for the last."""
    first = Signal("logistic", ("mean_logprob",), [1.0], 3.0, [0.0], [1.0])
    last = Signal("logistic", ("agreement_previous",), [4.0], -2.0, [0.0], [1.0])
    return first, last


def router_file(tmp_path: Path, target: object = 1.0) -> Path:
    first, last = _signals()
    router = TrustRouter(table(), last, target if isinstance(target, str) else float(target))  # type: ignore[arg-type]
    router.signal = first
    router.prompt = {"layout": "paper", "answer_examples": False, "turns": False}
    path = tmp_path / "router-trust.json"
    router.save(path)
    return path


def test_the_router_file_round_trips_and_follows_the_speeds(tmp_path: Path):
    loaded = R.load(router_file(tmp_path))
    assert isinstance(loaded, TrustRouter) and loaded.point is not None and loaded.judges_last
    assert 0.5 < loaded.point.keep <= 0.9 and loaded.signal_for(1, 2) is loaded.last_signal
    assert loaded.signal_for(0, 2) is loaded.signal
    # as recorded, the small tier takes half the large one's time: within 0.7 of its time nothing can escalate
    before = loaded.set_target("balanced")
    assert before.escalated == 0 and before.time == pytest.approx(0.5)
    # measured here, the small tier is 20× faster per token: escalating half the questions fits
    after = loaded.set_speeds({"small": (0.001, 0.01), "large": (0.02, 0.2)})
    assert after.escalated == pytest.approx(0.5) and after.time == pytest.approx(0.55) and after.trust > before.trust
    bad = json.loads(router_file(tmp_path).read_text())
    del bad["params"]["table"]
    with pytest.raises(RouterError, match='needs "table" and "last_signal"'):
        R.from_json(bad)


@pytest.fixture
def trust_config(tmp_path: Path):
    def make(target: object = 1.0, not_sure: float = 0.3):
        path = router_file(tmp_path, target)
        return scripted_config(
            tmp_path, router="trust", cascade={"calibration": str(path), "target": target, "not_sure": not_sure}
        )

    return make


def small(logprob: float, text: str = "2015") -> Script:
    return Script(Reply(text, logprobs=logprob))


def test_the_cascade_keeps_escalates_or_says_it_is_not_sure(trust_config):
    config = trust_config()
    # sure (P = 0.95): kept, the large tier never asked
    factory = scripted_factory(small=small(-0.1), large=Script("2015"))
    events, trace = run_events(Cascade(config, backend_factory=factory), CONTEXT, Q)
    assert trace.decision == "keep" and [s.tier for s in trace.steps] == ["small"] and trace.best_guess is None
    assert trace.steps[0].why == "likely_right" and "large" not in factory
    # unsure (P = 0.5): escalated; the large tier agrees (P = 0.88 ≥ final): kept
    factory = scripted_factory(small=small(-3.0), large=Script("2015"))
    events, trace = run_events(Cascade(config, backend_factory=factory), CONTEXT, Q)
    assert trace.decision == "keep" and trace.answer == "2015" and trace.tier == "large"
    assert kinds(events).count("Decided") == 2 and trace.steps[1].confidence == pytest.approx(1 / (1 + math.exp(-2)))
    # unsure, and the large tier disagrees (P = 0.12): not sure; its answer is the best guess
    factory = scripted_factory(small=small(-3.0, "2001"), large=Script("2010"))
    events, trace = run_events(Cascade(config, backend_factory=factory), CONTEXT, Q)
    assert trace.decision == "abstain" and trace.answer == "unanswerable" and trace.best_guess == "2010"
    assert trace.steps[-1].decision == "abstain" and trace.steps[-1].why == "not_sure"
    assert trace.summary().startswith("not sure (best guess by large)")
    assert "not sure: the answer is likely wrong (12 %)" in trace.summary()
    # hopeless (P = 0.05): not sure at once, the large tier never asked
    factory = scripted_factory(small=small(-6.0, "2001"), large=Script("2015"))
    events, trace = run_events(Cascade(config, backend_factory=factory), CONTEXT, Q)
    assert trace.decision == "abstain" and trace.best_guess == "2001" and trace.steps[0].why == "no_tier"
    assert "large" not in factory and "not sure: no model is likely to know this" in trace.summary()


def test_the_answer_object_says_it_is_not_sure_and_keeps_the_best_guess(trust_config, tmp_path: Path):
    config = trust_config()
    factory = scripted_factory(small=small(-3.0, "2001"), large=Script("2010"))
    service = AskService(config, Cascade(config, backend_factory=factory))
    try:
        events = Returning(service.ask(Question(Q, Source.context(CONTEXT))))
        list(events)
        answer = events.value
    finally:
        service.close()
        service.cascade.close()
    data = answer.to_json()
    assert answer.not_sure and answer.text == NOT_SURE_TEXT and data["answer_shown"] == NOT_SURE_TEXT
    assert data["abstained"] is True and data["decision"] == "abstain" and data["best_guess"] == "2010"
    assert data["abstained_why"] == "large: not sure: the answer is likely wrong (12 %)"
    assert answer.not_sure_note == "best guess, not sure: 2010"
    saved = service.store().load(answer.conversation).turns[-1]  # the saved turn is the same object
    assert saved.trace["abstained"] is True and saved.trace["best_guess"] == "2010"


def test_serve_answers_the_sentence_and_streams_no_held_back_answer(trust_config, monkeypatch):
    """The last tier's answer waits for its judgement: a held-back answer is never streamed, the sentence is."""
    config = trust_config()
    use_scripted(monkeypatch, scripted_factory(small=small(-3.0, "2001"), large=Script("2010")))
    body = {"model": "automix", "messages": [{"role": "system", "content": CONTEXT}, {"role": "user", "content": Q}]}
    with running(config) as (url, _):
        done = httpx.post(f"{url}/v1/chat/completions", json=body, timeout=60).json()
        assert done["choices"][0]["message"]["content"] == NOT_SURE_TEXT
        assert done["automix"]["decision"] == "abstain" and done["automix"]["best_guess"] == "2010"
        with httpx.stream("POST", f"{url}/v1/chat/completions", json=body | {"stream": True}, timeout=60) as r:
            assert r.headers["x-automix-decision"] == "abstain"
            data = [json.loads(line[6:]) for line in r.iter_lines() if line.startswith("data: {")]
        text = "".join(c["choices"][0]["delta"].get("content") or "" for c in data if c.get("choices"))
        assert text == NOT_SURE_TEXT and "2010" not in text and data[-1]["automix"]["abstained"] is True


def test_the_cascade_switches_the_target_and_takes_the_measured_speeds(trust_config, tmp_path: Path):
    from automix_local.cascade import CascadeError
    from automix_local.speeds import TierSpeed

    cascade = Cascade(trust_config("balanced"), backend_factory=scripted_factory())
    assert cascade.target == "balanced" and isinstance(cascade.router, TrustRouter)
    assert cascade.router.point is not None and cascade.router.point.escalated == 0  # recorded: no room
    cascade.set_speeds({"small": TierSpeed(0.001, 0.01, 5), "large": TierSpeed(0.02, 0.2, 5)})
    assert cascade.router.point.escalated == pytest.approx(0.5)
    cascade.set_target("fast")
    assert cascade.target == "fast" and cascade.router.point.escalated == 0
    with pytest.raises(CascadeError, match="expected one of quality, balanced, fast"):
        cascade.set_target("best")
    plain = Cascade(scripted_config(tmp_path / "plain"), backend_factory=scripted_factory())
    assert plain.target is None
    with pytest.raises(CascadeError, match="the threshold router has no target"):
        plain.set_target("fast")


def _recorded_run(tmp_path: Path, n: int = 60) -> Path:
    """An `eval run` directory whose answers' features say who is right: the small tier where its mean
    log-probability is high, the large one where it agrees with the small one; some questions with history."""
    from automix_local.report.outcomes import FIRST_FEATURES

    rng = np.random.default_rng(0)
    d = tmp_path / "run"
    d.mkdir()
    meta = {
        "data": "x.jsonl",
        "layout": "shared",
        "tiers": [{"name": "small", "cost": 1.0}, {"name": "large", "cost": 3.0}],
    }
    (d / "run.json").write_text(json.dumps(meta))
    lines = []
    for i in range(n):
        right_small, right_large = i % 3 == 0, i % 3 != 2
        feats = {f: float(rng.normal()) for f in FIRST_FEATURES}

        def tier(right: bool, answer: str, lp: float, seconds: float, feats: dict = feats) -> dict:
            return {
                "answer": answer,
                "f1": 1.0 if right else 0.0,
                "em": 1.0 if right else 0.0,
                "abstained": False,
                "tokens_in": 100,
                "tokens_out": 2,
                "tokens_evaluated": 100,
                "seconds": seconds,
                "features": feats | {"mean_logprob": lp + float(rng.normal(0, 0.3))},
                "verification": {},
            }

        small = tier(right_small, "Carol" if right_small else "Alice", 0.0 if right_small else -2.0, 1.0)
        large = tier(right_large, "Carol" if right_large else "Bob", 0.0, 1.6)
        lines.append(
            {"id": f"q{i}", "dataset": "d", "unanswerable": False, "tiers": {"small": small, "large": large}}
            | ({"history": [["Who joined in 2001?", "Carol"]]} if i < 10 else {})
        )
    (d / "items.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    return d


def test_the_report_holds_the_trust_router_out_and_calibrate_fits_it(tmp_path: Path, capsys):
    from automix_local.cli import main
    from automix_local.report import load_run
    from automix_local.report.outcomes import three_outcomes
    from automix_local.report.render import _render_outcomes

    run = load_run(_recorded_run(tmp_path))
    assert run.meta["follow_ups"] == "10 of 60 items were asked with earlier turns in the prompt"
    out = three_outcomes(run, 30, 3, 0.3)
    assert out is not None and [r.target for r in out.rows] == ["quality", "balanced", "fast"]
    fast = out.rows[2]
    assert fast.escalated == 0 and fast.time.mean == pytest.approx(1 / 1.6)  # not_sure binds on the train part only
    assert set(out.reliability) == {"small", "large"} and sum(b.count for b in out.reliability["small"]) == 30
    text = "\n".join(_render_outcomes(out, "large"))
    assert "| balanced |" in text and "share right" in text
    assert main(["calibrate", str(tmp_path / "run"), "--router", "trust", "--out", str(tmp_path / "r.json")]) == 0
    assert "fitted trust on 60 items" in capsys.readouterr().out
    router = R.load(tmp_path / "r.json")
    assert isinstance(router, TrustRouter) and router.prompt == {
        "layout": "shared",
        "answer_examples": False,
        "turns": False,
    }
    assert router.table is not None and router.table.q.shape == (60, 2) and router.last_signal is not None
    assert "agreement_previous" in router.last_signal.features


def test_over_the_library_a_held_back_answer_is_not_sure_with_the_closest_passage(trust_config, tmp_path: Path):
    """Library mode: the held-back answer is not found for reason "not_sure", and its note names the closest
    passage (the real SQLite library, BM25 alone: no embedding model in this test)."""
    from automix_local.documents.library import Library, default_path

    config = trust_config()
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "company.md").write_text(CONTEXT + "\n", encoding="utf-8")
    with Library(default_path(config.paths.data_dir)) as lib:
        lib.add([docs])
    factory = scripted_factory(small=small(-3.0, "2001"), large=Script("2010"))
    service = AskService(config, Cascade(config, backend_factory=factory))
    try:
        events = Returning(service.ask(Question(Q, Source.library())))
        list(events)
        answer = events.value
    finally:
        service.close()
        service.cascade.close()
    assert answer.not_sure and answer.not_found and answer.not_found_reason == "not_sure"
    assert answer.not_found_note is None and answer.text == NOT_SURE_TEXT
    assert answer.not_sure_note == "best guess, not sure: 2010; closest passage: company.md"
