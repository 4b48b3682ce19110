"""Exporting a saved conversation (ctrl+s): Markdown to read, and JSON whose turns are the saved answers.

Each done turn of the JSON is the object the ask service saved (``Answer.to_json()``): the same shape as
``ask --json`` prints and ``serve`` returns in its ``automix`` field.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from ..storage import Conversation, Turn


def conversation_markdown(conv: Conversation) -> str:
    lines = [f"# {conv.title}", "", "## Context", "", conv.context.strip() or "_(empty)_", ""]
    for turn in conv.turns:
        lines += [f"## {turn.question}", ""]
        t = turn.trace
        if t and t["steps"]:
            conf = "" if t.get("confidence") is None else f", confidence {t['confidence']:.2f}"
            lines += [
                turn.answer or "",
                "",
                f"_Answered by {t['tier']} ({t['model']}){conf}; {t['decision']}; "
                f"{t['seconds']:.1f} s, cost {t['cost']:.2f}._",
                "",
            ]
            for s in t["steps"]:
                c = "–" if s.get("confidence") is None else f"{s['confidence']:.2f}"
                lines.append(
                    f"- {s['tier']}: “{s['answer']}” confidence {c}, {s.get('decision') or 'final'}"
                    + (f" ({s['reason']})" if s.get("reason") else "")
                )
            lines.append("")
        elif t:  # answered without a model (not in the documents)
            lines += [t.get("answer_shown") or turn.answer or "", ""]
        else:
            lines += [f"_({turn.status})_", ""]
    return "\n".join(lines)


def turn_json(turn: Turn) -> dict[str, Any]:
    """A done turn: its saved answer as is; a turn without one: its question, status and message."""
    if turn.trace is not None:
        return turn.trace
    out: dict[str, Any] = {"question": turn.question, "status": turn.status}
    if turn.answer:
        out["error"] = turn.answer
    return out


def conversation_json(conv: Conversation) -> dict[str, Any]:
    return {
        "id": conv.id,
        "title": conv.title,
        "context": conv.context,
        "document": conv.document,
        "scope": conv.scope,
        "policy": conv.policy,
        "created": conv.created,
        "updated": conv.updated,
        "turns": [turn_json(t) for t in conv.turns],
    }


def export(conv: Conversation, out_dir: Path) -> tuple[Path, Path]:
    """Write ``conversation-ID-TIME.md`` and ``.json`` under ``out_dir``; their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = out_dir / f"conversation-{conv.id}-{time.strftime('%Y%m%d-%H%M%S')}"
    md, js = stem.with_suffix(".md"), stem.with_suffix(".json")
    md.write_text(conversation_markdown(conv), encoding="utf-8")
    js.write_text(json.dumps(conversation_json(conv), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return md, js
