"""The cascade on the follow-up set, with and without the earlier turn (issue 22, section 4).

    .venv/bin/python bench/followups_report.py docs/results/followups/run docs/results/followups-alone/run \
        docs/results/followups-resolved/run --out docs/results/followups/comparison

Reads three `eval run` directories over the same 70 items (``bench/followups.py``): the follow-up with its
earlier turn in the prompt (``history``), the follow-up alone, and the source question it was made from
(the follow-up "resolved" by hand: what it would score if asked in full). For each: always-small,
always-large and the shipped default router (``automix_local/data/router-default.json``, replayed on the
recorded answers exactly as `ask` would apply it: no refit, nothing tuned here), with F1, the trust score
(+1 right, 0 abstained, −1 wrong; ``scoring.trust_value``), the escalation rate and the seconds; each with a
95 % interval from 1,000 item resamples, and the difference the earlier turn makes with a paired interval.
Also per part (SQuAD answerable / unanswerable, FairyTaleQA), and how often a tier answers the *first*
question again (its answer matches the first turn's answer, F1 ≥ 0.5): the failure issue 22 opened with.
Writes ``OUT.md`` and ``OUT.json``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from automix_local.abstain import TrustRouter, play  # noqa: E402
from automix_local.report import load_run  # noqa: E402
from automix_local.report.outcomes import TrustSignals, table  # noqa: E402
from automix_local.report.routing import _records  # noqa: E402
from automix_local.routers import load, simulate  # noqa: E402
from automix_local.scoring import RIGHT_F1, score_free_form, trust_value  # noqa: E402

ROUTER = ROOT / "automix_local" / "data" / "router-default.json"
REPLICATES = 1000
SEED = 0
CONDITIONS = ("history", "alone", "resolved")
LABELS = {
    "history": "follow-up with the earlier turn",
    "alone": "follow-up alone",
    "resolved": "source question (no pronoun)",
}
PARTS = {
    "SQuAD answerable": lambda it: it.dataset == "squad_v2" and not it.unanswerable,
    "SQuAD unanswerable": lambda it: it.dataset == "squad_v2" and it.unanswerable,
    "FairyTaleQA": lambda it: it.dataset == "fairytaleqa_val",
}


def interval(values: np.ndarray, weights: np.ndarray) -> tuple[float, float, float]:
    """The mean and a 95 % percentile interval over item resamples (``weights``: replicates × items)."""
    if len(values) == 0:
        return (float("nan"),) * 3
    drawn = weights.sum(axis=1) > 0  # a resample may draw none of a part's items
    reps = weights[drawn] @ values / weights[drawn].sum(axis=1)
    return float(values.mean()), float(np.percentile(reps, 2.5)), float(np.percentile(reps, 97.5))


def replay(run: Any, router_path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The shipped router played on the recorded answers, as `ask` would play it: per item the tier whose answer
    it reached, whether it held that answer back ("not sure"), and the seconds it spent. A trust router uses the
    operating point its file carries (chosen for the seconds of its own table); a POMDP or threshold router
    (the default before the trust router) keeps or escalates."""
    router = load(router_path)
    n = len(run.items)
    if isinstance(router, TrustRouter):
        assert router.signal is not None and router.last_signal is not None and router.point is not None
        t = table(run, np.arange(n), TrustSignals(router.signal, router.last_signal))
        p = router.point
        o = play(t, p.keep, p.give_up, p.final)
        return np.where(o.escalated, len(run.tiers) - 1, 0), o.abstained, o.seconds
    assert router.signal is not None
    out = simulate(router, _records(run.items, router.signal), router.costs or [1.0, 50.0])
    tiers = np.array(out.final_tiers)
    seconds = np.array(
        [sum(float(it.answer_seconds[k] or 0.0) for k in range(t + 1)) for it, t in zip(run.items, tiers, strict=True)]
    )
    return tiers, np.zeros(n, dtype=bool), seconds


