"""Widgets of the terminal app: an answer with its badge, the badges' words, the trace pane (a whole turn:
``turn.py``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import DataTable, Markdown, Static
from textual.widgets.markdown import MarkdownStream

from ..explain import pct, plain_reason

if TYPE_CHECKING:
    from ..routers import Decision


class Badge(Static):
    """Which tier answered, and what the check decided."""

    DEFAULT_CSS = """
    Badge { color: $text-muted; height: auto; padding: 0 1; }
    Badge.kept { color: $success; }
    Badge.escalated { color: $warning; }
    Badge.not-sure { color: $warning; }
    Badge.checking { color: $accent; }
    Badge.cancelled, Badge.error { color: $error; }
    """

    def set(self, text: str, kind: str = "") -> None:
        self.update(text)
        self.set_classes(kind)


class AnswerBlock(Vertical):
    """One tier's answer: a badge line and the answer rendered as Markdown, streamed token by token."""

    DEFAULT_CSS = """
    AnswerBlock { height: auto; margin: 0 0 1 2; border-left: thick $primary 40%; }
    AnswerBlock.superseded { opacity: 60%; border-left: thick $warning 40%; }
    AnswerBlock Markdown { margin: 0 1; padding: 0; }
    """

    def __init__(self, tier: str, text: str = "", badge: tuple[str, str] | None = None, **kw: Any) -> None:
        super().__init__(**kw)
        self.tier = tier
        self.text = text
        self._badge = badge or (f"{tier} · answering…", "checking")
        self._stream: MarkdownStream | None = None

    def compose(self) -> ComposeResult:
        yield Badge(self._badge[0], classes=self._badge[1], markup=False)
        yield Markdown(self.text or "…")

    @property
    def badge(self) -> Badge:
        return self.query_one(Badge)

    async def append(self, delta: str) -> None:
        """A streamed token, written through Textual's MarkdownStream: it appends to the document (no
        re-parse of the whole answer per token) and merges fragments that arrive faster than it renders."""
        if not delta:
            return
        if self._stream is None:
            markdown = self.query_one(Markdown)
            await markdown.update("")  # the "…" placeholder goes
            self._stream = Markdown.get_stream(markdown)
        self.text += delta
        await self._stream.write(delta)

    async def set_text(self, text: str) -> None:
        """The answer as finally shown (cleaned; an abstention in words), replacing what was streamed."""
        if self._stream is not None:
            await self._stream.stop()
            self._stream = None
        self.text = text
        await self.query_one(Markdown).update(text or "_(empty answer)_")


def badge_for_step(step: dict[str, Any], final: bool, final_tier: str, next_tier: str | None = None) -> tuple[str, str]:
    """Badge text and class for a finished step of a trace, in plain words ("✓ small · kept: likely right
    (46 %)"); the router's internals stay in the trace pane. ``next_tier``: the tier this step routed to, when
    the caller knows it (the next step's). Steps saved before ``why`` existed get a phrase from the decision
    and the confidence alone."""
    tier = step["tier"]
    conf = step.get("confidence")
    reason = step.get("reason") or ""
    why = step.get("why")
    decision = step.get("decision")
    if decision == "route" and tier == final_tier:  # escalation blocked or failed: this answer is the one shown
        conf_s = f" · confidence {conf:.2f}" if conf is not None and "confidence" not in reason else ""
        return f"⚠ {tier}{conf_s} · answered locally — {reason}", "kept"
    if decision == "route":
        return f"✗ {tier} · {plain_reason('route', why, conf, tier, next_tier)}", "escalated"
    if decision == "abstain":
        return f"? {tier} · {plain_reason('abstain', why, conf, tier)}", "not-sure"
    if step.get("egress_id") is not None and final:
        red = step.get("redactions") or {}
        red_s = f", {sum(red.values())} redacted" if red else ""
        return f"☁ {tier} · final answer · sent {step.get('sent')} (audit #{step['egress_id']}{red_s})", "kept"
    conf_s = f" · confidence {pct(conf)}" if conf is not None else ""
    if final and tier != final_tier:
        return f"{tier}{conf_s}", ""
    if decision == "keep":
        return f"✓ {tier} · {plain_reason('keep', why, conf, tier)}", "kept"
    if final:
        return f"✓ {tier} · final answer", "kept"
    return f"{tier}{conf_s}", ""


