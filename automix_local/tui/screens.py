"""Modal screens: missing models (first run), saved conversations, a one-line prompt, the egress receipt
(and waiting for its answer) and the egress log."""

from __future__ import annotations

import threading
from datetime import datetime
from typing import Any

from textual import work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, DataTable, Input, Label, OptionList, ProgressBar, Static, TextArea
from textual.widgets.option_list import Option
from textual.worker import get_current_worker

from ..audit import Entry, Receipt
from ..config import Config, PathSource
from ..paths import display_path
from ..sources import ModelError, ModelStatus, pull, pull_command
from ..storage import Conversation


class MissingModelsScreen(ModalScreen[bool]):
    """Shown when a tier's model is not on disk: pull it here, with progress, or learn how to point at one."""

    DEFAULT_CSS = """
    MissingModelsScreen { align: center middle; }
    MissingModelsScreen > Vertical { width: 90%; max-width: 100; height: auto; border: thick $warning; padding: 1 2;
                                     background: $surface; }
    MissingModelsScreen .title { text-style: bold; margin-bottom: 1; }
    MissingModelsScreen #log { height: auto; max-height: 8; color: $text-muted; }
    MissingModelsScreen ProgressBar { margin: 1 0; }
    MissingModelsScreen Horizontal { height: auto; margin-top: 1; }
    MissingModelsScreen Button { margin-right: 2; }
    """
    BINDINGS = [Binding("escape", "quit_app", "Quit", id="missing.quit")]

    def __init__(self, config: Config, missing: list[ModelStatus]) -> None:
        super().__init__()
        self.config = config
        self.missing = missing
        self._stop = threading.Event()

    def compose(self) -> ComposeResult:
        lines = []
        can_pull = False
        for st in self.missing:
            tier = self.config.tier(st.tier)
            if isinstance(tier.source, PathSource):
                lines.append(f"• {st.tier}: no file at {tier.source.path} — fix `path` in models.toml")
            else:
                can_pull = True
                lines.append(f"• {st.tier}: {st.where} — not downloaded yet")
        shown = display_path(self.config.source_file)
        command = pull_command(self.config.tier(self.missing[0].tier), shown)
        with Vertical():
            yield Static("Models are missing", classes="title")
            yield Static("\n".join(lines), markup=False)
            yield Static(
                f"Pull them now (verified by SHA-256), or point models.toml ({shown}) at GGUF files you already "
                'have with `path = "/path/to/model.gguf"` under each [[tiers]] table. '
                f"From a shell: `{command}`.",
                markup=False,
            )
            yield ProgressBar(total=100, show_eta=False, id="progress")
            yield Static("", id="log", markup=False)
            with Horizontal():
                yield Button("Pull models", variant="primary", id="pull", disabled=not can_pull)
                yield Button("Quit", id="quit")

    def on_mount(self) -> None:
        self.query_one(ProgressBar).display = False

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "quit":
            self.app.exit()
        elif event.button.id == "pull":
            event.button.disabled = True
            self.query_one(ProgressBar).display = True
            self.pull_all()

    def action_quit_app(self) -> None:
        self.app.exit()

    @work(thread=True, exclusive=True, group="pull")
    def pull_all(self) -> None:
        ok = True
        for st in self.missing:
            tier = self.config.tier(st.tier)
            try:
                pull(tier, self.config.paths, say=self._say, progress=self._progress)
            except ModelError as exc:
                ok = False
                self._say(f"error: {exc}")
        if ok:
            self.app.call_from_thread(self.dismiss, True)
        else:
            self.app.call_from_thread(self._enable_retry)

    def _enable_retry(self) -> None:
        self.query_one("#pull", Button).disabled = False

    def _say(self, message: str) -> None:
        def show() -> None:
            log = self.query_one("#log", Static)
            text = (str(log.content) + "\n" + message).strip().splitlines()[-6:]
            log.update("\n".join(text))

        self.app.call_from_thread(show)

    def _progress(self, done: int, total: int) -> None:
        self.app.call_from_thread(self.query_one(ProgressBar).update, total=total, progress=done)


class ConversationsScreen(ModalScreen[int | None]):
    """Saved conversations, newest first; Enter opens one."""

    DEFAULT_CSS = """
    ConversationsScreen { align: center middle; }
    ConversationsScreen > Vertical { width: 90%; max-width: 100; height: 80%; border: thick $primary; padding: 1 2;
                                     background: $surface; }
    ConversationsScreen OptionList { height: 1fr; }
    """
    BINDINGS = [Binding("escape", "dismiss_none", "Close", id="conversations.close")]

    def __init__(self, conversations: list[Conversation]) -> None:
        super().__init__()
        self.conversations = conversations

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label("Saved conversations (Enter opens, Esc closes)")
            options = [
                Option(f"{datetime.fromtimestamp(c.updated):%Y-%m-%d %H:%M}  {c.title}", id=str(c.id))
                for c in self.conversations
            ]
            yield OptionList(*options) if options else Static("No saved conversations yet.")

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(int(event.option.id or 0))

    def action_dismiss_none(self) -> None:
        self.dismiss(None)


class PromptScreen(ModalScreen[str | None]):
    """Ask for one line of text (a file path, a number)."""

    DEFAULT_CSS = """
    PromptScreen { align: center middle; }
    PromptScreen > Vertical { width: 80%; max-width: 90; height: auto; border: thick $primary; padding: 1 2;
                              background: $surface; }
    """
    BINDINGS = [Binding("escape", "dismiss_none", "Cancel", id="prompt.cancel")]

    def __init__(self, title: str, value: str = "", placeholder: str = "", **kw: Any) -> None:
        super().__init__(**kw)
        self.title_text, self.value, self.placeholder = title, value, placeholder

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(self.title_text)
            yield Input(self.value, placeholder=self.placeholder, id="prompt-input")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value)

    def action_dismiss_none(self) -> None:
        self.dismiss(None)


