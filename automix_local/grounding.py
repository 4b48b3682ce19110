"""Grounding features: how an answer sits in its context, read from the text alone (microseconds).

For extractive question answering a right answer is usually a span of the context, in the sentence
that shares most words with the question; a wrong one is often not in the context at all, repeats
the question, or has the wrong type (a name for "how many"). A question whose words match no sentence
of the context is likely one no tier can answer (SQuAD 2.0's unanswerable half). These features sit
beside the answer's token probabilities as router inputs (issue 13); all are in [0, 1].

* ``in_context``: the normalised answer occurs in the normalised context, word-aligned.
* ``answer_support``: share of the answer's content words found in the context.
* ``question_overlap``: the best sentence's share of the question's content words (answerability).
* ``evidence_overlap``: the same, over sentences that contain the answer (0 when none does).
* ``echo``: share of the answer's content words that are already in the question.
* ``type_match``: the answer's shape fits the question word (who → a name, when → a date or year,
  how many → a number); 0.5 when the question word says nothing about the shape.
"""

from __future__ import annotations

import re

from .scoring import normalize_answer
from .text import content_words

GROUNDING_FEATURES = ("in_context", "answer_support", "question_overlap", "evidence_overlap", "echo", "type_match")

_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n\s*\n")
_MONTHS = (
    "january february march april may june july august september october november december "
    "jan feb mar apr jun jul aug sep sept oct nov dec"
).split()
_NUMBER_WORDS = frozenset(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
    "seventeen eighteen nineteen twenty thirty forty fifty sixty seventy eighty ninety hundred thousand "
    "million billion trillion dozen half several".split()
)


def _share(words: list[str], pool: set[str]) -> float:
    return sum(w in pool for w in words) / len(words) if words else 0.0


def _has_number(text: str) -> bool:
    return any(ch.isdigit() for ch in text) or any(w in _NUMBER_WORDS for w in text.lower().split())


def _kind(question: str) -> str | None:
    q = question.lower()
    if re.search(r"\bhow (many|much|long|old|far|large|big|tall|high|often)\b|\bwhat (percentage|number|year)\b", q):
        return "number"
    if re.search(r"\bwhen\b|\bwhat (date|time|century|decade|day|month)\b|\bwhich year\b|\bin what year\b", q):
        return "time"
    if re.search(r"\bwho(m|se)?\b", q):
        return "name"
    return None


def type_match(question: str, answer: str) -> float:
    kind = _kind(question)
    if kind is None or not answer.strip():
        return 0.5
    if kind == "number":
        return 1.0 if _has_number(answer) else 0.0
    if kind == "time":
        low = answer.lower()
        return 1.0 if _has_number(answer) or any(m in low.split() for m in _MONTHS) else 0.0
    # a name: some capitalised word, and not a bare number
    words = answer.split()
    capital = any(w[:1].isupper() for w in words)
    return 1.0 if capital and not all(_has_number(w) for w in words) else 0.0


def grounding_features(context: str, question: str, answer: str, abstained: bool = False) -> dict[str, float]:
    """The six features of one answer; an abstention scores 0 on the answer's features."""
    ctx_norm = f" {normalize_answer(context)} "
    ans_norm = normalize_answer(answer) if not abstained else ""
    ans_words = content_words(answer) if not abstained else []
    q_words = list(dict.fromkeys(content_words(question)))
    sentences = [s for s in _SENTENCE.split(context) if s.strip()] or [context]
    q_pool = set(q_words)
    best = 0.0
    evidence = 0.0
    for s in sentences:
        words = set(content_words(s))
        overlap = _share(q_words, words)
        best = max(best, overlap)
        if ans_norm and f" {ans_norm} " in f" {normalize_answer(s)} ":
            evidence = max(evidence, overlap)
    return {
        "in_context": 1.0 if ans_norm and f" {ans_norm} " in ctx_norm else 0.0,
        "answer_support": _share(ans_words, set(content_words(context))),
        "question_overlap": best,
        "evidence_overlap": evidence,
        "echo": _share(ans_words, q_pool),
        "type_match": type_match(question, answer) if not abstained else 0.5,
    }
