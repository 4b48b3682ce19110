"""Not in your documents for on-topic questions the passages do not answer (documents/answerable.py).

The shipped rule reads the retrieval's best cosine similarity after the model has answered (the candidates also
read the answer: its support in a passage, its log-probabilities, P(abstain)…), so the test that matters runs
it on what the real models give: a real SQLite library with vectors from the real embedding model, asked
through the real ask service with the default small model, and through ``ask --all --json``.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from automix_local.cascade import Step, Trace
from automix_local.documents import answerable

from .conftest import EMBEDDING_SHA, cli_path, tier_toml


def _trace(answer: str = "Rollo", model: str = "m.gguf", **step: object) -> Trace:
    s = Step(
        tier="small",
        model=model,
        answer=answer,
        confidence=None,
        tokens_in=10,
        tokens_out=1,
        seconds=0.1,
        cost=1.0,
        answer_seconds=0.1,
        verify_seconds=0.0,
        abstained=False,
        **step,  # type: ignore[arg-type]
    )
    return Trace(
        question="q", answer=answer, tier="small", model=model, decision="keep", confidence=None, seconds=0.1,
        cost=1.0, steps=[s],
    )  # fmt: skip


def test_a_threshold_rule_turns_away_only_when_every_condition_holds_and_a_missing_feature_never_does():
    rule = {"kind": "all", "conditions": [["best_cosine", "<=", 0.7], ["min_logprob", "<=", -1.0]]}
    assert answerable.turn_away({"best_cosine": 0.65, "min_logprob": -2.0}, rule)
    assert not answerable.turn_away({"best_cosine": 0.75, "min_logprob": -2.0}, rule)
    assert not answerable.turn_away({"best_cosine": 0.65, "min_logprob": -0.5}, rule)
    assert not answerable.turn_away({"best_cosine": None, "min_logprob": -2.0}, rule)  # no vectors: no judgement
    logistic = {
        "kind": "logistic", "features": ["best_cosine"], "weights": [-2.0], "bias": 0.0, "mean": [0.7], "std": [0.1],
        "fill": [0.7], "threshold": 0.5,
    }  # fmt: skip
    assert answerable.score({"best_cosine": 0.6}, logistic) == pytest.approx(0.8808, abs=1e-4)  # z = 2
    assert answerable.turn_away({"best_cosine": 0.6}, logistic)
    assert not answerable.turn_away({"best_cosine": 0.8}, logistic)
    assert not answerable.turn_away({"best_cosine": 0.6}, {})  # no rule: nothing is turned away


def test_the_features_of_an_answer_over_passages():
    """Support, overlaps and the first tier's numbers, from a real answer's shape (no model needed)."""
    from automix_local.documents.library import StoredPassage

    p = StoredPassage(1, "kettle.md", 1, 0, None, ("Descaling",), 0, 80, "Descale the kettle every four weeks.")
    f = answerable.features(
        "How often is the kettle descaled?", [p], 0.8, _trace("every four weeks", mean_logprob=-0.2, min_logprob=-0.9)
    )
    assert f["supported"] == 1.0 and f["best_cosine"] == 0.8 and f["min_logprob"] == -0.9 and f["length"] == 3.0
    assert f["escalated"] == 0.0 and f["agreement"] is None and f["disagreement"] == 0.0
    invented = answerable.features("Who designed the kettle?", [p], 0.6, _trace("Ferdinand Porsche"))
    assert invented["supported"] == 0.0 and invented["evidence_overlap"] == 0.0


def test_the_rule_belongs_to_the_models_it_was_fitted_with():
    """The shipped rule reads the default embedding model's similarities: with another embedding model it turns
    nothing away (as the retrieval floor); a rule that reads a tier's log-probabilities names that model too."""
    rule = dict(answerable.RULE or {})
    assert rule["applies_to"] == {"embedding": EMBEDDING_SHA}
    assert answerable.applies(rule, _trace(), EMBEDDING_SHA)
    assert not answerable.applies(rule, _trace(), "another-embedding-model") and not answerable.applies(
        rule, _trace(), None
    )
    by_model = {**rule, "applies_to": {"embedding": EMBEDDING_SHA, "model": "qwen.gguf"}}
    assert answerable.applies(by_model, _trace(model="qwen.gguf"), EMBEDDING_SHA)
    assert not answerable.applies(by_model, _trace(model="SmolLM2-135M-Instruct.Q4_1.gguf"), EMBEDDING_SHA)


