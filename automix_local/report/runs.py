"""Loading recorded runs: `eval run` directories and the AutoMix paper's released JSONL."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import AutomixError
from ..evaluation import ITEMS_FILE, RUN_FILE
from ..grounding import GROUNDING_FEATURES, grounding_features
from ..jsonl import read_jsonl
from ..signals import (
    FEATURES,
    previous_agreement,
)


class ReportError(AutomixError):
    """A run that cannot be reported. str() is the one line shown to the user."""


# --------------------------------------------------------------------------- loading


@dataclass
class EvalItem:
    id: str
    dataset: str | None
    scores: tuple[float, ...]
    ems: tuple[float, ...]
    abstained: tuple[bool, ...]
    unanswerable: bool
    answer_seconds: tuple[float | None, ...]
    verify_seconds: dict[str, tuple[float | None, ...]]  # strategy → per non-last tier
    features: list[dict[str, float]]  # per non-last tier: free features and verifier_<strategy>
    p_abstain: tuple[float | None, ...] = ()  # per tier: P(the answer starts "unanswerable") at the first token
    answers: tuple[str, ...] = ()  # per tier: the answer recorded
    # per tier, the last one too: its own recorded features (no verifier), a later tier's with agreement_previous
    tier_features: list[dict[str, float]] = field(default_factory=list)
    tokens: tuple[tuple[int, int], ...] = ()  # per tier: (prompt tokens evaluated, tokens generated)


@dataclass
class Run:
    tiers: list[str]
    items: list[EvalItem]
    meta: dict[str, Any]
    source: str  # "automix-local" | "automix-paper"
    errors: int = 0
    error_examples: list[str] = field(default_factory=list)

    @property
    def signals(self) -> list[str]:
        """Features every item has, for the first tier."""
        if not self.items:
            return []
        common = set(self.items[0].features[0])
        for it in self.items:
            common &= set(it.features[0])
        return [f for f in FEATURES if f in common]

    @property
    def has_seconds(self) -> bool:
        return all(s is not None for it in self.items for s in it.answer_seconds)


PAPER_KEYS = ("llama13b_pred_ans", "llama70b_pred_ans", "p_ver_13b", "llama13b_f1", "llama70b_f1")


def load_run(path: Path) -> Run:
    path = Path(path)
    if path.is_dir():
        return _load_ours(path)
    if path.is_file():
        return _load_paper(path)
    raise ReportError(f"no run at {path}: give an `eval run` directory or a paper-format .jsonl file")


def _load_ours(d: Path) -> Run:
    try:
        meta = json.loads((d / RUN_FILE).read_text())
    except FileNotFoundError:
        raise ReportError(f"{d} is not an eval run directory (no {RUN_FILE})") from None
    tiers = [t["name"] for t in meta["tiers"]]
    items: list[EvalItem] = []
    errors: list[str] = []
    followed = 0  # items asked with earlier turns (a follow-up set's ``history``)
    path = d / ITEMS_FILE
    lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
    for line in lines:
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except ValueError:
            continue  # a torn last line of an interrupted run
        if "error" in rec:
            errors.append(f"{rec['id']}: {rec['error']}")
            continue
        followed += bool(rec.get("history"))
        ts = [rec["tiers"][t] for t in tiers]
        strategies = sorted(ts[0].get("verification", {})) if len(ts) > 1 else []
        feats = []
        for t in ts[:-1]:
            f = dict(t["features"])
            for s, v in t["verification"].items():
                f[f"verifier_{s}"] = v["confidence"]
            feats.append(f)
        items.append(
            EvalItem(
                id=rec["id"],
                dataset=rec.get("dataset"),
                scores=tuple(t["f1"] for t in ts),
                ems=tuple(t["em"] for t in ts),
                abstained=tuple(bool(t["abstained"]) for t in ts),
                unanswerable=bool(rec.get("unanswerable")),
                answer_seconds=tuple(t["seconds"] for t in ts),
                verify_seconds={s: tuple(t["verification"][s]["seconds"] for t in ts[:-1]) for s in strategies},
                features=feats,
                p_abstain=tuple(t.get("features", {}).get("p_abstain") for t in ts),
                answers=tuple(str(t.get("answer", "")) for t in ts),
                tier_features=_tier_features(ts),
                tokens=tuple((int(t.get("tokens_evaluated", t.get("tokens_in", 0))), int(t["tokens_out"])) for t in ts),
            )
        )
    if not items:
        raise ReportError(f"{d}: no recorded items yet (run `automix-local eval run` first)")
    run = Run(tiers, items, meta, "automix-local", len(errors), errors[:5])
    if followed:
        run.meta["follow_ups"] = f"{followed} of {len(items)} items were asked with earlier turns in the prompt"
    _backfill_grounding(run, d)
    return run


def _tier_features(ts: list[dict[str, Any]]) -> list[dict[str, float]]:
    out = []
    for i, t in enumerate(ts):
        f = {k: float(v) for k, v in (t.get("features") or {}).items() if isinstance(v, int | float)}
        if i > 0:
            f |= previous_agreement(str(t.get("answer", "")), str(ts[i - 1].get("answer", "")))
        out.append(f)
    return out


def _backfill_grounding(run: Run, d: Path) -> None:
    """Runs recorded before the grounding features existed get them from the same function the cascade
    calls, over each item's context from the run's data file — only when that file is there and its
    sha256 is the one recorded (else the run is reported without them)."""
    if len(run.tiers) < 2 or all(f in run.items[0].features[0] for f in GROUNDING_FEATURES):
        return
    import hashlib

    # a run concatenated from runs on several files lists them all in "data_files"
    sources = run.meta.get("data_files") or [{"path": run.meta.get("data", ""), "sha256": run.meta.get("data_sha256")}]
    contexts: dict[str, str] = {}
    for src in sources:
        data = Path(str(src.get("path", "")))
        if not data.is_file() or hashlib.sha256(data.read_bytes()).hexdigest() != src.get("sha256"):
            return
        contexts |= {r["id"]: r.get("context", "") for _, r in read_jsonl(data, ReportError) if isinstance(r, dict)}
    names = ", ".join(Path(str(src.get("path", ""))).name for src in sources)
    recs = {}
    for line in (d / ITEMS_FILE).read_text(encoding="utf-8").splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        recs[rec.get("id")] = rec
    if any(it.id not in recs or it.id not in contexts for it in run.items):
        return  # not the data this run was recorded on: leave every item as recorded
    for it in run.items:
        rec = recs[it.id]
        for i, name in enumerate(run.tiers):
            t = rec["tiers"][name]
            g = grounding_features(contexts[it.id], rec["question"], t["answer"], bool(t["abstained"]))
            if i < len(run.tiers) - 1:
                it.features[i] |= g
            it.tier_features[i] |= g
    run.meta["grounding"] = f"computed from {names} (this run was recorded before the grounding features)"


def _load_paper(path: Path) -> Run:
    items = []
    for n, rec in read_jsonl(path, ReportError, "paper-format file"):
        missing = [k for k in PAPER_KEYS if k not in rec]
        if missing:
            raise ReportError(f"{path}:{n}: not the AutoMix paper format (missing {', '.join(missing)})")
        small, large = rec["llama13b_pred_ans"], rec["llama70b_pred_ans"]
        items.append(
            EvalItem(
                id=str(rec.get("id", n)),
                dataset=rec.get("dataset"),
                scores=(float(rec["llama13b_f1"]), float(rec["llama70b_f1"])),
                ems=(math.nan, math.nan),
                abstained=(_abstains(small), _abstains(large)),
                unanswerable=False,
                answer_seconds=(None, None),
                verify_seconds={},
                features=[{"verifier_sampled": float(rec["p_ver_13b"])}],
            )
        )
    if not items:
        raise ReportError(f"{path}: no items")
    return Run(["llama13b", "llama70b"], items, {"data": str(path)}, "automix-paper")


def _abstains(answer: Any) -> bool:
    from ..prompts import is_abstention

    return isinstance(answer, str) and is_abstention(answer)


def write_paper_format(run: Run, path: Path) -> None:
    """Write a two-tier run in the AutoMix paper's released format (sampled verifier as p_ver_13b)."""
    if len(run.tiers) != 2 or "verifier_sampled" not in run.signals:
        raise ReportError("the paper format needs a two-tier run with the sampled verifier recorded")
    with path.open("w", encoding="utf-8") as f:
        for i, it in enumerate(run.items):
            row = {
                "id": it.id,
                "dataset": it.dataset or "unknown",
                "split": "train" if i % 2 == 0 else "val",
                "llama13b_pred_ans": "unanswerable" if it.abstained[0] else "",
                "llama70b_pred_ans": "unanswerable" if it.abstained[1] else "",
                "p_ver_13b": it.features[0]["verifier_sampled"],
                "llama13b_f1": it.scores[0],
                "llama70b_f1": it.scores[1],
            }
            f.write(json.dumps(row) + "\n")
