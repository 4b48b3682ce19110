"""This session's totals in the trace pane: what the questions cost against always asking the last tier."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field

from ..cascade import Trace
from ..config import TierConfig


@dataclass
class Session:
    """This session's totals, against always asking the last tier."""

    questions: int = 0
    cost: float = 0.0
    seconds: float = 0.0
    large_cost: float = 0.0
    large_seconds: list[float] = field(default_factory=list)

    def add(self, trace: Trace, prompt_tokens: int, large: TierConfig) -> str:
        """Count one answered question; the totals in words. ``prompt_tokens``: the first tier's prompt, for
        what ``large`` would have cost when it was not asked."""
        self.questions += 1
        self.cost += trace.cost
        self.seconds += trace.seconds
        # what always-large would have cost: its own call when it answered, else one call over this prompt with
        # as many answer tokens as the answer shown (TierConfig.call_cost: per call, per 1k and per 1M tokens)
        asked = next((st for st in trace.steps if st.tier == large.name), None)
        if asked is not None:
            self.large_cost += large.call_cost(asked.tokens_in, asked.tokens_out)
        else:
            self.large_cost += large.call_cost(prompt_tokens, trace.steps[-1].tokens_out if trace.steps else 0)
        self.large_seconds += [st.answer_seconds for st in trace.steps if st.tier == large.name]
        return self.words(large.name)

    def words(self, large: str) -> str:
        saved_cost = self.large_cost - self.cost
        lines = [
            f"Session: {self.questions} question(s), cost {self.cost:.2f} vs {self.large_cost:.2f} always-{large}",
            f"  → saved {saved_cost:+.2f} cost units ({saved_cost / self.large_cost:+.0%})" if self.large_cost else "",
        ]
        if self.large_seconds:
            est = statistics.fmean(self.large_seconds) * self.questions
            lines.append(f"  time {self.seconds:.1f}s vs ~{est:.1f}s always-{large} → saved {est - self.seconds:+.1f}s")
        else:
            lines.append(f"  time {self.seconds:.1f}s (time saved is measured once {large} has answered)")
        return "\n".join(x for x in lines if x)
