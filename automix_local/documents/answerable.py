"""Do the retrieved passages answer the question? "Not in your documents" for on-topic questions they do not.

The retrieval floor (``asking.NOT_FOUND_COSINE``) turns away questions no passage is about; the model's own
abstention turns away the few it sees are unanswerable. Neither catches an on-topic question the documents
do not answer (SQuAD 2.0's unanswerable half: the article is retrieved, the model picks a plausible span).
This module reads, after the cascade has answered, what every library answer has:

* whether a retrieved passage supports the answer (``retrieval.cite``: the answer verbatim in a passage);
* the retrieval's best cosine similarity, and how much of the question the passages hold (its content words
  found in the best-matching sentence, in the sentence holding the answer, anywhere in the passages);
* the answering tiers' P(abstain) at the first token, the answer's length and token log-probabilities;
* where two tiers ran (the question escalated), their agreement (token F1 of the two answers);

and decides with a rule fitted on recorded questions (``bench/documents_e2e.py`` records these features;
``bench/answerable_fit.py`` fits and scores the rule held out). ``features`` and ``turn_away`` are what
``AskService`` calls; the bench calls the same two on the same inputs.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from ..grounding import grounding_features
from ..prompts import is_abstention
from ..scoring import token_f1
from ..text import content_words
from .retrieval import cite

if TYPE_CHECKING:
    from ..cascade import Trace
    from .library import StoredPassage

# Every candidate feature, in the order the bench records them. None: not known for this answer (no vectors,
# no second tier, no token log-probabilities from a remote tier).
FEATURES = (
    "supported",  # 1: some retrieved passage contains the answer verbatim (normalised); 0: none does
    "cited",  # 1: some passage shares a word with the answer (``cite`` found one, supported or not)
    "best_cosine",  # the most similar passage's cosine similarity to the question
    "question_overlap",  # the best sentence's share of the question's content words
    "evidence_overlap",  # the same over sentences that contain the answer (0 when none does)
    "context_overlap",  # share of the question's content words found anywhere in the passages
    "answer_support",  # share of the answer's content words found in the passages
    "echo",  # share of the answer's content words already in the question
    "type_match",  # the answer's shape fits the question word (grounding.type_match)
    "log_p_abstain",  # log10 of the first tier's P(the answer starts "unanswerable") at the first token
    "log_p_abstain_last",  # the same for the tier whose answer is shown
    "mean_logprob",  # the first tier's answer's mean token log-probability
    "min_logprob",
    "length",  # the shown answer's length in words
    "escalated",  # 1: a second tier answered
    "agreement",  # token F1 between the first and the last tier's answers (None: one tier ran)
    "disagreement",  # 1 - agreement when two tiers ran, else 0 (defined in every mode)
)


def passages_text(passages: Sequence[StoredPassage]) -> str:
    return "\n\n".join(p.text.strip() for p in passages)


def features(question: str, passages: Sequence[StoredPassage], best_cosine: float | None, trace: Trace) -> dict:
    """The candidate features of one library answer (``trace``: the cascade's, over ``passages``)."""
    answer = trace.answer
    text = passages_text(passages)
    citations = cite(answer, passages)
    abstained = is_abstention(answer) or not answer.strip()
    g = grounding_features(text, question, answer, abstained)
    q_words = list(dict.fromkeys(content_words(question)))
    pool = set(content_words(text))
    steps = trace.steps
    first = steps[0] if steps else None
    shown = next((s for s in reversed(steps) if s.answer == answer), steps[-1] if steps else None)
    two = len(steps) >= 2
    agreement = token_f1(steps[0].answer, steps[-1].answer) if two else None
    return {
        "supported": float(any(c.supported for c in citations)),
        "cited": float(bool(citations)),
        "best_cosine": best_cosine,
        "question_overlap": g["question_overlap"],
        "evidence_overlap": g["evidence_overlap"],
        "context_overlap": sum(w in pool for w in q_words) / len(q_words) if q_words else 0.0,
        "answer_support": g["answer_support"],
        "echo": g["echo"],
        "type_match": g["type_match"],
        "log_p_abstain": _log10(first.p_abstain) if first is not None else None,
        "log_p_abstain_last": _log10(shown.p_abstain) if shown is not None else None,
        "mean_logprob": first.mean_logprob if first is not None else None,
        "min_logprob": first.min_logprob if first is not None else None,
        "length": float(len(answer.split())),
        "escalated": float(two),
        "agreement": agreement,
        "disagreement": 1.0 - agreement if agreement is not None else 0.0,
    }


def _log10(p: float | None) -> float | None:
    return None if p is None else math.log10(max(p, 1e-12))


# --------------------------------------------------------------------------- the fitted rule

# The rule: {"kind": "all", "conditions": [[feature, "<=" | ">=", value], ...]} turns a question away when every
# condition holds (a condition on a feature this answer lacks does not hold); {"kind": "logistic", "features",
# "weights", "bias", "mean", "std", "fill", "threshold"} when P(unanswerable) reaches the threshold.
# Filled in from bench/answerable_fit.py's output (see the comment there and docs/results/answerable.md).
RULE: dict | None = None


def _value(v: float | None) -> float | None:
    return None if v is None or (isinstance(v, float) and math.isnan(v)) else float(v)


def score(feats: Mapping[str, float | None], rule: Mapping | None = None) -> float | None:
    """A logistic rule's P(the passages do not answer the question); None: no logistic rule."""
    rule = RULE if rule is None else rule
    if not rule or rule.get("kind") != "logistic":
        return None
    z = float(rule["bias"])
    for name, w, mean, std, fill in zip(
        rule["features"], rule["weights"], rule["mean"], rule["std"], rule["fill"], strict=True
    ):
        v = _value(feats.get(name))
        z += float(w) * ((float(fill) if v is None else v) - float(mean)) / float(std)
    return 1.0 / (1.0 + math.exp(-max(-700.0, min(700.0, z))))


def turn_away(feats: Mapping[str, float | None], rule: Mapping | None = None) -> bool:
    """Whether to answer "not in your documents" (the best guess is still shown beside it)."""
    rule = RULE if rule is None else rule
    if not rule:
        return False
    if rule["kind"] == "logistic":
        p = score(feats, rule)
        return p is not None and p >= float(rule["threshold"])
    for name, op, bound in rule["conditions"]:
        v = _value(feats.get(name))
        if v is None or not (v <= bound if op == "<=" else v >= bound):
            return False
    return True


def unsupported(question: str, passages: Sequence[StoredPassage], best_cosine: float | None, trace: Trace) -> bool:
    """The service's call: do the passages fail to answer ``question``, by the fitted rule? (An abstention is
    not asked: it is "not in your documents" already.)"""
    return turn_away(features(question, passages, best_cosine, trace))
