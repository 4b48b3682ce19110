"""The cascade's flow on scripted tiers (tests/fake_tier.py): routing, escalation, egress, event order.

Each test runs in milliseconds: the local tiers answer, are sure and judge as the test scripts them, so
every branch of ``Cascade.run`` is reached on purpose. Remote tiers are the real ``OpenAIBackend`` against
the recording server on 127.0.0.1. What the real model computes is tested in test_backend_llama.py,
test_verification.py and the end-to-end layer of test_cascade.py / test_remote_cascade.py.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from automix_local import prompts
from automix_local import routers as R
from automix_local.audit import EgressLog
from automix_local.backends.base import Abilities, run_to_end
from automix_local.cascade import (
    Answered,
    Cascade,
    CascadeError,
    EgressPending,
    EgressSent,
    Escalated,
    Finished,
    RemoteFailed,
    TierLoading,
    TierStarted,
    Token,
)
from automix_local.paths import default_paths
from automix_local.routers import RouterError
from automix_local.signals import Signal

from .fake_tier import (
    Reply,
    Script,
    ScriptedBackend,
    kinds,
    local_tier,
    remote_tier,
    run_events,
    scripted_config,
    scripted_factory,
    use_scripted,
)
from .remote_server import RecordingServer

CONTEXT = (
    "The Normans were the people who gave their name to Normandy. They were descended from Norse raiders "
    "who, under their leader Rollo, agreed to swear fealty to King Charles III of West Francia."
)
Q = "Who was the leader of the Norse raiders?"


@pytest.fixture
def server() -> Iterator[RecordingServer]:
    with RecordingServer() as s:
        yield s


def cascade_on(config, approve=None, **scripts: Script) -> Cascade:
    return Cascade(config, backend_factory=scripted_factory(**scripts), approve=approve)


def ask(config, approve=None, **scripts: Script):
    cascade = cascade_on(config, approve, **scripts)
    try:
        return run_events(cascade, CONTEXT, Q)
    finally:
        cascade.close()


def squeeze(names: list[str]) -> list[str]:
    """Event names with each run of Tokens shown once (how many words stream is the script's business)."""
    out: list[str] = []
    for name in names:
        if not (name == "Token" and out and out[-1] == "Token"):
            out.append(name)
    return out


def egress_entries() -> list:
    path = default_paths().egress_log
    if not path.exists():
        return []
    log = EgressLog(path)
    try:
        return list(log.entries())
    finally:
        log.close()


# --------------------------------------------------------------------------- the fake tier itself


def test_the_scripted_tier_answers_scores_and_counts_as_scripted(tmp_path: Path):
    tier = scripted_config(tmp_path, ["small"]).tiers[0]
    backend = ScriptedBackend(tier, Script({"capital of France": "Paris", "*": "Rollo"}, logprobs=[-0.5, -2.0]))
    assert backend.count_tokens("three words here") == 3 and backend.abilities.loads
    deltas: list[str] = []
    gen = backend.stream("Q: Who led them?", max_tokens=8, stop=["\n"])
    while True:
        try:
            deltas.append(next(gen))
        except StopIteration as done:
            generation = done.value
            break
    assert "".join(deltas) == generation.text == " Rollo" and generation.token_logprobs == [-0.5]
    paris = run_to_end(backend.stream("Question: the capital of France?", max_tokens=8))
    assert paris.text == " Paris"
    cut = run_to_end(ScriptedBackend(tier, Script("one two three four")).stream("p", max_tokens=2))
    assert cut.text == " one two" and cut.finish_reason == "length" and cut.token_logprobs == [-0.1, -0.1]
    scored = ScriptedBackend(tier, Script(verdict=0.8)).score("p", [" Correct", " Incorrect"])
    assert math.exp(scored.logprobs[" Correct"]) == pytest.approx(0.8)


def test_a_failing_tier_raises_and_a_distribution_gives_the_spread_features(tmp_path: Path):
    from automix_local.backends.base import BackendError

    config = scripted_config(tmp_path, router="always_small")
    broken = cascade_on(config, small=Script(fail=BackendError("tier 'small': out of memory")))
    with pytest.raises(BackendError, match="out of memory"):
        broken.ask(CONTEXT, Q)
    cascade = cascade_on(config, small=Script("Rollo of Normandy", entropy=[0.5, 1.5, 1.0], margin=[2.0, 0.5, 1.0]))
    _, _, feats = run_to_end(cascade.answer_stream(0, CONTEXT, Q))
    assert cascade.backend(0).abilities.token_distribution
    assert feats["mean_entropy"] == pytest.approx(1.0) and feats["max_entropy"] == 1.5 and feats["min_margin"] == 0.5
    _, _, plain = run_to_end(cascade_on(config).answer_stream(0, CONTEXT, Q))
    assert "mean_entropy" not in plain


def test_use_scripted_reaches_cascades_built_elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The server and the app build their own Cascade from a config: use_scripted gives them scripted tiers."""
    factory = use_scripted(monkeypatch, scripted_factory(small=Script("Rollo the Walker")))
    cascade = Cascade(scripted_config(tmp_path, router="always_small"))
    assert cascade.ask(CONTEXT, Q).answer == "Rollo the Walker" and factory["small"].count("stream") == 1


# --------------------------------------------------------------------------- routing


def test_keep_at_small_when_confident(tmp_path: Path):
    config = scripted_config(tmp_path, cascade={"threshold": 0.5})
    events, trace = ask(config, small=Script("Rollo", verdict=0.9))
    assert squeeze(kinds(events)) == [
        "TierLoading",
        "TierStarted",
        "Token",
        "Answered",
        "VerifyStarted",
        "Verified",
        "Decided",
        "Finished",
    ]
    assert events[0] == TierLoading("small", 0) and events[1] == TierStarted("small", 0, "small.gguf")
    assert trace.tier == "small" and trace.decision == "keep" and trace.answer == "Rollo"
    (step,) = trace.steps
    assert step.confidence == pytest.approx(0.9) and step.verifier == "logprob" and step.signal == "verifier_logprob"
    assert step.decision == "keep" and step.why == "confident" and "threshold" in (step.reason or "")
    assert step.seconds == pytest.approx(step.answer_seconds + step.verify_seconds)
    assert step.cost == pytest.approx(1.0 + 1.0)  # the answer + verify_cost × the tier's cost
    assert trace.cost == pytest.approx(step.cost) and events[-1] == Finished(trace)
    assert "".join(e.text for e in events if isinstance(e, Token)).strip() == "Rollo"


def test_escalates_below_the_threshold(tmp_path: Path):
    config = scripted_config(tmp_path, cascade={"threshold": 0.5})
    events, trace = ask(config, small=Script("Rolf", verdict=0.2), large=Script("Rollo"))
    assert squeeze(kinds(events)) == [
        "TierLoading",
        "TierStarted",
        "Token",
        "Answered",
        "VerifyStarted",
        "Verified",
        "Decided",
        "TierLoading",  # the large tier loads before the question goes to it
        "Escalated",
        "TierStarted",
        "Token",
        "Answered",
        "Finished",  # the last tier is not verified
    ]
    assert [s.tier for s in trace.steps] == ["small", "large"] and trace.decision == "route"
    assert trace.answer == "Rollo" and trace.tier == "large" and trace.model == "large.gguf"
    small, large = trace.steps
    assert small.decision == "route" and small.why == "unsure" and small.confidence == pytest.approx(0.2)
    assert large.confidence is None and large.decision is None
    assert trace.cost == pytest.approx(2.0 + 10.0)
    esc = next(e for e in events if isinstance(e, Escalated))
    assert (esc.from_tier, esc.to_tier) == ("small", "large") and "threshold" in esc.reason


def test_a_tier_that_is_ready_does_not_say_it_loads(tmp_path: Path):
    cascade = cascade_on(scripted_config(tmp_path, cascade={"threshold": 1.0}))
    try:
        cascade.prepare(0)
        cascade.prepare(1)
        assert cascade.ready(0) and cascade.ready(1)
        events, _ = run_events(cascade, CONTEXT, Q)
    finally:
        cascade.close()
    assert "TierLoading" not in kinds(events)


def test_always_small_and_always_large(tmp_path: Path):
    factory = scripted_factory()
    cascade = Cascade(scripted_config(tmp_path, router="always_small"), backend_factory=factory)
    events, trace = run_events(cascade, CONTEXT, Q)
    assert "VerifyStarted" not in kinds(events) and trace.tier == "small" and trace.steps[0].confidence is None
    assert trace.decision == "keep" and "large" not in factory
    factory = scripted_factory()
    cascade = Cascade(scripted_config(tmp_path, router="always_large"), backend_factory=factory)
    events, trace = run_events(cascade, CONTEXT, Q)
    assert [e.tier for e in events if isinstance(e, TierStarted)] == ["large"]
    assert "VerifyStarted" not in kinds(events) and trace.decision == "direct" and len(trace.steps) == 1
    assert "small" not in factory  # the small model was never even made


def test_random_router_routes_without_judging(tmp_path: Path):
    config = scripted_config(tmp_path, router="random", cascade={"random_p": 1.0})
    events, trace = ask(config)
    assert "VerifyStarted" not in kinds(events) and trace.decision == "route"
    assert trace.steps[0].confidence is None and trace.steps[0].why == "random"


def test_pomdp_router_from_a_calibration_file(tmp_path: Path):
    recs = [R.Record((1.0, 1.0), (0.9, None)), R.Record((0.0, 1.0), (0.1, None))] * 50
    router = R.POMDPRouter(lambda_=0.01).fit(recs, [1, 10])  # keeps at 0.9, escalates at 0.1
    router.prompt = {"layout": "paper", "answer_examples": False, "turns": False}  # as `calibrate` writes it
    path = tmp_path / "router.json"
    router.save(path)
    config = scripted_config(tmp_path, router="pomdp", cascade={"calibration": str(path)})
    _, sure = ask(config, small=Script(verdict=0.9))
    _, unsure = ask(config, small=Script(verdict=0.1))
    assert sure.decision == "keep" and "belief" in (sure.steps[0].reason or "") and sure.steps[0].why == "confident"
    assert unsure.decision == "route" and [s.tier for s in unsure.steps] == ["small", "large"]
    assert sure.turns_note is None  # a single question: what the router was fitted on
    cascade = cascade_on(config, small=Script(verdict=0.9))
    follow = cascade.ask(CONTEXT, "Where did they come from?", history=[(Q, "Rollo")])
    assert follow.turns == 1 and "calibrated on single questions" in (follow.turns_note or "")


def test_a_free_signal_routes_on_the_answers_log_probabilities(tmp_path: Path):
    """A calibrated router reading mean_logprob needs no verifier: the answer's own tokens decide."""
    router = R.ThresholdRouter(0.4)
    router.signal = Signal("logistic", ("mean_logprob",), [1.0], 0.0, [0.0], [1.0])  # sigmoid(mean_logprob)
    router.prompt = {"layout": "paper", "answer_examples": False, "turns": False}
    path = tmp_path / "router.json"
    router.save(path)
    config = scripted_config(tmp_path, cascade={"calibration": str(path)})
    events, sure = ask(config, small=Script("Rollo of Normandy", logprobs=[-0.1, -0.2, -0.3]))
    assert "VerifyStarted" not in kinds(events)
    step = sure.steps[0]
    assert step.mean_logprob == pytest.approx(-0.2) and step.min_logprob == pytest.approx(-0.3)
    assert step.confidence == pytest.approx(1 / (1 + math.exp(0.2))) and sure.decision == "keep"
    assert step.signal == "mean_logprob (calibrated)" and step.verifier is None
    _, unsure = ask(config, small=Script("Rolf", logprobs=-3.0))
    assert unsure.decision == "route" and unsure.steps[0].confidence == pytest.approx(1 / (1 + math.exp(3.0)))


@pytest.mark.parametrize("layout", ["paper", "shared"])
def test_the_sampled_verifier_counts_scripted_verdicts(tmp_path: Path, layout: str):
    config = scripted_config(tmp_path, cascade={"verifier": "sampled", "samples": 4, "layout": layout})
    _, sure = ask(config, small=Script(verdict=1.0))
    _, unsure = ask(config, small=Script(verdict=0.0))
    assert sure.steps[0].confidence == 1.0 and sure.decision == "keep" and sure.steps[0].verifier == "sampled"
    assert unsure.steps[0].confidence == 0.0 and unsure.decision == "route"


def test_three_tiers_escalate_one_by_one(tmp_path: Path):
    config = scripted_config(tmp_path, ["small", "medium", "large"], cascade={"threshold": 0.5})
    scripts = {"small": Script("Rolf", verdict=0.1), "medium": Script("Roll", verdict=0.3), "large": Script("Rollo")}
    events, trace = ask(config, **scripts)
    assert [(e.from_tier, e.to_tier) for e in events if isinstance(e, Escalated)] == [
        ("small", "medium"),
        ("medium", "large"),
    ]
    assert [s.tier for s in trace.steps] == ["small", "medium", "large"] and trace.answer == "Rollo"
    assert trace.decision == "route" and trace.cost == pytest.approx(2 + 20 + 100)
    assert [s.confidence for s in trace.steps] == [pytest.approx(0.1), pytest.approx(0.3), None]
    _, kept = ask(config, **(scripts | {"medium": Script("Roll", verdict=0.8)}))
    assert kept.tier == "medium" and kept.decision == "keep" and len(kept.steps) == 2
    assert "small: " in kept.summary() and "medium: " in kept.summary()


def test_a_router_that_routes_out_of_range_is_an_error(tmp_path: Path):
    class Backwards(R.ThresholdRouter):
        def decide(self, obs: R.Observation) -> R.Decision:
            return R.Decision("route", 0, "backwards")

    cascade = Cascade(scripted_config(tmp_path), router=Backwards(), backend_factory=scripted_factory())
    with pytest.raises(RouterError, match="routed tier 0 to 0; expected 1..1"):
        cascade.ask(CONTEXT, Q)


# --------------------------------------------------------------------------- abstention


def test_abstention_at_the_first_token(tmp_path: Path):
    """At or above the tier's abstain_threshold, the first token's P(abstain) ends the answer at once."""
    tiers = [local_tier(tmp_path, "small", abstain_threshold=0.5), local_tier(tmp_path, "large", cost=10.0)]
    config = scripted_config(tmp_path, tiers, cascade={"threshold": 0.5})
    events, trace = ask(config, small=Script("Rollo", p_abstain=0.7, verdict=0.9), large=Script("Rollo"))
    small = trace.steps[0]
    assert small.answer == "unanswerable" and small.abstained and small.p_abstain == pytest.approx(0.7)
    answered = next(e for e in events if isinstance(e, Answered))
    assert answered.generation.finish_reason == "abstain" and answered.generation.tokens_out == 0
    assert [e.text for e in events if isinstance(e, Token) and e.tier == "small"] == ["unanswerable"]
    _, below = ask(config, small=Script("Rollo", p_abstain=0.3, verdict=0.9))
    assert below.answer == "Rollo" and below.steps[0].p_abstain == pytest.approx(0.3)


def test_abstention_threshold_from_the_calibration_file_or_models_toml(tmp_path: Path):
    router = R.ThresholdRouter(0.0)  # keeps the small answer
    router.costs = (1.0, 10.0)
    router.prompt = {"layout": "paper", "answer_examples": False, "turns": False}
    router.abstain = {"small": 0.0}  # P(abstain) >= 0: always
    path = tmp_path / "router.json"
    router.save(path)
    config = scripted_config(tmp_path, cascade={"calibration": str(path)})
    cascade = cascade_on(config)
    assert cascade.abstain_threshold(0) == 0.0 and cascade.abstain_threshold(1) is None
    trace = cascade.ask(CONTEXT, Q)
    assert trace.answer == "unanswerable" and trace.steps[0].tier == "small"
    tiers = (replace(config.tiers[0], abstain_threshold=1.0), *config.tiers[1:])
    cascade = cascade_on(replace(config, tiers=tiers), small=Script(p_abstain=0.2))
    assert cascade.abstain_threshold(0) == 1.0 and cascade.ask(CONTEXT, Q).answer == "Rollo"


# --------------------------------------------------------------------------- what the prompt holds


def test_older_turns_are_dropped_first_to_fit_the_budget(tmp_path: Path):
    history = [(f"Question number {i} about the raiders?", f"Answer number {i}") for i in range(12)]
    factory = scripted_factory()
    cascade = Cascade(
        scripted_config(tmp_path, router="always_small", cascade={"history_tokens": 40}), backend_factory=factory
    )
    kept = cascade.fit_history(0, CONTEXT, Q, history)
    trace = cascade.ask(CONTEXT, Q, history=history)
    assert 0 < len(kept) < len(history) and kept == tuple(history[-len(kept) :])  # the newest, in order
    assert trace.turns == len(kept) and trace.turns_dropped == len(history) - len(kept)
    prompt = factory["small"].prompts[-1]
    assert history[-1][0] in prompt and history[0][0] not in prompt
    assert prompt.index(CONTEXT[:40]) < prompt.index(history[-1][0]) < prompt.index(Q)
    off = Cascade(
        scripted_config(tmp_path, router="always_small", cascade={"history_tokens": 0}),
        backend_factory=scripted_factory(),
    )
    assert off.ask(CONTEXT, Q, history=history[:2]).turns == 0


def test_the_paper_verifier_sees_the_earlier_turns(tmp_path: Path):
    factory = scripted_factory()
    cascade = Cascade(scripted_config(tmp_path), backend_factory=factory)
    cascade.ask(CONTEXT, "And where did he rule?", history=[(Q, "Rollo")])
    scored = [c.prompt for c in factory["small"].calls if c.kind == "score"]
    assert len(scored) == 1 and "Earlier in this conversation" in scored[0] and Q in scored[0]


def test_context_too_long_and_empty_question(tmp_path: Path):
    cascade = cascade_on(scripted_config(tmp_path))
    with pytest.raises(CascadeError, match="empty"):
        cascade.ask(CONTEXT, "   ")
    with pytest.raises(CascadeError, match=r"too long for tier 'small': 3000 tokens.*nothing was truncated"):
        cascade.ask("word " * 3000, Q)


def test_the_paper_verification_prompt_must_fit_too(tmp_path: Path):
    """The four-shot check repeats the context after ~400 words of examples: it sets the limit."""
    tiers = [local_tier(tmp_path, "small", n_ctx=700), local_tier(tmp_path, "large", cost=10.0, n_ctx=4096)]
    context = "word " * 300
    cascade = cascade_on(scripted_config(tmp_path, tiers))
    with pytest.raises(CascadeError, match="the verification prompt needs"):
        cascade.check_fits(0, context, Q)
    shared = cascade_on(scripted_config(tmp_path, tiers, cascade={"layout": "shared"}))
    shared.check_fits(0, context, Q)  # the shared layout's check continues the answer prompt


def test_a_target_the_question_does_not_fit_keeps_the_answer(tmp_path: Path):
    tiers = [local_tier(tmp_path, "small", n_ctx=4096), local_tier(tmp_path, "large", cost=10.0, n_ctx=256)]
    config = scripted_config(tmp_path, tiers, router="random", cascade={"random_p": 1.0})
    cascade = cascade_on(config)
    events, trace = run_events(cascade, "word " * 400, Q)
    assert "Escalated" not in kinds(events) and trace.tier == "small" and trace.decision == "keep"
    assert "not escalated: the context is too long for tier 'large'" in (trace.steps[0].reason or "")
    assert "not escalated" in trace.summary()


# --------------------------------------------------------------------------- abilities


def test_backends_declare_their_abilities():
    from automix_local.backends.llama import LlamaBackend
    from automix_local.backends.openai import OpenAIBackend
    from automix_local.config import TierConfig

    assert LlamaBackend.abilities == Abilities(True, True, True, True, True, token_logprobs=True)
    assert OpenAIBackend.abilities == Abilities()
    endpoint = TierConfig(name="e", backend="openai", base_url="http://127.0.0.1:9/v1", model="m", logprobs=True)
    assert OpenAIBackend(endpoint, env={}).abilities == Abilities(
        token_distribution=True, token_logprobs=True, top_k=20
    )


def test_prepare_loads_and_warms_only_what_a_backend_declares(tmp_path: Path):
    config = scripted_config(tmp_path, cascade={"layout": "shared"})
    factory = scripted_factory(large=Script(warm=False))
    cascade = Cascade(config, backend_factory=factory)
    cascade.prepare(0)
    cascade.prepare(1)
    assert factory["small"].count("load") == 1 and factory["large"].count("load") == 1
    assert cascade.prefix_sources == {"small": "computed"}  # large declares no prefix warming
    assert factory["small"].calls[-1].kind == "warm" and factory["large"].count("warm") == 0


def test_agreement_samples_where_the_backend_samples_in_batches(tmp_path: Path):
    config = scripted_config(tmp_path, cascade={"threshold": 0.0, "agreement_samples": 4, "temperature": 1.0})
    factory = scripted_factory(
        small=Script("Rollo", samples=["Rollo", "Rollo", "Rolf", "Rollo"]), large=Script(samples=["x"])
    )
    cascade = Cascade(config, backend_factory=factory)
    _, _, small = run_to_end(cascade.answer_stream(0, CONTEXT, Q))
    _, _, large = run_to_end(cascade.answer_stream(1, CONTEXT, Q))
    assert small["agreement_exact"] == 0.75 and small["agreement"] == 0.75 and small["agreement_seconds"] >= 0
    assert "agreement" not in large and factory["large"].count("sample") == 0  # the last tier: no router judges it
    trace = cascade.ask(CONTEXT, Q)
    step = trace.steps[0]
    assert step.seconds == pytest.approx(step.answer_seconds + step.verify_seconds)
    plain = scripted_factory()  # declares no batched sampling: nothing is sampled, nothing breaks
    _, _, feats = run_to_end(Cascade(config, backend_factory=plain).answer_stream(0, CONTEXT, Q))
    assert "agreement" not in feats


def test_hidden_state_only_from_a_backend_that_has_one(tmp_path: Path):
    config = scripted_config(tmp_path, router="always_small")
    with_state = Cascade(
        config, backend_factory=scripted_factory(small=Script(hidden=[0.5, -1.0])), capture_hidden=True
    )
    _, generation, _ = run_to_end(with_state.answer_stream(0, CONTEXT, Q))
    assert generation.hidden == [0.5, -1.0]
    without = Cascade(config, backend_factory=scripted_factory(), capture_hidden=True)
    _, generation, _ = run_to_end(without.answer_stream(0, CONTEXT, Q))
    assert generation.hidden is None


# --------------------------------------------------------------------------- cancelling, loading, threads


def test_closing_a_run_mid_answer_frees_the_model(tmp_path: Path):
    factory = scripted_factory(small=Script("one two three four five six", token_delay=0.01))
    cascade = Cascade(scripted_config(tmp_path, router="always_small"), backend_factory=factory)
    run = cascade.run(CONTEXT, Q)
    while not isinstance(next(run), Token):
        pass
    run.close()
    assert not factory["small"].lock.locked()  # the next question can start
    assert cascade.ask(CONTEXT, Q).answer == "one two three four five six"


def test_a_question_waits_for_a_loading_tier_once(tmp_path: Path):
    """The app's load worker and a question asked at once: one backend, loaded once, TierLoading first."""
    factory = scripted_factory(small=Script(load_delay=0.2))
    cascade = Cascade(scripted_config(tmp_path, router="always_small"), backend_factory=factory)
    loader = threading.Thread(target=cascade.prepare, args=(0,))
    loader.start()
    t0 = time.perf_counter()
    events, trace = run_events(cascade, CONTEXT, Q)
    loader.join()
    assert events[0] == TierLoading("small", 0) and trace.answer == "Rollo"
    assert factory["small"].count("load") == 1 and time.perf_counter() - t0 >= 0.1


# --------------------------------------------------------------------------- remote tiers: event order


def remote_config(tmp_path: Path, url: str, tiers=("small",), **policy: object):
    return scripted_config(tmp_path, list(tiers), remote=url, router="random", cascade={"random_p": 1.0}, policy=policy)


def bodies(server: RecordingServer) -> list[bytes]:
    return [r["body"] for r in server.requests if r["path"].endswith("/chat/completions")]


def test_remote_escalation_events_and_the_exact_bytes(server: RecordingServer, tmp_path: Path):
    server.answer = "Rollo"
    seen: dict[str, object] = {}
    cascade = cascade_on(remote_config(tmp_path, server.base_url, remote="allow", send="full"))
    run = cascade.run(CONTEXT, Q)
    events = []
    for event in run:
        events.append(event)
        if isinstance(event, EgressSent):  # the log row exists, and nothing was sent yet
            seen["rows"] = [e.id for e in egress_entries()]
            seen["sent"] = list(server.requests)
    cascade.close()
    assert isinstance(events[-1], Finished)
    trace = events[-1].trace
    assert squeeze(kinds(events)) == [
        "TierLoading",
        "TierStarted",
        "Token",
        "Answered",
        "Decided",
        "EgressPending",
        "Escalated",
        "TierStarted",
        "EgressSent",
        "Token",
        "Answered",
        "Finished",
    ]
    pending = next(e for e in events if isinstance(e, EgressPending))
    sent = next(e for e in events if isinstance(e, EgressSent))
    assert not pending.needs_approval and sent.receipt == pending.receipt
    assert seen == {"rows": [sent.entry_id], "sent": []}
    assert bodies(server) == [pending.receipt.payload]  # byte for byte what was logged and shown
    (entry,) = egress_entries()
    assert entry.payload == pending.receipt.payload and entry.outcome == "ok" and entry.attempts == 1
    assert trace.tier == "remote" and trace.answer == "Rollo" and trace.decision == "route"
    assert trace.steps[-1].egress_id == sent.entry_id and trace.steps[-1].sent == "full"
    assert trace.cost == pytest.approx(1 + 50.0) and trace.model == "m"


def test_never_sends_nothing_and_logs_nothing(server: RecordingServer, tmp_path: Path):
    events, trace = ask(remote_config(tmp_path, server.base_url, remote="never", send="full"))
    assert squeeze(kinds(events)) == [
        "TierLoading",
        "TierStarted",
        "Token",
        "Answered",
        "Decided",
        "Blocked",
        "Finished",
    ]
    assert server.requests == [] and not default_paths().egress_log.exists()
    assert trace.tier == "small" and trace.decision == "blocked" and "never" in (trace.notice or "")
    assert "not escalated" in (trace.steps[0].reason or "") and "note: " in trace.summary()


@pytest.mark.parametrize("mode", ["500", "drop"])  # every fault mode: test_remote_cascade.py
def test_a_remote_failure_falls_back_to_the_best_local_answer(server: RecordingServer, tmp_path: Path, mode: str):
    server.mode = mode
    events, trace = ask(remote_config(tmp_path, server.base_url, remote="allow"))
    after = squeeze(kinds(events))[squeeze(kinds(events)).index("Escalated") + 1 :]
    streamed = ["TierStarted", "EgressSent", "Token", "RemoteFailed", "Finished"]  # "drop": a chunk came first
    assert after in (["TierStarted", "EgressSent", "RemoteFailed", "Finished"], streamed)
    failed = next(e for e in events if isinstance(e, RemoteFailed))
    assert failed.fallback_tier == "small" and failed.tier == "remote"
    assert trace.tier == "small" and trace.decision == "fallback" and "best local answer" in (trace.notice or "")
    assert trace.answer == trace.steps[0].answer == "Rollo" and len(trace.steps) == 1
    (entry,) = egress_entries()
    assert entry.outcome == "error" and entry.detail and entry.attempts == len(bodies(server)) == 1


def test_the_fallback_skips_a_local_tier_that_abstained(server: RecordingServer, tmp_path: Path):
    server.mode = "500"
    config = remote_config(tmp_path, server.base_url, tiers=("small", "large"), remote="allow")
    _, trace = ask(config, small=Script("Rollo"), large=Script("unanswerable"))
    assert [s.tier for s in trace.steps] == ["small", "large"] and trace.steps[1].abstained
    assert trace.tier == "small" and trace.answer == "Rollo" and trace.decision == "fallback"


def test_a_remote_retry_is_counted_in_the_log(server: RecordingServer, tmp_path: Path):
    server.mode, server.fail_times = "500", 1
    config = scripted_config(
        tmp_path,
        ["small", remote_tier("remote", server.base_url, retries=1)],
        router="random",
        cascade={"random_p": 1.0},
        policy={"remote": "allow"},
    )
    _, trace = ask(config)
    (entry,) = egress_entries()
    assert trace.tier == "remote" and entry.outcome == "ok" and entry.attempts == 2 == len(bodies(server))


def test_the_remote_tier_gets_the_local_answers_passage(server: RecordingServer, tmp_path: Path):
    """send = "relevant": the window around the best local answer goes, not the whole document."""
    context = " ".join(f"Filler sentence number {i} says nothing at all." for i in range(60))
    context += " The office moved to the Part-Dieu district in 2021. " + context
    config = remote_config(tmp_path, server.base_url, remote="allow", send="relevant")
    cascade = cascade_on(config, small=Script("2021"))
    cascade.ask(context, "When did the office move to the Part-Dieu district?")
    (body,) = bodies(server)
    user = json.loads(body)["messages"][-1]["content"]
    assert "Part-Dieu district in 2021" in user and len(user) < len(context) / 2


def test_the_policy_is_asked_about_what_the_question_came_from(
    server: RecordingServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """The EgressRequest carries the document, its tags, the passages and the best local answer (an abstention
    is no answer to offer)."""
    from automix_local import cascade as C

    requests = []
    decide = C.policy_decide

    def spy(request, policy, ner=None):
        requests.append(request)
        return decide(request, policy, ner=ner)

    monkeypatch.setattr(C, "policy_decide", spy)
    cascade = cascade_on(remote_config(tmp_path, server.base_url, remote="allow"), small=Script(prompts.ABSTAIN))
    cascade.ask(CONTEXT, Q, document="/tmp/doc.md", tags=("hr",), sources=[("/tmp/doc.md", CONTEXT)])
    (request,) = requests
    assert request.local_answer is None and request.document == "/tmp/doc.md" and request.tags == ("hr",)
    assert request.passages == (CONTEXT,) and request.passage_documents == ("/tmp/doc.md",)


def test_a_scripted_tier_can_hold_a_question(tmp_path: Path):
    """``hold``: a question waits inside the model until the test lets it go (queue and cancel tests)."""
    gate = threading.Event()
    cascade = cascade_on(scripted_config(tmp_path, router="always_small"), small=Script(hold=gate))
    done: list[str] = []
    worker = threading.Thread(target=lambda: done.append(cascade.ask(CONTEXT, Q).answer))
    worker.start()
    time.sleep(0.05)
    assert done == []
    gate.set()
    worker.join(5)
    assert done == ["Rollo"]


def test_reply_overrides_the_tier_defaults(tmp_path: Path):
    config = scripted_config(tmp_path, cascade={"threshold": 0.5})
    script = Script([Reply("Rolf", verdict=0.1, logprobs=-2.0), Reply("Rollo", verdict=0.9)], verdict=0.5)
    cascade = cascade_on(config, small=script)
    first, second = cascade.ask(CONTEXT, Q), cascade.ask(CONTEXT, Q)
    assert first.decision == "route" and first.steps[0].mean_logprob == pytest.approx(-2.0)
    assert second.decision == "keep" and second.answer == "Rollo" and second.steps[0].confidence == pytest.approx(0.9)
