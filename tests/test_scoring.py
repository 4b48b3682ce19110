"""Answer scoring: hand-checked SQuAD v2.0 F1/EM cases, abstentions, choice mapping and real data items."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from automix_local import prompts
from automix_local.scoring import (
    exact_match,
    is_abstention,
    map_to_choice,
    normalize_answer,
    score_choice,
    score_free_form,
    score_item,
    token_f1,
    trust_item,
    trust_value,
)

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"  # ../shared/data beside the repository


def _first_item(name: str) -> dict:
    path = DATA / name
    if not path.is_file():
        pytest.skip(f"{path} not present (it lives outside the repository)")
    with path.open(encoding="utf-8") as f:
        return json.loads(f.readline())


# --- normalisation ----------------------------------------------------------------------------------------------


def test_normalize_answer():
    assert normalize_answer("The Eiffel Tower!") == "eiffel tower"
    assert normalize_answer("  An   apple, a pear ") == "apple pear"
    assert normalize_answer("theatre") == "theatre"  # articles only as whole words
    assert normalize_answer("U.S.A.") == "usa"
    assert normalize_answer("the") == ""


# --- exact match / F1 -------------------------------------------------------------------------------------------


def test_exact_match_ignores_articles_case_and_punctuation():
    assert exact_match("The Eiffel Tower!", "eiffel tower") == 1.0
    assert exact_match("Eiffel Tower", "Tower Eiffel") == 0.0
    assert token_f1("The Eiffel Tower!", "eiffel tower") == pytest.approx(1.0)


def test_f1_partial_overlap():
    # pred tokens: norman conquest of england (4); gold: norman conquest (2); overlap 2 -> P=1/2, R=1
    assert token_f1("the Norman conquest of England", "Norman conquest") == pytest.approx(2 / 3)
    assert exact_match("the Norman conquest of England", "Norman conquest") == 0.0
    # symmetric roles: P=1, R=1/2
    assert token_f1("Norman conquest", "the Norman conquest of England") == pytest.approx(2 / 3)


def test_f1_repeated_tokens_counter_overlap():
    # pred: red red blue (3); gold: red blue (2); overlap min counts = red 1 + blue 1 = 2 -> P=2/3, R=1, F1=0.8
    assert token_f1("red red blue", "red blue") == pytest.approx(0.8)
    # gold repeats: pred red (1); gold red red (2); overlap 1 -> P=1, R=1/2, F1=2/3
    assert token_f1("red", "red red") == pytest.approx(2 / 3)


def test_f1_no_overlap_is_zero():
    assert token_f1("Paris", "London") == 0.0


def test_f1_empty_cases():
    assert token_f1("", "France") == 0.0
    assert token_f1("France", "") == 0.0
    assert exact_match("", "France") == 0.0
    # both empty after normalisation
    assert token_f1("the", "a") == 1.0
    assert exact_match("the", "a") == 1.0
    assert token_f1("!!", "") == 1.0


# --- abstentions and free-form ----------------------------------------------------------------------------------


def test_is_abstention_is_reused():
    assert is_abstention is prompts.is_abstention
    assert is_abstention("unanswerable")
    assert is_abstention("Unanswerable.")
    assert not is_abstention("France")


def test_score_free_form_max_over_golds():
    golds = ["Denmark, Iceland and Norway", "Norway", "Scandinavia"]
    f1, em = score_free_form("Norway", golds, unanswerable=False)
    assert (f1, em) == pytest.approx((1.0, 1.0))
    # "iceland and norway" (3) vs gold 1 "denmark iceland and norway" (4): overlap 3 -> P=1, R=3/4, F1=6/7
    f1, em = score_free_form("Iceland and Norway", golds, unanswerable=False)
    assert f1 == pytest.approx(6 / 7)
    assert em == 0.0


def test_score_free_form_f1_and_em_maximised_independently():
    # F1 best from gold 1 (P=1/2, R=1 -> 2/3), EM from nothing
    f1, em = score_free_form("Norman conquest of England", ["Norman conquest", "Hastings"], unanswerable=False)
    assert f1 == pytest.approx(2 / 3)
    assert em == 0.0


def test_score_free_form_unanswerable():
    assert score_free_form("unanswerable", [], unanswerable=True) == (1.0, 1.0)
    assert score_free_form("France", [], unanswerable=True) == (0.0, 0.0)
    # empty gold list counts as unanswerable even without the flag
    assert score_free_form("unanswerable", [], unanswerable=False) == (1.0, 1.0)
    assert score_free_form("France", [], unanswerable=False) == (0.0, 0.0)


def test_score_free_form_abstention_on_answerable_item():
    assert score_free_form("unanswerable", ["France"], unanswerable=False) == (0.0, 0.0)
    assert score_free_form("Unknown.", ["France"], unanswerable=False) == (0.0, 0.0)


# --- choices ----------------------------------------------------------------------------------------------------


def test_map_to_choice_exact_normalised_match():
    choices = ["The red car", "a blue car", "green"]
    assert map_to_choice("red car.", choices) == 0
    assert map_to_choice("Blue car", choices) == 1


def test_map_to_choice_yes_no():
    yn = ["no", "yes"]
    assert map_to_choice("Yes, it is.", yn) == 1
    assert map_to_choice("No. It does not.", yn) == 0
    assert map_to_choice("YES", ["Yes", "No"]) == 0
    assert map_to_choice("True", yn) == 1
    assert map_to_choice("false, because ...", yn) == 0
    # first word decides, not a later one
    assert map_to_choice("No, the answer is not yes", yn) == 0


def test_map_to_choice_containment():
    choices = ["Paris", "London", "New York"]
    assert map_to_choice("I think it is Paris.", choices) == 0
    assert map_to_choice("The answer: new york city", choices) == 2
    # whole tokens only: "parisian" does not contain the token "paris"
    assert map_to_choice("a parisian view", choices) is None
    # several contained -> the longest wins
    assert map_to_choice("the new york office", ["York", "New York"]) == 1
    # equally long, different options -> ambiguous
    assert map_to_choice("Paris or London", choices) is None


def test_map_to_choice_unmappable():
    assert map_to_choice("Berlin", ["Paris", "London"]) is None
    assert map_to_choice("", ["no", "yes"]) is None
    assert map_to_choice("unanswerable", ["no", "yes"]) is None


def test_score_choice():
    assert score_choice("Yes, it is.", ["no", "yes"], 1) == (1.0, 1.0)
    assert score_choice("Yes, it is.", ["no", "yes"], 0) == (0.0, 0.0)
    assert score_choice("Berlin", ["Paris", "London"], 0) == (0.0, 0.0)


def test_score_item_dispatch():
    choice_item = {"answers": ["yes"], "unanswerable": False, "choices": ["no", "yes"], "answer_index": 1}
    assert score_item("true", choice_item) == (1.0, 1.0)
    free_item = {"answers": ["France"], "unanswerable": False, "choices": None, "answer_index": None}
    assert score_item("in France", free_item) == pytest.approx((2 / 3, 0.0))
    # empty choices or missing answer_index fall back to free form
    assert score_item("France", {"answers": ["France"], "choices": [], "answer_index": None}) == (1.0, 1.0)
    assert score_item("unanswerable", {"answers": [], "unanswerable": True, "choices": None}) == (1.0, 1.0)
    assert score_item("France", {"answers": None, "unanswerable": True}) == (0.0, 0.0)


# --- the trust score: +1 right, 0 abstained, -1 wrong ----------------------------------------------------------


def test_trust_value_rules():
    assert trust_value(1.0, abstained=False, unanswerable=False) == 1
    assert trust_value(0.5, abstained=False, unanswerable=False) == 1  # right from F1 0.5
    assert trust_value(0.49, abstained=False, unanswerable=False) == -1
    assert trust_value(0.0, abstained=True, unanswerable=False) == 0  # abstaining where there is an answer
    assert trust_value(1.0, abstained=True, unanswerable=True) == 1  # abstaining on an unanswerable question is right
    assert trust_value(0.0, abstained=False, unanswerable=True) == -1  # answering it is wrong


def test_trust_item_reads_the_answer_text():
    unanswerable = {"answers": [], "unanswerable": True, "choices": None, "answer_index": None}
    assert trust_item("unanswerable", unanswerable) == 1
    assert trust_item("Unknown.", unanswerable) == 1
    assert trust_item("Oxygen", unanswerable) == -1
    free = {"answers": ["the Eiffel Tower"], "unanswerable": False}
    assert trust_item("Eiffel Tower", free) == 1
    assert trust_item("a tower in Paris", free) == -1  # F1 1/3
    assert trust_item("unanswerable", free) == 0
    choice = {"answers": ["yes"], "choices": ["no", "yes"], "answer_index": 1}
    assert trust_item("Yes, it is.", choice) == 1
    assert trust_item("no", choice) == -1
    assert trust_item("unanswerable", choice) == 0


# --- real items -------------------------------------------------------------------------------------------------


def test_real_boolq_item():
    item = _first_item("boolq_dev.jsonl")
    choices, idx = item["choices"], item["answer_index"]
    right = choices[idx]
    wrong = choices[1 - idx]
    assert score_item(f"{right.capitalize()}, according to the passage.", item) == (1.0, 1.0)
    assert score_item(wrong, item) == (0.0, 0.0)


def test_real_squad_item():
    item = _first_item("squad_v2_dev_public.jsonl")
    assert item["answers"]
    assert not item["unanswerable"]
    gold = item["answers"][0]
    assert score_item(gold, item) == (1.0, 1.0)
    assert score_item("unanswerable", item) == (0.0, 0.0)
    assert (trust_item(gold, item), trust_item("unanswerable", item)) == (1, 0)
