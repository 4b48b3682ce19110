"""Each local tier's measured speed: the estimate, its history database (a real SQLite file), the first
estimate at load (the real SmolLM2 model) and the session's time against always asking the last tier."""

from __future__ import annotations

import math
import sqlite3
from pathlib import Path

import pytest

from automix_local.cascade import Cascade, Step, Trace
from automix_local.config import load_config
from automix_local.speeds import (
    DECAY,
    PROBE_TOKENS,
    Savings,
    SpeedBook,
    TierSpeed,
    probe,
    record_answer,
    session_savings,
    speed_at_load,
)
from automix_local.storage import DATABASE, SCHEMA_VERSION, Store

from .conftest import tier_toml
from .fake_tier import Script, local_tier, model_file, scripted_config, scripted_factory


def is_speed(speed: TierSpeed | None, prompt: float, gen: float, observations: int) -> bool:
    return (
        speed is not None
        and speed.prompt_token_seconds == pytest.approx(prompt)
        and speed.gen_token_seconds == pytest.approx(gen)
        and speed.observations == observations
    )


@pytest.fixture
def config(tmp_path: Path):
    return scripted_config(tmp_path / "config")


def test_the_estimate_is_the_weighted_ratio_of_recent_observations(config):
    """Seconds per token = Σ dᵏ·seconds / Σ dᵏ·tokens, for the prompt and the generation separately."""
    book = SpeedBook.for_config(config)
    assert book.speed("small") is None and book.seconds("small", 100, 10) is None
    obs = [(400, 10, 2.0, 0.5), (100, 20, 0.6, 1.1), (800, 5, 4.4, 0.24)]  # (evaluated, out, prompt s, gen s)
    for ev, out, ps, gs in obs:
        assert book.observe("small", ev, out, ps, gs)
    weights = [DECAY**2, DECAY, 1.0]
    prompt = sum(w * o[2] for w, o in zip(weights, obs, strict=True)) / sum(
        w * o[0] for w, o in zip(weights, obs, strict=True)
    )
    gen = sum(w * o[3] for w, o in zip(weights, obs, strict=True)) / sum(
        w * o[1] for w, o in zip(weights, obs, strict=True)
    )
    speed = book.speed("small")
    assert speed is not None and speed.observations == 3
    assert speed.prompt_token_seconds == pytest.approx(prompt) and speed.gen_token_seconds == pytest.approx(gen)
    assert book.seconds("small", 200, 8) == pytest.approx(200 * prompt + 8 * gen)
    assert book.speed("large") is None and book.speeds() == {"small": speed}


def test_the_estimate_is_kept_in_the_history_database_across_restarts(config):
    book = SpeedBook.for_config(config)
    book.observe("small", 500, 10, 2.5, 0.5)
    book.observe("large", 500, 10, 7.5, 1.5)
    db = config.paths.data_dir / DATABASE
    store = Store(db)  # the conversations' store: the same file, its schema upgraded by the same migrations
    assert len(store.speed_sums()) == 2
    store.close()
    again = SpeedBook.for_config(config)
    assert again.speeds() == book.speeds()
    assert is_speed(again.speed("large"), 0.015, 0.15, 1)
    raw = sqlite3.connect(db)
    assert raw.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    rows = raw.execute("SELECT tier, model, setup, observations FROM tier_speeds ORDER BY tier").fetchall()
    assert rows == [("large", "large.gguf", "cpu, all threads", 1), ("small", "small.gguf", "cpu, all threads", 1)]


def test_two_books_on_one_database_build_on_each_others_writes(config):
    """The app, `ask` and a probe at load may each hold a book: every observation reads the stored sums first."""
    first, second = SpeedBook.for_config(config), SpeedBook.for_config(config)
    first.observe("small", 100, 10, 1.0, 1.0)
    second.observe("small", 100, 10, 1.0, 1.0)
    assert is_speed(second.speed("small"), 0.01, 0.1, 2)
    assert is_speed(first.speed("small"), 0.01, 0.1, 1)  # until it reads again
    first.refresh()
    assert is_speed(first.speed("small"), 0.01, 0.1, 2)


def test_a_changed_model_or_setup_starts_afresh(tmp_path: Path, config):
    SpeedBook.for_config(config).observe("small", 500, 10, 2.5, 0.5)
    d = tmp_path / "config"
    other_file = tmp_path / "other.gguf"
    other_file.write_bytes(b"GGUF" + bytes(28))
    for small in (
        local_tier(d, "small", path=other_file),  # another model file
        local_tier(d, "small", n_gpu_layers=-1),  # the same file on the GPU
        local_tier(d, "small", n_threads=1),
    ):
        changed = scripted_config(d, [small, "large"])
        assert changed.paths.data_dir == config.paths.data_dir
        assert SpeedBook.for_config(changed).speed("small") is None
    renamed = scripted_config(d, [local_tier(d, "tiny", path=model_file(d, "small")), "large"])  # another name
    assert SpeedBook.for_config(renamed).speed("tiny") is None
    assert is_speed(SpeedBook.for_config(config).speed("small"), 0.005, 0.05, 1)  # still there


