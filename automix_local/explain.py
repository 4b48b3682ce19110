"""Plain words for the cascade's decisions: what a user reads under an answer.

The routers' ``reason`` strings are their internals (belief, E[P], thresholds, costs) and stay in the
trace pane; ``Decision.why`` is a short code (see ``routers.Decision``) that ``plain_reason`` turns into a
phrase such as "kept: likely right (46 %)". Pure functions, no UI.
"""

from __future__ import annotations

import math

LIKELY = 0.5  # "likely right" / "looked unreliable" are said only on this side of 50 %


def split_why(why: str | None) -> tuple[str, float | None]:
    """``"above_threshold:0.4"`` → ``("above_threshold", 0.4)``; ``"unsure"`` → ``("unsure", None)``."""
    code, _, param = (why or "").partition(":")
    try:
        value = float(param) if param else None
    except ValueError:
        value = None
    return code.strip(), value if value is None or math.isfinite(value) else None


def pct(x: float, decimals: int = 0) -> str:
    """0.456 → "46 %"."""
    return f"{100 * x:.{decimals}f} %"


def _compare(a: float, op: str, b: float) -> str:
    """ "46 % ≥ 40 %", with a decimal more where rounding would make the two look equal."""
    d = next((d for d in (0, 1, 2) if pct(a, d) != pct(b, d)), 0)
    return f"{pct(a, d)} {op} {pct(b, d)}"


def chance_words(p: float) -> str:
    """A calibrated P(right) in plain words (the trust router's percentages are checked by `eval report`'s
    reliability table)."""
    if p >= 0.7:
        return "likely right"
    if p >= 0.5:
        return "probably right"
    if p >= 0.3:
        return "may be wrong"
    return "likely wrong"


def routed_to(names: list[str], tier: str, action: str, target: int | None) -> str | None:
    """The name of the tier a decision routes to (None for a keep, or an unknown tier)."""
    if action != "route" or tier not in names:
        return None
    index = target if target is not None else names.index(tier) + 1
    return names[index] if 0 <= index < len(names) else None


def plain_reason(
    decision: str | None,
    why: str | None,
    confidence: float | None,
    tier: str,
    to_tier: str | None = None,
    *,
    pending: bool = False,
) -> str:
    """The phrase after the tier's name: "kept: likely right (46 %)", "checked with the larger model (large):
    the small answer looked unreliable (21 %)", "final answer".

    ``decision`` is a step's decision ("keep", "route", or None for a final tier nobody checked); ``why`` the
    router's code (None or "" for traces saved before codes existed: the phrase then rests on the decision and
    the confidence alone); ``to_tier`` the tier routed to, when known; ``pending`` words a route as happening
    now ("checking with …") rather than done.
    """
    code, threshold = split_why(why)
    conf = confidence if confidence is not None and math.isfinite(confidence) else None
    shown = f" ({pct(conf)})" if conf is not None else ""
    high = conf is not None and conf >= LIKELY
    low = conf is not None and conf < LIKELY

    if decision is None:
        return "final answer"

    if decision == "abstain":
        if code == "no_tier":
            return f"not sure: no model is likely to know this{shown}"
        return f"not sure: the answer is likely wrong{shown}"

    if decision == "keep":
        if code == "likely_right" and conf is not None:
            return f"kept: {chance_words(conf)} ({pct(conf)})"
        if code == "confident":
            if high:
                return f"kept: likely right{shown}"
            return f"kept: probably as good as the larger model's answer{shown}"
        if code == "above_threshold" and conf is not None and threshold is not None:
            return f"kept: above the threshold you set ({_compare(conf, '≥', threshold)})"
        if code == "no_better":
            return f"kept: the larger model is unlikely to do better here{shown}"
        if code == "not_worth":
            return f"kept: asking the larger model is not worth its cost here{shown}"
        if code == "random":
            return f"kept: chosen at random{shown}"
        if code == "fixed":
            return f"kept: set to always keep the first answer{shown}"
        # no code (an older trace) or one this version does not know: say only what is sure
        if high:
            return f"kept: likely right{shown}"
        return f"kept: confidence {pct(conf)}" if conf is not None else "kept"

    # a route
    head = ("checking" if pending else "checked") + " with the larger model" + (f" ({to_tier})" if to_tier else "")
    if code == "below_threshold" and conf is not None and threshold is not None:
        return f"{head}: below the threshold you set ({_compare(conf, '<', threshold)})"
    if code == "likely_better":
        return f"{head}: it is likely to do better here{shown}"
    if code == "unchecked" or (code == "unsure" and conf is None):
        return f"{head}: the answer could not be checked"
    if code == "random":
        return f"{head}: chosen at random{shown}"
    if code == "fixed":
        return f"{head}: set to always use the largest model"
    if low:  # "unsure", or no/unknown code with a low confidence
        return f"{head}: the {tier} answer looked unreliable{shown}"
    return f"{head}: confidence {pct(conf)}" if conf is not None else head


NOT_SURE_TEXT = "The document does not seem to say."  # the cascade held its answer back (Trace.best_guess)


def shown_answer(answer: str) -> str:
    """An answer as the user reads it: an abstention says that the document does not say."""
    from .prompts import is_abstention

    return "The document does not say." if is_abstention(answer) else answer
