"""The document library in the app: a pane to see what is indexed and choose what a conversation asks,
and the passages an answer cites, shown in full when a citation is selected."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, OptionList, SelectionList, Static
from textual.widgets.option_list import Option
from textual.widgets.selection_list import Selection

from ..documents.library import Document

# What the documents pane returns: ("scope", None) asks over the context pane, ("scope", []) the whole
# library, ("scope", names) those documents; ("add", None) asks for a file or folder to index.
DocumentsChoice = tuple[str, list[str] | None]


def scope_words(scope: list[str] | None) -> str:
    """What questions are asked over, in words (the status bar, the pane, notifications)."""
    if scope is None:
        return "the context pane"
    return ", ".join(scope) if scope else "the whole document library"


def where(c: dict[str, Any]) -> str:
    """A citation's place in its document: "p. 4", "Kettle manual › Descaling", or ""."""
    if c.get("page"):
        return f"p. {c['page']}"
    return " › ".join(c["heading"]) if c.get("heading") else ""


def citation_line(c: dict[str, Any]) -> str:
    place = where(c)
    line = f"[{c['n']}] {c['document']}" + (f", {place}" if place else "")
    return line + ("" if c.get("supported", True) else " — not verbatim there: check it")


def document_details(d: Document) -> str:
    """The highlighted document in the pane: file, kind, when indexed, and its index state."""
    path = Path(d.path)
    size = f"{d.pages} pages, " if d.pages else ""
    lines = [
        f"{d.name} — {d.title}" if d.title and d.title != d.name else d.name,
        f"file      {d.path}",
        f"kind      {d.kind}, {size}{d.chars:,} characters",
        f"indexed   {time.strftime('%Y-%m-%d %H:%M', time.localtime(d.indexed))}",
        f"passages  {d.passages} · BM25 ready · vectors {d.embedded}/{d.passages}",
    ]
    try:
        changed = path.stat().st_mtime > d.indexed
    except OSError:
        lines.append("⚠ the file is gone: “docs reindex” drops it (asking still uses what was indexed)")
    else:
        if changed:
            lines.append("⚠ the file changed since it was indexed: add it again (or “docs reindex”)")
    return "\n".join(lines)


class DocumentsScreen(ModalScreen[DocumentsChoice | None]):
    """The library: every indexed document with its index state; check documents and ask them, ask the
    whole library, go back to the context pane, or add a file or folder."""

    DEFAULT_CSS = """
    DocumentsScreen { align: center middle; }
    DocumentsScreen > Vertical { width: 95%; max-width: 140; height: 90%; border: thick $primary; padding: 1 2;
                                 background: $surface; }
    DocumentsScreen .title { text-style: bold; }
    DocumentsScreen #doc-state, DocumentsScreen #doc-scope { color: $text-muted; height: auto; }
    DocumentsScreen #doc-body { height: 1fr; margin-top: 1; }
    DocumentsScreen SelectionList { width: 1fr; height: 1fr; }
    DocumentsScreen #doc-details { width: 1fr; height: 1fr; padding: 0 1; }
    DocumentsScreen #doc-keys { color: $text-muted; height: auto; margin-top: 1; }
    DocumentsScreen Horizontal#doc-buttons { height: auto; margin-top: 1; }
    DocumentsScreen Button { margin-right: 2; }
    """
    BINDINGS = [
        Binding("escape", "close", "Close", id="documents.close"),
        Binding("a", "ask_checked", "Ask the checked", id="documents.ask"),
        Binding("w", "whole", "Whole library", id="documents.whole"),
        Binding("c", "context", "Context pane", id="documents.context"),
        Binding("n", "add", "Add a file or folder", id="documents.add"),
    ]

    def __init__(self, documents: list[Document], state: str, scope: list[str] | None, busy: str | None = None):
        super().__init__()
        self.documents = documents
        self.state = state
        self.scope = scope
        self.busy = busy

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static("Document library", classes="title")
            yield Static(self._state_text(), id="doc-state", markup=False)
            yield Static(f"This conversation asks: {scope_words(self.scope)}", id="doc-scope", markup=False)
            with Horizontal(id="doc-body"):
                yield SelectionList[str](*self._selections(), id="doc-list")
                with VerticalScroll(id="doc-details"):
                    yield Static(self._details(0), id="doc-detail-text", markup=False)
            yield Static(
                "space: check · a: ask the checked · w: the whole library · c: the context pane · "
                "n: add a file or folder · esc: close",
                id="doc-keys",
                markup=False,
            )
            with Horizontal(id="doc-buttons"):
                yield Button("Ask the checked", variant="primary", id="doc-ask")
                yield Button("Whole library", id="doc-whole")
                yield Button("Context pane", id="doc-context")
                yield Button("Add a file or folder…", id="doc-add")

    def on_mount(self) -> None:
        self.query_one(SelectionList).focus()

    def _state_text(self) -> str:
        n, passages = len(self.documents), sum(d.passages for d in self.documents)
        text = f"{n} document{'s' if n != 1 else ''}, {passages} passages · BM25 ready · {self.state}"
        if not self.documents:
            text = "The library is empty: press n to add a file or folder (or `automix-local docs add PATH…`)."
        return text + (f"\n{self.busy}" if self.busy else "")

    def _selections(self) -> list[Selection[str]]:
        checked = set(self.scope or ())
        out = []
        for d in self.documents:
            size = f"{d.pages} p." if d.pages else f"{d.passages} passage{'s' if d.passages != 1 else ''}"
            out.append(Selection(f"{d.name}  ({d.kind}, {size})", d.name, d.name in checked))
        return out

    def _details(self, index: int | None) -> str:
        if not self.documents or index is None or index >= len(self.documents):
            return ""
        return document_details(self.documents[index])

    def on_selection_list_selection_highlighted(self, event: SelectionList.SelectionHighlighted) -> None:
        self.query_one("#doc-detail-text", Static).update(self._details(event.selection_index))

    def update_library(self, documents: list[Document], state: str, busy: str | None) -> None:
        """New index state while the pane is open (indexing or vectors in the background)."""
        names = [d.name for d in documents]
        if names != [d.name for d in self.documents]:
            sel = self.query_one(SelectionList)
            checked = set(sel.selected)
            highlighted = sel.highlighted
            self.scope = [n for n in names if n in checked] or self.scope
            self.documents = documents
            sel.clear_options()
            sel.add_options(self._selections())
            sel.highlighted = min(highlighted or 0, max(len(names) - 1, 0)) if names else None
        else:
            self.documents = documents
        self.state, self.busy = state, busy
        self.query_one("#doc-state", Static).update(self._state_text())
        self.query_one("#doc-detail-text", Static).update(self._details(self.query_one(SelectionList).highlighted))

    def on_button_pressed(self, event: Button.Pressed) -> None:
        actions = {"doc-ask": self.action_ask_checked, "doc-whole": self.action_whole}
        actions["doc-context"] = self.action_context
        actions.get(event.button.id or "", self.action_add)()

    def action_ask_checked(self) -> None:
        checked = [d.name for d in self.documents if d.name in set(self.query_one(SelectionList).selected)]
        if not checked:
            self.notify("Check one or more documents first (space), or press w for the whole library.")
            return
        self.dismiss(("scope", [] if len(checked) == len(self.documents) else checked))

    def action_whole(self) -> None:
        if not self.documents:
            self.notify("The library is empty: press n to add a file or folder.", severity="warning")
            return
        self.dismiss(("scope", []))

    def action_context(self) -> None:
        self.dismiss(("scope", None))

    def action_add(self) -> None:
        self.dismiss(("add", None))

    def action_close(self) -> None:
        self.dismiss(None)


