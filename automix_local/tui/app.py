"""The terminal app: a view of the ask service, with a live decision trace.

Each question goes to the ask service (``automix_local/ask.py``) in a thread worker: the service retrieves
(over the library), runs the cascade, decides "not in your documents", cites and saves the turn. The app
draws the service's events on the question's ``TurnView`` (``turn.py``) and its final ``Answer``; one
question is in flight at a time and Esc cancels it. The settings (``settings.py``), the document library
(``library.py``) and the command palette (``commands.py``) have modules of their own.
"""

from __future__ import annotations

import json
import os
import time
from functools import partial
from pathlib import Path
from typing import Any

from textual import on, work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Footer, Header, Input, OptionList, Static, TextArea
from textual.worker import get_current_worker

from ..ask import Answer, AskEvent, AskService, Done, Question, Source
from ..cascade import Answered, BackendFactory, Cascade, Token
from ..config import Config
from ..errors import AutomixError, one_line
from ..paths import display_path
from ..sources import status
from ..storage import Store, StoreError
from .commands import AppCommands
from .context import ContextFileError, ContextPane, read_context
from .documents import CitationList, SourcesScreen
from .export import export
from .library import LibraryControl
from .screens import ConversationsScreen, MissingModelsScreen, PromptScreen, wait_for_approval
from .session import Session
from .settings import Settings
from .status import ASK_PLACEHOLDER, placeholder, status_line
from .turn import TurnView
from .widgets import TracePane

NARROW = 100  # below this many columns the panes collapse
MID = 150  # below this, opening the trace pane hides the context pane
TOKEN_LOG = "AUTOMIX_TOKEN_LOG"  # a file to log each streamed token's time to (bench/screen_latency.py)


