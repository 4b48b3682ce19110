"""Self-verification strategies on the real SmolLM2 model."""

from __future__ import annotations

import pytest

from automix_local import prompts
from automix_local.config import CascadeConfig
from automix_local.verification import LogprobVerifier, SampledVerifier, make_verifier, parse_verdict

from .conftest import SQUAD_CONTEXT

Q = "Who was the leader of the Norse raiders?"


@pytest.mark.parametrize(
    "text,verdict",
    [
        (" The context says Rollo.\n\nVerification Decision: The AI generated answer is Correct.", "correct"),
        (" Wrong person.\n\nVerification Decision: The AI generated answer is Incorrect.", "incorrect"),
        ("THE AI GENERATED ANSWER IS CORRECT", "correct"),
        (" The context does not say.", "none"),
        ("", "none"),
    ],
)
def test_parse_verdict_counts_as_the_paper(text: str, verdict: str):
    assert parse_verdict(text) == verdict


def test_verification_prompt_is_the_papers_four_shot_prompt():
    p = prompts.verification_prompt("CTX", "Q?", "A")
    assert p.count("\n\n---\n\n") == 4
    assert "Kepler-442b" in p and "Pink Moon" in p and "Mona Lisa" in p and "Shakespeare" in p
    assert p.endswith(
        "Context: CTX\n\nQuestion: Q?\n\nAI Generated Answer: A\n\nInstruction: Your task is to evaluate "
        "if the AI Generated Answer is correct, based on the provided context and question. Provide "
        "the judgement and reasoning for each case. Choose between Correct or Incorrect.\n\nEvaluation:"
    )
    v = prompts.verdict_prompt("CTX", "Q?", "A")
    assert v.endswith("Choose between Correct or Incorrect.\n\nVerification Decision: The AI generated answer is")


def test_verification_prompt_as_chat_turns(shared_backend):
    msgs = prompts.verification_messages("CTX", "Q?", "A")
    assert [m["role"] for m in msgs] == ["user", "assistant"] * 4 + ["user"]
    assert msgs[1]["content"].startswith("Evaluation: The context specifically mentions")
    assert msgs[1]["content"].endswith("The AI generated answer is Correct.")
    assert msgs[3]["content"].endswith("The AI generated answer is Incorrect.")
    assert msgs[-1]["content"].startswith("Context: CTX\n\nQuestion: Q?\n\nAI Generated Answer: A")
    assert msgs[-1]["content"].endswith("Choose between Correct or Incorrect.")
    assert not any("---" in m["content"] for m in msgs)
    prompt = prompts.chat_verdict_prompt(shared_backend, SQUAD_CONTEXT, Q, "Rollo")
    assert "<|im_start|>assistant" in prompt and prompt.endswith("Verification Decision: The AI generated answer is")
    raw = LogprobVerifier().verify(shared_backend, SQUAD_CONTEXT, Q, "Rollo")
    r = LogprobVerifier(template="chat").verify(shared_backend, SQUAD_CONTEXT, Q, "Rollo")  # leaves no raw cache
    assert 0.0 < r.confidence < 1.0 and r.confidence != raw.confidence and r.tokens_in > raw.tokens_in


def test_answer_prompt_with_worked_examples(shared_backend):
    msgs = prompts.qa_messages("CTX", "Q?", examples=True)
    assert [m["role"] for m in msgs] == ["system"] + ["user", "assistant"] * 3 + ["user"]
    assert [m["content"] for m in msgs[2:7:2]] == ["Agnes Doyle", prompts.ABSTAIN, "three days"]
    assert msgs[-1]["content"] == "Document:\nCTX\n\nQuestion: Q?"
    plain = prompts.answer_prompt(shared_backend, "paper", SQUAD_CONTEXT, Q)
    shots = prompts.answer_prompt(shared_backend, "paper", SQUAD_CONTEXT, Q, examples=True)
    assert shots.endswith(plain.split("<|im_start|>user")[-1]) and "Harwell Bridge" in shots
    assert "Harwell" in prompts.static_prefix(shared_backend, "paper", examples=True)
    text = prompts.qa_completion("CTX", "Q?", examples=True)
    assert "Answer: The answer is unanswerable\n\n" in text and text.endswith("Q?\n\nAnswer: The answer is")


def test_logprob_verifier_returns_a_probability_and_is_deterministic(shared_backend):
    v = LogprobVerifier()
    a = v.verify(shared_backend, SQUAD_CONTEXT, Q, "Rollo")
    b = v.verify(shared_backend, SQUAD_CONTEXT, Q, "Rollo")
    assert 0.0 < a.confidence < 1.0
    assert a.confidence == b.confidence
    assert a.tokens_in > 600 and a.strategy == "logprob"
    # the second call reuses the prompt in the KV cache: only a handful of tokens are evaluated
    assert b.tokens_evaluated <= 4 < a.tokens_evaluated


def test_logprob_verifier_reason_first(shared_backend):
    v = LogprobVerifier(reason_first=True)
    r = v.verify(shared_backend, SQUAD_CONTEXT, Q, "Rollo")
    assert 0.0 <= r.confidence <= 1.0 and r.tokens_out > 0


