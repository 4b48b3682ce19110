"""Prompt text: the context-grounded QA prompt and the paper's few-shot verification prompt."""

from __future__ import annotations

import re
from functools import lru_cache
from importlib import resources

ABSTAIN = "unanswerable"

QA_SYSTEM = (
    "You answer questions about a document using only the document. "
    "Reply with the shortest exact phrase from the document that answers the question, "
    "usually a few words, with no explanation. "
    f"If the document does not contain the answer, reply exactly: {ABSTAIN}"
)


def qa_messages(context: str, question: str) -> list[dict[str, str]]:
    """Chat messages for the answer; the backend renders them with the model's chat template."""
    return [
        {"role": "system", "content": QA_SYSTEM},
        {"role": "user", "content": f"Document:\n{context.strip()}\n\nQuestion: {question.strip()}"},
    ]


def qa_completion(context: str, question: str) -> str:
    """The same prompt as plain completion text, for models used without a chat template."""
    return f"{QA_SYSTEM}\n\nDocument:\n{context.strip()}\n\nQuestion: {question.strip()}\n\nAnswer: The answer is"


@lru_cache(maxsize=1)
def verification_template() -> str:
    """The AutoMix paper's four-shot verification prompt, ending at ``Evaluation:``."""
    return (resources.files("automix_local") / "data" / "verification-prompt.txt").read_text(encoding="utf-8")


def verification_prompt(context: str, question: str, answer: str) -> str:
    tpl = verification_template()
    return (
        tpl.replace("{context}", context.strip())
        .replace("{question}", question.strip())
        .replace("{generated_answer}", answer.strip())
        .rstrip()
    )


VERDICT_PREFIX = "\n\nVerification Decision: The AI generated answer is"


def verdict_prompt(context: str, question: str, answer: str, evaluation: str | None = None) -> str:
    """The verification prompt continued up to the verdict word (one forward pass reads it).

    Without ``evaluation`` the reasoning line is skipped; with it, the model's own greedy
    evaluation sentence is placed before the decision, as in the few-shot examples.
    """
    base = verification_prompt(context, question, answer)
    if evaluation is None:
        base = base[: -len("Evaluation:")].rstrip()
        return base + VERDICT_PREFIX
    return f"{base} {evaluation.strip()}{VERDICT_PREFIX}"


_LEAD = re.compile(r"^(the answer is|answer:)\s*", re.IGNORECASE)


def clean_answer(text: str) -> str:
    """The answer as shown: one line, without a restated prefix, quotes or a trailing period."""
    line = text.strip().splitlines()[0].strip() if text.strip() else ""
    line = _LEAD.sub("", line).strip()
    if len(line) > 1 and line[0] == line[-1] and line[0] in "\"'":
        line = line[1:-1].strip()
    if line.endswith(".") and not line.endswith(".."):
        line = line[:-1].rstrip()
    return line


def is_abstention(answer: str) -> bool:
    a = answer.strip().lower().strip(".!\"' ")
    return a == ABSTAIN or a.startswith(ABSTAIN) or a in {"none", "n/a", "unknown", "no answer"}
