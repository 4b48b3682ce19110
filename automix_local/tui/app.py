"""The terminal app: chat over a pasted context, with a live decision trace.

The app only renders the cascade's event stream (``Cascade.run``), which runs in a thread worker;
one question is in flight at a time and Esc cancels it. Conversations are saved in SQLite as they
happen.
"""

from __future__ import annotations

import json
import os
import statistics
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from textual import on, work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Footer, Header, Input, OptionList, Static, TextArea
from textual.worker import get_current_worker

from ..audit import AuditError, Receipt
from ..cascade import (
    Answered,
    BackendError,
    Blocked,
    Cascade,
    CascadeError,
    Decided,
    EgressPending,
    EgressSent,
    Escalated,
    Event,
    Finished,
    RemoteFailed,
    TierLoading,
    TierStarted,
    Token,
    Trace,
    Verified,
    VerifyStarted,
)
from ..config import Config, PolicyConfig
from ..explain import routed_to, shown_answer
from ..paths import display_path
from ..policy import describe as describe_policy
from ..policy import override as policy_override
from ..routers import RouterError
from ..signals import SignalError
from ..sources import ModelError, status
from ..storage import Store, StoreError
from ..streams import Returning
from .documents import CitationList, DocumentsChoice, DocumentsScreen, SourcesScreen, scope_words
from .screens import AuditScreen, ConversationsScreen, EgressScreen, MissingModelsScreen, PromptScreen
from .widgets import AnswerBlock, TracePane, TurnView, decision_badge, step_badges

NARROW = 100  # below this many columns the panes collapse
MID = 150  # below this, opening the trace pane hides the context pane
TEXT_SUFFIXES = {".txt", ".md", ".markdown", ".rst", ".text", ""}
ASK_PLACEHOLDER = "Ask about the context… (Enter to send, Esc to cancel)"
TOKEN_LOG = "AUTOMIX_TOKEN_LOG"  # a file to log each streamed token's time to (bench/screen_latency.py)
ANSWER_ERRORS = (CascadeError, BackendError, ModelError, RouterError, SignalError, AuditError)


@dataclass
class Session:
    """This session's totals, against always asking the last tier."""

    questions: int = 0
    cost: float = 0.0
    seconds: float = 0.0
    large_cost: float = 0.0
    large_seconds: list[float] = field(default_factory=list)