class CitationList(OptionList):
    """The passages an answer cites, under the answer: select one (Enter or a click) to read it whole."""

    DEFAULT_CSS = """
    CitationList { height: auto; max-height: 6; border: none; margin: 0 0 1 2; padding: 0; background: transparent; }
    CitationList:focus { border: none; }
    """

    def __init__(self, citations: list[dict[str, Any]], answer: str, **kw: Any) -> None:
        super().__init__(*[Option(citation_line(c), id=str(i)) for i, c in enumerate(citations)], **kw)
        self.citations = citations
        self.answer = answer


class SourcesScreen(ModalScreen[None]):
    """An answer's cited passages: the list above, the selected passage in full below, with the answer
    marked where it occurs, and its document, page or heading and character span."""

    DEFAULT_CSS = """
    SourcesScreen { align: center middle; }
    SourcesScreen > Vertical { width: 95%; max-width: 130; height: 90%; border: thick $primary; padding: 1 2;
                               background: $surface; }
    SourcesScreen .title { text-style: bold; }
    SourcesScreen OptionList { height: auto; max-height: 8; }
    SourcesScreen #source-meta { color: $text-muted; height: auto; margin-top: 1; }
    SourcesScreen #source-scroll { height: 1fr; margin-top: 1; }
    """
    BINDINGS = [Binding("escape", "close", "Close", id="sources.close")]

    def __init__(self, citations: list[dict[str, Any]], answer: str, start: int = 0) -> None:
        super().__init__()
        self.citations = citations
        self.answer = answer
        self.start = start

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(f"Sources of the answer “{_short(self.answer)}” (Esc closes)", classes="title", markup=False)
            yield OptionList(*[Option(citation_line(c), id=str(i)) for i, c in enumerate(self.citations)])
            yield Static("", id="source-meta", markup=False)
            with VerticalScroll(id="source-scroll"):
                yield Static("", id="source-text")

    def on_mount(self) -> None:
        options = self.query_one(OptionList)
        options.highlighted = self.start
        options.focus()
        self._show(self.start)

    def on_option_list_option_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        self._show(event.option_index)

    def _show(self, index: int) -> None:
        if not 0 <= index < len(self.citations):
            return
        c = self.citations[index]
        place = where(c)
        support = (
            "the answer is in this passage"
            if c.get("supported", True)
            else "the answer is not verbatim in this passage: check it"
        )
        self.query_one("#source-meta", Static).update(
            f"{c['document']}" + (f" · {place}" if place else "") + f" · characters {c['start']}–{c['end']} · {support}"
        )
        text = Text(c["text"])
        if self.answer.strip():
            text.highlight_words([self.answer.strip().rstrip(".")], style="bold reverse", case_sensitive=False)
        self.query_one("#source-text", Static).update(text)

    def action_close(self) -> None:
        self.dismiss(None)


def _short(text: str, n: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "…"
