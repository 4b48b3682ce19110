"""The context pane, and a file opened into it: read as text, its hard-wrapped paragraphs joined.

A file wrapped at ~100 columns, shown in a pane of another width, re-wraps into ragged lines ("issued in" /
"Memphis, Egypt, …"). ``reflow`` joins the lines of each paragraph so the pane wraps them once; blank
lines, headings, list items, quotes, tables and code blocks stay as they are. In Markdown a line break
inside a paragraph is a space (CommonMark), so joining changes nothing a renderer or a model reads; in other
text only lines that look wrapped (long, against the file's widest) are joined, so short lines (an address,
a poem) keep their breaks.
"""

from __future__ import annotations

import re
from pathlib import Path

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.notifications import SeverityLevel
from textual.widgets import Static, TextArea

TEXT_SUFFIXES = {".txt", ".md", ".markdown", ".rst", ".text", ""}
MARKDOWN_SUFFIXES = {".md", ".markdown"}

_FENCE = re.compile(r"^\s{0,3}(```|~~~)")
_BLOCK = re.compile(
    r"^\s{0,3}(#{1,6}(\s|$)|>|[-*+•]\s|\d{1,9}[.)]\s|\|)"  # heading, quote, list item, table row
    r"|^\s{0,3}([-*_=]\s*){3,}$"  # a rule, or a setext heading's underline
)
WRAPPED = 0.6  # in plain text, a line this share of the widest line (or longer) was wrapped, not broken
WRAP_WIDTH = 40  # … in a file whose widest line is this long at least (a file of short lines is not wrapped)


class ContextFileError(Exception):
    """A file that cannot be opened as the context; ``severity`` for the notification."""

    def __init__(self, message: str, severity: SeverityLevel = "error") -> None:
        super().__init__(message)
        self.severity = severity


def read_context(path: Path) -> str:
    """The file's text, reflowed (ContextFileError: not a text file, missing, unreadable)."""
    if path.suffix.lower() not in TEXT_SUFFIXES:
        raise ContextFileError(f"{path.name}: only text and Markdown files can be opened for now.", "warning")
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ContextFileError(f"No such file: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ContextFileError(f"Cannot read {path}: {exc}") from None
    return reflow(text, markdown=path.suffix.lower() in MARKDOWN_SUFFIXES)


def reflow(text: str, markdown: bool = True) -> str:
    """``text`` with each paragraph's hard-wrapped lines joined by a space (see the module's docstring)."""
    lines = text.splitlines()
    widest = max((len(line.rstrip()) for line in lines), default=0)
    out: list[str] = []
    fence: str | None = None
    open_ = False  # the last line out is paragraph text the next line may continue
    code = False  # the last line out is an indented code line (Markdown)
    for line in lines:
        if fence is not None:  # inside a fenced code block: verbatim
            out.append(line)
            fence = None if line.strip().startswith(fence) else fence
            continue
        stripped = line.strip()
        start = _FENCE.match(line)
        if start is not None:
            fence, open_ = start.group(1), False
            out.append(line)
            continue
        if not stripped:
            out.append(line)
            open_ = False
            continue
        code = markdown and line.startswith(("    ", "\t")) and (not out or not out[-1].strip() or code)
        block = code or _BLOCK.match(line) is not None
        if open_ and not block:
            out[-1] = f"{out[-1].rstrip()} {stripped}"
        else:
            out.append(line)
        open_ = _continues(line, code, markdown, widest)
    return "\n".join(out) + ("\n" if text.endswith(("\n", "\r")) else "")


def _continues(line: str, code: bool, markdown: bool, widest: int) -> bool:
    """Whether the next input line may be joined onto the one out, whose last input line was ``line``."""
    if code or _FENCE.match(line) or re.match(r"^\s{0,3}(#{1,6}(\s|$)|\||([-*_=]\s*){3,}$)", line):
        return False  # headings, table rows, rules and code end where they are
    if markdown:
        return not (line.endswith("  ") or line.endswith("\\"))  # a Markdown hard break stays
    return widest >= WRAP_WIDTH and len(line.rstrip()) >= WRAPPED * widest


class ContextPane(Vertical):
    """The document questions are asked over, editable; its title names the file it came from and its size
    ("Context · sample.md, 312 words"), where a notification would cover the question box."""

    _loaded: tuple[str, str] | None = None  # (file name, its text as loaded)

    def compose(self) -> ComposeResult:
        yield Static("Context", id="context-title", classes="pane-title", markup=False)
        yield TextArea(
            id="context", soft_wrap=True, placeholder="Paste or type the document here (ctrl+o opens a file)"
        )

    @property
    def text(self) -> str:
        return self.query_one(TextArea).text

    def load(self, text: str, name: str | None = None) -> None:
        """``text`` into the pane; ``name``: the file it came from (None: none)."""
        self._loaded = (name, text) if name else None
        self.query_one(TextArea).load_text(text)
        self._title(text)

    def on_text_area_changed(self, event: TextArea.Changed) -> None:
        self._title(event.text_area.text)

    def _title(self, text: str) -> None:
        title = "Context"
        if self._loaded is not None:
            name, loaded = self._loaded
            title += f" · {name}{'' if text == loaded else ' (edited)'}, {len(text.split())} words"
        self.query_one("#context-title", Static).update(title)
