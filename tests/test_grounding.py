"""Grounding features on hand-made cases (no model: these are read from the text)."""

from __future__ import annotations

import pytest

from automix_local.grounding import GROUNDING_FEATURES, grounding_features, type_match

CONTEXT = (
    "The Normans were descended from Norse raiders. Their leader Rollo swore fealty to King Charles III. "
    "The duchy of Normandy was founded in 911.\n\nIn 1066 Duke William conquered England."
)


def test_a_span_of_the_evidence_sentence():
    f = grounding_features(CONTEXT, "Who was the leader of the Norse raiders?", "Rollo")
    assert set(f) == set(GROUNDING_FEATURES)
    assert f["in_context"] == 1.0 and f["answer_support"] == 1.0 and f["echo"] == 0.0
    assert f["type_match"] == 1.0
    # the sentence holding "Rollo" shares "leader" with the question; the best sentence shares "norse raiders"
    assert f["question_overlap"] == pytest.approx(2 / 3) and f["evidence_overlap"] == pytest.approx(1 / 3)


def test_an_answer_not_in_the_context_that_echoes_the_question():
    f = grounding_features(CONTEXT, "When was the duchy of Normandy founded?", "the duchy of Normandy")
    assert f["in_context"] == 1.0 and f["echo"] == 1.0 and f["type_match"] == 0.0
    g = grounding_features(CONTEXT, "When was the duchy of Normandy founded?", "in 912")
    assert g["in_context"] == 0.0 and g["answer_support"] == 0.0 and g["type_match"] == 1.0


def test_an_unrelated_question_has_little_overlap_and_an_abstention_no_answer_features():
    f = grounding_features(CONTEXT, "What is the boiling point of mercury?", "unanswerable", abstained=True)
    assert f["question_overlap"] == 0.0 and f["in_context"] == 0.0 and f["answer_support"] == 0.0
    assert f["type_match"] == 0.5


@pytest.mark.parametrize(
    ("question", "answer", "expected"),
    [
        ("How many sons did he have?", "seven", 1.0),
        ("How many sons did he have?", "Assipattle", 0.0),
        ("In what year did it open?", "1998", 1.0),
        ("When did the war end?", "in May", 1.0),
        ("Who wrote the letter?", "his brother Tom", 1.0),
        ("Who wrote the letter?", "1998", 0.0),
        ("Why did he leave?", "to write novels", 0.5),
    ],
)
def test_answer_type_against_the_question_word(question: str, answer: str, expected: float):
    assert type_match(question, answer) == expected
