"""The document library in the app: what questions ask (the context pane, named documents or the whole
library), the documents pane (ctrl+f) and indexing in the background. Retrieval itself is the ask
service's; the embedding model is the service's too (``service.embedder()``), loaded once for both."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..ask import Source
from .documents import DocumentsChoice, DocumentsScreen, scope_words
from .screens import PromptScreen

if TYPE_CHECKING:
    from .app import AutomixApp


class LibraryControl:
    """``source``: what questions are asked over — None for the context pane, else ``Source.library(names)``
    (no names: the whole library). ``indexing``: what the background indexing is doing (None: nothing)."""

    def __init__(self, app: AutomixApp) -> None:
        self.app = app
        self.source: Source | None = None
        self.indexing: str | None = None
        self._pane_read = 0.0  # when the documents pane last re-read the library (monotonic seconds)

    def scope(self) -> list[str] | None:
        """``source`` as the documents pane and the store say it: None, [] (the whole library) or names."""
        return None if self.source is None else self.source.scope()

    def words(self) -> str:
        return scope_words(self.scope())

    # ------------------------------------------------------------------ choosing
    def choose(self, source: Source | None) -> None:
        """Ask ``source`` from the next question (None: the context pane); the conversation keeps it."""
        app = self.app
        self.source = source
        if app.store is not None and app.conversation_id is not None:
            app.store.set_scope(app.conversation_id, self.scope())  # reopening the conversation asks the same
        app.update_status()
        app.notify(f"Questions are now asked over {self.words()}.")

    def whole(self) -> None:
        self.choose(Source.library())

    def context(self) -> None:
        self.choose(None)

    # ------------------------------------------------------------------ the documents pane
    def open_pane(self) -> None:
        """What is indexed and its state; choose what this conversation asks."""
        docs, state = self._state()
        self.app.push_screen(DocumentsScreen(docs, state, self.scope(), self.indexing), self._chosen)

    def _state(self) -> tuple[list[Any], str]:
        from ..documents.library import Library, LibraryError, default_path
        from ..documents.vectors import state_line

        config = self.app.config
        try:
            with Library(default_path(config.paths.data_dir)) as lib:
                return lib.documents(), state_line(lib, config)
        except LibraryError as exc:
            self.app.notify(str(exc), severity="error")
            return [], "the library cannot be read"

    def _chosen(self, choice: DocumentsChoice | None) -> None:
        if choice is None:
            return
        action, scope = choice
        if action == "add":
            self.add()
        else:
            self.choose(None if scope is None else Source.library(scope))

    def _indexing_changed(self, text: str | None) -> None:
        """Progress of the background indexing; an open documents pane re-reads the library at most twice a
        second (a folder of small files reports progress far more often than that)."""
        self.indexing = text
        now = time.monotonic()
        screen = self.app.screen
        if isinstance(screen, DocumentsScreen) and (text is None or now - self._pane_read >= 0.5):
            self._pane_read = now
            docs, state = self._state()
            screen.update_library(docs, state, text)

    # ------------------------------------------------------------------ indexing
    def add(self) -> None:
        def chosen(value: str | None) -> None:
            if value and value.strip():
                self.app.notify(f"Indexing {value.strip()}…")
                self.index(value.strip())

        self.app.push_screen(PromptScreen("Add a file or folder to the library:", placeholder="~/papers"), chosen)

    def index(self, spec: str) -> None:
        """Index in the background (BM25 is ready file by file), then fill in the passages' vectors; the
        notifications say how it went. Questions can be asked meanwhile: retrieval uses what is there."""
        self.app.run_worker(lambda: self._index(spec), thread=True, group="index", exit_on_error=False)

    def _index(self, spec: str) -> None:
        from ..documents.library import Library, LibraryError, default_path
        from ..documents.parse import encoding_name
        from ..documents.vectors import counts, fill

        app, service = self.app, self.app.service
        say = app.call_from_thread
        try:
            with Library(default_path(app.config.paths.data_dir)) as lib:

                def indexed(name: str, done: int, total: int, passages: int) -> None:
                    what = f"indexing {spec}: {done}/{total} files, {passages} passages ({Path(name).name})"
                    say(self._indexing_changed, what)

                report = lib.add([spec], progress=indexed)
                for _, reason in report.failed[:5]:
                    say(app.notify, reason, severity="error", timeout=10)
                done = f"{len(report.indexed)} indexed ({report.passages} passages), {len(report.unchanged)} unchanged"
                if report.skipped:
                    done += f", {len(report.skipped)} skipped (not .txt/.md/.pdf/.html)"
                if report.hidden:  # never given to a model: nobody reading the files sees them (issue 23)
                    pieces = sum(n for _, n in report.hidden)
                    done += f", {pieces} hidden piece{'s' if pieces != 1 else ''} of text left out"
                if report.instructions:  # nor sentences addressed to the model (injection.py)
                    n = sum(k for _, k in report.instructions)
                    done += f", {n} sentence{'s' if n != 1 else ''} read as instructions to the model left out"
                if report.encodings:  # detected, not declared: say which, in case the guess is wrong
                    read = ", ".join(f"{name} as {encoding_name(enc)}" for name, enc in report.encodings[:3])
                    more = f" and {len(report.encodings) - 3} more" if len(report.encodings) > 3 else ""
                    done += f"; not UTF-8, read {read}{more}"
                say(app.notify, done + " — ctrl+f chooses what to ask.")
                embedder, key = service.embedder(), service.vector_key()
                if service.embedder_warning:
                    say(app.notify, service.embedder_warning, severity="warning", timeout=15)
                if embedder is not None and key is not None:

                    def embedded(done: int, total: int) -> None:
                        say(self._indexing_changed, f"vectors: {done}/{total} passages")

                    added = fill(lib, embedder, key, progress=embedded)
                    have, total = counts(lib, key)
                    if added:
                        say(app.notify, f"Vectors: {have}/{total} passages (hybrid retrieval).")
        except LibraryError as exc:
            say(app.notify, str(exc), severity="error", timeout=10)
        finally:
            say(self._indexing_changed, None)
