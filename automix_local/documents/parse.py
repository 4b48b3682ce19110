"""Turn a user's file into visible text with its structure: pages (PDF) or heading paths (Markdown, HTML).

``parse(path)`` returns a :class:`ParsedDocument` whose ``text`` is the whole visible text and whose
``sections`` are spans of it (``text[s.start : s.start + len(s.text)] == s.text``), each with its PDF page
or heading path, so passages cut from a section can say where they came from. Every foreseeable bad
file (missing, unreadable, binary, empty, encrypted, corrupt, scanned) raises :class:`DocumentError`,
whose ``str()`` is one line naming the file and, where there is one, the fix.

Text a reader of the file does not see is left out, and counted (``ParsedDocument.hidden``), so that nobody can
hide instructions to the model in a document (issue 23 §3): HTML comments and elements that are not drawn
(``hidden``, ``display: none``, ``visibility: hidden``, ``font-size: 0``, ``opacity: 0``), Markdown's HTML
comments, reference definitions (``[//]: # (…)``) and link titles, and PDF text drawn in white or near-white, at
under 2 pt, fully transparent, or in an invisible render mode (unless the page has an image under it: a scan's
OCR layer is drawn that way).
"""

from __future__ import annotations

import io
import logging
import math
import re
import stat
import unicodedata
import warnings
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from bs4 import BeautifulSoup
from bs4.element import Comment, NavigableString, PageElement, PreformattedString, Tag
from pypdf import PageObject, PasswordType, PdfReader
from pypdf.errors import DependencyError, FileNotDecryptedError
from pypdf.generic import ContentStream, DecodedStreamObject, NameObject

from ..errors import AutomixError

SUFFIXES: dict[str, str] = {
    ".txt": "text",
    ".text": "text",
    ".md": "markdown",
    ".markdown": "markdown",
    ".pdf": "pdf",
    ".html": "html",
    ".htm": "html",
}
SUPPORTED = ".txt, .md, .pdf, .html"
SEPARATOR = "\n\n"  # between sections in ParsedDocument.text

# pypdf reports recoverable damage through logging; with no handler configured anywhere, Python's
# last-resort handler would print it on stderr, over the terminal app. Records still propagate to
# any handler the application sets up.
logging.getLogger("pypdf").addHandler(logging.NullHandler())


class DocumentError(AutomixError):
    """A file that cannot be indexed. str() is one line naming the file and, where there is one, the fix."""

    http_status = 400


@dataclass(frozen=True)
class Section:
    text: str  # visible text of this section: one PDF page, one heading's body (markdown/html), or the whole text file
    page: int | None  # 1-based PDF page number, else None
    heading: tuple[str, ...]  # heading path, outermost first, e.g. ("Installation", "On Linux"); () when none
    start: int  # character offset of `text` within ParsedDocument.text


@dataclass(frozen=True)
class ParsedDocument:
    path: Path
    kind: str  # "text" | "markdown" | "pdf" | "html"
    title: str  # <title>/first h1/first markdown heading/PDF metadata title, else the file name
    text: str  # the whole visible text; for every section, text[s.start : s.start + len(s.text)] == s.text
    sections: tuple[Section, ...]
    pages: int | None  # PDF page count, else None
    # pieces of the file a reader does not see, left out of ``text``: HTML comments and hidden elements, Markdown
    # comments, reference definitions and link titles, invisible PDF text runs
    hidden: int = 0
    # sentences that read as instructions to the model, left out by ``without_instructions`` (the library does so)
    instructions: int = 0
    # the encoding a text or Markdown file was read in when it is not UTF-8 (a codec name: "cp1252", "utf_16"…),
    # as detected by charset-normalizer; None for UTF-8 (and ASCII), PDF and HTML
    encoding: str | None = None


# A section before assembly: (text, page, heading path).
_Part = tuple[str, int | None, tuple[str, ...]]


