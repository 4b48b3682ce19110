"""Do the retrieved passages answer the question? "Not in your documents" for on-topic questions they do not.

The retrieval floor (``asking.NOT_FOUND_COSINE``) turns away questions no passage is about; the model's own
abstention and the router's "not sure" turn away some others. None of them is meant for an on-topic question
the documents do not answer (SQuAD 2.0's unanswerable half: the article is retrieved, the model picks a
plausible span). This module reads, after the cascade has answered, what every library answer has:

* whether a retrieved passage supports the answer (``retrieval.cite``: the answer verbatim in a passage);
* the retrieval's best cosine similarity, and how much of the question the passages hold (its content words
  found in the best-matching sentence, in the sentence holding the answer, anywhere in the passages);
* the answering tiers' P(abstain) at the first token, the answer's length and token log-probabilities, the
  router's confidence in it;
* where two tiers ran (the question escalated), their agreement (token F1 of the two answers);

and decides by ``RULE``, fitted on recorded questions and scored on others (``bench/documents_e2e.py`` records
the features, ``bench/answerable_fit.py`` fits; the numbers are beside ``RULE``). Of all of them only the
best cosine held up on questions the rule was not fitted on, so the shipped rule is a similarity band above
the retrieval floor: the model answers, and its answer is shown as a best guess beside "not in your
documents". ``unsupported`` is what ``AskService`` calls; the bench calls ``features`` and ``turn_away`` on the
same inputs.
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
    from .asking import Retrieved
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
    "confidence",  # the router's confidence in the shown answer (the trust router: its P(right)); None: it read none
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
        "confidence": shown.confidence if shown is not None else None,
        "escalated": float(two),
        "agreement": agreement,
        "disagreement": 1.0 - agreement if agreement is not None else 0.0,
    }


def _log10(p: float | None) -> float | None:
    return None if p is None else math.log10(max(p, 1e-12))


# --------------------------------------------------------------------------- the fitted rule

# The rule: {"kind": "all", "conditions": [[feature, "<=" | ">=", value], ...]} turns a question away when every
# condition holds (a condition on a feature this answer lacks does not hold); {"kind": "logistic", "features",
# "weights", "bias", "mean", "std", "fill", "threshold"} when P(unanswerable) reaches the threshold;
# ``applies_to`` names the models whose numbers it reads (``applies``).
#
# Fitted by bench/answerable_fit.py (docs/results/answerable.md) on 669 library answers of the default cascade
# (trust router, context_tokens 512): 469 SQuAD 2.0 questions over its 20 articles (two samples, seeds 4 and 5)
# and 200 FairyTaleQA questions over its 23 stories; fitting part: the questions whose id's SHA-256 is even
# (331), held out: the rest (338). Of 402 candidates — each feature alone, every pair, logistic regressions on
# all the features — cross-validated inside the fitting part, the best pairs (best cosine with the answer's
# mean log-probability, or the router's confidence) turned away 13 % of the unanswerable questions at a 4–6 %
# loss; the best cosine alone 11 % at 1–6 %, within one standard error, and simpler: it ships. Support (is the
# answer verbatim in a passage?) turned away none (SQuAD 2.0's unanswerable questions get extractive answers
# from the passage, FairyTaleQA's right answers are often paraphrases); P(abstain) alone 6 %; every feature
# in one logistic model 9 % (it overfits); the tiers' agreement exists for the few questions that escalate.
# The threshold: the most unanswerable questions turned away while the rule loses at most 5 % of each
# dataset's answerable ones (fitting part). Held out: SQuAD's unanswerable questions turned away 37 % → 44 %
# (95 % CI 35–53 %, n = 105), answerable lost 30 % → 32 % (n = 127; the router's "not sure" loses the 30 %);
# FairyTaleQA lost 50 % → 52 % (n = 106). Below the retrieval floor (0.611) no model is asked; between it
# and this threshold the model answers and its answer is shown as a best guess.
RULE: dict | None = {
    "kind": "all",
    "conditions": [["best_cosine", "<=", 0.65083]],
    "applies_to": {"embedding": "f7af6f66802f4df86eda10fe9bbcfc75c39562bed48ef6ace719a251cf1c2fdb"},
}


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


def applies(rule: Mapping, trace: Trace, embedding: str | None) -> bool:
    """A rule reads log-probabilities of the model it was fitted with and similarities of its embedding model
    (``applies_to``: the first tier's model file, the vectors' key): another setup gets no rule until it is
    measured, as the retrieval floor does (``asking.NOT_FOUND_COSINE``)."""
    want = rule.get("applies_to") or {}
    if "model" in want and (not trace.steps or trace.steps[0].model != want["model"]):
        return False
    return "embedding" not in want or embedding == want["embedding"]


def unsupported(question: str, retrieved: Retrieved, trace: Trace, rule: Mapping | None = None) -> bool:
    """The service's call, after the cascade answered over ``retrieved``: do the passages fail to answer
    ``question``, by the fitted rule? (An abstention is not asked: it is "not in your documents" already.)"""
    rule = RULE if rule is None else rule
    if not rule or not applies(rule, trace, retrieved.model):
        return False
    return turn_away(features(question, retrieved.packed.passages, retrieved.best_cosine, trace), rule)
