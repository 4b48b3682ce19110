"""Words of a text for matching (retrieval's BM25 query, grounding features): one tokenizer, one stop list."""

from __future__ import annotations

import re

WORD = re.compile(r"\w+", re.UNICODE)
STOPWORDS = frozenset(
    "a an the of in on at to for from by with and or is are was were be been being what which who whom whose "
    "when where why how did do does done this that these those it its as into than then there their they he "
    "she his her him not no yes i you we me my your our can could would should will shall may might must "
    "about after before during over under between also just only any some all each many much more most".split()
)


def content_words(text: str) -> list[str]:
    """The text's words, lower-cased, without stop words (in order, repeats kept)."""
    return [w for w in (m.group(0).lower() for m in WORD.finditer(text)) if w not in STOPWORDS]