def outcomes(run_dir: Path, router_path: Path, first_answers: dict[str, str]) -> dict[str, Any]:
    """Per item and setting (small, large, router): F1, trust, seconds, whether it escalated, whether it said
    "not sure" (held back, or the answer shown is itself an abstention), whether it answers the first question
    again. A held-back answer scores as an abstention (F1 1 on an unanswerable question, else 0)."""
    run = load_run(run_dir)
    its = run.items
    n, last = len(its), len(run.tiers) - 1
    answers: dict[str, list[str]] = {}
    for line in (run_dir / "items.jsonl").read_text(encoding="utf-8").splitlines():
        rec = json.loads(line)
        answers[rec["id"]] = [rec["tiers"][t]["answer"] for t in run.tiers]
    r_tiers, r_held, r_seconds = replay(run, router_path)
    plays = {
        "small": (np.zeros(n, dtype=int), np.zeros(n, dtype=bool), None),
        "large": (np.full(n, last), np.zeros(n, dtype=bool), None),
        "router": (r_tiers, r_held, r_seconds),
    }
    settings: dict[str, dict[str, np.ndarray]] = {}
    for name, (tiers, held, seconds) in plays.items():
        rows = list(zip(its, tiers, held, strict=True))
        settings[name] = {
            "f1": np.array([(1.0 if it.unanswerable else 0.0) if h else it.scores[t] for it, t, h in rows]),
            "trust": np.array(
                [
                    (1.0 if it.unanswerable else 0.0)
                    if h
                    else trust_value(it.scores[t], it.abstained[t], it.unanswerable)
                    for it, t, h in rows
                ],
                dtype=float,
            ),
            "seconds": seconds
            if seconds is not None
            else np.array([float(it.answer_seconds[t] or 0.0) for it, t, _ in rows]),
            "escalated": np.array([float(t > 0) for t in tiers]),
            "not_sure": np.array([float(h or it.abstained[t]) for it, t, h in rows]),
            "repeats_first": np.array(
                [
                    float(
                        not h
                        and not it.abstained[t]
                        and score_free_form(answers[it.id][t], [first_answers[it.id]], False)[0] >= RIGHT_F1
                    )
                    for it, t, h in rows
                ]
            ),
        }
    return {"ids": [it.id for it in its], "items": its, "settings": settings, "meta": run.meta}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("history", type=Path)
    ap.add_argument("alone", type=Path)
    ap.add_argument("resolved", type=Path, nargs="?")
    ap.add_argument("--data", type=Path, default=ROOT / "bench" / "data" / "followups.jsonl")
    ap.add_argument("--router", type=Path, default=ROUTER)
    ap.add_argument("--out", type=Path, required=True, help="writes OUT.md and OUT.json")
    args = ap.parse_args()
    data = [json.loads(line) for line in args.data.read_text(encoding="utf-8").splitlines() if line.strip()]
    first_answers = {it["id"]: it["history"][-1][1] for it in data}
    dirs = {"history": args.history, "alone": args.alone} | ({"resolved": args.resolved} if args.resolved else {})
    runs = {c: outcomes(d, args.router, first_answers) for c, d in dirs.items()}
    ids = runs["history"]["ids"]
    for c, r in runs.items():
        assert r["ids"] == ids, f"{c}: not the same items in the same order"
    items = runs["history"]["items"]
    n = len(ids)
    weights = np.random.default_rng(SEED).multinomial(n, [1 / n] * n, REPLICATES).astype(float)
    router_sha = hashlib.sha256(args.router.read_bytes()).hexdigest()
    result: dict[str, Any] = {
        "items": n,
        "router": str(args.router.relative_to(ROOT)),
        "router_sha256": router_sha,
        "router_kind": load(args.router).kind,
        "conditions": {},
    }
    for c, r in runs.items():
        st = r["settings"]
        for vals in st.values():  # the shares right / 0 / wrong, and the seconds as a share of always-large's
            vals["right"], vals["zero"], vals["wrong"] = (
                (vals["trust"] > 0) * 1.0,
                (vals["trust"] == 0) * 1.0,
                (vals["trust"] < 0) * 1.0,
            )
        large_seconds = float(st["large"]["seconds"].sum())
        result.setdefault("time", {})[c] = {s: float(v["seconds"].sum()) / large_seconds for s, v in st.items()}
        result["conditions"][c] = {
            "run": str(dirs[c]),
            "data_sha256": r["meta"].get("data_sha256"),
            **{
                s: {k: interval(v, weights) for k, v in vals.items()} | {"parts": {}}
                for s, vals in r["settings"].items()
            },
        }
        for part, keep in PARTS.items():
            idx = np.array([i for i, it in enumerate(items) if keep(it)], dtype=int)
            w = weights[:, idx]
            for s, vals in r["settings"].items():
                result["conditions"][c][s]["parts"][part] = {
                    "n": len(idx),
                    **{k: interval(vals[k][idx], w) for k in ("f1", "trust", "repeats_first")},
                }
    diffs: dict[str, Any] = {}
    for s in ("small", "large", "router"):
        h, a = runs["history"]["settings"][s], runs["alone"]["settings"][s]
        keys = ("f1", "trust", "repeats_first", "escalated", "not_sure")
        diffs[s] = {k: interval(h[k] - a[k], weights) for k in keys}
        diffs[s]["parts"] = {}
        for part, keep in PARTS.items():
            idx = np.array([i for i, it in enumerate(items) if keep(it)], dtype=int)
            diffs[s]["parts"][part] = {k: interval(h[k][idx] - a[k][idx], weights[:, idx]) for k in ("f1", "trust")}
    result["history_minus_alone"] = diffs
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(result, indent=1) + "\n")
    args.out.with_suffix(".md").write_text(render(result))
    print(render(result))
    return 0


