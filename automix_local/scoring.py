"""Answer scoring for QA evaluation: SQuAD v2.0 token F1 / exact match, abstentions, choice accuracy, and the trust
score (+1 right, 0 abstained, −1 wrong)."""

from __future__ import annotations

import collections
import re
import string
from typing import Any

from automix_local.prompts import is_abstention

__all__ = [
    "RIGHT_F1",
    "exact_match",
    "is_abstention",
    "map_to_choice",
    "normalize_answer",
    "score_choice",
    "score_free_form",
    "score_item",
    "token_f1",
    "trust_item",
    "trust_value",
]

_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)
_PUNCT = frozenset(string.punctuation)
_BOOL_WORDS = {"yes": "yes", "no": "no", "true": "yes", "false": "no"}


def normalize_answer(s: str) -> str:
    """Lower-case, drop punctuation and articles, collapse whitespace (official SQuAD normalisation)."""
    text = s.lower()
    text = "".join(ch for ch in text if ch not in _PUNCT)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def _tokens(s: str) -> list[str]:
    return normalize_answer(s).split() if s else []


def exact_match(prediction: str, gold: str) -> float:
    """1.0 when the normalised strings are equal, else 0.0 (SQuAD v2.0 `compute_exact`)."""
    return float(normalize_answer(gold) == normalize_answer(prediction))


def token_f1(prediction: str, gold: str) -> float:
    """Bag-of-tokens F1 over normalised tokens (SQuAD v2.0 `compute_f1`)."""
    gold_toks = _tokens(gold)
    pred_toks = _tokens(prediction)
    if not gold_toks or not pred_toks:
        # If either is no-answer, F1 is 1 if they agree, 0 otherwise.
        return float(gold_toks == pred_toks)
    common = collections.Counter(gold_toks) & collections.Counter(pred_toks)
    num_same = sum(common.values())
    if num_same == 0:
        return 0.0
    precision = num_same / len(pred_toks)
    recall = num_same / len(gold_toks)
    return (2 * precision * recall) / (precision + recall)


def score_free_form(prediction: str, golds: list[str], unanswerable: bool) -> tuple[float, float]:
    """(f1, em): max over golds; unanswerable items score 1 only for an abstention, answerable ones 0 for it."""
    abstained = is_abstention(prediction)
    if unanswerable or not golds:
        return (1.0, 1.0) if abstained else (0.0, 0.0)
    if abstained:
        return 0.0, 0.0
    f1 = max(token_f1(prediction, g) for g in golds)
    em = max(exact_match(prediction, g) for g in golds)
    return f1, em


def _contains(haystack: list[str], needle: list[str]) -> bool:
    n = len(needle)
    return any(haystack[i : i + n] == needle for i in range(len(haystack) - n + 1))


def map_to_choice(prediction: str, choices: list[str]) -> int | None:
    """Index of the option a free-text answer names, or None when it names none (or is ambiguous)."""
    norm_pred = normalize_answer(prediction)
    norm_choices = [normalize_answer(c) for c in choices]
    for i, c in enumerate(norm_choices):
        if c and c == norm_pred:
            return i
    pred_toks = norm_pred.split()
    if sorted(norm_choices) == ["no", "yes"] and pred_toks:
        word = _BOOL_WORDS.get(pred_toks[0])
        if word is not None:
            return norm_choices.index(word)
    contained: dict[str, int] = {}
    for i, c in enumerate(norm_choices):
        if c and c not in contained and _contains(pred_toks, c.split()):
            contained[c] = i
    if not contained:
        return None
    longest = max(len(c.split()) for c in contained)
    best = [i for c, i in contained.items() if len(c.split()) == longest]
    return best[0] if len(best) == 1 else None


def score_choice(prediction: str, choices: list[str], answer_index: int) -> tuple[float, float]:
    """(acc, acc): 1.0 when the prediction maps to the right option, else 0.0."""
    acc = 1.0 if map_to_choice(prediction, choices) == answer_index else 0.0
    return acc, acc


def score_item(prediction: str, item: dict[str, Any]) -> tuple[float, float]:
    """Score a prediction against one data item (shared/data schema): choice accuracy or free-form (f1, em)."""
    choices = item.get("choices")
    answer_index = item.get("answer_index")
    if isinstance(choices, list) and choices and answer_index is not None:
        return score_choice(prediction, choices, int(answer_index))
    return score_free_form(prediction, item.get("answers") or [], bool(item.get("unanswerable")))


RIGHT_F1 = 0.5  # an answer is right (trust score, AUROC labels) when its F1 reaches this; a choice scores 1 or 0


def trust_value(f1: float, abstained: bool, unanswerable: bool) -> int:
    """The trust score of one answer, the CRAG benchmark's scheme: +1 right, 0 abstained, −1 wrong.

    Right: F1 ≥ :data:`RIGHT_F1` (a choice item's score is 1 for the right option), or an abstention on an
    unanswerable question; answering an unanswerable question is wrong; abstaining on an answerable one is 0.
    ``abstained`` is what :func:`is_abstention` says of the answer (``eval run`` records it as ``abstained``).
    """
    if abstained:
        return 1 if unanswerable else 0
    if unanswerable:
        return -1
    return 1 if f1 >= RIGHT_F1 else -1


def trust_item(prediction: str, item: dict[str, Any]) -> int:
    """The trust score of a prediction on one data item (shared/data schema); see :func:`trust_value`."""
    f1, _ = score_item(prediction, item)
    choices = item.get("choices")
    if isinstance(choices, list) and choices and item.get("answer_index") is not None:
        unanswerable = False  # scored as a choice (score_item)
    else:
        unanswerable = bool(item.get("unanswerable")) or not item.get("answers")  # as score_free_form reads it
    return trust_value(f1, is_abstention(prediction), unanswerable)
