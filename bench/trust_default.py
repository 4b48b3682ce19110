"""The shipped default (the trust router) against always-small, always-large and random mixing, held out.

    .venv/bin/python bench/trust_default.py docs/results/squad300-signals/run docs/results/fairytale200-signals/run \
        --seeds 10 --train-size 200 --out docs/results/trust_default.md

The runs are merged (the shipped router is fitted on both, `calibrate --router trust`); each split fits the
trust router's two signals and its thresholds on --train-size random items (for each target, with ``not_sure``
0.3, the shipped value) and plays it on the rest. Beside it, on the same test items: always the small tier,
always the large tier, and random mixing that escalates the router's share of questions at random. Time: the
seconds the runs recorded on this machine, as a share of always asking the large tier. Scores per dataset and
together: the trust score (+1 right, 0 "not sure", −1 wrong; scoring.trust_value), the shares right / not sure
/ wrong, F1 (a held-back answer scores F1 0 on an answerable question, 1 on an unanswerable one, as an
abstention does). With --extra RUN (e.g. the follow-up set), a router fitted on the train items of the merged
runs is also played on every item of that run (never fitted on it).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from automix_local.abstain import NOT_SURE, TARGETS, choose, play, points  # noqa: E402
from automix_local.report import Run, _split, load_run  # noqa: E402
from automix_local.report.outcomes import fit_signals, table  # noqa: E402


def merged(paths: list[str]) -> Run:
    runs = [load_run(Path(p)) for p in paths]
    first = runs[0]
    return Run(first.tiers, [it for r in runs for it in r.items], first.meta, first.source)


def scores(run: Run, rows: np.ndarray, value: np.ndarray, held: np.ndarray, tiers: np.ndarray) -> dict:
    """What was shown: a tier's answer (``tiers``: which), or an abstention where held back. "Not sure" counts the
    answers held back and those that are themselves an abstention ("the document does not say")."""
    f1 = np.array(
        [
            (1.0 if run.items[i].unanswerable else 0.0) if h else run.items[i].scores[k]
            for i, h, k in zip(rows, held, tiers, strict=True)
        ]
    )
    own = np.array([run.items[i].abstained[k] for i, k in zip(rows, tiers, strict=True)], dtype=bool)
    return {
        "trust": float(np.mean(value)),
        "right": float(np.mean(value > 0)),
        "zero": float(np.mean(value == 0)),
        "not_sure": float(np.mean(held | own)),
        "wrong": float(np.mean(value < 0)),
        "f1": float(np.mean(f1)),
    }


def evaluate(run: Run, extra: Run | None, seeds: int, train_size: int) -> dict:
    n = len(run.items)
    datasets = sorted({it.dataset or "?" for it in run.items})
    out: dict = {}
    for seed in range(seeds):
        tr, te = _split(n, train_size, seed)
        signals = fit_signals(run, tr)
        train, test = table(run, tr), table(run, te, signals)
        pts = points(train)
        last_time = test.seconds[:, -1]
        parts = {"both": np.ones(len(te), dtype=bool)} | {
            d: np.array([run.items[i].dataset == d for i in te]) for d in datasets
        }
        rng = np.random.default_rng(seed)
        for target in TARGETS:
            p = choose(pts, target, NOT_SURE, float(np.mean(train.value[:, -1])))
            o = play(test, p.keep, p.give_up, p.final)
            final_tier = np.where(o.escalated, len(run.tiers) - 1, 0)
            draw = rng.random(len(te)) < float(np.mean(o.escalated))  # random mixing at the router's share
            for name, m in parts.items():
                rows, lt = te[m], last_time[m].sum()
                rec = out.setdefault((name, target), [])
                rec.append(
                    {
                        "router": scores(run, rows, o.value[m], o.abstained[m], final_tier[m])
                        | {"time": float(o.seconds[m].sum() / lt), "escalated": float(np.mean(o.escalated[m]))},
                        "small": scores(run, rows, test.value[m, 0], np.zeros(m.sum(), bool), np.zeros(m.sum(), int))
                        | {"time": float(test.seconds[m, 0].sum() / lt)},
                        "large": scores(
                            run,
                            rows,
                            test.value[m, -1],
                            np.zeros(m.sum(), bool),
                            np.full(m.sum(), len(run.tiers) - 1),
                        )
                        | {"time": 1.0},
                        "random": scores(
                            run,
                            rows,
                            np.where(draw[m], test.value[m, -1], test.value[m, 0]),
                            np.zeros(m.sum(), bool),
                            np.where(draw[m], len(run.tiers) - 1, 0),
                        )
                        | {"time": float((test.seconds[m, 0] + draw[m] * test.seconds[m, -1]).sum() / lt)},
                    }
                )
            if extra is not None:
                ext = table(extra, np.arange(len(extra.items)), signals)
                o = play(ext, p.keep, p.give_up, p.final)
                rows = np.arange(len(extra.items))
                final_tier = np.where(o.escalated, len(extra.tiers) - 1, 0)
                lt = ext.seconds[:, -1].sum()
                out.setdefault(("extra", target), []).append(
                    {
                        "router": scores(extra, rows, o.value, o.abstained, final_tier)
                        | {"time": float(o.seconds.sum() / lt), "escalated": float(np.mean(o.escalated))},
                        "small": scores(
                            extra, rows, ext.value[:, 0], np.zeros(len(rows), bool), np.zeros(len(rows), int)
                        )
                        | {"time": float(ext.seconds[:, 0].sum() / lt)},
                        "large": scores(
                            extra,
                            rows,
                            ext.value[:, -1],
                            np.zeros(len(rows), bool),
                            np.full(len(rows), len(extra.tiers) - 1),
                        )
                        | {"time": 1.0},
                    }
                )
    return out


def render(res: dict, args: argparse.Namespace, run: Run) -> str:
    lines = [
        "# The shipped default (trust router) held out, against always-small, always-large and random mixing",
        "",
        f"Runs: {', '.join(f'`{p}`' for p in args.runs)} ({len(run.items)} items, merged). {args.seeds} random splits, "
        f"{args.train_size} train items each; the rest scored. Mean ± std over the splits. Time: the seconds the runs "
        "recorded on this machine (2-core VM, CPU), as a share of always asking the large tier. Trust: +1 right (an "
        'abstention on an unanswerable question among them), 0 "not sure" on an answerable one, −1 wrong; "says not '
        'sure": every answer shown as an abstention (held back, or the model\'s own "the document does not say"). '
        "F1 counts a held-back answer as an abstention.",
        "",
        "```sh",
        f"python bench/trust_default.py {' '.join(args.runs)} --seeds {args.seeds} --train-size {args.train_size}"
        + (f" --extra {args.extra}" if args.extra else "")
        + f" --out {args.out}",
        "```",
        "",
    ]
    groups = sorted({k[0] for k in res}, key=lambda g: (g == "extra", g != "both", g))
    for group in groups:
        title = f"Every item of `{args.extra}` (never fitted on)" if group == "extra" else f"Test items: {group}"
        lines += [
            f"## {title}",
            "",
            "| answers | trust | +1 right | 0 | −1 wrong | says not sure | F1 | time / always-large | escalated |",
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
        ]
        base = res[(group, "balanced")]
        for who, label in (("small", "always small"), ("large", "always large")):
            lines.append(_row(label, [r[who] for r in base]))
        if "random" in base[0]:
            lines.append(_row("random mixing at the router's share (balanced)", [r["random"] for r in base]))
        for target in TARGETS:
            recs = [r["router"] for r in res[(group, target)]]
            name = f"**trust router, target {target}**" if target == "balanced" else f"trust router, target {target}"
            lines.append(_row(name + (" (the default)" if target == "balanced" else ""), recs))
        lines.append("")
    return "\n".join(lines)


def _row(label: str, recs: list[dict]) -> str:
    def ms(key: str, pct: bool = False) -> str:
        v = np.array([r[key] for r in recs if key in r], dtype=float)
        if not len(v):
            return "–"
        if pct:
            return f"{v.mean():.0%}"
        return f"{v.mean():+.3f} ± {v.std(ddof=1):.3f}" if key == "trust" else f"{v.mean():.3f}"

    return (
        f"| {label} | {ms('trust')} | {ms('right', True)} | {ms('zero', True)} | {ms('wrong', True)} | "
        f"{ms('not_sure', True)} | "
        f"{ms('f1')} | {ms('time')} | {ms('escalated', True)} |"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("runs", nargs="+", help="eval run directories (merged)")
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--train-size", type=int, default=200)
    ap.add_argument("--extra", default=None, help="a run scored with routers fitted on the merged runs only")
    ap.add_argument("--out", default=None, help="write Markdown here (default: print)")
    args = ap.parse_args()
    run = merged(args.runs)
    extra = load_run(Path(args.extra)) if args.extra else None
    text = render(evaluate(run, extra, args.seeds, args.train_size), args, run)
    if args.out:
        Path(args.out).write_text(text + "\n", encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