def _ci(v: tuple[float, float, float], signed: bool = True, digits: int = 2) -> str:
    f = f"{{:{'+' if signed else ''}.{digits}f}}"
    return f"{f.format(v[0])} ({f.format(v[1])} to {f.format(v[2])})".replace("-", "−")


def render(r: dict[str, Any]) -> str:
    conds = r["conditions"]
    out = [
        f"# The default pair on {r['items']} follow-up questions, with and without the earlier turn",
        "",
        "Written by `bench/followups_report.py` (its docstring: what each number is). Trust: +1 right, 0 abstained,",
        "−1 wrong; 95 % intervals from 1,000 item resamples. The shipped router is "
        f"`{r['router']}` (sha256 {r['router_sha256'][:12]}…, kind {r['router_kind']}) replayed as is on the",
        "recorded answers (nothing fitted here; a trust router at the operating point its file carries).",
        "",
        "| question asked | answers | trust | +1 right | 0 | −1 wrong | says not sure | F1 | escalated "
        "| seconds (time / always-large) | answers the first question again |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    names = {"small": "always-small", "large": "always-large", "router": "shipped router"}
    for c, v in conds.items():
        for s in ("small", "large", "router"):
            x = v[s]
            out.append(
                f"| {LABELS[c]} | {names[s]} | {_ci(x['trust'])} | {x['right'][0]:.0%} | {x['zero'][0]:.0%} | "
                f"{x['wrong'][0]:.0%} | {x['not_sure'][0]:.0%} | {_ci(x['f1'], False, 3)} | "
                f"{x['escalated'][0]:.0%} | {x['seconds'][0]:.1f} ({r['time'][c][s]:.2f}) | "
                f"{x['repeats_first'][0]:.0%} |"
            )
    out += [
        "",
        "**What the earlier turn changes** (follow-up with it − follow-up alone, the same items, paired intervals):",
        "",
        "| answers | ΔF1 | Δtrust | Δ answers the first question again | Δ escalated | Δ says not sure |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for s, d in r["history_minus_alone"].items():
        out.append(
            f"| {names[s]} | {_ci(d['f1'], True, 3)} | {_ci(d['trust'])} | {_ci(d['repeats_first'])} | "
            f"{_ci(d['escalated'])} | {_ci(d['not_sure'])} |"
        )
    out += ["", "**The same per part** (ΔF1 · Δtrust, paired 95 % intervals):", ""]
    parts_d = list(r["history_minus_alone"]["small"]["parts"])
    out.append("| answers | " + " | ".join(parts_d) + " |")
    out.append("| --- |" + " --- |" * len(parts_d))
    for s, d in r["history_minus_alone"].items():
        cells = [f"{_ci(d['parts'][p]['f1'], True, 3)} · {_ci(d['parts'][p]['trust'])}" for p in parts_d]
        out.append(f"| {names[s]} | " + " | ".join(cells) + " |")
    out += ["", "**Per part** (F1 · trust):", ""]
    parts = list(next(iter(conds.values()))["small"]["parts"])
    n_of = {p: next(iter(conds.values()))["small"]["parts"][p]["n"] for p in parts}
    out.append("| question asked | answers | " + " | ".join(f"{p} ({n_of[p]})" for p in parts) + " |")
    out.append("| --- | --- |" + " --- |" * len(parts))
    for c, v in conds.items():
        for s in ("small", "large", "router"):
            cells = [f"{v[s]['parts'][p]['f1'][0]:.3f} · {v[s]['parts'][p]['trust'][0]:+.2f}" for p in parts]
            out.append(f"| {LABELS[c]} | {names[s]} | " + " | ".join(cells).replace("-", "−") + " |")
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    sys.exit(main())