@pytest.mark.parametrize(
    "ev, out, ps, gs",
    [
        (0, 0, 1.0, 1.0),  # no tokens at all
        (100, 10, math.nan, math.inf),
        (100, 10, -1.0, 0.0),
        (100, 10, 0.0, 0.0),
    ],
)
def test_degenerate_observations_are_ignored(config, ev, out, ps, gs):
    book = SpeedBook.for_config(config)
    assert not book.observe("small", ev, out, ps, gs)
    assert book.speed("small") is None
    book.observe("small", 100, 10, 1.0, 1.0)
    assert not book.observe("small", ev, out, ps, gs)
    assert is_speed(book.speed("small"), 0.01, 0.1, 1)


def test_one_usable_part_is_learnt_alone(config):
    """An answer abstained at its first token generated nothing: its prompt's time still counts."""
    book = SpeedBook.for_config(config)
    assert book.observe("small", 200, 0, 1.0, 0.001)
    assert book.speed("small") is None  # no generation measured yet
    assert book.observe("small", 100, 10, math.nan, 0.5)
    speed = book.speed("small")
    assert speed is not None and speed.observations == 2
    assert speed.prompt_token_seconds == pytest.approx(0.005) and speed.gen_token_seconds == pytest.approx(0.05)


def test_an_outlier_is_ignored_once_the_estimate_rests_on_a_few_answers(config):
    """A laptop that slept in the middle of an answer: 100× slower once is not the machine's speed."""
    book = SpeedBook.for_config(config)
    for _ in range(3):
        book.observe("small", 100, 10, 1.0, 1.0)
    assert not book.observe("small", 100, 10, 100.0, 100.0)
    assert is_speed(book.speed("small"), 0.01, 0.1, 3)
    assert book.observe("small", 100, 10, 3.0, 3.0)  # three times slower is the machine: learnt
    weights = DECAY**3 + DECAY**2 + DECAY
    assert is_speed(book.speed("small"), (weights + 3) / (100 * (weights + 1)), (weights + 3) / (10 * (weights + 1)), 4)


def test_a_remote_tier_is_not_measured(tmp_path: Path):
    config = scripted_config(tmp_path / "config", remote="http://127.0.0.1:9")
    book = SpeedBook.for_config(config)
    assert set(book.models) == {"small", "large"}
    assert not book.observe("remote", 100, 10, 1.0, 1.0) and book.speed("remote") is None


def test_reading_never_creates_the_database_and_a_broken_one_is_not_fatal(config):
    db = config.paths.data_dir / DATABASE
    SpeedBook.for_config(config).speeds()
    assert not db.exists()
    db.parent.mkdir(parents=True, exist_ok=True)
    db.write_bytes(b"this is not sqlite" * 100)
    book = SpeedBook.for_config(config)
    assert book.observe("small", 100, 10, 1.0, 1.0)  # learnt in memory, with one warning in the log
    assert is_speed(book.speed("small"), 0.01, 0.1, 1)


def test_tier_speed_json_round_trip():
    speed = TierSpeed(0.004, 0.031, 12)
    assert TierSpeed.from_json(speed.to_json()) == speed
    for bad in ({}, {"prompt_token_seconds": "x", "gen_token_seconds": 1, "observations": 1}):
        with pytest.raises(ValueError, match="not a tier speed"):
            TierSpeed.from_json(bad)
    with pytest.raises(ValueError, match="positive"):
        TierSpeed.from_json({"prompt_token_seconds": 0.0, "gen_token_seconds": 1.0, "observations": 1})


# --------------------------------------------------------------------------- recording answers, session savings


def _step(tier: str, ev: int, out: int, prompt: float, gen: float, **extra: object) -> Step:
    step = Step(
        tier=tier,
        model=f"{tier}.gguf",
        answer="Rollo",
        confidence=None,
        tokens_in=ev,
        tokens_out=out,
        seconds=prompt + gen,
        cost=1.0,
        answer_seconds=prompt + gen,
        verify_seconds=0.0,
        abstained=False,
        tokens_evaluated=ev,
    )
    step.prompt_seconds = prompt  # type: ignore[attr-defined]  # (a field once the cascade records the split)
    step.gen_seconds = gen  # type: ignore[attr-defined]
    for k, v in extra.items():
        setattr(step, k, v)
    return step


def _trace(*steps: Step) -> Trace:
    return Trace("Q?", "Rollo", steps[-1].tier, steps[-1].model, "keep", None, 0.0, 0.0, list(steps))