def step_badges(trace: dict[str, Any]) -> list[tuple[str, str]]:
    """The badge of every step of a finished trace, each naming the tier it routed to."""
    steps = trace["steps"]
    return [
        badge_for_step(step, i == len(steps) - 1, trace["tier"], steps[i + 1]["tier"] if i + 1 < len(steps) else None)
        for i, step in enumerate(steps)
    ]


def decision_badge(
    tier: str, decision: Decision, confidence: float | None = None, next_tier: str | None = None
) -> tuple[str, str]:
    """Badge text and class the moment a ``Decided`` event arrives, in plain words: ("✓ small · kept: likely
    right (46 %)", "kept") or ("✗ small · checking with the larger model (large): the small answer looked
    unreliable (21 %)", "escalated"). ``confidence`` defaults to the one the router read
    (``decision.confidence``); ``next_tier`` is the name of the tier routed to, when known."""
    conf = confidence if confidence is not None else decision.confidence
    if decision.action == "abstain":
        return f"? {tier} · {plain_reason('abstain', decision.why, conf, tier)}", "not-sure"
    if decision.action == "route":
        return f"✗ {tier} · {plain_reason('route', decision.why, conf, tier, next_tier, pending=True)}", "escalated"
    return f"✓ {tier} · {plain_reason('keep', decision.why, conf, tier)}", "kept"


class TracePane(Vertical):
    """Per tier: confidence, decision, tokens, seconds, cost; and the session's running totals."""

    DEFAULT_CSS = """
    TracePane { width: 50; border-left: solid $primary 50%; padding: 0 1; }
    TracePane DataTable { height: auto; max-height: 12; }
    TracePane .title { text-style: bold; }
    TracePane #totals { margin-top: 1; height: auto; }
    TracePane #reason { margin-top: 1; height: auto; color: $text-muted; }
    """

    def compose(self) -> ComposeResult:
        yield Static("Decision trace", classes="title")
        table: DataTable[str] = DataTable(id="trace-table", zebra_stripes=True, cursor_type="none")
        table.add_columns("tier", "conf", "decision", "tok in/out", "s", "cost")
        yield table
        yield Static("", id="reason", markup=False)
        yield Static("No questions yet.", id="totals", markup=False)

    def show_trace(self, trace: dict[str, Any]) -> None:
        table = self.query_one(DataTable)
        table.clear()
        for s in trace["steps"]:
            conf = "–" if s.get("confidence") is None else f"{s['confidence']:.2f}"
            decision = s.get("decision") or ("final" if s["tier"] == trace["tier"] else "–")
            table.add_row(
                s["tier"],
                conf,
                decision,
                f"{s['tokens_in']}/{s['tokens_out']}",
                f"{s['seconds']:.1f}",
                f"{s['cost']:.2f}",
            )
        reasons = [f"{s['tier']}: {s['reason']}" for s in trace["steps"] if s.get("reason")]
        turns, dropped = trace.get("turns", 0), trace.get("turns_dropped", 0)
        if turns or dropped:
            line = f"earlier turns in the prompt: {turns}"
            if dropped:
                line += f" ({dropped} older left out: over [cascade] history_tokens)"
            reasons.append(line)
        if trace.get("turns_note"):
            reasons.append(f"note: {trace['turns_note']}")
        self.query_one("#reason", Static).update("\n".join(reasons))

    def show_sources(self, citations: list[dict[str, Any]]) -> None:
        """The cited passages themselves, under the reasons: what the answer was read from."""
        if not citations:
            return
        lines = []
        for c in citations:
            where = (
                f", p. {c['page']}" if c.get("page") else (f", {' › '.join(c['heading'])}" if c.get("heading") else "")
            )
            text = " ".join(c["text"].split())
            lines.append(f"[{c['n']}] {c['document']}{where}: {text[:300]}{'…' if len(text) > 300 else ''}")
        current = str(self.query_one("#reason", Static).content)
        self.query_one("#reason", Static).update((current + "\n\n" if current else "") + "\n".join(lines))

    def show_totals(self, text: str) -> None:
        self.query_one("#totals", Static).update(text)
