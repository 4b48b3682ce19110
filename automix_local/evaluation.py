"""`eval run`: record every tier's answer, score, cost and every confidence signal, per item.

One JSON line per item in ``DIR/items.jsonl``, written as it goes; ``DIR/run.json`` holds what the
run is (data file and its sha256, selection, models, strategies). Re-running the same command
resumes after the last complete line; Ctrl+C loses nothing already written.

Items are processed in small chunks, tier by tier; within a tier, item by item as the app runs: the
answer, then its verifications right after it (in the shared layout they continue from the state after
the answer, which is what makes them cheap), through the same ``Cascade.answer_stream`` the app and
`ask` use, so every feature is computed by one code path.

An item may carry ``history``: the conversation's earlier turns as ``[[question, answer], …]``, oldest
first (``bench/data/followups.jsonl``). They reach every tier's answer prompt and the verification as a
conversation's do in the app (``Cascade.fit_history``: the newest that fit ``[cascade] history_tokens``),
and the record keeps them (``history``) with how many each tier's prompt held (``turns``).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import platform
import random
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from .backends.base import BackendError, run_to_end
from .cascade import Cascade, CascadeError
from .config import Config
from .errors import AutomixError
from .jsonl import read_jsonl
from .routers import AlwaysSmall
from .scoring import score_item
from .verification import make_verifier

RUN_FILE = "run.json"
ITEMS_FILE = "items.jsonl"
REQUIRED = ("id", "context", "question")


class EvalError(AutomixError):
    """A run that cannot start or resume as asked. str() is the one line shown to the user."""


def load_items(path: Path) -> list[dict[str, Any]]:
    """Read a JSONL file in the shared schema; errors name the file and line."""
    items = []
    for n, item in read_jsonl(path, EvalError):
        missing = [k for k in REQUIRED if not isinstance(item, dict) or k not in item]
        if missing:
            raise EvalError(
                f"{path}:{n}: missing field(s) {', '.join(missing)} (see the JSONL schema in docs/quality.md)"
            )
        if "history" in item and not _is_history(item["history"]):
            raise EvalError(f"{path}:{n}: history must be a list of [question, answer] pairs of strings, oldest first")
        items.append(item)
    if not items:
        raise EvalError(f"{path}: no items")
    return items


def _is_history(value: Any) -> bool:
    return isinstance(value, list) and all(
        isinstance(turn, list | tuple) and len(turn) == 2 and all(isinstance(x, str) for x in turn) for turn in value
    )


def item_history(item: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    """The item's earlier turns as (question, answer) pairs, oldest first; () for a single question."""
    return tuple((q, a) for q, a in item.get("history") or ())


def select_items(items: Sequence[dict[str, Any]], limit: int | None, seed: int | None) -> list[dict[str, Any]]:
    """The first ``limit`` items by line order, or, with a seed, of a seeded shuffle."""
    chosen = list(items)
    if seed is not None:
        random.Random(seed).shuffle(chosen)
    return chosen[:limit] if limit else chosen


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def machine_info() -> dict[str, Any]:
    import llama_cpp

    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "llama_cpp_python": llama_cpp.__version__,
    }


def run_spec(
    config: Config, data: Path, limit: int | None, seed: int | None, verifiers: Sequence[str], hidden: bool = False
) -> dict:
    return {
        "hidden": hidden,
        "data": str(data.resolve()),
        "data_sha256": _sha256(data),
        "limit": limit,
        "seed": seed,
        "config": str(config.source_file),
        "tiers": [
            {
                "name": t.name,
                "sha256": t.sha256,
                "source": t.source.describe() if t.source else t.base_url,
                "cost": t.cost,
                "n_ctx": t.n_ctx,
                "max_tokens": t.max_tokens,
            }
            for t in config.tiers
        ],
        "verifiers": list(verifiers),
        "layout": config.cascade.layout,
        "answer_examples": config.cascade.answer_examples,
        "samples": config.cascade.samples,
        "temperature": config.cascade.temperature,
    }


_KEYS = (
    "data_sha256",
    "limit",
    "seed",
    "tiers",
    "verifiers",
    "layout",
    "answer_examples",
    "samples",
    "temperature",
    "hidden",
)
_BEFORE_KEYS = {"layout": "paper", "answer_examples": False, "hidden": False}  # runs recorded before these keys


def _read_done(items_path: Path) -> dict[str, dict]:
    """Complete lines already written; a torn last line (a kill mid-write) is cut off."""
    done: dict[str, dict] = {}
    if not items_path.exists():
        return done
    raw = items_path.read_bytes()
    keep = raw[: raw.rfind(b"\n") + 1]
    if len(keep) != len(raw):
        items_path.write_bytes(keep)
    for line in keep.decode("utf-8").splitlines():
        if line.strip():
            rec = json.loads(line)
            done[rec["id"]] = rec
    return done


