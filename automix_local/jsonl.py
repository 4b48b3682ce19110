"""JSON Lines reading shared by the evaluation harness and the report: errors name the file and line."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def read_jsonl(path: Path, error: type[Exception], what: str = "data file") -> Iterator[tuple[int, Any]]:
    """(line number, parsed object) for every non-blank line; ``error`` carries one line for the user."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise error(f"{what} not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise error(f"cannot read {what} {path}: {exc}") from None
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            yield n, json.loads(line)
        except ValueError as exc:
            raise error(f"{path}:{n}: not valid JSON ({exc})") from None
