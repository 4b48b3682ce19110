"""Quality-per-cost metrics from the AutoMix paper: incremental benefit per cost (IBC) and ΔIBC."""

from __future__ import annotations

import math


def ibc(perf: float, cost: float, perf_small: float, cost_small: float) -> float:
    """IBC_M = (P_M - P_SLM) / (C_M - C_SLM); nan when the method costs no more than the small model."""
    if cost - cost_small <= 1e-12:
        return math.nan
    return (perf - perf_small) / (cost - cost_small)


def delta_ibc(
    perf: float, cost: float, perf_small: float, cost_small: float, perf_large: float, cost_large: float
) -> float:
    """ΔIBC in percent: (IBC_M - IBC_BASE) / IBC_BASE × 100, IBC_BASE the small→large straight line."""
    base = ibc(perf_large, cost_large, perf_small, cost_small)
    m = ibc(perf, cost, perf_small, cost_small)
    if math.isnan(base) or math.isnan(m) or abs(base) < 1e-12:
        return math.nan
    return (m - base) / abs(base) * 100.0