def test_sampled_verifier_confidence_is_a_share_of_k(shared_backend):
    v = SampledVerifier(samples=4, temperature=1.0, max_tokens=48, seed=3)
    r = v.verify(shared_backend, SQUAD_CONTEXT, Q, "Rollo")
    assert len(r.verdicts) == 4
    valid = [x for x in r.verdicts if x != "none"]
    expected = sum(x == "correct" for x in valid) / len(valid) if valid else 0.0
    assert r.confidence == expected
    again = v.verify(shared_backend, SQUAD_CONTEXT, Q, "Rollo")
    assert again.verdicts == r.verdicts  # seeded


def test_make_verifier_follows_config():
    assert make_verifier(CascadeConfig(verifier="sampled", samples=3)).samples == 3  # type: ignore[attr-defined]
    assert make_verifier(CascadeConfig(verifier="logprob")).strategy == "logprob"


def test_shared_layout_verifies_from_the_state_after_the_answer(shared_backend, model_path):
    """The verdict costs only its suffix, and reusing the KV state gives the same verdict as from scratch."""
    from automix_local.backends.base import run_to_end
    from automix_local.backends.llama import LlamaBackend
    from automix_local.config import TierConfig

    from .conftest import TEST_SHA

    prompt = prompts.answer_prompt(shared_backend, "shared", SQUAD_CONTEXT, Q)
    assert prompt.startswith(prompts.static_prefix(shared_backend, "shared"))
    assert "Verification: The answer is Correct." in prompt and SQUAD_CONTEXT in prompt
    gen = run_to_end(shared_backend.stream(prompt, max_tokens=16, stop=["\n"]))
    answer = prompts.clean_answer(gen.text)
    warm = LogprobVerifier(layout="shared").verify(shared_backend, SQUAD_CONTEXT, Q, answer)
    # only the answer and the verdict suffix are evaluated again, never the context
    assert warm.tokens_evaluated <= gen.tokens_out + 12
    assert warm.tokens_in > 500
    fresh_backend = LlamaBackend(TierConfig(name="fresh", n_ctx=2048, sha256=TEST_SHA), model_path)
    try:
        fresh = LogprobVerifier(layout="shared").verify(fresh_backend, SQUAD_CONTEXT, Q, answer)
    finally:
        fresh_backend.close()
    assert fresh.tokens_evaluated == fresh.tokens_in + 1  # the whole prompt, and the two-token " Incorrect"
    assert warm.confidence == pytest.approx(fresh.confidence, abs=1e-9)


def test_shared_layout_sampled_verdicts(shared_backend):
    v = SampledVerifier(samples=4, temperature=1.0, seed=5, layout="shared")
    r = v.verify(shared_backend, SQUAD_CONTEXT, Q, "Rollo")
    assert len(r.verdicts) == 4 and r.tokens_out <= 12
    assert r.verdicts == v.verify(shared_backend, SQUAD_CONTEXT, Q, "Rollo").verdicts


class _Raw:
    uses_chat_template = False

    def render(self, messages):  # pragma: no cover - raw completion never renders
        raise AssertionError


@pytest.mark.parametrize("layout", ["shared", "paper"])
@pytest.mark.parametrize("raw", [False, True])
def test_earlier_turns_come_after_the_document_and_before_the_question(shared_backend, layout, raw):
    """Follow-ups keep the static prefix and the document first (their KV entries are reused), then the
    earlier turns oldest first, then the new question; without turns the prompt is the single-question one."""
    backend = _Raw() if raw else shared_backend
    history = [("Who agreed to swear fealty?", "Rollo"), ("To which king?", "Charles III")]
    p = prompts.answer_prompt(backend, layout, SQUAD_CONTEXT, "Where was he from?", history=history)
    assert p.startswith(prompts.static_prefix(backend, layout))
    at = p.index(SQUAD_CONTEXT) + len(SQUAD_CONTEXT)
    for part in ("Who agreed to swear fealty?", "Rollo", "To which king?", "Charles III", "Where was he from?"):
        at = p.index(part, at) + len(part)  # each after the one before it
    assert p.endswith(prompts.answer_prompt(backend, layout, "", "Where was he from?")[-20:])  # same answer lead
    first = prompts.answer_prompt(backend, layout, SQUAD_CONTEXT, "Who agreed to swear fealty?")
    cut = first.index("Who agreed to swear fealty?") + len("Who agreed to swear fealty?")
    assert p[:cut] == first[:cut]  # the first question's prompt is a prefix: its cache is reused
    assert prompts.answer_prompt(backend, layout, SQUAD_CONTEXT, Q, history=()) == prompts.answer_prompt(
        backend, layout, SQUAD_CONTEXT, Q
    )
    if layout == "shared":  # the check continues the very prompt the answer continued
        v = prompts.shared_verdict_prompt(backend, SQUAD_CONTEXT, "Where was he from?", "Denmark", history)
        assert v.startswith(p) and v.endswith(prompts.SHARED_VERDICT)


def test_the_papers_verification_prompt_gets_earlier_turns_in_its_question(shared_backend):
    history = [("Who agreed to swear fealty?", "Rollo")]
    asked = prompts.question_with_history("Where was he from?", history)
    assert asked.index("Rollo") < asked.index("Where was he from?")
    v = LogprobVerifier(layout="paper")
    with_turns = v.verify(shared_backend, SQUAD_CONTEXT, "Where was he from?", "Denmark", history)
    alone = v.verify(shared_backend, SQUAD_CONTEXT, "Where was he from?", "Denmark")
    assert with_turns.tokens_in > alone.tokens_in  # the earlier turn was read