# --------------------------------------------------------------------------- real models over a real library

TOWNS = [("Arlen", "copper mining"), ("Brisk", "salt trading"), ("Corvo", "wool weaving"), ("Dunmore", "glass blowing")]
ANSWERED = "Who was the Norse leader?"  # the Normans article says: Rollo
NOT_IN_THEM = "How many ships did the Norse raiders sail?"  # on topic; the article never says


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([cli_path(), *args], capture_output=True, text=True, timeout=300)


@pytest.fixture
def normans(default_small_path: Path, embedding_model_path: Path, write_config, tmp_path: Path) -> Path:
    """The default small model (the rule was fitted on its answers) over a library indexed, with vectors, by
    `docs add`: SQuAD's Normans article (tests/data/squad20.jsonl) beside other towns' notes — more than the
    window holds, so passages are retrieved."""
    config = write_config(
        tier_toml("small", default_small_path, max_tokens=24)
        + '[cascade]\nrouter = "always_small"\n'
        + f'[embedding]\npath = "{embedding_model_path}"\nsha256 = "{EMBEDDING_SHA}"\n'
    )
    rows = [json.loads(line) for line in (Path(__file__).parent / "data" / "squad20.jsonl").open(encoding="utf-8")]
    paragraphs = {r["context_id"]: r["context"] for r in rows}
    folder = tmp_path / "library"
    folder.mkdir()
    (folder / "normans.md").write_text("# Normans\n\n" + "\n\n".join(paragraphs[k] for k in sorted(paragraphs)))
    for town, trade in TOWNS:
        line = f"In {town} the people are known for {trade}, and visitors come to see the harbour. "
        (folder / f"{town.lower()}.txt").write_text(line * 40, encoding="utf-8")
    added = run("docs", "add", str(folder), "--config", str(config))
    assert added.returncode == 0, added.stderr
    return config


def test_an_on_topic_question_the_documents_do_not_answer_is_not_in_your_documents(normans: Path):
    """The service answers one question from the article and turns the other away as "unsupported", with the
    model's best guess kept in the note; `ask --all --json` says the same (one service behind both)."""
    from automix_local.ask import AskService, Question, Source, run_to_answer
    from automix_local.cascade import Cascade
    from automix_local.config import load_config
    from automix_local.documents.asking import NOT_FOUND_COSINE
    from automix_local.paths import default_paths

    from .test_ask import shape

    config = load_config(normans, default_paths())
    cascade = Cascade(config)
    service = AskService(config, cascade)
    try:
        found = run_to_answer(service.ask(Question(ANSWERED, Source.library(), save=False)))
        away = run_to_answer(service.ask(Question(NOT_IN_THEM, Source.library(), save=False)))
    finally:
        service.close()
        cascade.close()
    assert found.retrieved is not None and found.retrieved.packed.mode == "retrieved"
    assert not found.not_found and "Rollo" in found.text and found.citations and found.citations[0].supported
    assert away.retrieved is not None and away.retrieved.best_cosine is not None
    assert away.retrieved.best_cosine > NOT_FOUND_COSINE[EMBEDDING_SHA]  # on topic: past the retrieval floor
    assert away.not_found and away.not_found_reason == "unsupported" and away.citations == []
    guess = away.trace.answer
    assert guess.strip() and away.trace.steps  # the model answered: its answer is kept, as a best guess
    assert away.not_found_note is not None and away.not_found_note.startswith("Not in your documents")
    assert guess in away.not_found_note
    data = away.to_json()
    assert data["not_found"] is True and data["not_found_reason"] == "unsupported" and data["citations"] == []
    cli = run("ask", "--all", "--json", "--no-save", "--config", str(normans), NOT_IN_THEM)
    assert cli.returncode == 0, cli.stderr
    cached = {"tokens_evaluated"}  # the service asked a question before: its prompt's prefix was in the cache
    same = [shape(json.loads(cli.stdout)), shape(data)]
    for d in same:
        d["steps"] = [{k: v for k, v in step.items() if k not in cached} for step in d["steps"]]
    assert same[0] == same[1]
