"""What a local tier reads of a whole next-token distribution, estimated from an endpoint's top k.

An OpenAI-compatible endpoint (vLLM, llama.cpp's server, llama-cpp-python's server) returns, for each
generated token, its log-probability and those of the ``k`` most likely tokens at that position
(``top_logprobs``; OpenAI and vLLM allow at most 20 by default). The routers' signals were fitted on a local
tier, which sees the whole vocabulary. From the top k:

* the token's own log-probability and the margin of the two most likely tokens are exact;
* the entropy is estimated: the top k's own part, plus the probability they leave, ``r``, counted at
  :data:`TAIL_GAP` nats below the k-th token's log-probability. Measured against the whole distribution at
  k = 20 (tokens of SQuAD 2.0 answers in the shared layout; the constant was chosen on these tokens): mean error
  −0.00 nats a token on Qwen2.5-Coder-0.5B (107 tokens, largest 0.17) and +0.04 on SmolLM2-135M (453 tokens,
  largest 0.43). Without the gap (the remaining mass at the k-th token's log-probability, a lower bound) it was
  0.13 and 0.27 low on average, up to 1.6 and 1.8;
* a watched string (the abstention word at the first position, a verdict word) whose first token is not among
  the top k gets :func:`unseen_floor`: ``r`` spread evenly over :data:`NOMINAL_VOCABULARY` tokens, never above the
  k-th token's log-probability. Measured at k = 20, the watched words' first tokens were never among the top k
  after "Answer:"; their median log-probability was −15.5 (Qwen2.5-Coder-0.5B) and −14.4 (SmolLM2-135M), and the
  floor is about −14.5 there. Counting them at the k-th token's log-probability, the only bound the top k give,
  would put P(abstain) hundreds of standard deviations above anything the shipped router was fitted on.

A watched string is matched, as the local tier reads it (the first token of the string tokenized alone), against
the top k's token strings: the longest token that the string starts with, exactly as written. A leading-space
variant (" un" for "unanswerable") is not counted: the byte-level BPE tokenizers of Qwen2.5, Llama 3 and SmolLM2
split the word alone without one, so the local tier never reads it either (a SentencePiece model's local tier
does, "▁un": its signals differ here, as they would need their own calibration anyway). A token string's "▁" or
"Ġ" word marker is read as a space.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

TAIL_GAP = 3.0  # nats: the probability outside the top k counted this far below the k-th token's log-probability
NOMINAL_VOCABULARY = 100_000  # tokens the leftover probability is spread over for a token not in the top k
_MARKERS = ("\u2581", "\u0120")  # SentencePiece's "▁" and byte-level BPE's "Ġ": a space before a word


@dataclass(frozen=True)
class TopToken:
    """One generated token as an endpoint reports it: its text, its log-probability, and the top k at its position
    (most likely first; the generated token among them when it is)."""

    text: str
    logprob: float
    top: tuple[tuple[str, float], ...]


def token_text(raw: str) -> str:
    """A token string as text: a leading word marker ("▁", "Ġ") read as a space."""
    for marker in _MARKERS:
        if raw.startswith(marker):
            return " " + raw[len(marker) :]
    return raw


def tail_mass(top: Sequence[tuple[str, float]]) -> float:
    """The probability the top k leave for every other token (0 when they hold it all)."""
    return max(0.0, 1.0 - sum(math.exp(lp) for _, lp in top))


def spread(top: Sequence[tuple[str, float]]) -> tuple[float, float]:
    """(entropy in nats, margin of the two most likely tokens) estimated from the top k (module docstring)."""
    lps = sorted((lp for _, lp in top), reverse=True)
    if not lps:
        return 0.0, 0.0
    entropy = -sum(math.exp(lp) * lp for lp in lps) + tail_mass(top) * (TAIL_GAP - lps[-1])
    margin = lps[0] - lps[1] if len(lps) > 1 else 0.0
    return max(0.0, entropy), margin


def unseen_floor(top: Sequence[tuple[str, float]]) -> float:
    """The log-probability given to a token that is not among the top k (module docstring)."""
    kth = min((lp for _, lp in top), default=0.0)
    return min(kth, math.log(max(tail_mass(top), 1e-12)) - math.log(NOMINAL_VOCABULARY))


def first_tokens(top: Sequence[tuple[str, float]], strings: Sequence[str]) -> dict[str, tuple[str | None, float]]:
    """Each string's first token at this position and its log-probability: the longest top-k token the string
    starts with, exactly as written; (None, :func:`unseen_floor`) when none does."""
    floor = unseen_floor(top)
    found: dict[str, tuple[str | None, float]] = {}
    for s in strings:
        best: tuple[str | None, float] = (None, floor)
        for raw, lp in top:
            tok = token_text(raw)
            if tok and s.startswith(tok) and (best[0] is None or len(tok) > len(best[0])):
                best = (tok, lp)
        found[s] = best
    return found


def first_mass(found: Mapping[str, tuple[str | None, float]]) -> float:
    """P(the next token starts one of the strings): each distinct first token counted once, as the local tier
    counts them (two watched strings may share one); a string's unseen first token counted at its floor."""
    heads = {tok if tok is not None else f"\0{s}": lp for s, (tok, lp) in found.items()}
    return sum(math.exp(lp) for lp in heads.values())