class AutomixApp(App[None]):
    CSS_PATH = "app.tcss"
    TITLE = "automix-local"
    COMMANDS = App.COMMANDS | {AppCommands}
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

    def __init__(
        self,
        config: Config,
        context_file: Path | None = None,
        check_models: bool = True,
        backend_factory: BackendFactory | None = None,
    ) -> None:
        """``backend_factory``: what the cascade makes its tiers' backends with (tests give scripted tiers)."""
        super().__init__()
        self._token_log = os.environ.get(TOKEN_LOG)  # set only by bench/screen_latency.py
        self.config = config
        self.context_file = context_file
        self.check_models = check_models
        self.backend_factory = backend_factory
        self.cascade: Cascade | None = None
        self.service = AskService(config)  # retrieval, the embedding model, saving: the cascade comes later
        self.store: Store | None = None  # the service's conversation store (None: it cannot be opened)
        self.conversation_id: int | None = None
        self.answering: TurnView | None = None  # the turn being answered
        self._answer_token = 0  # bumped on cancel: late events of a cancelled answer are ignored
        self._epoch = 0  # bumped when another conversation starts: a late "saved" of the last one is ignored
        self.last_answer: str | None = None
        self.last_tps: float | None = None
        self.last_citations: list[dict[str, Any]] = []  # the last answer's cited passages (ctrl+r)
        self.session = Session()
        self.models_state = "starting"
        self.ready_tiers: list[str] = []  # tiers whose models are loaded, in load order
        self.turns: list[tuple[str, str]] = []  # this conversation's answered turns (the history without a store)
        self._empty_ok: str | None = None  # the question the user chose to ask over an empty context
        self.document: str | None = str(context_file.expanduser().resolve()) if context_file else None
        self.settings = Settings(self)
        self.library = LibraryControl(self)

    # ------------------------------------------------------------------ layout
    def compose(self) -> ComposeResult:
        yield Header(show_clock=False)
        with Horizontal(id="main"):
            yield ContextPane(id="context-pane")
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
            self.store = self.service.store()
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
        self.update_status()

    def _after_pull(self, ok: bool | None) -> None:
        if ok:
            self.notify("Models pulled and verified.")
            self._start_models()

    def _start_models(self) -> None:
        try:
            self.cascade = Cascade(
                self.config, approve=partial(wait_for_approval, self), backend_factory=self.backend_factory
            )
        except AutomixError as exc:
            self.models_state = "error"
            self.notify(str(exc), severity="error", timeout=15)
            return
        self.service.cascade = self.cascade
        self.models_state = "loading"
        self.update_status()
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
            except (AutomixError, OSError) as exc:
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
        self.update_status()

    def on_resize(self, event: Any) -> None:
        self._layout_for(event.size.width)

    def _layout_for(self, width: int) -> None:
        self.screen.set_class(width < NARROW, "narrow")
        self.screen.set_class(NARROW <= width < MID, "mid")

    # ------------------------------------------------------------------ status bar and question box
    def update_status(self) -> None:
        self.query_one("#status", Static).update(status_line(self))
        self.query_one("#question", Input).placeholder = placeholder(self)

    # ------------------------------------------------------------------ asking
    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id != "question":
            return
        text = event.value.strip()
        if not text:
            return
        if self.answering is not None:
            self.notify("Still answering the last question — Esc cancels it.", severity="warning")
            return
        if self.cascade is None:
            self.notify("The models are not ready (see the status bar).", severity="warning")
            return
        source = self._source(text)
        if source is None:
            return
        event.input.value = ""
        view = TurnView(text, [t.name for t in self.config.tiers])
        self.query_one("#chat", VerticalScroll).mount(view)
        view.scroll_visible()
        self._answer_token += 1
        self.answering = view
        epoch = self._epoch
        question = Question(
            text,
            source,
            self.conversation_id,
            history=None if self.store is not None else tuple(self.turns),
            policy=dict(self.settings.policy_override),
            on_saved=lambda cid, _turn: self.call_from_thread(self._saved, cid, epoch),
        )
        self.answer(question, self._answer_token)

    def _source(self, question: str) -> Source | None:
        """What the question is asked over: the library's choice, else the context pane. An empty pane asks
        for a document first (without one the model answers from nothing, confidently); asked again, the
        question goes without one."""
        if self.library.source is not None:
            return self.library.source
        context = self.query_one(ContextPane).text
        if context.strip():
            self._empty_ok = None
            return Source.context(context, self.document)
        if self._empty_ok == question:
            self._empty_ok = None
            return Source.nothing()
        self._empty_ok = question
        self._show_context_pane()
        self.notify(
            "The context is empty: paste a document on the left or open one with ctrl+o. "
            "Press Enter again to ask without a document.",
            title="No document",
            severity="warning",
            timeout=12,
        )
        return None

    def _show_context_pane(self) -> None:
        if self.screen.has_class("narrow"):
            self.screen.add_class("show-context")
        else:
            self.query_one("#context-pane").display = True
        self.query_one("#context", TextArea).focus()

    def _saved(self, conversation: int, epoch: int) -> None:
        if epoch == self._epoch:
            self.conversation_id = conversation

    @work(thread=True, exclusive=True, group="answer", exit_on_error=False)
    def answer(self, question: Question, token: int) -> None:
        """Ask the service; its events go to the turn on screen. A cancelled question's generator is closed
        here: the service saves the turn as cancelled."""
        worker = get_current_worker()
        events = self.service.ask(question, self.cascade)
        try:
            for event in events:
                if worker.is_cancelled:
                    return
                if self._token_log and isinstance(event, Token):
                    self._log_token(event)
                # an async callback: mypy cannot infer textual's CallThreadReturnType for it (it is None)
                self.call_from_thread(self._on_event, event, token)  # type: ignore[arg-type]
            return
        except Exception as exc:  # an AutomixError is the one line to show; anything else is a bug, said so
            if not isinstance(exc, AutomixError):
                self.log.error("answer failed", exc_info=exc)
            message = one_line(exc)
        finally:
            events.close()
        self.call_from_thread(self._failed, message, token)

    def _log_token(self, event: Token) -> None:
        """When a streamed token left the cascade (wall clock): bench/screen_latency.py matches it with when
        the terminal shows it."""
        assert self._token_log is not None
        with open(self._token_log, "a", encoding="utf-8") as fh:
            fh.write(json.dumps({"t": time.time(), "tier": event.tier, "text": event.text}) + "\n")

    async def _on_event(self, event: AskEvent, token: int) -> None:
        view = self.answering
        if token != self._answer_token or view is None:
            return
        await view.apply(event)
        if isinstance(event, Answered):
            gen = event.generation
            if gen.gen_seconds > 0 and gen.tokens_out > 1:
                self.last_tps = (gen.tokens_out - 1) / gen.gen_seconds
        elif isinstance(event, Done):
            self._finished(view, event.answer)

    def _finished(self, view: TurnView, answer: Answer) -> None:
        self.answering = None
        trace = answer.trace
        self.last_answer = trace.answer or answer.text
        if trace.answer:
            self.turns.append((answer.question, trace.answer))
        if answer.conversation is not None:
            self.conversation_id = answer.conversation
        data = answer.to_json()
        pane = self.query_one(TracePane)
        if answer.citations is not None:
            self.last_citations = data["citations"]
        if trace.steps:
            pane.show_totals(self.session.add(trace, view.prompt_tokens or 0, self.config.tiers[-1]))
        pane.show_trace(data)
        pane.show_sources(data.get("citations") or [])
        self.update_status()

    def _failed(self, message: str, token: int) -> None:
        view = self.answering
        if token != self._answer_token or view is None:
            return
        self.answering = None
        view.fail(message)
        self.notify(message, severity="error", timeout=10)

    @on(OptionList.OptionSelected, "CitationList")
    def _citation_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        cl = event.option_list
        assert isinstance(cl, CitationList)
        self.push_screen(SourcesScreen(cl.citations, cl.answer, event.option_index))

    # ------------------------------------------------------------------ actions
    def action_cancel(self) -> None:
        view = self.answering
        if view is None:
            return
        self.answering = None
        self._answer_token += 1
        self.workers.cancel_group(self, "answer")
        if self.cascade is not None:
            self.cascade.interrupt()  # a remote stream stops now, not at its next byte
        view.remove()
        box = self.query_one("#question", Input)
        box.focus()
        if box.value.strip():  # never overwrite what the user has typed since
            self.notify(f"Cancelled: {view.question}")
            return
        box.value = view.question
        box.cursor_position = len(box.value)
        self.notify("Cancelled — the question is back in the box.")

    def action_sources(self) -> None:
        if not self.last_citations:
            self.notify("No cited passages yet: ask your documents (ctrl+f) first.", severity="warning")
            return
        self.push_screen(SourcesScreen(self.last_citations, self.last_answer or ""))

    def action_documents(self) -> None:
        self.library.open_pane()

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

    # ------------------------------------------------------------------ the context pane
    def action_open_file(self) -> None:
        def opened(value: str | None) -> None:
            if value:
                self._load_context_file(Path(value).expanduser())

        self.push_screen(PromptScreen("Open a text or Markdown file as the context:", placeholder="~/notes.md"), opened)

    def _load_context_file(self, path: Path) -> None:
        """The file into the context pane (its paragraphs reflowed); the pane's title names it."""
        try:
            text = read_context(path)
        except ContextFileError as exc:
            self.notify(str(exc), severity=exc.severity)
            return
        self.document = str(path.resolve())
        self.query_one(ContextPane).load(text, path.name)
        if self.store is not None and self.conversation_id is not None:
            self.store.set_context(self.conversation_id, text)
            self.store.set_privacy(self.conversation_id, self.settings.policy_override or None, self.document)

    # ------------------------------------------------------------------ conversations
    def action_new_conversation(self) -> None:
        if self.answering is not None:
            self.action_cancel()
        self._epoch += 1
        self.conversation_id = None
        self.turns = []
        self.settings.policy_override = {}
        self.query_one("#chat", VerticalScroll).remove_children()
        self.last_answer = None
        self.update_status()
        self.notify("New conversation (the context is kept).")

    def action_conversations(self) -> None:
        if self.store is None:
            self.notify("Conversations are not being saved.", severity="warning")
            return
        self.push_screen(ConversationsScreen(self.store.conversations()), self._open_conversation)

    def _open_conversation(self, cid: int | None) -> None:
        if cid is None or self.store is None:
            return
        if self.answering is not None:
            self.action_cancel()
        conv = self.store.load(cid)
        self._epoch += 1
        self.conversation_id = conv.id
        self.library.source = None if conv.scope is None else Source.library(conv.scope)
        self.settings.policy_override = dict(conv.policy or {})
        self.document = conv.document
        self.turns = [(t.question, t.answer) for t in conv.turns if t.status == "done" and t.answer]
        self.last_citations = []
        self.update_status()
        self.query_one(ContextPane).load(conv.context, Path(conv.document).name if conv.document else None)
        chat = self.query_one("#chat", VerticalScroll)
        chat.remove_children()
        last_trace = None
        for turn in conv.turns:
            chat.mount(TurnView.from_saved(turn, [t.name for t in self.config.tiers]))
            if turn.trace:
                last_trace = turn.trace
                self.last_answer = turn.answer
                if turn.trace.get("citations") is not None:
                    self.last_citations = turn.trace["citations"]
        if last_trace:
            self.query_one(TracePane).show_trace(last_trace)
        self.notify(f"Opened “{conv.title}” ({len(conv.turns)} question(s)).")

    def action_export(self) -> None:
        if self.store is None or self.conversation_id is None:
            self.notify("Nothing to export yet.", severity="warning")
            return
        md, js = export(self.store.load(self.conversation_id), self.config.paths.data_dir / "exports")
        self.notify(f"Exported {md.name} and {js.suffix} to {display_path(md.parent)}")

    def on_unmount(self) -> None:
        self.service.close()  # the embedding model and the store
        if self.cascade is not None:
            self.cascade.close()
