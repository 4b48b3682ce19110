"""The free features of one answer, computed by hand."""

from __future__ import annotations

import math

import pytest

from automix_local.signals import MISSING_LOGPROB, TOKEN_FEATURES, answer_features


def test_token_quantiles_position_and_spread_by_hand():
    lps = [-0.1, -2.0, -0.3, -0.5, -0.05]
    f = answer_features(
        lps, {"unanswerable": math.log(0.2)}, False, [0.5, 3.0, 1.0, 1.5, 0.2], [4.0, 0.1, 2.0, 1.0, 5.0]
    )
    assert f["mean_logprob"] == pytest.approx(-0.59) and f["min_logprob"] == -2.0
    assert f["p_abstain"] == pytest.approx(0.2) and f["length"] == 5
    assert f["median_logprob"] == pytest.approx(-0.3)
    assert f["q25_logprob"] == pytest.approx(-0.5)  # numpy's linear quantile: index 1 of the sorted five
    assert f["q10_logprob"] == pytest.approx(-2.0 + 0.4 * 1.5)
    assert f["last_logprob"] == -0.05 and f["min_position"] == 0.25  # the 2nd of 5 tokens
    assert f["mean_entropy"] == pytest.approx(1.24) and f["max_entropy"] == 3.0 and f["min_margin"] == 0.1
    assert set(TOKEN_FEATURES) <= set(f)


def test_without_the_distribution_there_are_no_spread_features():
    """A remote API gives a few top log-probabilities, not the distribution: no entropy is made up."""
    f = answer_features([-0.2, -0.4], {}, False)
    assert "mean_entropy" not in f and "min_margin" not in f and f["q10_logprob"] <= -0.2


def test_an_empty_answer_reads_as_unsure():
    f = answer_features([], {}, False, [], [])
    assert f["mean_logprob"] == MISSING_LOGPROB and f["min_margin"] == 0.0
    assert f["max_entropy"] == -MISSING_LOGPROB