def run_eval(
    config: Config,
    data: Path,
    out: Path,
    limit: int | None = None,
    seed: int | None = None,
    verifiers: Sequence[str] = ("logprob", "sampled"),
    chunk: int = 8,
    progress: Callable[[int, int], None] | None = None,
    hidden: bool = False,
) -> Path:
    """Run (or resume) an evaluation. Returns the items file."""
    remote = [t.name for t in config.tiers if t.is_remote]
    if remote:  # refused before anything is written
        raise EvalError(
            f"tier {remote[0]!r} is remote: `eval run` records local tiers only, so that a dataset never "
            "leaves this machine by accident. Evaluate with a models.toml without the remote tier"
        )
    items = select_items(load_items(data), limit, seed)
    spec = run_spec(config, data, limit, seed, verifiers, hidden)
    out.mkdir(parents=True, exist_ok=True)
    run_path, items_path = out / RUN_FILE, out / ITEMS_FILE
    if run_path.exists():
        old = json.loads(run_path.read_text())
        diff = [k for k in _KEYS if old.get(k, _BEFORE_KEYS.get(k)) != spec.get(k)]
        if diff:
            raise EvalError(f"{out} holds a different run ({', '.join(diff)} differ); use another --out or delete it")
        spec = old
    else:
        spec["ids"] = [it["id"] for it in items]
        spec["machine"] = machine_info()
        spec["started"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        spec["command"] = " ".join(sys.argv) if sys.argv and "automix" in sys.argv[0] else None
        run_path.write_text(json.dumps(spec, indent=2) + "\n")
    done = _read_done(items_path)
    todo = [it for it in items if it["id"] not in done]
    runner = _Runner(config, verifiers, hidden)
    if progress:
        progress(len(done), len(items))
    try:
        with items_path.open("a", encoding="utf-8") as f:
            for start in range(0, len(todo), chunk):
                for rec in runner.run_chunk(todo[start : start + chunk]):
                    f.write(json.dumps(rec, ensure_ascii=False) + "\n")
                f.flush()
                os.fsync(f.fileno())
                if progress:
                    progress(len(done) + min(start + chunk, len(todo)), len(items))
    finally:
        runner.close()
    return items_path


class _Runner:
    def __init__(self, config: Config, verifiers: Sequence[str], hidden: bool = False) -> None:
        self.config = config
        self.cascade = Cascade(config, router=AlwaysSmall(), capture_hidden=hidden)
        self.verifiers = {s: make_verifier(replace(config.cascade, verifier=s)) for s in verifiers}

    def close(self) -> None:
        self.cascade.close()

    def run_chunk(self, chunk: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        tiers = self.config.tiers
        recs: list[dict[str, Any]] = [
            {
                "id": it["id"],
                "dataset": it.get("dataset"),
                "context_id": it.get("context_id"),
                "question": it["question"],
                "answers": it.get("answers") or [],
                "unanswerable": bool(it.get("unanswerable")),
                "choices": it.get("choices"),
                "answer_index": it.get("answer_index"),
                "tiers": {},
            }
            | ({"history": [list(t) for t in item_history(it)]} if item_history(it) else {})
            for it in chunk
        ]
        last = len(tiers) - 1
        for index, tier in enumerate(tiers):
            # item by item, as the app runs: the answer, then its verifications (in the shared layout
            # they continue from the state after the answer, so this order is what makes them cheap)
            for it, rec in zip(chunk, recs, strict=True):
                if "error" in rec:
                    continue
                try:
                    self.cascade.check_fits(index, it["context"], it["question"])
                    turns = self.cascade.fit_history(index, it["context"], it["question"], item_history(it))
                    answer, gen, feats = run_to_end(
                        self.cascade.answer_stream(index, it["context"], it["question"], turns)
                    )
                except (CascadeError, BackendError) as exc:
                    rec["error"] = f"{tier.name}: {exc}"
                    continue
                f1, em = score_item(answer, it)
                rec["tiers"][tier.name] = {
                    "answer": answer,
                    "f1": f1,
                    "em": em,
                    "abstained": bool(feats["abstained"]),
                    "tokens_in": gen.tokens_in,
                    "tokens_out": gen.tokens_out,
                    "tokens_evaluated": gen.tokens_evaluated,
                    "seconds": gen.seconds,
                    "prompt_seconds": gen.prompt_seconds,
                    "gen_seconds": gen.gen_seconds,
                    "features": feats,
                    "verification": {},
                }
                if "history" in rec:  # earlier turns this tier's prompt held (the newest that fit)
                    rec["tiers"][tier.name]["turns"] = len(turns)
                if gen.hidden is not None:  # float16, base64: ~1.8 KB for a 896-wide state
                    vec = np.asarray(gen.hidden, dtype=np.float16)
                    rec["tiers"][tier.name]["hidden"] = base64.b64encode(vec.tobytes()).decode("ascii")
                if index == last:
                    continue
                t = rec["tiers"][tier.name]
                for strategy, verifier in self.verifiers.items():
                    v = verifier.verify(self.cascade.backend(index), it["context"], it["question"], answer, turns)
                    t["verification"][strategy] = {
                        "confidence": v.confidence,
                        "seconds": v.seconds,
                        "tokens_in": v.tokens_in,
                        "tokens_out": v.tokens_out,
                        "tokens_evaluated": v.tokens_evaluated,
                        "verdicts": v.verdicts,
                    }
        return recs