class EgressScreen(ModalScreen[bool]):
    """The egress receipt under remote = "ask": the exact request, and nothing is sent unless approved."""

    DEFAULT_CSS = """
    EgressScreen { align: center middle; }
    EgressScreen > Vertical { width: 90%; max-width: 110; height: 85%; border: thick $warning; padding: 1 2;
                              background: $surface; }
    EgressScreen .title { text-style: bold; }
    EgressScreen #meta { color: $text-muted; margin-bottom: 1; height: auto; }
    EgressScreen #payload { height: 1fr; }
    EgressScreen Horizontal { height: auto; margin-top: 1; }
    EgressScreen Button { margin-right: 2; }
    """
    BINDINGS = [
        Binding("escape", "decline", "Don't send", id="egress.decline"),
    ]

    def __init__(self, receipt: Receipt) -> None:
        super().__init__()
        self.receipt = receipt

    def compose(self) -> ComposeResult:
        r = self.receipt
        red = ", ".join(f"{n} {k}" for k, n in sorted(r.redactions.items())) or "none"
        with Vertical():
            yield Static(f"Send this request to {r.host}?", classes="title", markup=False)
            yield Static(
                f"tier {r.tier} · model {r.model} · {r.url}\n"
                f"{r.size} bytes · sha256 {r.sha256} · send {r.send} · redacted: {red}\n"
                + (f"replaced (shown here only): {r.what_was_replaced()}\n" if r.replaced else "")
                + f"{r.reason}. Nothing leaves this machine unless you press Send; what is sent is logged "
                "(`automix-local audit`).",
                id="meta",
                markup=False,
            )
            yield TextArea(r.pretty(), read_only=True, id="payload", soft_wrap=True)
            with Horizontal():
                yield Button("Send", variant="warning", id="send")
                yield Button("Don't send (answer locally)", variant="primary", id="decline")

    def on_mount(self) -> None:
        self.query_one("#decline", Button).focus()  # the safe choice is the default

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "send")

    def action_decline(self) -> None:
        self.dismiss(False)


class AuditScreen(ModalScreen[None]):
    """The egress log in the app: every request that left, and the exact payload of the selected one."""

    DEFAULT_CSS = """
    AuditScreen { align: center middle; }
    AuditScreen > Vertical { width: 95%; max-width: 130; height: 90%; border: thick $primary; padding: 1 2;
                             background: $surface; }
    AuditScreen .title { text-style: bold; }
    AuditScreen DataTable { height: 10; }
    AuditScreen #payload { height: 1fr; margin-top: 1; }
    """
    BINDINGS = [Binding("escape", "close", "Close", id="audit.close")]

    def __init__(self, entries: list[Entry], path: str) -> None:
        super().__init__()
        self.entries = entries
        self.path = path

    def compose(self) -> ComposeResult:
        with Vertical():
            n = len(self.entries)
            yield Static(
                f"What left this machine: {n} request{'s' if n != 1 else ''} (log: {self.path}; Esc closes)",
                classes="title",
                markup=False,
            )
            table: DataTable[str] = DataTable(id="audit-table", cursor_type="row", zebra_stripes=True)
            table.add_columns("id", "time", "tier", "host", "bytes", "sha256", "send", "redacted", "outcome")
            for e in reversed(self.entries):  # newest first
                table.add_row(
                    str(e.id),
                    datetime.fromtimestamp(e.time).strftime("%Y-%m-%d %H:%M:%S"),
                    e.tier,
                    e.host,
                    str(e.bytes),
                    e.sha256[:12],
                    e.send,
                    ", ".join(f"{v} {k}" for k, v in sorted(e.redactions.items())) or "–",
                    e.outcome if e.outcome == "ok" else f"{e.outcome}: {e.detail or ''}",
                    key=str(e.id),
                )
            yield table
            yield TextArea("", read_only=True, id="payload", soft_wrap=True)

    def on_mount(self) -> None:
        if self.entries:
            self._show(self.entries[-1])
            self.query_one(DataTable).focus()
        else:
            self.query_one("#payload", TextArea).load_text("Nothing has been sent to a remote tier.")

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        key = event.row_key.value if event.row_key is not None else None
        for e in self.entries:
            if str(e.id) == key:
                self._show(e)

    def _show(self, entry: Entry) -> None:
        self.query_one("#payload", TextArea).load_text(entry.payload.decode("utf-8", "replace"))

    def action_close(self) -> None:
        self.dismiss(None)


def wait_for_approval(app: App[Any], receipt: Receipt) -> bool:
    """The cascade's approver under remote = "ask", called in the answer worker: show the receipt, wait for
    the user. A cancelled question counts as "don't send"."""
    decided = threading.Event()
    verdict: list[bool] = [False]

    def done(ok: bool | None) -> None:
        verdict[0] = bool(ok)
        decided.set()

    def dismiss() -> None:
        if isinstance(app.screen, EgressScreen):
            app.screen.dismiss(False)

    app.call_from_thread(app.push_screen, EgressScreen(receipt), done)
    worker = get_current_worker()
    while not decided.wait(0.1):
        if worker.is_cancelled:
            app.call_from_thread(dismiss)
            return False
    return verdict[0]