def parse(path: Path) -> ParsedDocument:
    """Read ``path`` and return its visible text with structure; raise DocumentError for a file that cannot be used."""
    path = Path(path)
    name = _display(path)
    try:
        st = path.stat()
    except (FileNotFoundError, NotADirectoryError):
        raise DocumentError(f"{name}: no such file") from None
    except PermissionError:
        raise DocumentError(f"{name}: permission denied (check the permissions of the file and its folder)") from None
    except OSError as e:
        raise DocumentError(f"{name}: cannot read it ({_one_line(e)})") from None
    if stat.S_ISDIR(st.st_mode):
        raise DocumentError(f"{name}: is a directory, not a file")
    if not stat.S_ISREG(st.st_mode):
        raise DocumentError(f"{name}: not a regular file")

    suffix = path.suffix.lower()
    kind = SUFFIXES.get(suffix)
    if kind is None:
        what = f"type {suffix}" if suffix else "type (no extension)"
        raise DocumentError(f"{name}: unsupported file {what} (supported: {SUPPORTED})")

    try:
        data = path.read_bytes()
    except PermissionError:
        raise DocumentError(f"{name}: permission denied (make the file readable, e.g. chmod u+r)") from None
    except IsADirectoryError:
        raise DocumentError(f"{name}: is a directory, not a file") from None
    except OSError as e:
        raise DocumentError(f"{name}: cannot read it ({_one_line(e)})") from None
    if not data or data.isspace():
        raise DocumentError(f"{name}: empty")

    hidden = 0
    encoding = None
    if kind == "pdf":
        title, parts, pages, hidden = _parse_pdf(path, data)
    elif kind == "html":
        title, parts, hidden = _parse_html(path, data)
        pages = None
    else:
        text, encoding = _decode_text(path, data)
        if kind == "markdown":
            text, hidden = _strip_markdown(_normalise(text))
            title, parts = _parse_markdown(text)
        else:
            title, parts = "", [(text, None, ())]
        pages = None
    return replace(_assemble(path, kind, title or path.name, parts, pages, hidden), encoding=encoding)


def without_instructions(doc: ParsedDocument) -> ParsedDocument:
    """The document without the sentences that read as instructions to the model (``injection.quarantine``,
    section by section), counted in ``instructions``. The library indexes this, so such a sentence neither
    reaches a model nor moves what retrieval finds or where passages are cut; a document that holds nothing
    else is a DocumentError."""
    from ..injection import quarantine

    parts: list[_Part] = []
    found = 0
    for section in doc.sections:
        kept, instructions = quarantine(section.text)
        found += len(instructions)
        parts.append((kept, section.page, section.heading))
    if not found:
        return doc
    if not any(text.strip() for text, _, _ in parts):
        raise DocumentError(f"{_display(doc.path)}: nothing but sentences that read as instructions to the model")
    kept_doc = _assemble(doc.path, doc.kind, doc.title, parts, doc.pages, doc.hidden)
    return replace(kept_doc, instructions=found, encoding=doc.encoding)


# --------------------------------------------------------------------------- shared


def _display(path: Path) -> str:
    """The path as it goes into a one-line message."""
    return str(path).replace("\r", "\\r").replace("\n", "\\n")


def _one_line(error: BaseException) -> str:
    """An exception as a short single line (its message, else its class name)."""
    text = " ".join(str(error).split())
    if isinstance(error, OSError) and error.strerror:
        text = error.strerror
    if not text:
        text = type(error).__name__
    return text if len(text) <= 200 else text[:197] + "..."


_BLANK_RUNS = re.compile(r"\n{4,}")


