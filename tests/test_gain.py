"""The share of the oracle's gain at a fixed escalation rate, on hand-checked cases."""

from __future__ import annotations

import math

import numpy as np
import pytest

from automix_local.gain import escalated_quality, heldout_shares, oracle_quality, oracle_share, random_quality

SMALL = np.array([1.0, 0.0, 0.0, 1.0, 0.0, 0.0, 1.0, 0.0])
LARGE = np.array([1.0, 1.0, 0.0, 0.0, 1.0, 1.0, 1.0, 0.0])  # gains: 0, 1, 0, -1, 1, 1, 0, 0


def test_references_by_hand():
    # 25 % of 8 = 2 items escalated: the oracle takes two of the +1 gains
    assert oracle_quality(SMALL, LARGE, 0.25) == pytest.approx((3 + 2) / 8)
    assert random_quality(SMALL, LARGE, 0.25) == pytest.approx(3 / 8 + 0.25 * 2 / 8)
    # a signal least confident in items 1 and 3: +1 and -1
    conf = np.array([0.9, 0.1, 0.8, 0.2, 0.7, 0.6, 0.9, 0.5])
    assert escalated_quality(SMALL, LARGE, conf, 0.25) == pytest.approx(3 / 8)
    share = oracle_share(SMALL, LARGE, conf, 0.25)
    assert share == pytest.approx((3 / 8 - 3.5 / 8) / (5 / 8 - 3.5 / 8))  # worse than a coin: -1/3


def test_perfect_constant_and_reversed_signals():
    gain = LARGE - SMALL
    for rate in (0.25, 0.5):
        assert oracle_share(SMALL, LARGE, -gain, rate) == pytest.approx(1.0)
        # every item tied: the cut splits the group evenly, which is random mixing exactly
        assert oracle_share(SMALL, LARGE, np.zeros(8), rate) == pytest.approx(0.0)
        assert oracle_share(SMALL, LARGE, gain, rate) < 0


def test_a_tied_group_at_the_cut_counts_in_part():
    small = np.array([0.0, 0.0, 0.0, 0.0])
    large = np.array([1.0, 0.0, 1.0, 1.0])
    conf = np.array([0.1, 0.5, 0.5, 0.9])  # item 0 first, then items 1 and 2 tied
    # 50 %: item 0 (+1) and half of the tie {1: 0, 2: +1} → 1.5 / 4
    assert escalated_quality(small, large, conf, 0.5) == pytest.approx(1.5 / 4)


def test_no_gain_to_capture_is_undefined():
    same = np.array([1.0, 0.0, 1.0])
    assert math.isnan(oracle_share(same, same, np.array([0.1, 0.2, 0.3]), 0.5))


def test_heldout_shares_fit_on_train_and_score_on_test():
    rng = np.random.default_rng(0)
    n = 200
    small = rng.integers(0, 2, n).astype(float)
    large = np.clip(small + rng.integers(0, 2, n), 0, 1).astype(float)
    noise = rng.normal(0, 0.3, n)
    hint = -(large - small) + noise  # informative but noisy
    perm = rng.permutation(n)
    splits = [(perm[:100], perm[100:]), (perm[100:], perm[:100])]
    good = heldout_shares(small, large, lambda tr, te: hint[te], splits, bootstrap=200)
    coin = heldout_shares(small, large, lambda tr, te: rng.random(len(te)), splits, bootstrap=200)
    for rate in ("0.25", "0.5"):
        assert 0.5 < good[rate]["share"] <= 1.0 and good[rate]["lo"] <= good[rate]["share"] <= good[rate]["hi"]
        assert abs(coin[rate]["share"]) < good[rate]["share"]