class AutomixApp(App[None]):
    CSS_PATH = "app.tcss"
    TITLE = "automix-local"
    BINDINGS = [
        Binding("escape", "cancel", "Cancel", id="cancel"),
        Binding("ctrl+t", "toggle_trace", "Trace", id="toggle_trace"),
        Binding("ctrl+b", "toggle_context", "Context", id="toggle_context"),
        Binding("ctrl+o", "open_file", "Open file", id="open_file"),
        Binding("ctrl+g", "copy_answer", "Copy answer", id="copy_answer"),
        Binding("ctrl+s", "export", "Export", id="export"),
        Binding("ctrl+n", "new_conversation", "New", id="new_conversation"),
        Binding("ctrl+l", "conversations", "History", id="conversations"),
        Binding("ctrl+f", "documents", "Documents", id="documents"),
        Binding("ctrl+r", "sources", "Sources", id="sources", show=False),
        Binding("f1,question_mark", "keys", "Keys", id="keys"),
    ]

    def _log_token(self, event: Token) -> None:
        """When a streamed token left the cascade (wall clock): bench/screen_latency.py matches it with when
        the terminal shows it."""
        assert self._token_log is not None
        with open(self._token_log, "a", encoding="utf-8") as fh:
            fh.write(json.dumps({"t": time.time(), "tier": event.tier, "text": event.text}) + "\n")

    def __init__(self, config: Config, context_file: Path | None = None, check_models: bool = True) -> None:
        super().__init__()
        self._token_log = os.environ.get(TOKEN_LOG)  # set only by bench/screen_latency.py
        self.config = config
        self.context_file = context_file
        self.check_models = check_models
        self.cascade: Cascade | None = None
        self.store: Store | None = None
        self.conversation_id: int | None = None
        self._answer_token = 0  # bumped on cancel: late events of a cancelled answer are ignored
        self._pending: dict[str, Any] | None = None  # the turn being answered
        self.last_answer: str | None = None
        self.last_tps: float | None = None
        self.session = Session()
        self.models_state = "starting"
        self.ready_tiers: list[str] = []  # tiers whose models are loaded, in load order
        self.turns: list[tuple[str, str]] = []  # this conversation's answered turns (question, answer shown)
        self._empty_ok: str | None = None  # the question the user chose to ask over an empty context
        # what questions are asked over: None = the context pane; [] = the whole document library; else names
        self.doc_scope: list[str] | None = None
        self.indexing: str | None = None  # what the background indexing is doing, for the documents pane
        self._pane_read = 0.0  # when the documents pane last re-read the library (monotonic seconds)
        self.last_citations: list[dict[str, Any]] = []  # the last answer's cited passages (ctrl+r)
        self._embedding_lock = threading.Lock()  # the index and answer workers both may load it first
        self.policy_override: dict[str, str] = {}  # this conversation's [policy] remote/send override
        self.document: str | None = str(context_file.expanduser().resolve()) if context_file else None

    @property
    def policy(self) -> PolicyConfig:
        """The policy in force for this conversation: models.toml's, with the conversation's override."""
        return policy_override(self.config.policy, self.policy_override)

    # ------------------------------------------------------------------ layout
    def compose(self) -> ComposeResult:
        yield Header(show_clock=False)
        with Horizontal(id="main"):
            with Vertical(id="context-pane"):
                yield Static("Context", classes="pane-title")
                yield TextArea(
                    id="context", soft_wrap=True, placeholder="Paste or type the document here (ctrl+o opens a file)"
                )
            with Vertical(id="chat-pane"):
                chat = VerticalScroll(id="chat")
                chat.can_focus = False  # Tab goes from the context straight to the question box
                yield chat
                yield Input(placeholder=ASK_PLACEHOLDER, id="question")
            yield TracePane(id="trace")
        yield Static("", id="status", markup=False)
        yield Footer()

    def on_mount(self) -> None:
        if self.config.tui.keys:
            self.set_keymap(self.config.tui.keymap)
        if self.config.tui.theme:
            self.theme = self.config.tui.theme
        self.sub_title = display_path(self.config.source_file)
        try:
            self.store = Store(self.config.paths.data_dir / "conversations.db")
        except StoreError as exc:
            self.notify(f"{exc}; conversations will not be saved", severity="error", timeout=10)
        if self.context_file is not None:
            self._load_context_file(self.context_file)
        self.query_one("#trace").display = False
        self._layout_for(self.size.width)
        # at once, not deferred like Widget.focus(): keys typed the moment the screen is drawn go to the box
        self.screen.set_focus(self.query_one("#question", Input))
        missing = [s for s in (status(t, self.config.paths) for t in self.config.tiers) if not s.present]
        if missing and self.check_models:
            self.models_state = "missing"
            self.push_screen(MissingModelsScreen(self.config, missing), self._after_pull)
        else:
            self._start_models()
        self._update_status()

    def _after_pull(self, ok: bool | None) -> None:
        if ok:
            self.notify("Models pulled and verified.")
            self._start_models()

    def _start_models(self) -> None:
        try:
            self.cascade = Cascade(self.config, approve=self._approve)
        except (RouterError, SignalError) as exc:
            self.models_state = "error"
            self.notify(str(exc), severity="error", timeout=15)
            return
        self.models_state = "loading"
        self._update_status()
        self.load_models()

    @work(thread=True, exclusive=True, group="load")
    def load_models(self) -> None:
        """Load the tiers in the order they answer. A question asked meanwhile is answered as soon as its
        tier is ready: the answer worker waits on that model's lock, and the frames drawn meanwhile reach
        the terminal (the backend loads without redirecting stderr)."""
        assert self.cascade is not None
        start = self.cascade.router.start(len(self.config.tiers))
        for i in range(start, len(self.config.tiers)):
            tier = self.config.tiers[i]
            self.call_from_thread(self._set_models_state, f"loading {tier.name}…")
            try:
                self.cascade.prepare(i)
            except (ModelError, BackendError, CascadeError, OSError) as exc:
                self.call_from_thread(self._set_models_state, "error")
                self.call_from_thread(self.notify, str(exc), severity="error", timeout=15)
                return
            self.call_from_thread(self._tier_ready, tier.name)
        self.call_from_thread(self._set_models_state, "ready")

    def _tier_ready(self, name: str) -> None:
        if name not in self.ready_tiers:
            self.ready_tiers.append(name)

    def _set_models_state(self, state: str) -> None:
        self.models_state = state
        self._update_status()

    def _update_placeholder(self) -> None:
        """The question box says what the models are doing: a question asked while they load is kept and
        answered when its tier is ready, without another key."""
        state = self.models_state
        if state.startswith("loading "):
            tier = state.removeprefix("loading ").rstrip("…")
            done = f"{', '.join(self.ready_tiers)} ready; " if self.ready_tiers else ""
            text = f"{done}loading {tier}… ask now: your question is answered as soon as it can be"
        elif state == "starting":
            text = "starting… ask now: your question is answered as soon as the models are ready"
        elif state == "missing":
            text = "models missing: pull them (see the screen) or point models.toml at files you have"
        elif state == "error":
            text = "a model failed to load (see the message); questions cannot be answered"
        elif self.doc_scope is not None:
            what = ", ".join(self.doc_scope) if self.doc_scope else "your documents"
            text = f"Ask {what}… (Enter to send, Esc to cancel, ctrl+f: documents)"
        else:
            text = ASK_PLACEHOLDER
        self.query_one("#question", Input).placeholder = text

    def on_resize(self, event: Any) -> None:
        self._layout_for(event.size.width)

    def _layout_for(self, width: int) -> None:
        self.screen.set_class(width < NARROW, "narrow")
        self.screen.set_class(NARROW <= width < MID, "mid")

    # ------------------------------------------------------------------ status bar
    def _update_status(self) -> None:
        parts = []
        for t in self.config.tiers:
            if t.is_remote:
                parts.append(f"{t.name}: {t.model} (remote)")
            else:
                where = (
                    "CPU"
                    if t.n_gpu_layers == 0
                    else ("GPU all layers" if t.n_gpu_layers < 0 else f"GPU {t.n_gpu_layers} layers")
                )
                parts.append(f"{t.name} ({where})")
        models = " → ".join(parts)
        if self.models_state == "ready":
            state = " [all models ready]"
        elif self.models_state.startswith("loading ") and self.ready_tiers:
            state = f" [{', '.join(self.ready_tiers)} ready · {self.models_state}]"
        else:
            state = f" [{self.models_state}]"
        tps = f" · {self.last_tps:.1f} tok/s" if self.last_tps else ""
        remote_tiers = any(t.is_remote for t in self.config.tiers)
        policy = "local only" if self.policy.remote == "never" or not remote_tiers else describe_policy(self.policy)
        if self.policy_override:
            policy += " (this conversation)"
        scope = ""
        if self.doc_scope is not None:
            scope = " · asking: " + scope_words(self.doc_scope)
        text = f"{models}{state}{tps}{scope} · {policy} · config {display_path(self.config.source_file)}"
        self.query_one("#status", Static).update(text)
        self._update_placeholder()

    # ------------------------------------------------------------------ asking
    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id != "question":
            return
        question = event.value.strip()
        if not question:
            return
        if self._pending is not None:
            self.notify("Still answering the last question — Esc cancels it.", severity="warning")
            return
        if self.cascade is None:
            self.notify("The models are not ready (see the status bar).", severity="warning")
            return
        context = self.query_one("#context", TextArea).text
        if self.doc_scope is None and not context.strip() and self._empty_ok != question:
            # Without a document the model answers from nothing (and confidently): ask for one first.
            self._empty_ok = question
            self._show_context_pane()
            self.notify(
                "The context is empty: paste a document on the left or open one with ctrl+o. "
                "Press Enter again to ask without a document.",
                title="No document",
                severity="warning",
                timeout=12,
            )
            return
        self._empty_ok = None
        event.input.value = ""
        tid = self._persist_question(question, context)
        view = TurnView(question)
        self.query_one("#chat", VerticalScroll).mount(view)
        view.scroll_visible()
        self._answer_token += 1
        self._pending = {"question": question, "view": view, "tid": tid, "blocks": {}, "prompt_tokens": None}
        self.answer(view, context, question, self._answer_token, tuple(self.turns), self.doc_scope)

    def _show_context_pane(self) -> None:
        if self.screen.has_class("narrow"):
            self.screen.add_class("show-context")
        else:
            self.query_one("#context-pane").display = True
        self.query_one("#context", TextArea).focus()

    def _persist_question(self, question: str, context: str) -> int | None:
        if self.store is None:
            return None
        if self.conversation_id is None:
            self.conversation_id = self.store.create(question[:80], context, str(self.config.source_file))
            self.store.set_privacy(self.conversation_id, self.policy_override, self.document)
            self.store.set_scope(self.conversation_id, self.doc_scope)
        else:
            self.store.set_context(self.conversation_id, context)
        return self.store.add_turn(self.conversation_id, question)

    def _approve(self, receipt: Receipt) -> bool:
        """Called by the cascade in the answer worker under remote = "ask": show the receipt, wait for the user.
        A cancelled question counts as "don't send"."""
        decided = threading.Event()
        verdict: list[bool] = [False]

        def done(ok: bool | None) -> None:
            verdict[0] = bool(ok)
            decided.set()

        self.call_from_thread(self.push_screen, EgressScreen(receipt), done)
        worker = get_current_worker()
        while not decided.wait(0.1):
            if worker.is_cancelled:
                self.call_from_thread(self._dismiss_egress)
                return False
        return verdict[0]

    def _dismiss_egress(self) -> None:
        if isinstance(self.screen, EgressScreen):
            self.screen.dismiss(False)

    @work(thread=True, exclusive=True, group="answer", exit_on_error=False)
    def answer(
        self,
        view: TurnView,
        context: str,
        question: str,
        token: int,
        history: tuple[tuple[str, str], ...] = (),
        scope: list[str] | None = None,
    ) -> None:
        assert self.cascade is not None
        worker = get_current_worker()
        self.cascade.policy = self.policy
        document, sources = self.document, None
        if scope is not None:  # the document library: retrieve, then answer over the numbered passages
            from ..documents.asking import retrieve
            from ..documents.library import LibraryError, default_path

            embedder = self._embedder()
            try:
                retrieved = retrieve(
                    default_path(self.config.paths.data_dir),
                    scope,
                    question,
                    self.cascade.document_budget,
                    embed_query=embedder.embed_query if embedder is not None else None,
                    model=self._vector_key(),
                    cap=self.config.documents.context_tokens,
                )
            except (LibraryError, *ANSWER_ERRORS) as exc:
                self.call_from_thread(self._on_error, str(exc), token)
                return
            if retrieved.not_found:
                why = f"Not in your documents: no passage of {retrieved.names()} matches the question."
                self.call_from_thread(self._on_error, why, token)
                return
            self.call_from_thread(self._set_retrieved, retrieved, token)
            context, document, sources = retrieved.context, None, retrieved.sources
        events = Returning(self.cascade.run(context, question, document=document, history=history, sources=sources))
        try:
            for event in events:
                if worker.is_cancelled:
                    return
                if self._token_log and isinstance(event, Token):
                    self._log_token(event)
                # an async callback: mypy cannot infer textual's CallThreadReturnType for it (it is None)
                self.call_from_thread(self._on_event, event, token)  # type: ignore[arg-type]
            trace = events.value
        except ANSWER_ERRORS as exc:
            self.call_from_thread(self._on_error, str(exc), token)
            return
        except Exception as exc:  # a bug, not a foreseeable mistake: say so instead of leaving the turn hanging
            self.log.error("answer failed", exc_info=exc)
            self.call_from_thread(self._on_error, f"unexpected error: {type(exc).__name__}: {exc}", token)
            return
        finally:
            events.close()
        self.call_from_thread(self._on_finished, trace, token)

    async def _on_event(self, event: Event, token: int) -> None:
        if token != self._answer_token or self._pending is None:
            return
        p = self._pending
        view: TurnView = p["view"]
        blocks: dict[str, AnswerBlock] = p["blocks"]
        if isinstance(event, TierLoading):
            waiting = f"waiting for {event.tier} to load (first use); it answers as soon as it is ready…"
            if blocks:
                last = list(blocks.values())[-1]
                last.badge.set(f"{last.badge.content} · {waiting}", "checking")
            else:
                view.set_status(waiting)
        elif isinstance(event, TierStarted):
            view.set_status(None)
            block = await view.add_block(event.tier)
            blocks[event.tier] = block
            if event.index > 0 and len(blocks) > 1:
                block.badge.set(f"↑ {event.tier} · answering (escalated)…", "checking")
            block.scroll_visible()
        elif isinstance(event, Token):
            await blocks[event.tier].append(event.text)
        elif isinstance(event, Answered):
            await blocks[event.tier].set_text(shown_answer(event.answer))
            gen = event.generation
            if gen.gen_seconds > 0 and gen.tokens_out > 1:
                self.last_tps = (gen.tokens_out - 1) / gen.gen_seconds
            if p["prompt_tokens"] is None:
                p["prompt_tokens"] = gen.tokens_in
            blocks[event.tier].badge.set(f"{event.tier} · answered", "")
        elif isinstance(event, VerifyStarted):
            blocks[event.tier].badge.set(f"{event.tier} · checking ({event.strategy})…", "checking")
        elif isinstance(event, Verified):
            blocks[event.tier].badge.set(
                f"{event.tier} · confidence {event.verification.confidence:.2f} · deciding…", "checking"
            )
        elif isinstance(event, Decided):
            d = event.decision
            next_tier = routed_to([t.name for t in self.config.tiers], event.tier, d.action, d.target)
            blocks[event.tier].badge.set(*decision_badge(event.tier, d, next_tier=next_tier))
            if d.action == "route":
                blocks[event.tier].add_class("superseded")
        elif isinstance(event, Escalated):
            pass  # the next TierStarted draws the escalated answer beneath
        elif isinstance(event, EgressPending):
            last = list(blocks.values())[-1]
            if event.needs_approval:
                host = event.receipt.host
                last.badge.set(f"✗ {last.tier} · waiting for your approval to send to {host}…", "checking")
        elif isinstance(event, EgressSent):
            r = event.receipt
            red = f", {sum(r.redactions.values())} redacted" if r.redactions else ""
            blocks[event.tier].badge.set(
                f"☁ {event.tier} · sent {r.size} bytes to {r.host} (audit #{event.entry_id}{red}) · answering…",
                "checking",
            )
        elif isinstance(event, Blocked):
            last = list(blocks.values())[-1]
            last.remove_class("superseded")
            self.notify(f"Not sent to {event.tier}: {event.reason}", severity="warning", timeout=8)
        elif isinstance(event, RemoteFailed):
            failed = blocks.get(event.tier)
            if failed is not None:
                failed.badge.set(f"⚠ {event.tier} · failed — {event.reason}", "error")
                failed.add_class("superseded")
            kept = blocks.get(event.fallback_tier)
            if kept is not None:
                kept.remove_class("superseded")
            self.notify(f"{event.tier} failed: {event.reason}", severity="error", timeout=10)
        elif isinstance(event, Finished):
            pass

    def _on_finished(self, trace: Trace, token: int) -> None:
        if token != self._answer_token or self._pending is None:
            return
        p = self._pending
        self._pending = None
        data = trace.to_json()
        for step, (text, kind) in zip(data["steps"], step_badges(data), strict=True):
            block = p["blocks"].get(step["tier"])
            if block is not None:
                block.badge.set(text, kind)
        self.last_answer = trace.answer
        self.turns.append((trace.question, trace.answer))
        retrieved = p.get("retrieved")
        if retrieved is not None:
            self._show_citations(p["view"], trace, retrieved, data)
        if trace.notice:
            p["view"].mount(Static(f"ⓘ {trace.notice}", classes="notice-line", markup=False))
        self._account(trace, p["prompt_tokens"] or 0)
        trace_pane = self.query_one(TracePane)
        trace_pane.show_trace(data)
        self._update_status()
        if self.store is not None and p["tid"] is not None:
            self.store.finish_turn(p["tid"], "done", trace.answer, trace.tier, data)

    def _set_retrieved(self, retrieved: Any, token: int) -> None:
        if token == self._answer_token and self._pending is not None:
            self._pending["retrieved"] = retrieved

    def _on_error(self, message: str, token: int) -> None:
        if token != self._answer_token or self._pending is None:
            return
        p = self._pending
        self._pending = None
        view: TurnView = p["view"]
        view.mount(Static(f"⚠ {message}", classes="error-line", markup=False))
        self.notify(message, severity="error", timeout=10)
        if self.store is not None and p["tid"] is not None:
            self.store.finish_turn(p["tid"], "error", message)

    def _show_citations(self, view: TurnView, trace: Trace, retrieved: Any, data: dict[str, Any]) -> None:
        """Under the answer: the passages it came from ([n] document, page or heading); the passages themselves
        in the trace pane. Saved with the turn (``citations`` in its trace)."""
        from ..documents.retrieval import cite
        from ..prompts import is_abstention

        packed = retrieved.packed
        how = "whole documents" if packed.mode == "whole" else f"{len(packed.passages)} retrieved passages"
        cited = []
        if is_abstention(trace.answer) or not trace.answer.strip():
            note = f"Not in your documents ({how} of {retrieved.names()} were read)."
        else:
            cited = cite(trace.answer, packed.passages)
            note = f"No passage contains the answer word for word ({how}): check it against the documents."
        data["citations"] = [c.to_json() for c in cited]
        data["retrieval"] = packed.to_json() | {"documents": [d.name for d in retrieved.documents]}
        self._mount_citations(view, data["citations"], trace.answer, note)
        self.query_one(TracePane).show_sources(data["citations"])

    def _mount_citations(self, view: TurnView, citations: list[dict[str, Any]], answer: str, note: str) -> None:
        """Under the answer: its cited passages as a list (Enter or a click shows one whole), or the note
        saying why there is none."""
        self.last_citations = citations
        if citations:
            view.mount(CitationList(citations, answer, classes="citations"))
        else:
            view.mount(Static(note, classes="citations", markup=False))

    @on(OptionList.OptionSelected, "CitationList")
    def _citation_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        cl = event.option_list
        assert isinstance(cl, CitationList)
        self.push_screen(SourcesScreen(cl.citations, cl.answer, event.option_index))

    def action_sources(self) -> None:
        if not self.last_citations:
            self.notify("No cited passages yet: ask your documents (ctrl+f) first.", severity="warning")
            return
        self.push_screen(SourcesScreen(self.last_citations, self.last_answer or ""))

    def _account(self, trace: Trace, prompt_tokens: int) -> None:
        s = self.session
        large = self.config.tiers[-1]
        s.questions += 1
        s.cost += trace.cost
        s.seconds += trace.seconds
        # what always-large would have cost: its own call when it answered, else one call over this prompt with
        # as many answer tokens as the answer shown (TierConfig.call_cost: per call, per 1k and per 1M tokens)
        asked = next((st for st in trace.steps if st.tier == large.name), None)
        if asked is not None:
            s.large_cost += large.call_cost(asked.tokens_in, asked.tokens_out)
        else:
            s.large_cost += large.call_cost(prompt_tokens, trace.steps[-1].tokens_out if trace.steps else 0)
        s.large_seconds += [st.answer_seconds for st in trace.steps if st.tier == large.name]
        saved_cost = s.large_cost - s.cost
        lines = [
            f"Session: {s.questions} question(s), cost {s.cost:.2f} vs {s.large_cost:.2f} always-{large.name}",
            f"  → saved {saved_cost:+.2f} cost units ({saved_cost / s.large_cost:+.0%})" if s.large_cost else "",
        ]
        if s.large_seconds:
            est = statistics.fmean(s.large_seconds) * s.questions
            lines.append(f"  time {s.seconds:.1f}s vs ~{est:.1f}s always-{large.name} → saved {est - s.seconds:+.1f}s")
        else:
            lines.append(f"  time {s.seconds:.1f}s (time saved is measured once {large.name} has answered)")
        self.query_one(TracePane).show_totals("\n".join(x for x in lines if x))

    # ------------------------------------------------------------------ actions
    def action_cancel(self) -> None:
        if self._pending is None:
            return
        p = self._pending
        self._pending = None
        self._answer_token += 1
        self.workers.cancel_group(self, "answer")
        if self.cascade is not None:
            self.cascade.interrupt()  # a remote stream stops now, not at its next byte
        p["view"].remove()
        box = self.query_one("#question", Input)
        box.focus()
        if self.store is not None and p["tid"] is not None:
            self.store.finish_turn(p["tid"], "cancelled")
        if box.value.strip():  # never overwrite what the user has typed since
            self.notify(f"Cancelled: {p['question']}")
            return
        box.value = p["question"]
        box.cursor_position = len(box.value)
        self.notify("Cancelled — the question is back in the box.")

    def action_toggle_trace(self) -> None:
        trace = self.query_one("#trace")
        trace.display = not trace.display
        self.screen.set_class(bool(trace.display), "trace-open")

    def action_toggle_context(self) -> None:
        pane = self.query_one("#context-pane")
        if self.screen.has_class("narrow"):
            self.screen.toggle_class("show-context")
        else:
            pane.display = not pane.display

    def action_copy_answer(self) -> None:
        if not self.last_answer:
            self.notify("No answer to copy yet.", severity="warning")
            return
        self.copy_to_clipboard(self.last_answer)
        self.notify("Copied the last answer.")

    def action_keys(self) -> None:
        if self.screen.query("HelpPanel"):
            self.action_hide_help_panel()
        else:
            self.action_show_help_panel()

    def action_open_file(self) -> None:
        def opened(value: str | None) -> None:
            if value:
                self._load_context_file(Path(value).expanduser())

        self.push_screen(PromptScreen("Open a text or Markdown file as the context:", placeholder="~/notes.md"), opened)

    def _load_context_file(self, path: Path) -> None:
        if path.suffix.lower() not in TEXT_SUFFIXES:
            self.notify(f"{path.name}: only text and Markdown files can be opened for now.", severity="warning")
            return
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            self.notify(f"No such file: {path}", severity="error")
            return
        except (OSError, UnicodeDecodeError) as exc:
            self.notify(f"Cannot read {path}: {exc}", severity="error")
            return
        self.query_one("#context", TextArea).load_text(text)
        self.document = str(path.resolve())
        if self.store is not None and self.conversation_id is not None:
            self.store.set_context(self.conversation_id, text)
            self.store.set_privacy(self.conversation_id, self.policy_override, self.document)
        self.notify(f"Context: {path.name} ({len(text.split())} words)")

    def action_new_conversation(self) -> None:
        if self._pending is not None:
            self.action_cancel()
        self.conversation_id = None
        self.turns = []
        self.policy_override = {}
        self.query_one("#chat", VerticalScroll).remove_children()
        self.last_answer = None
        self._update_status()
        self.notify("New conversation (the context is kept).")

    def action_conversations(self) -> None:
        if self.store is None:
            self.notify("Conversations are not being saved.", severity="warning")
            return
        self.push_screen(ConversationsScreen(self.store.conversations()), self._open_conversation)

    def _open_conversation(self, cid: int | None) -> None:
        if cid is None or self.store is None:
            return
        if self._pending is not None:
            self.action_cancel()
        conv = self.store.load(cid)
        self.conversation_id = conv.id
        self.doc_scope = conv.scope
        self.last_citations = []
        self.turns = [(t.question, t.answer) for t in conv.turns if t.status == "done" and t.answer]
        self.policy_override = dict(conv.policy or {})
        self.document = conv.document
        self._update_status()
        self.query_one("#context", TextArea).load_text(conv.context)
        chat = self.query_one("#chat", VerticalScroll)
        chat.remove_children()
        last_trace = None
        for turn in conv.turns:
            body: list[Widget] = []
            if turn.trace:
                last_trace = turn.trace
                for step, badge in zip(turn.trace["steps"], step_badges(turn.trace), strict=True):
                    block = AnswerBlock(step["tier"], shown_answer(step["answer"]), badge)
                    if step.get("decision") == "route":
                        block.add_class("superseded")
                    body.append(block)
                self.last_answer = turn.answer
                cites = turn.trace.get("citations")
                if cites is not None:
                    self.last_citations = cites
                    if cites:
                        body.append(CitationList(cites, turn.answer or "", classes="citations"))
            else:
                note = {"cancelled": "(cancelled)", "pending": "(interrupted: no answer was saved)"}.get(
                    turn.status, f"⚠ {turn.answer or turn.status}"
                )
                body.append(Static(note, classes="error-line", markup=False))
            chat.mount(TurnView(turn.question, body))
        if last_trace:
            self.query_one(TracePane).show_trace(last_trace)
        self.notify(f"Opened “{conv.title}” ({len(conv.turns)} question(s)).")

    def action_export(self) -> None:
        if self.store is None or self.conversation_id is None:
            self.notify("Nothing to export yet.", severity="warning")
            return
        conv = self.store.load(self.conversation_id)
        out_dir = self.config.paths.data_dir / "exports"
        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / f"conversation-{conv.id}-{time.strftime('%Y%m%d-%H%M%S')}.md"
        path.write_text(conversation_markdown(conv), encoding="utf-8")
        self.notify(f"Exported to {path}")

    # ------------------------------------------------------------------ settings (command palette)
    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        yield SystemCommand("Open context file…", "Load a text or Markdown file as the context", self.action_open_file)
        yield SystemCommand("Conversations…", "Reopen a saved conversation", self.action_conversations)
        yield SystemCommand("New conversation", "Start over (keeps the context)", self.action_new_conversation)
        yield SystemCommand("Export conversation", "Write the conversation to Markdown", self.action_export)
        yield SystemCommand("Toggle trace pane", "Per-tier confidence, decision, cost", self.action_toggle_trace)
        yield SystemCommand("Verification: logprob", "One forward pass (fast)", lambda: self.set_verifier("logprob"))
        yield SystemCommand("Verification: sampled", "k sampled verdicts (paper)", lambda: self.set_verifier("sampled"))
        yield SystemCommand(
            "Trade-off…", "Threshold (threshold router) or λ (POMDP) for the next question", self.action_tradeoff
        )
        yield SystemCommand("Egress log…", "Every request that left this machine, with its payload", self.action_audit)
        yield SystemCommand(
            "Documents: ask the whole library", "Questions retrieve from every indexed document", self.scope_library
        )
        yield SystemCommand(
            "Documents…",
            "The library and its index state; choose what questions ask",
            self.action_documents,
        )
        yield SystemCommand("Documents: add a file or folder…", "Index it into the library", self.action_add_documents)
        yield SystemCommand(
            "Documents: use the context pane", "Questions are asked over the pasted text again", self.scope_context
        )
        if any(t.is_remote for t in self.config.tiers):
            for key, label, modes in (
                (
                    "remote",
                    "Remote",
                    (
                        ("never", "nothing leaves this machine"),
                        ("ask", "show each request and send only if I approve"),
                        ("allow", "send under the policy's send/redact rules"),
                    ),
                ),
                (
                    "send",
                    "Send",
                    (
                        ("question", "only the question"),
                        ("relevant", "the question and the passage the answer depends on"),
                        ("full", "the question and the whole context"),
                    ),
                ),
            ):
                for mode, what in modes:
                    yield SystemCommand(
                        f"{label} (this conversation): {mode}", what, lambda k=key, m=mode: self.set_policy(k, m)
                    )

    # ------------------------------------------------------------------ documents
    def scope_library(self) -> None:
        self._set_scope([])

    def scope_context(self) -> None:
        self._set_scope(None)

    def _set_scope(self, scope: list[str] | None) -> None:
        self.doc_scope = scope
        if self.store is not None and self.conversation_id is not None:
            self.store.set_scope(self.conversation_id, scope)  # reopening the conversation asks the same
        self._update_status()
        self.notify(f"Questions are now asked over {scope_words(scope)}.")

    def action_documents(self) -> None:
        """The documents pane: what is indexed and its state; choose what this conversation asks."""
        docs, state = self._library_state()
        self.push_screen(DocumentsScreen(docs, state, self.doc_scope, self.indexing), self._documents_chosen)

    def _library_state(self) -> tuple[list[Any], str]:
        from ..documents.library import Library, LibraryError, default_path
        from ..documents.vectors import state_line

        try:
            with Library(default_path(self.config.paths.data_dir)) as lib:
                return lib.documents(), state_line(lib, self.config)
        except LibraryError as exc:
            self.notify(str(exc), severity="error")
            return [], "the library cannot be read"

    def _documents_chosen(self, choice: DocumentsChoice | None) -> None:
        if choice is None:
            return
        action, scope = choice
        if action == "add":
            self.action_add_documents()
        else:
            self._set_scope(scope)

    def _indexing_changed(self, text: str | None) -> None:
        """Progress of the background indexing; an open documents pane re-reads the library at most twice a
        second (a folder of small files reports progress far more often than that)."""
        self.indexing = text
        now = time.monotonic()
        if isinstance(self.screen, DocumentsScreen) and (text is None or now - self._pane_read >= 0.5):
            self._pane_read = now
            docs, state = self._library_state()
            self.screen.update_library(docs, state, text)

    def action_add_documents(self) -> None:
        def chosen(value: str | None) -> None:
            if value and value.strip():
                self.notify(f"Indexing {value.strip()}…")
                self.index_documents(value.strip())

        self.push_screen(PromptScreen("Add a file or folder to the library:", placeholder="~/papers"), chosen)

    @work(thread=True, group="index", exit_on_error=False)
    def index_documents(self, spec: str) -> None:
        """Index in the background (BM25 is ready file by file), then fill in the passages' vectors; the
        notifications say how it went. Questions can be asked meanwhile: retrieval uses what is there."""
        from ..documents.library import Library, LibraryError, default_path
        from ..documents.vectors import counts, fill

        try:
            with Library(default_path(self.config.paths.data_dir)) as lib:

                def indexed(name: str, done: int, total: int, passages: int) -> None:
                    what = f"indexing {spec}: {done}/{total} files, {passages} passages ({Path(name).name})"
                    self.call_from_thread(self._indexing_changed, what)

                report = lib.add([spec], progress=indexed)
                for _, reason in report.failed[:5]:
                    self.call_from_thread(self.notify, reason, severity="error", timeout=10)
                done = f"{len(report.indexed)} indexed ({report.passages} passages), {len(report.unchanged)} unchanged"
                if report.skipped:
                    done += f", {len(report.skipped)} skipped (not .txt/.md/.pdf/.html)"
                self.call_from_thread(self.notify, done + " — ctrl+f chooses what to ask.")
                embedder, key = self._embedder(), self._vector_key()
                if embedder is not None and key is not None:

                    def embedded(done: int, total: int) -> None:
                        self.call_from_thread(self._indexing_changed, f"vectors: {done}/{total} passages")

                    added = fill(lib, embedder, key, progress=embedded)
                    have, total = counts(lib, key)
                    if added:
                        self.call_from_thread(self.notify, f"Vectors: {have}/{total} passages (hybrid retrieval).")
        except LibraryError as exc:
            self.call_from_thread(self.notify, str(exc), severity="error", timeout=10)
        finally:
            self.call_from_thread(self._indexing_changed, None)

    def _embedder(self) -> Any:
        """The embedding model, loaded on first use and kept (None: not configured or not downloaded)."""
        with self._embedding_lock:
            if not hasattr(self, "_embedding_model"):
                from ..documents.vectors import open_embedder

                self._embedding_model = open_embedder(self.config)
            return self._embedding_model

    def _vector_key(self) -> str | None:
        from ..documents.vectors import model_key

        return model_key(self.config.embedding) if self.config.embedding is not None else None

    def action_audit(self) -> None:
        from ..audit import AuditError, EgressLog

        path = self.config.paths.egress_log
        entries = []
        if path.exists():
            try:
                log = EgressLog(path)
            except AuditError as exc:
                self.notify(str(exc), severity="error")
                return
            try:
                entries = log.entries()
            finally:
                log.close()
        self.push_screen(AuditScreen(entries, display_path(path)))

    def set_policy(self, key: str, value: str) -> None:
        self.policy_override[key] = value
        if getattr(self.config.policy, key) == value:
            del self.policy_override[key]  # back to models.toml's
        if self.store is not None and self.conversation_id is not None:
            self.store.set_privacy(self.conversation_id, self.policy_override, self.document)
        self._update_status()
        self.notify(f"This conversation: {describe_policy(self.policy)}")

    def set_verifier(self, strategy: str) -> None:
        if self.cascade is None:
            return
        try:
            self.cascade.set_verifier(strategy)
        except CascadeError as exc:
            self.notify(f"{str(exc)[0].upper()}{str(exc)[1:]}.", severity="warning")
            return
        self.notify(f"Verification: {strategy} (from the next question)")

    def action_tradeoff(self) -> None:
        if self.cascade is None:
            return
        cascade = self.cascade
        knob = cascade.tradeoff()
        if knob is None:
            self.notify(f"The {cascade.router.kind} router has no trade-off to set.", severity="warning")
            return
        if knob[0] == "threshold":
            title, value = "Escalate when confidence is below (0–1):", f"{knob[1]:.2f}"
        else:
            title, value = "POMDP λ (cost weight; larger escalates less):", f"{knob[1]:g}"

        def apply(text: str | None) -> None:
            if text is None:
                return
            try:
                x = float(text)
            except ValueError:
                self.notify(f"Not a number: {text!r}", severity="error")
                return
            x = cascade.set_tradeoff(x)
            self.notify(f"Trade-off set to {x:g} (from the next question)")

        self.push_screen(PromptScreen(title, value), apply)

    def on_unmount(self) -> None:
        embedder = getattr(self, "_embedding_model", None)
        if embedder is not None:
            embedder.close()
        if self.cascade is not None:
            self.cascade.close()
        if self.store is not None:
            self.store.close()


def conversation_markdown(conv: Any) -> str:
    lines = [f"# {conv.title}", "", "## Context", "", conv.context.strip() or "_(empty)_", ""]
    for turn in conv.turns:
        lines += [f"## {turn.question}", ""]
        if turn.trace:
            t = turn.trace
            conf = "" if t.get("confidence") is None else f", confidence {t['confidence']:.2f}"
            lines += [
                turn.answer or "",
                "",
                f"_Answered by {t['tier']} ({t['model']}){conf}; {t['decision']}; "
                f"{t['seconds']:.1f} s, cost {t['cost']:.2f}._",
                "",
            ]
            for s in t["steps"]:
                c = "–" if s.get("confidence") is None else f"{s['confidence']:.2f}"
                lines.append(
                    f"- {s['tier']}: “{s['answer']}” confidence {c}, {s.get('decision') or 'final'}"
                    + (f" ({s['reason']})" if s.get("reason") else "")
                )
            lines.append("")
        else:
            lines += [f"_({turn.status})_", ""]
    return "\n".join(lines)
