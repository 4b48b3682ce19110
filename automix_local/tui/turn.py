"""One conversation turn: the question, and everything the ask service says about it.

A ``TurnView`` applies the service's events to itself as they arrive (``apply``): an answer block per tier,
streamed token by token, whose badge follows the check and the decision; the egress, a blocked escalation
and a failed remote tier. The final ``Answer`` (``Done``) sets the badges from the trace and adds what the
answer adds: its cited passages, or the line saying why none is cited, the cascade's notice and the
service's warnings. A reopened conversation's turns are drawn from their saved JSON (``from_saved``).
Nothing here decides anything: the decisions come from the cascade and the service.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widget import Widget
from textual.widgets import Static

from ..ask import Answer, AskEvent, Done
from ..cascade import (
    Answered,
    Blocked,
    Decided,
    EgressPending,
    EgressSent,
    RemoteFailed,
    TierLoading,
    TierStarted,
    Token,
    Verified,
    VerifyStarted,
)
from ..explain import routed_to, shown_answer
from .documents import CitationList
from .widgets import AnswerBlock, decision_badge, step_badges

if TYPE_CHECKING:
    from ..storage import Turn


class TurnView(Vertical):
    """A question and the answers the cascade gave to it. ``tiers``: the cascade's tier names, in order (a
    badge names the tier an answer is escalated to)."""

    DEFAULT_CSS = """
    TurnView { height: auto; margin: 0 0 1 0; }
    TurnView > .question { background: $boost; padding: 0 1; margin: 0 0 1 0; text-style: bold; }
    TurnView > .turn-status { color: $accent; margin: 0 0 0 2; }
    TurnView > .citations { color: $text-muted; margin: 0 0 0 2; }
    TurnView > .not-found { color: $warning; margin: 0 0 1 2; }
    TurnView > .not-sure { color: $warning; text-style: bold; margin: 1 0 0 2; }
    TurnView > .notice-line { color: $text-muted; margin: 0 0 0 2; }
    """

    def __init__(self, question: str, tiers: Sequence[str] = (), body: list[Widget] | None = None, **kw: Any) -> None:
        super().__init__(**kw)
        self.question = question
        self.tiers = list(tiers)
        self.body = body or []  # what a reopened turn shows beneath the question
        self.blocks: list[AnswerBlock] = [w for w in self.body if isinstance(w, AnswerBlock)]
        self.prompt_tokens: int | None = None  # the first answer's prompt (the session's always-large estimate)

    def compose(self) -> ComposeResult:
        yield Static(f"❯ {self.question}", classes="question", markup=False)
        yield from self.body

    # ------------------------------------------------------------------ parts
    def block(self, tier: str) -> AnswerBlock | None:
        """The answer block of ``tier`` (None: that tier has not answered)."""
        return next((b for b in reversed(self.blocks) if b.tier == tier), None)

    def set_status(self, text: str | None) -> None:
        """A line under the question before any tier answers (e.g. waiting for a model to load)."""
        for old in self.query(".turn-status"):
            old.remove()
        if text:
            self.mount(Static(f"⏳ {text}", classes="turn-status", markup=False))

    async def add_block(self, tier: str, text: str = "") -> AnswerBlock:
        block = AnswerBlock(tier, text)
        self.blocks.append(block)
        await self.mount(block)
        return block

    def line(self, text: str, classes: str) -> None:
        self.mount(Static(text, classes=classes, markup=False))

    # ------------------------------------------------------------------ live: the service's events
    async def apply(self, event: AskEvent) -> None:
        """Draw one event of the ask service."""
        last = self.blocks[-1] if self.blocks else None
        if isinstance(event, TierLoading):
            waiting = f"waiting for {event.tier} to load (first use); it answers as soon as it is ready…"
            if last is not None:
                last.badge.set(f"{last.badge.content} · {waiting}", "checking")
            else:
                self.set_status(waiting)
        elif isinstance(event, TierStarted):
            self.set_status(None)
            block = await self.add_block(event.tier)
            if event.index > 0 and len(self.blocks) > 1:
                block.badge.set(f"↑ {event.tier} · answering (escalated)…", "checking")
            block.scroll_visible()
        elif isinstance(event, Token):
            await self._block(event.tier).append(event.text)
        elif isinstance(event, Answered):
            await self._answered(event)
        elif isinstance(event, VerifyStarted):
            self._block(event.tier).badge.set(f"{event.tier} · checking ({event.strategy})…", "checking")
        elif isinstance(event, Verified):
            conf = event.verification.confidence
            self._block(event.tier).badge.set(f"{event.tier} · confidence {conf:.2f} · deciding…", "checking")
        elif isinstance(event, Decided):
            self._decided(event)
        elif isinstance(event, EgressPending):
            if event.needs_approval and last is not None:
                host = event.receipt.host
                # the tier's own block when it runs on an endpoint (it answers once sent), else the answer it replaces
                mark = "" if last.tier == event.tier else "✗ "
                last.badge.set(f"{mark}{last.tier} · waiting for your approval to send to {host}…", "checking")
        elif isinstance(event, EgressSent):
            r = event.receipt
            red = f", {sum(r.redactions.values())} redacted" if r.redactions else ""
            self._block(event.tier).badge.set(
                f"☁ {event.tier} · sent {r.size} bytes to {r.host} (audit #{event.entry_id}{red}) · answering…",
                "checking",
            )
        elif isinstance(event, Blocked):
            if last is not None:
                last.remove_class("superseded")
            self.notify(f"Not sent to {event.tier}: {event.reason}", severity="warning", timeout=8)
        elif isinstance(event, RemoteFailed):
            self._remote_failed(event)
        elif isinstance(event, Done):
            self.finish(event.answer)
        # Retrieval, Escalated, Finished: nothing to draw (the next TierStarted draws the escalated answer)

    def _block(self, tier: str) -> AnswerBlock:
        block = self.block(tier)
        assert block is not None, f"an event of tier {tier!r} before it started"
        return block

    async def _answered(self, event: Answered) -> None:
        block = self._block(event.tier)
        await block.set_text(shown_answer(event.answer))
        if self.prompt_tokens is None:
            self.prompt_tokens = event.generation.tokens_in
        block.badge.set(f"{event.tier} · answered", "")

    def _decided(self, event: Decided) -> None:
        d = event.decision
        block = self._block(event.tier)
        block.badge.set(*decision_badge(event.tier, d, next_tier=routed_to(self.tiers, event.tier, d.action, d.target)))
        if d.action == "route":
            block.add_class("superseded")

    def _remote_failed(self, event: RemoteFailed) -> None:
        failed = self.block(event.tier)
        if failed is not None:
            failed.badge.set(f"⚠ {event.tier} · failed — {event.reason}", "error")
            failed.add_class("superseded")
        kept = self.block(event.fallback_tier)
        if kept is not None:
            kept.remove_class("superseded")
        self.notify(f"{event.tier} failed: {event.reason}", severity="error", timeout=10)

    # ------------------------------------------------------------------ the end of a turn
    def finish(self, answer: Answer) -> None:
        """The final answer: every badge from the trace, then what the answer adds beneath it."""
        data = answer.to_json()
        for step, (text, kind) in zip(data["steps"], step_badges(data), strict=True):
            block = self.block(step["tier"])
            if block is not None:
                block.badge.set(text, kind)
        self.set_status(None)
        if answer.not_found and not self.blocks:  # no model was asked: the service's answer is the line
            self.line(f"⚠ {answer.text}", "not-found")
        if answer.not_sure:  # the cascade held its answer back: say so above the best guess it shows
            self._not_sure(answer.text, answer.not_sure_note)
        if answer.citations:
            self.mount(CitationList(data["citations"], answer.trace.answer, classes="citations"))
        elif answer.not_found_note:
            self.line(answer.not_found_note, "citations")
        if answer.trace.notice and answer.trace.notice != answer.text:
            self.line(f"ⓘ {answer.trace.notice}", "notice-line")
        for warning in answer.warnings:
            self.line(f"⚠ {warning}", "notice-line")

    def _not_sure(self, text: str, note: str | None) -> None:
        for block in self.blocks:
            block.add_class("superseded")  # the answers stay readable, dimmed: the best guess is among them
        self.line(f"? {text}", "not-sure")
        if note:
            self.line(note, "citations")

    def fail(self, message: str) -> None:
        self.set_status(None)
        self.line(f"⚠ {message}", "error-line")

    # ------------------------------------------------------------------ a saved turn
    @classmethod
    def from_saved(cls, turn: Turn, tiers: Sequence[str] = ()) -> TurnView:
        """A turn of a reopened conversation, drawn from what was saved (``Answer.to_json()``)."""
        body: list[Widget] = []
        trace = turn.trace
        if trace:
            for step, badge in zip(trace["steps"], step_badges(trace), strict=True):
                block = AnswerBlock(step["tier"], shown_answer(step["answer"]), badge)
                if step.get("decision") == "route":
                    block.add_class("superseded")
                body.append(block)
            if trace.get("decision") == "abstain":
                body += [Static(f"? {trace.get('answer_shown', '')}", classes="not-sure", markup=False)]
                if trace.get("best_guess"):
                    body.append(
                        Static(f"best guess, not sure: {trace['best_guess']}", classes="citations", markup=False)
                    )
            if trace.get("not_found") and not trace["steps"]:
                body.append(Static(f"⚠ {trace.get('answer_shown', '')}", classes="not-found", markup=False))
            if trace.get("citations"):
                body.append(CitationList(trace["citations"], turn.answer or "", classes="citations"))
        else:
            note = {"cancelled": "(cancelled)", "pending": "(interrupted: no answer was saved)"}.get(
                turn.status, f"⚠ {turn.answer or turn.status}"
            )
            body.append(Static(note, classes="error-line", markup=False))
        return cls(turn.question, tiers, body)