def test_savings_against_always_asking_the_last_tier(config):
    book = SpeedBook.for_config(config)
    book.observe("large", 1000, 10, 3.0, 1.0)  # 3 ms per prompt token, 100 ms per generated one
    savings = Savings()
    assert savings.words("large") is None
    # kept by small: large would have taken 3 ms × 500 + 100 ms × 5 = 2 s; the cascade took 0.5 s
    assert savings.add(_trace(_step("small", 500, 5, 0.4, 0.1)), book, "large")
    assert savings.saved == pytest.approx(1.5) and savings.words("large") == "saved 1.5 s vs always-large"
    # escalated: large's own answer (2.5 s) against both answers (3 s)
    assert savings.add(_trace(_step("small", 500, 5, 0.4, 0.1), _step("large", 500, 5, 2.0, 0.5)), book, "large")
    assert savings.words("large") == "saved 1.0 s vs always-large"
    assert savings.add(_trace(_step("small", 500, 5, 4.0, 1.0)), book, "large")  # a slow, kept answer
    assert savings.words("large") == "took 2.0 s more than always-large"
    # a verified answer's counts include its check's: large's predicted share scales the answer's own seconds
    book.observe("small", 1000, 10, 1.0, 0.5)  # small: 1 ms, 50 ms
    verified = _step("small", 500, 5, 0.5, 0.25, verifier="logprob", seconds=1.0)
    assert savings.add(_trace(verified), book, "large")  # large: 2 s predicted vs small's 0.75 s → 2 s
    assert savings.large_seconds == pytest.approx(2.0 + 2.5 + 2.0 + 2.0)
    assert savings.questions == 4 and not savings.add(_trace(_step("tiny", 1, 1, 1.0, 1.0)), book, "large")


def test_recording_learns_from_local_unverified_answers_and_hands_the_speeds_to_the_cascade(config):
    from automix_local.ask import AskService

    service = AskService(config)
    handed: list[dict[str, TierSpeed]] = []

    class Cascadeish:
        def set_speeds(self, speeds: dict[str, TierSpeed]) -> None:
            handed.append(speeds)

    assert session_savings(service) is None
    checked = _step("small", 300, 5, 9.0, 9.0, verifier="logprob")  # its counts include the check's: not learnt
    record_answer(service, Cascadeish(), _trace(checked, _step("large", 300, 5, 0.9, 0.5)))  # type: ignore[arg-type]
    assert len(handed) == 1 and list(handed[0]) == ["large"] and is_speed(handed[0]["large"], 0.003, 0.1, 1)
    found = session_savings(service)
    assert found is not None and found[1] == "large"
    assert found[0].questions == 1 and found[0].words("large") == "took 18 s more than always-large"
    record_answer(service, None, _trace(_step("small", 400, 4, 0.4, 0.2)))
    stored = SpeedBook.for_config(config)
    assert is_speed(stored.speed("small"), 0.001, 0.05, 1) and is_speed(stored.speed("large"), 0.003, 0.1, 1)
    assert found[0].questions == 2  # large: 1.2 + 0.4 s predicted against small's 0.6 s


def test_a_scripted_question_through_the_service_is_recorded(tmp_path: Path):
    """The ask service records every answered question (the scripted tiers' microseconds are too fast for a
    speed, but the question counts once the last tier's speed is known)."""
    from automix_local.ask import AskService, Question, Source, run_to_answer

    config = scripted_config(tmp_path / "config", router="always_small")  # no verification: the answer's counts

    SpeedBook.for_config(config).observe("large", 1000, 10, 3.0, 1.0)
    factory = scripted_factory(small=Script("Rollo", verdict=0.9), large=Script("Rollo"))
    cascade = Cascade(config, backend_factory=factory)
    service = AskService(config, cascade)
    answer = run_to_answer(service.ask(Question("Who led them?", Source.context("Rollo led the Normans."))))
    assert [s.tier for s in answer.trace.steps] == ["small"]
    found = session_savings(service)
    assert found is not None and found[0].questions == 1
    step = answer.trace.steps[0]
    assert found[0].large_seconds == pytest.approx(0.003 * step.tokens_evaluated + 0.1 * step.tokens_out)
    assert found[0].words("large").startswith("saved ")
    service.close()
    cascade.close()


# --------------------------------------------------------------------------- the first estimate at load (real model)


def test_the_first_estimate_at_load_is_one_short_probe(model_path: Path, write_config):
    from automix_local.backends.llama import LlamaBackend

    config = load_config(write_config(tier_toml("small", model_path) + tier_toml("large", model_path)))
    backend = LlamaBackend(config.tiers[0], model_path)
    try:
        backend.load()
        gen = probe(backend)
        assert gen is not None and gen.tokens_evaluated >= 40 and 1 <= gen.tokens_out <= PROBE_TOKENS
        speed = speed_at_load(config, config.tiers[0], backend)
        assert speed is not None and speed.observations == 1
        assert 0 < speed.prompt_token_seconds < 1 and 0 < speed.gen_token_seconds < 5
        assert all(math.isfinite(x) for x in (speed.prompt_token_seconds, speed.gen_token_seconds))
        assert speed_at_load(config, config.tiers[0], backend) == speed  # known: no second probe
        assert SpeedBook.for_config(config).speed("small") == speed  # kept in the history database
    finally:
        backend.close()


def test_a_scripted_tier_is_not_probed(config):
    factory = scripted_factory()
    cascade = Cascade(config, backend_factory=factory)
    assert speed_at_load(config, config.tiers[0], cascade.backend(0)) is None
    assert factory["small"].count("stream") == 0 and not (config.paths.data_dir / DATABASE).exists()
