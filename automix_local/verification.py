"""Self-verification: the model that answered judges its own answer against the context.

Two strategies, both returning a confidence in [0, 1]:

* ``sampled`` (paper-faithful): k verdicts sampled at temperature T from the few-shot prompt;
  confidence = share of "... is Correct" among the samples that reached a verdict (0 if none).
* ``logprob``: one forward pass over the prompt continued up to the verdict word;
  confidence = P(" Correct") / (P(" Correct") + P(" Incorrect")).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from .backends.base import Backend, Scored, run_to_end
from .config import CascadeConfig
from .prompts import (
    Turn,
    chat_verdict_prompt,
    question_with_history,
    shared_verdict_prompt,
    verdict_prompt,
    verification_prompt,
)

CORRECT, INCORRECT = " Correct", " Incorrect"
_VERDICT = "the ai generated answer is"
# A sample can stop as soon as it has given its verdict; the rest of it is never read.
_VERDICT_STOPS = {
    "answer is Correct": "correct",
    "answer is correct": "correct",
    "answer is Incorrect": "incorrect",
    "answer is incorrect": "incorrect",
}


@dataclass
class Verification:
    strategy: str
    confidence: float
    tokens_in: int
    tokens_out: int
    tokens_evaluated: int
    seconds: float
    verdicts: list[str] = field(default_factory=list)  # sampled: "correct" | "incorrect" | "none"


class Verifier(Protocol):
    strategy: str

    def verify(
        self, backend: Backend, context: str, question: str, answer: str, history: Sequence[Turn] = ()
    ) -> Verification:
        """Judge ``answer``. ``history``: the conversation's earlier turns, which the answer prompt had too
        (the shared layout continues that very prompt; the paper's prompt gets them in its question slot)."""
        ...


def parse_verdict(text: str) -> str:
    """'correct', 'incorrect' or 'none' for one sampled verification, as the paper counts them."""
    t = text.lower()
    if f"{_VERDICT} correct" in t:
        return "correct"
    if _VERDICT in t:
        return "incorrect"
    return "none"


def _short_verdict(text: str) -> str:
    """The shared layout's sampled verdict: the first word after "The answer is"."""
    word = text.strip().lower()
    if word.startswith("correct"):
        return "correct"
    if word.startswith("incorrect"):
        return "incorrect"
    return "none"


class SampledVerifier:
    strategy = "sampled"

    def __init__(
        self, samples: int = 8, temperature: float = 1.0, max_tokens: int = 250, seed: int = 0, layout: str = "paper"
    ) -> None:
        self.samples, self.temperature, self.max_tokens, self.seed = samples, temperature, max_tokens, seed
        self.layout = layout

    def verify(
        self, backend: Backend, context: str, question: str, answer: str, history: Sequence[Turn] = ()
    ) -> Verification:
        if self.layout == "shared":
            return self._verify_shared(backend, context, question, answer, history)
        prompt = verification_prompt(context, question_with_history(question, history), answer)
        t0 = time.perf_counter()
        verdicts: list[str] = []
        tokens_in = tokens_out = evaluated = 0
        for i in range(self.samples):
            gen = run_to_end(
                backend.stream(
                    prompt,
                    max_tokens=self.max_tokens,
                    stop=["---", "\nContext:", *_VERDICT_STOPS],
                    temperature=self.temperature,
                    seed=self.seed + i,
                )
            )
            verdicts.append(_VERDICT_STOPS.get(gen.stopped_by or "") or parse_verdict(gen.text))
            tokens_in, tokens_out, evaluated = (
                gen.tokens_in,
                tokens_out + gen.tokens_out,
                evaluated + gen.tokens_evaluated,
            )
        return _sampled_result(verdicts, tokens_in, tokens_out, evaluated, t0)

    def _verify_shared(
        self, backend: Backend, context: str, question: str, answer: str, history: Sequence[Turn]
    ) -> Verification:
        """k short samples of the verdict word, all continuing from the state after the answer."""
        prompt = shared_verdict_prompt(backend, context, question, answer, history)
        t0 = time.perf_counter()
        verdicts: list[str] = []
        tokens_in = tokens_out = evaluated = 0
        for i in range(self.samples):
            gen = run_to_end(
                backend.stream(prompt, max_tokens=3, stop=["\n", "."], temperature=self.temperature, seed=self.seed + i)
            )
            verdicts.append(_short_verdict(gen.text))
            tokens_in = gen.tokens_in
            tokens_out += gen.tokens_out
            evaluated += gen.tokens_evaluated
        return _sampled_result(verdicts, tokens_in, tokens_out, evaluated, t0)


def _sampled_result(verdicts: list[str], tokens_in: int, tokens_out: int, evaluated: int, t0: float) -> Verification:
    valid = [v for v in verdicts if v != "none"]
    conf = sum(v == "correct" for v in valid) / len(valid) if valid else 0.0
    return Verification("sampled", conf, tokens_in, tokens_out, evaluated, time.perf_counter() - t0, verdicts)


class LogprobVerifier:
    strategy = "logprob"

    def __init__(
        self, reason_first: bool = False, reason_max_tokens: int = 60, layout: str = "paper", template: str = "raw"
    ) -> None:
        """``template = "chat"`` (paper layout, measured as a variant): the few-shot prompt as chat turns."""
        self.reason_first, self.reason_max_tokens, self.layout = reason_first, reason_max_tokens, layout
        self.template = template

    def verify(
        self, backend: Backend, context: str, question: str, answer: str, history: Sequence[Turn] = ()
    ) -> Verification:
        t0 = time.perf_counter()
        if self.layout == "shared":  # one forward pass over the verdict suffix, after the answer
            prompt = shared_verdict_prompt(backend, context, question, answer, history)
            return self._from_scores(backend.score(prompt, [CORRECT, INCORRECT]), 0, 0, t0)
        question = question_with_history(question, history)
        if self.template == "chat" and backend.uses_chat_template:
            prompt = chat_verdict_prompt(backend, context, question, answer)
            return self._from_scores(backend.score(prompt, [CORRECT, INCORRECT]), 0, 0, t0)
        tokens_out = evaluated = 0
        evaluation = None
        if self.reason_first:
            gen = run_to_end(
                backend.stream(
                    verification_prompt(context, question, answer),
                    max_tokens=self.reason_max_tokens,
                    stop=["\n"],
                    temperature=0.0,
                )
            )
            evaluation, tokens_out, evaluated = gen.text, gen.tokens_out, gen.tokens_evaluated
        scored = backend.score(verdict_prompt(context, question, answer, evaluation), [CORRECT, INCORRECT])
        return self._from_scores(scored, tokens_out, evaluated, t0)

    def _from_scores(self, scored: Scored, tokens_out: int, evaluated: int, t0: float) -> Verification:
        diff = scored.logprobs[CORRECT] - scored.logprobs[INCORRECT]
        conf = 1.0 / (1.0 + math.exp(-diff)) if diff > -700 else 0.0
        return Verification(
            self.strategy,
            conf,
            scored.tokens_in,
            tokens_out,
            evaluated + scored.tokens_evaluated,
            time.perf_counter() - t0,
        )


def make_verifier(cfg: CascadeConfig) -> Verifier:
    if cfg.verifier == "sampled":
        return SampledVerifier(cfg.samples, cfg.temperature, cfg.verify_max_tokens, cfg.seed, cfg.layout)
    return LogprobVerifier(cfg.reason_first, layout=cfg.layout)