def _normalise(text: str) -> str:
    """Unix newlines, no trailing spaces, at most two blank lines in a row, no blank lines at either end."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")
    text = "\n".join(line.rstrip() for line in text.split("\n"))
    return _BLANK_RUNS.sub("\n\n\n", text).strip("\n")


def _assemble(path: Path, kind: str, title: str, parts: list[_Part], pages: int | None, hidden: int) -> ParsedDocument:
    """Join the non-empty parts with SEPARATOR, recording where each one starts."""
    sections: list[Section] = []
    chunks: list[str] = []
    position = 0
    for raw, page, heading in parts:
        text = _normalise(raw)
        if not text.strip():
            continue
        if chunks:
            position += len(SEPARATOR)
        sections.append(Section(text=text, page=page, heading=heading, start=position))
        chunks.append(text)
        position += len(text)
    if not sections:
        if kind == "pdf":
            raise DocumentError(f"{_display(path)}: no text layer — a scanned PDF? OCR is not supported")
        if kind == "html":
            raise DocumentError(f"{_display(path)}: empty (no visible text)")
        raise DocumentError(f"{_display(path)}: empty")
    return ParsedDocument(
        path=path,
        kind=kind,
        title=" ".join(title.split()),
        text=SEPARATOR.join(chunks),
        sections=tuple(sections),
        pages=pages,
        hidden=hidden,
    )


# --------------------------------------------------------------------------- text and Markdown


def _decode_text(path: Path, data: bytes) -> tuple[str, str | None]:
    """The file's text, and the encoding it was read in when that is not UTF-8 (None for UTF-8 and ASCII).

    UTF-8 (with or without a byte-order mark) is read as such. Anything else is given to charset-normalizer,
    which tries the code pages and keeps those that decode to plausible text: a Windows or Latin-1 file
    (common from Windows editors) is read, and the caller says which encoding was assumed. Short texts often
    decode equally well in several code pages (é and è are letters in cp1250, cp1252 and cp1257 alike, and
    charset-normalizer breaks such ties alphabetically: "crème" came out as cp1250's "crčme"); among the
    candidates that score as well as its best, cp1252 (Western European, a superset of Latin-1's letters) is
    preferred. Bytes that decode to no plausible text, or hold NUL bytes outside UTF-16, are a binary file.
    """
    name = _display(path)
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):  # a UTF-16 byte-order mark (Notepad's "Unicode")
        try:
            text = data.decode("utf-16")
        except UnicodeDecodeError:
            text = ""
        if not text or _unprintable(text) > 0.01:  # two bytes that happen to open a binary file
            raise DocumentError(
                f"{name}: binary, or text in an encoding that could not be recognised (save it as UTF-8)"
            )
        return text, "utf_16"
    if b"\x00" in data:
        raise DocumentError(f"{name}: a binary file (it contains NUL bytes), not text")
    try:
        return data.decode("utf-8-sig"), None  # UTF-8, with or without a byte-order mark
    except UnicodeDecodeError:
        pass
    encoding = _detect_encoding(data)
    if encoding is None:
        raise DocumentError(f"{name}: binary, or text in an encoding that could not be recognised (save it as UTF-8)")
    return data.decode(encoding, errors="replace"), encoding


def _unprintable(text: str) -> float:
    """The share of characters that are control codes (other than whitespace) or unassigned code points."""
    bad = sum(1 for c in text if not c.isspace() and unicodedata.category(c) in ("Cc", "Cn", "Cs", "Co"))
    return bad / len(text)


def encoding_name(codec: str) -> str:
    """A codec name as people know it: "cp1252" → "Windows-1252 (cp1252)", "utf_16" → "UTF-16", "iso8859_15" →
    "ISO-8859-15", others as they are."""
    if codec.startswith("cp125") and codec[2:].isdigit():
        return f"Windows-{codec[2:]} ({codec})"
    if codec.startswith("iso8859_"):
        return "ISO-8859-" + codec.removeprefix("iso8859_")
    return {"utf_16": "UTF-16", "latin_1": "Latin-1 (ISO-8859-1)"}.get(codec, codec)


def _detect_encoding(data: bytes) -> str | None:
    """charset-normalizer's encoding for bytes that are not UTF-8, cp1252 among its best-scoring ties; None when
    no encoding decodes them to plausible text."""
    from charset_normalizer import from_bytes

    matches = list(from_bytes(data))
    if not matches:
        return None
    best = matches[0]
    tied = [m for m in matches if m.chaos == best.chaos and abs(m.coherence - best.coherence) < 1e-9]
    if any("cp1252" in m.could_be_from_charset for m in tied):
        try:
            data.decode("cp1252")
            return "cp1252"
        except UnicodeDecodeError:  # a byte cp1252 leaves undefined (0x81, 0x8d, 0x8f, 0x90, 0x9d)
            pass
    return str(best.encoding)


# Markdown headings are found by a line scanner: ATX headings and code fences are Markdown's own
# line syntax (CommonMark §4.2, §4.5), so no Markdown library is needed to see them. Setext headings
# (underlined with === or ---) are left as body text.
_ATX = re.compile(r"^ {0,3}(#{1,6})(?=[ \t]|$)(.*)$")
_ATX_CLOSING = re.compile(r"(?:^|[ \t]+)#+[ \t]*$")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})(.*)$")


# What a Markdown reader never sees rendered (CommonMark §4.6 HTML blocks, §4.7 link reference definitions,
# §6.3 link titles): left out outside fenced code, where they are shown as written.
_MD_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)
_MD_TITLE = r"(?:\"(?:[^\"\\]|\\.)*\"|'(?:[^'\\]|\\.)*'|\((?:[^()\\]|\\.)*\))"
_MD_DEFINITION = re.compile(rf"^ {{0,3}}\[(?:[^\]\\]|\\.)+\]:[ \t]*(?:<[^>\n]*>|\S+)(?:[ \t]+{_MD_TITLE})?[ \t]*$")
_MD_LINK_TITLE = re.compile(rf"(\]\([ \t]*(?:<[^>\n]*>|[^\s()]+))[ \t\n]+{_MD_TITLE}[ \t]*\)")


def _strip_markdown(text: str) -> tuple[str, int]:
    """The Markdown without its HTML comments, reference definitions and link titles (outside fenced code), and
    how many were left out."""
    out: list[str] = []
    prose: list[str] = []
    hidden = 0

    def flush() -> None:
        nonlocal hidden
        block = "\n".join(prose)
        prose.clear()
        block, n_comments = _MD_COMMENT.subn("", block)
        block, n_titles = _MD_LINK_TITLE.subn(r"\1)", block)
        hidden += n_comments + n_titles
        opens_block = True  # a definition cannot interrupt a paragraph: it starts a block, or follows one
        for line in block.split("\n"):
            if opens_block and _MD_DEFINITION.match(line):
                hidden += 1
                continue
            out.append(line)
            opens_block = not line.strip() or bool(_ATX.match(line))

    fence: str | None = None
    for line in text.split("\n"):
        fenced = _FENCE.match(line)
        if fence is not None:
            out.append(line)
            if (
                fenced
                and fenced.group(1)[0] == fence[0]
                and len(fenced.group(1)) >= len(fence)
                and not fenced.group(2).strip()
            ):
                fence = None
        elif fenced and not (fenced.group(1)[0] == "`" and "`" in fenced.group(2)):
            flush()
            out.append(line)
            fence = fenced.group(1)
        else:
            prose.append(line)
    flush()
    return "\n".join(out), hidden


def _parse_markdown(text: str) -> tuple[str, list[_Part]]:
    """Split at ATX headings outside fenced code; each section keeps its heading line at the top."""
    text = _normalise(text)
    title = ""
    path: list[tuple[int, str]] = []  # (level, heading) from the outermost down
    sections: list[tuple[tuple[str, ...], list[str]]] = [((), [])]
    fence: str | None = None  # the opening fence while inside a fenced code block
    for line in text.split("\n"):
        fenced = _FENCE.match(line)
        if fence is not None:
            if (
                fenced
                and fenced.group(1)[0] == fence[0]
                and len(fenced.group(1)) >= len(fence)
                and not fenced.group(2).strip()
            ):
                fence = None
        elif fenced and not (fenced.group(1)[0] == "`" and "`" in fenced.group(2)):
            fence = fenced.group(1)
        elif heading := _ATX.match(line):
            level = len(heading.group(1))
            words = _ATX_CLOSING.sub("", heading.group(2).strip()).strip()
            if words:
                title = title or words
                while path and path[-1][0] >= level:
                    path.pop()
                path.append((level, words))
                sections.append((tuple(w for _, w in path), [line]))
                continue
        sections[-1][1].append(line)
    return title, [("\n".join(lines), None, heading) for heading, lines in sections]


# --------------------------------------------------------------------------- PDF


def _parse_pdf(path: Path, data: bytes) -> tuple[str, list[_Part], int, int]:
    """One part per page, 1-based; empty pages are dropped by _assemble. Also: how many invisible text runs
    were left out."""
    name = _display(path)
    encrypted = f"{name}: the PDF is encrypted (password-protected); decrypt it first"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            reader = PdfReader(io.BytesIO(data))
            if reader.is_encrypted and reader.decrypt("") == PasswordType.NOT_DECRYPTED:
                raise DocumentError(encrypted)
            read = [_visible_page_text(page) for page in reader.pages]
            pages = [text for text, _ in read]
            hidden = sum(n for _, n in read)
            title = _pdf_title(reader)
    except DocumentError:
        raise
    except FileNotDecryptedError:
        raise DocumentError(encrypted) from None
    except DependencyError as e:
        raise DocumentError(
            f"{name}: reading this PDF needs an extra package ({_one_line(e)}); "
            "pip install cryptography, or decrypt the PDF first"
        ) from None
    except Exception as e:  # pypdf raises many kinds (PdfReadError, ValueError, KeyError, …) on damaged files
        raise DocumentError(f"{name}: not a readable PDF ({_one_line(e)})") from None
    if not pages:
        raise DocumentError(f"{name}: the PDF has no pages")
    return title, [(text, number, ()) for number, text in enumerate(pages, start=1)], len(pages), hidden


_SHOW_TEXT = frozenset({b"Tj", b"TJ", b"'", b'"'})
_IMAGES = frozenset({b"Do", b"BI", b"INLINE IMAGE"})
_TINY_PT = 2.0  # text drawn smaller than this (after the text and page matrices) cannot be read
_WHITE = 0.95  # a grey or RGB component at least this light; CMYK: every ink at most 1 - this


@dataclass
class _InkState:
    """The parts of a PDF graphics state that decide whether text can be seen (saved by q, restored by Q)."""

    fill: tuple[float, ...] = (0.0,)
    stroke: tuple[float, ...] = (0.0,)
    mode: int = 0  # text render mode (Tr)
    alpha: float = 1.0  # fill alpha (ExtGState /ca)
    size: float = 12.0  # font size (Tf)
    ctm: float = 1.0  # the page matrix's vertical scale (cm)


class _Ink:
    """Follows a content stream's graphics state (q/Q, colours, render mode, transparency, font size, matrices)
    and says, for each text-showing operator, why nobody sees its text: "white", "tiny", "transparent",
    "invisible" (render mode 3 or 7) — or None."""

    def __init__(self, alphas: dict[str, float]) -> None:
        self.alphas = alphas  # ExtGState name → fill alpha (/ca)
        self.state = _InkState()
        self.stack: list[_InkState] = []
        self.tm = 1.0  # the text matrix's vertical scale
        self.images = False  # the page draws an image or form (an OCR layer's text lies over it)
        self.why: list[str] = []  # one entry per invisible text-showing operator met

    def visit(self, op: bytes, args: list, cm: object, tm: object) -> None:
        """``extract_text``'s ``visitor_operand_before``."""
        self.feed(op, args)

    def feed(self, op: bytes, args: list) -> str | None:
        st = self.state
        try:
            if op == b"q":
                self.stack.append(replace(st))
            elif op == b"Q" and self.stack:
                self.state = self.stack.pop()
            elif op in (b"g", b"rg", b"k", b"sc", b"scn"):
                st.fill = _colour(args, st.fill)
            elif op in (b"G", b"RG", b"K", b"SC", b"SCN"):
                st.stroke = _colour(args, st.stroke)
            elif op == b"cs":
                st.fill = (0.0,)
            elif op == b"CS":
                st.stroke = (0.0,)
            elif op == b"Tr":
                st.mode = int(args[0])
            elif op == b"Tf":
                st.size = abs(float(args[1]))
            elif op == b"Tm":
                self.tm = math.hypot(float(args[2]), float(args[3]))
            elif op == b"BT":
                self.tm = 1.0
            elif op == b"cm":
                st.ctm *= math.hypot(float(args[2]), float(args[3]))
            elif op == b"gs":
                st.alpha = self.alphas.get(str(args[0]), st.alpha)
            elif op in _IMAGES:
                self.images = True
            elif op in _SHOW_TEXT:
                why = self._why()
                if why is not None:
                    self.why.append(why)
                return why
        except (IndexError, TypeError, ValueError):
            pass  # a malformed operator: the text is judged with the state as it was
        return None

    def _why(self) -> str | None:
        st = self.state
        if st.mode in (3, 7):
            return "invisible"
        if st.alpha <= 0.05:
            return "transparent"
        if st.size * self.tm * st.ctm < _TINY_PT:
            return "tiny"
        inks = [st.fill] if st.mode in (0, 4) else [st.stroke] if st.mode in (1, 5) else [st.fill, st.stroke]
        if all(_is_white(c) for c in inks):
            return "white"
        return None

    def dropped(self, why: str | None) -> bool:
        """Whether text of this verdict is left out: invisible-mode text stays on a page with an image (OCR)."""
        return why is not None and not (why == "invisible" and self.images)


def _colour(args: list, before: tuple[float, ...]) -> tuple[float, ...]:
    values = tuple(float(a) for a in args if isinstance(a, (int, float)))
    return values if len(values) in (1, 3, 4) and len(values) == len(args) else before


def _is_white(colour: tuple[float, ...]) -> bool:
    if len(colour) == 4:  # CMYK: no ink
        return all(c <= 1 - _WHITE for c in colour)
    return all(c >= _WHITE for c in colour)


def _alphas(page: PageObject) -> dict[str, float]:
    """The page's ExtGState fill alphas (/ca), by resource name."""
    out: dict[str, float] = {}
    try:
        resources: Any = page["/Resources"].get_object()
        states: Any = resources.get("/ExtGState")
        for name, state in (states.get_object() if states is not None else {}).items():
            ca = state.get_object().get("/ca")
            if ca is not None:
                out[str(name)] = float(ca)
    except Exception:
        pass  # no resources, or damaged ones: no transparency known
    return out


def _visible_page_text(page: PageObject) -> tuple[str, int]:
    """The page's text without the runs nobody sees, and how many runs were left out. A page with none is read
    once, as before; otherwise its content stream is rewritten without those runs and read again."""
    alphas = _alphas(page)
    ink = _Ink(alphas)
    text = page.extract_text(visitor_operand_before=ink.visit) or ""
    if not any(ink.dropped(why) for why in ink.why):
        return text, 0
    images = ink.images
    ink = _Ink(alphas)
    ink.images = images
    stream = ContentStream(page.get_contents(), page.pdf)
    kept = [(args, op) for args, op in stream.operations if not ink.dropped(ink.feed(op, args))]
    stream.operations = kept
    rewritten = DecodedStreamObject()
    rewritten.set_data(stream.get_data())  # read from bytes again: the fonts decode the strings as in the file
    page[NameObject("/Contents")] = rewritten
    return page.extract_text() or "", sum(1 for why in ink.why if ink.dropped(why))


def _pdf_title(reader: PdfReader) -> str:
    """The metadata title, or "" when there is none or it cannot be read (a title is never worth failing for)."""
    try:
        metadata = reader.metadata
        title = metadata.title if metadata is not None else None
    except Exception:
        return ""
    return title.strip() if isinstance(title, str) else ""


# --------------------------------------------------------------------------- HTML

_DROPPED = ("script", "style", "noscript", "template", "head", "title")
_BLOCKS = frozenset(
    {
        "address", "article", "aside", "blockquote", "body", "caption", "center", "dd", "details", "dialog",
        "dir", "div", "dl", "dt", "fieldset", "figcaption", "figure", "footer", "form", "header", "hgroup",
        "hr", "html", "legend", "li", "main", "menu", "nav", "ol", "p", "section", "summary", "table",
        "tbody", "tfoot", "thead", "tr", "ul",
    }
)  # fmt: skip
_CELLS = frozenset({"td", "th"})
_HEADINGS = {f"h{n}": n for n in range(1, 7)}
_LINE_BREAK = "\ue000"  # stands for <br> inside a block until the block's whitespace is collapsed
_SPACES = re.compile(r"\s+")


def _collapse(text: str) -> str:
    """Collapse whitespace inside a block, keeping <br> as line breaks."""
    lines = (_SPACES.sub(" ", line).strip() for line in text.split(_LINE_BREAK))
    return "\n".join(lines).strip("\n")


# An inline style that keeps an element from being drawn (a style sheet's classes are not read).
_UNDRAWN = re.compile(
    r"(?:^|;)\s*(?:display\s*:\s*none|visibility\s*:\s*(?:hidden|collapse)|font-size\s*:\s*0(?:\.0*)?"
    r"(?:px|pt|em|rem|%)?|opacity\s*:\s*0(?:\.0*)?)\s*(?:!important\s*)?(?:;|$)",
    re.IGNORECASE,
)


def _undrawn(tag: Tag) -> bool:
    """An element the browser does not draw: the ``hidden`` attribute or an inline style that hides it."""
    if tag.has_attr("hidden"):
        return True
    style = tag.get("style")
    return isinstance(style, str) and bool(_UNDRAWN.search(style))


def _parse_html(path: Path, data: bytes) -> tuple[str, list[_Part], int]:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # MarkupResemblesLocatorWarning, XMLParsedAsHTMLWarning
            soup = BeautifulSoup(data, "html.parser")  # the encoding comes from a BOM or <meta charset>
    except Exception as e:
        raise DocumentError(f"{_display(path)}: not readable HTML ({_one_line(e)})") from None

    title = _collapse(soup.title.get_text()) if soup.title is not None else ""
    for tag in soup.find_all(_DROPPED):
        tag.decompose()
    # what a reader does not see: comments (never read as text below) and elements that are not drawn
    hidden = sum(1 for node in soup.find_all(string=lambda s: isinstance(s, Comment)) if str(node).strip())
    undrawn = [tag for tag in soup.find_all(_undrawn)]
    hidden += sum(1 for tag in undrawn if tag.get_text().strip())
    for tag in undrawn:
        if not tag.decomposed:
            tag.decompose()

    def inline_text(tag: Tag) -> str:
        pieces: list[str] = []
        for node in tag.descendants:
            if isinstance(node, NavigableString):
                if not isinstance(node, PreformattedString):
                    pieces.append(str(node))
            elif isinstance(node, Tag) and (node.name == "br" or node.name in _BLOCKS or node.name in _CELLS):
                pieces.append(" ")
        return _SPACES.sub(" ", "".join(pieces)).strip()

    first_h1 = ""
    heading_path: list[tuple[int, str]] = []
    sections: list[tuple[tuple[str, ...], list[str]]] = [((), [])]
    buffer: list[str] = []

    def flush() -> None:
        text = _collapse("".join(buffer))
        buffer.clear()
        if text:
            sections[-1][1].append(text)

    # An explicit stack, not recursion: deeply nested pages must not hit Python's recursion limit.
    todo: list[tuple[PageElement, bool]] = [(child, False) for child in reversed(soup.contents)]
    while todo:
        node, leaving = todo.pop()
        if leaving:
            if isinstance(node, Tag) and node.name in _CELLS:
                buffer.append(" ")
            else:
                flush()
            continue
        if isinstance(node, NavigableString):
            if not isinstance(node, PreformattedString):  # comments, doctype, CDATA, processing instructions
                buffer.append(str(node))
            continue
        if not isinstance(node, Tag):
            continue
        name = node.name
        if name == "br":
            buffer.append(_LINE_BREAK)
        elif name in _HEADINGS:
            flush()
            words = inline_text(node)
            if words:
                level = _HEADINGS[name]
                if level == 1 and not first_h1:
                    first_h1 = words
                while heading_path and heading_path[-1][0] >= level:
                    heading_path.pop()
                heading_path.append((level, words))
                sections.append((tuple(w for _, w in heading_path), [words]))
        elif name == "pre":
            flush()
            text = node.get_text()
            if text.strip():
                sections[-1][1].append(text.removeprefix("\n").rstrip())
        elif name in _BLOCKS or name in _CELLS:
            if name in _BLOCKS:
                flush()
            else:
                buffer.append(" ")
            todo.append((node, True))
            todo.extend((child, False) for child in reversed(node.contents))
        else:
            todo.extend((child, False) for child in reversed(node.contents))
    flush()
    return title or first_h1, [("\n\n".join(blocks), None, heading) for heading, blocks in sections], hidden
