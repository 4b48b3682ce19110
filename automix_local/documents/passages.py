"""Passages: a parsed document cut by its structure into pieces an answer can come from.

Sections (PDF pages, Markdown/HTML headings) are never crossed; inside a section, paragraphs are kept
whole when they fit and packed together up to ``max_words``; a paragraph longer than that is cut at
sentence ends where possible, with ``overlap_words`` of overlap so that a sentence cut in two is whole
in one of the passages. Every passage keeps its document's page or heading path and its character
span in the document's text, so a citation can point at exactly what was used.

The budget is in words (about 1.3 tokens each for English with these tokenizers): indexing must not need
a chat model loaded. What goes into a prompt is counted in real tokens when it is packed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .parse import ParsedDocument, Section

MAX_WORDS = 180
OVERLAP_WORDS = 30

_WORD = re.compile(r"\S+")
_PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n")
_SENTENCE_END = re.compile(r"[.!?][\"')\]]*$")


@dataclass(frozen=True)
class Passage:
    text: str
    page: int | None
    heading: tuple[str, ...]
    start: int  # character span in ParsedDocument.text
    end: int


def split(doc: ParsedDocument, max_words: int = MAX_WORDS, overlap_words: int = OVERLAP_WORDS) -> list[Passage]:
    """The document's passages, in reading order."""
    if max_words < 2 or not 0 <= overlap_words < max_words:
        raise ValueError(f"max_words {max_words} and overlap_words {overlap_words}: need 0 <= overlap < max >= 2")
    out: list[Passage] = []
    for section in doc.sections:
        out.extend(_split_section(doc.text, section, max_words, overlap_words))
    return out


def _split_section(text: str, section: Section, max_words: int, overlap: int) -> list[Passage]:
    words = [(m.start() + section.start, m.end() + section.start) for m in _WORD.finditer(section.text)]
    if not words or (section.heading and section.text.strip().lstrip("#").strip() == section.heading[-1]):
        return []  # nothing, or only the heading line of a section whose body comes under its subheadings
    # word i starts a paragraph when a blank line separates it from word i - 1
    breaks = {0} | {
        i for i in range(1, len(words)) if _PARAGRAPH_BREAK.search(text, words[i - 1][1], words[i][0]) is not None
    }
    out: list[Passage] = []
    i = 0
    while i < len(words):
        j = min(len(words), i + max_words)  # words[i:j] at most
        if j < len(words):
            j = _best_end(text, words, breaks, i, j)
        start, end = words[i][0], words[j - 1][1]
        out.append(Passage(text[start:end], section.page, section.heading, start, end))
        if j >= len(words):
            break
        # a cut at a paragraph boundary needs no overlap; a cut inside a paragraph repeats its last words
        i = j if j in breaks else max(i + 1, j - overlap)
    return out


def _best_end(text: str, words: list[tuple[int, int]], breaks: set[int], i: int, j: int) -> int:
    """Where to end a passage that would otherwise end at word j (exclusive): the last paragraph break in
    its second half, else the last sentence end there, else j."""
    half = i + (j - i) // 2
    for k in range(j, half, -1):
        if k in breaks:
            return k
    for k in range(j, half, -1):
        s, e = words[k - 1]
        if _SENTENCE_END.search(text[s:e]):
            return k
    return j
