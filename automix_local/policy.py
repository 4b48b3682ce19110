"""The privacy policy: a pure function from (request, policy) to what may leave the machine.

``decide(request, policy)`` never touches the network or the disk. It answers one of

- ``blocked``: nothing may be sent (``remote = "never"``, a private document, a non-redactable rule);
- ``allowed``: the request may go out exactly as the user wrote it (question and whole context);
- ``transformed``: it may go out after the policy cut the context down (``send``) and/or replaced
  personal data by placeholders (``redact``).

``needs_approval`` is set under ``remote = "ask"``: the caller must show the exact request (the
egress receipt) and send nothing unless the user approves. The cascade, the CLI and the TUI all
call this one function, so what the UI shows is what the code enforces.
"""

from __future__ import annotations

import fnmatch
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from .config import PolicyConfig
from .names import NerModel, NerUnavailable

Action = Literal["allowed", "blocked", "transformed"]

_WORD = re.compile(r"\w+", re.UNICODE)
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]*\s+(?=[\"'(\[]?[A-Z0-9])|\n\s*\n")
_STOP = frozenset(
    "a an the of in on at to for from by with and or is are was were be been what which who whom whose when "
    "where why how did do does this that these those it its as into than then there their they he she his her "
    "not no yes".split()
)


class PrivateText(str):
    """Text drawn from a private document — an earlier answer given over private passages — which never leaves,
    whatever ``send`` says (only the question it answered may). A ``str``, so a conversation's turns carry it
    unchanged to ``decide``; only its type says where it came from. A document's instruction to repeat a private
    document (issue 23 §3) could otherwise put that text in an answer, and the next question's turns would carry
    it out."""

    __slots__ = ()


@dataclass(frozen=True)
class EgressRequest:
    """What the cascade would like to send to a remote tier."""

    tier: str
    question: str
    context: str = ""
    document: str | None = None  # the path the context was read from, if any
    tags: tuple[str, ...] = ()  # tags of that document / conversation
    local_answer: str | None = None  # the best local answer, whose span "relevant" looks for
    passages: tuple[str, ...] | None = None  # retrieved passages, when the context came from retrieval
    # earlier turns of the conversation (question, answer shown); an answer that is a PrivateText never leaves
    history: tuple[tuple[str, str], ...] = ()
    # with passages: the file each passage came from (the document library), for the private rules
    passage_documents: tuple[str | None, ...] | None = None


@dataclass(frozen=True)
class PolicyResult:
    action: Action
    reason: str  # one line for the user: why blocked, or what was done to the request
    needs_approval: bool = False
    send: str = "question"
    question: str = ""  # what will be sent (redacted)
    context: str = ""  # the part of the context that will be sent (redacted); "" for send = "question"
    mapping: dict[str, str] = field(default_factory=dict)  # placeholder → original, to map the answer back
    counts: dict[str, int] = field(default_factory=dict)  # detector → spans redacted
    # the earlier turns that will be sent (redacted), oldest first; an answer of None is withheld: under
    # send = "question" only the user's own earlier questions leave, never what the document answered
    history: tuple[tuple[str, str | None], ...] = ()

    @property
    def allowed(self) -> bool:
        return self.action != "blocked"


def private_match(document: str | None, tags: Sequence[str], rules: Sequence[str]) -> str | None:
    """The ``private`` rule that covers this document, or None.

    A rule is ``tag:NAME`` (matches a document or conversation tag) or a path glob: ``~`` expands,
    ``**`` crosses directories, and a rule naming a directory covers everything under it.
    """
    tagset = {t.strip().lower() for t in tags}
    path = None
    if document:
        path = os.path.abspath(os.path.expanduser(document))
    for rule in rules:
        if rule.startswith("tag:"):
            if rule[4:].strip().lower() in tagset:
                return rule
            continue
        if path is None:
            continue
        pattern = os.path.abspath(os.path.expanduser(rule))
        if path == pattern or path.startswith(pattern.rstrip(os.sep) + os.sep):
            return rule
        if fnmatch.fnmatchcase(path, pattern) or fnmatch.fnmatchcase(path, pattern.replace("**/", "")):
            return rule
        if os.sep not in rule and fnmatch.fnmatchcase(Path(path).name, rule):
            return rule  # a bare pattern such as "*.secret.md" matches the file name anywhere
    return None


def sentences(text: str) -> list[tuple[int, int]]:
    """(start, end) character spans of the text's sentences (and paragraphs)."""
    spans, start = [], 0
    for m in _SENTENCE_END.finditer(text):
        if text[start : m.start()].strip():
            spans.append((start, m.start()))
        start = m.end()
    if text[start:].strip():
        spans.append((start, len(text)))
    return spans


def _content_words(text: str) -> set[str]:
    return {w for w in (x.lower() for x in _WORD.findall(text)) if w not in _STOP}


def relevant_window(context: str, question: str, answer: str | None, passages: Sequence[str] | None = None) -> str:
    """The smallest part of the context the answer depends on.

    Retrieved passages when there are any (only those that contain the local answer, when some do: the
    passages it cites); else the sentence(s) of the context holding the local
    answer's span; else (a paraphrase, an abstention) the two sentences sharing most words with the answer
    (counted twice) and the question.
    """
    if passages:
        # retrieved passages: those holding the local answer (the ones it cites), else all of them
        a = " ".join(_WORD.findall((answer or "").lower()))
        cited = [p for p in passages if a and f" {a} " in " " + " ".join(_WORD.findall(p.lower())) + " "]
        return "\n\n".join(p.strip() for p in (cited or passages) if p.strip())
    spans = sentences(context)
    if not spans:
        return ""
    a = (answer or "").strip()
    if a:
        at = context.lower().find(a.lower())
        if at >= 0:
            end = at + len(a)
            chosen = [s for s in spans if s[0] < end and s[1] > at]
            return context[chosen[0][0] : chosen[-1][1]].strip()
    # no verbatim span (a paraphrase, an abstention): the sentences sharing most words with the answer
    # (weighted double) and the question
    q, aw = _content_words(question), _content_words(a)
    scored = sorted(
        (
            (2 * len(aw & (w := _content_words(context[s:e]))) + len(q & w), -i, (s, e))
            for i, (s, e) in enumerate(spans)
        ),
        reverse=True,
    )
    best = sorted(span for score, _, span in scored[:2] if score > 0)
    if not best:
        return ""
    return "\n".join(context[s:e].strip() for s, e in best)


def decide(request: EgressRequest, policy: PolicyConfig, ner: NerModel | None = None) -> PolicyResult:
    """What may leave the machine for this request under this policy. Pure: no I/O.

    ``ner``: the loaded NER model, when `redact` asks for names (person, location, organization)."""
    if policy.remote == "never":
        return PolicyResult("blocked", 'policy remote = "never": nothing is sent to remote tiers', send=policy.send)
    rule = private_match(request.document, request.tags, policy.private)
    if rule is not None:
        where = request.document or ", ".join(request.tags)
        return PolicyResult("blocked", f"{where} is private (policy rule {rule!r}): answered locally", send=policy.send)
    withheld = 0
    passages = request.passages
    if passages is not None and request.passage_documents is not None:
        # retrieved passages: those of private documents never leave, even beside others
        kept = [
            p
            for p, doc in zip(passages, request.passage_documents, strict=True)
            if private_match(doc, request.tags, policy.private) is None
        ]
        withheld = len(passages) - len(kept)
        if passages and not kept:
            return PolicyResult(
                "blocked", "every retrieved passage is from a private document: answered locally", send=policy.send
            )
        passages = tuple(kept)
    if policy.send == "full":
        context = "\n\n".join(p.strip() for p in passages) if passages is not None else request.context.strip()
    elif policy.send == "relevant":
        context = relevant_window(request.context, request.question, request.local_answer, passages)
    else:
        context = ""
    question = request.question.strip()
    with_answers = policy.send != "question"
    history: list[tuple[str, str | None]] = [
        (q.strip(), a.strip() if with_answers and not isinstance(a, PrivateText) else None) for q, a in request.history
    ]
    private_answers = sum(1 for _, a in request.history if with_answers and isinstance(a, PrivateText))
    mapping: dict[str, str] = {}
    counts: dict[str, int] = {}
    if policy.redact:
        from .redact import Redactor

        try:
            r = Redactor(policy.redact, bare_numbers=policy.redact_bare_numbers, ner=ner)
        except NerUnavailable as exc:  # refused at start; if it happens anyway, nothing leaves
            return PolicyResult("blocked", f"not sent: {exc}", send=policy.send)
        parts = []
        redacted: list[tuple[str, str | None]] = []
        for q, a in history:  # the earlier turns first: placeholders number in the order they are sent
            rq = r.redact(q, mapping)
            ra = r.redact(a, mapping) if a is not None else None
            parts += [rq.counts] + ([ra.counts] if ra is not None else [])
            redacted.append((rq.text, ra.text if ra is not None else None))
        history = redacted
        rq = r.redact(question, mapping)
        rc = r.redact(context, mapping)
        question, context = rq.text, rc.text
        for part in (*parts, rq.counts, rc.counts):
            for kind, n in part.items():
                counts[kind] = counts.get(kind, 0) + n
    notes = []
    if policy.send == "question":
        notes.append("only the question is sent")
    elif policy.send == "relevant":
        notes.append(f"the question and {len(context)} of {len(request.context.strip())} context characters are sent")
    if withheld and policy.send != "question":
        notes.append(f"{withheld} passage{'s' if withheld != 1 else ''} of private documents withheld")
    if history:
        what = "questions" if not with_answers else "questions and answers"
        notes.append(f"with {len(history)} earlier turn{'s' if len(history) != 1 else ''} ({what})")
    if private_answers:
        are = "answer drawn from private documents" if private_answers == 1 else "answers drawn from private documents"
        notes.append(f"{private_answers} earlier {are} withheld")
    if counts:
        notes.append("redacted " + ", ".join(f"{n} {k}" for k, n in sorted(counts.items())))
    transformed = (
        bool(counts)
        or bool(withheld)
        or bool(private_answers)
        or (policy.send != "full" and (bool(request.context.strip()) or bool(history)))
    )
    action: Action = "transformed" if transformed else "allowed"
    reason = "; ".join(notes) if notes else "the question and the whole context are sent"
    return PolicyResult(
        action,
        reason,
        needs_approval=policy.remote == "ask",
        send=policy.send,
        question=question,
        context=context,
        mapping=mapping,
        counts=counts,
        history=tuple(history),
    )


def describe(policy: PolicyConfig) -> str:
    """One line for status bars and receipts."""
    parts = [f"remote {policy.remote}"]
    if policy.remote != "never":
        parts.append(f"send {policy.send}")
        if policy.redact:
            parts.append("redact " + ",".join(r if re.match(r"^[a-z_]+$", r) else "regex" for r in policy.redact))
    if policy.private:
        parts.append(f"{len(policy.private)} private rule{'s' if len(policy.private) != 1 else ''}")
    return " · ".join(parts)


def override(policy: PolicyConfig, changes: Mapping[str, str]) -> PolicyConfig:
    """A per-conversation override (remote / send), validated like the config file."""
    from dataclasses import replace

    from .config import REMOTE_MODES, SEND_MODES

    kw: dict[str, Any] = {}
    for key, value in changes.items():
        options = {"remote": REMOTE_MODES, "send": SEND_MODES}.get(key)
        if options is None or value not in options:
            raise ValueError(f"policy override {key} = {value!r}: expected one of {options or ('remote', 'send')}")
        kw[key] = value
    return replace(policy, **kw)
