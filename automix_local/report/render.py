"""The report as Markdown, a cost–quality plot, a one-line summary, and the files written."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path

from .model import Interval, MeanStd, OracleShare, Results, RouterKey, ThreeOutcomes, Trust, TrustScore, to_json
from .results import build_results
from .routing import MIXING, _nan_low
from .runs import load_run
from .stats import BOOTSTRAP, MIN_GAP

# --------------------------------------------------------------------------- rendering


def _f(x: float | None, nd: int = 3) -> str:
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{nd}f}"


def _pm(ms: MeanStd, nd: int = 3) -> str:
    if math.isnan(ms.mean):
        return "–"
    return f"{ms.mean:.{nd}f} ± {ms.std:.{nd}f}"


def _ci(ci: Interval | None) -> str:
    if not ci or math.isnan(ci.low):
        return "–"
    return f"{ci.low:+.1f} to {ci.high:+.1f}"


def render_markdown(res: Results, command: str | None = None) -> str:
    run = res.run
    meta = run.meta
    lines = ["# automix_local evaluation report", ""]
    data = meta.get("data", "?")
    lines.append(
        f"- Data: `{data}` — {run.items} items scored"
        + (f", {run.errors} skipped (errors)" if run.errors else "")
        + (f"; selection: limit {meta.get('limit')}, seed {meta.get('seed')}" if "limit" in meta else "")
    )
    lines.append(
        f"- Tiers: {' → '.join(run.tiers)}"
        + (" (" + "; ".join(f"{t['name']}: {t['source']}" for t in meta["tiers"]) + ")" if "tiers" in meta else "")
    )
    if "machine" in meta:
        m = meta["machine"]
        lines.append(
            f"- Machine: {m.get('processor')}, {m.get('cpus')} CPUs, {m.get('platform')}, "
            f"llama-cpp-python {m.get('llama_cpp_python')}"
        )
    if command:
        lines.append(f"- Reproduce: `{command}`")
    if meta.get("grounding"):
        lines.append(f"- Grounding features: {meta['grounding']}.")
    if meta.get("follow_ups"):
        lines.append(f"- Follow-up questions: {meta['follow_ups']} (their `history`).")
    lines.append(
        f"- Routers are fitted on {res.train_size} random items and scored on the rest, "
        f"repeated over {res.seeds} seeds (mean ± std). An answer counts as correct for AUROC and "
        f"calibration when its F1 ≥ {res.correct_f1}."
    )
    split = any(t.f1_answerable is not None for t in res.tiers.values())
    lines += [
        "",
        "## Per-tier quality",
        "",
        "| tier | F1 | EM | abstains | answer s |" + (" F1 answerable | F1 unanswerable |" if split else ""),
        "| --- | --- | --- | --- | --- |" + (" --- | --- |" if split else ""),
    ]
    for name, t in res.tiers.items():
        row = f"| {name} | {_f(t.f1)} | {_f(t.em)} | {_f(t.abstention_rate, 2)} | {_f(t.answer_seconds, 2)} |"
        if t.f1_answerable is not None:
            row += f" {_f(t.f1_answerable)} | {_f(t.f1_unanswerable)} |"
        lines.append(row)
    lines += [
        "",
        f"The small tier is correct on {res.small_correct_rate:.1%} of the items.",
        "",
        "## Signals: does the confidence separate right from wrong small answers?",
        "",
        "| signal | AUROC (raw value) | AUROC held-out (fitted) | ECE | needs verifier | verify s |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for name, s in res.signals.items():
        held = _pm(s.auroc_heldout) if s.auroc_heldout is not None else "–"
        lines.append(
            f"| {name} | {_f(s.auroc_raw)} | {held} | {_f(s.reliability.ece)} | "
            f"{s.needs_verifier or 'no (free)'} | {_f(s.verify_seconds, 2)} |"
        )
    verifiers = [n for n in res.signals if n.startswith("verifier_")]
    weak = [n for n in verifiers if abs(_or(res.signals[n].auroc_raw, 0.5) - 0.5) < 0.05]
    if weak:
        lines += [
            "",
            f"**The verifier cannot separate right from wrong answers here**: {', '.join(weak)} "
            "has an AUROC within 0.05 of chance (0.5) on these items and models.",
        ]
    lines += [
        "",
        "AUROC of a raw value below 0.5 means the signal is informative in the other direction "
        "(the fitted variants learn the direction).",
        "",
    ]
    lines += _render_oracle_share(res.oracle_share)
    if res.abstain:
        lines += [
            "## Abstaining at the first token",
            "",
            'A tier abstains at once when P(its answer starts "unanswerable") reaches a threshold τ '
            "(`abstain_threshold`; `calibrate` writes the one fitted on all items into the router file). "
            "Held out: τ fitted on the train part, F1 on the rest (mean ± std over the splits).",
            "",
            "| tier | F1 (recorded) | F1 held out, with τ | τ (all items) | items abstaining at τ |",
            "| --- | --- | --- | --- | --- |",
        ]
        for name, a in res.abstain.items():
            tau = "none (never better)" if a.threshold is None else f"{a.threshold:.3f}"
            lines.append(f"| {name} | {_pm(a.f1)} | {_pm(a.f1_heldout_with_threshold)} | {tau} | {a.abstains:.0%} |")
        lines.append("")
    for cs in res.cost_settings:
        lines += [
            f"## Routers — {cs.name} costs",
            "",
            cs.regime,
            "",
            "Tier costs: "
            + ", ".join(f"{k} {v:.3g}" for k, v in cs.tier_costs.items())
            + (
                "; verification: " + ", ".join(f"{s} {v[0]:.3g}" for s, v in cs.verify_costs.items())
                if cs.verify_costs
                else ""
            ),
            "",
        ]
        undefined = 1 - cs.routers[RouterKey("always_small")].ibc_defined.mean
        if undefined > 0:
            lines.append(
                f"> ΔIBC is undefined on {undefined:.0%} of the test parts (small and large F1 within "
                f"{MIN_GAP} there); its mean and std are over the other parts."
            )
        for w in cs.warnings:
            lines.append(f"> **Warning:** {w}.")
        if cs.warnings:
            lines.append("")
        lines += [
            "| router · signal | F1 | cost | escalated | ΔIBC % | ΔIBC 95 % CI | P(ΔIBC > 0) | F1 / large |",
            "| --- | --- | --- | --- | --- | --- | --- | --- |",
        ]
        ordered = sorted(cs.routers.items(), key=lambda kv: (kv[0].fitted, -_nan_low(kv[1].delta_ibc.mean)))
        for name, r in ordered:
            p_positive = r.delta_ibc_ci.p_positive if r.delta_ibc_ci else None
            lines.append(
                f"| {name} | {_pm(r.performance)} | {_pm(r.cost, 2)} | {_f(r.escalation.mean, 2)} | "
                f"{_pm(r.delta_ibc, 1)} | {_ci(r.delta_ibc_ci)} | {_f(p_positive, 2)} | {_f(r.retained.mean, 2)} |"
            )
        lines += [
            "",
            "ΔIBC ± is the std over the seeds' splits; the 95 % CI and P(ΔIBC > 0) come from "
            f"{BOOTSTRAP} resamples of the items with the fitted routers held fixed (how much the figure "
            "depends on which questions were asked).",
            "",
            f"Best router on held-out items (highest mean − std of ΔIBC over seeds, among routers escalating "
            f"{MIXING[0]:.0%}–{MIXING[1]:.0%} of items): **{cs.best}**.",
            "",
        ]
        lc = cs.learning_curve
        if lc.delta_ibc:
            lines.append(
                f"ΔIBC of {lc.router} by train size: " + ", ".join(f"{m}: {_pm(v, 1)}" for m, v in lc.delta_ibc.items())
            )
            lines.append("")
        mix = cs.random_mixing_retained_at_half_large_cost
        lines.append(
            f"Quality retained at half the large tier's cost (threshold curves, vs the large tier's F1; "
            f"random mixing: {_f(mix, 2)}): "
            + ", ".join(
                f"{k} {_f(v, 2)}"
                for k, v in sorted(cs.retained_at_half_large_cost.items(), key=lambda kv: -_nan_low(kv[1]))
            )
        )
        lines.append("")
    if res.trust is not None:
        lines += _render_trust(res.trust, res)
    lines += ["![cost-quality](cost_quality.png)", ""]
    return "\n".join(lines)


def _t(x: TrustScore | None) -> str:
    """A trust score in a table cell: the mean, ± the std over the splits when held out."""
    if x is None or math.isnan(x.mean):
        return "–"
    return f"{x.mean:+.2f}" + (f" ± {x.std:.2f}" if x.std is not None else "")


def _tci(x: TrustScore | None) -> str:
    if x is None or math.isnan(x.ci.low):
        return "–"
    return f"{x.ci.low:+.2f} to {x.ci.high:+.2f}"


def _shares(x: TrustScore) -> str:
    return f"{x.right:.2f} | {x.abstained:.2f} | {x.wrong:.2f}"


def _render_trust(trust: Trust, res: Results) -> list[str]:
    lines = [
        "## Trust score",
        "",
        f"Each answer scores **+1 when right** (F1 ≥ {res.correct_f1}, the right choice, or an abstention on an "
        "unanswerable question), **0 when it abstains** on an answerable one and **−1 when wrong** (answering an "
        "unanswerable question is wrong): the mean is above 0 when the answers help more than they mislead, and "
        "saying \"I don't know\" beats a wrong answer (the CRAG benchmark's score).",
        "",
        f"All items, as recorded; 95 % intervals from {BOOTSTRAP} resamples of the items. Held out: the mean over "
        f"the {res.seeds} splits' test parts ± its std (which items fitted the routers and thresholds), the interval "
        "from the same resamples with the fitted ones held fixed (which questions were asked). The shares: of "
        "answers scoring +1 (an abstention on an unanswerable question among them), 0 and −1.",
        "",
        "| answers | trust | 95 % CI | +1 right | 0 abstained | −1 wrong |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for name, x in trust.tiers.items():
        lines.append(f"| always {name} | {_t(x)} | {_tci(x)} | {_shares(x)} |")
    for name, x in trust.oracles.items():
        lines.append(f"| {name} | {_t(x)} | {_tci(x)} | {_shares(x)} |")
    if trust.tiers_with_abstention:
        for name, x in trust.tiers_with_abstention.items():
            lines.append(f"| always {name}, abstaining at τ (held out) | {_t(x)} | {_tci(x)} | {_shares(x)} |")
    lines += [
        "",
        "The oracles read every tier's recorded answer: the better tier's; the better tier's or an abstention where "
        "it scores more; the same with its abstentions scored 0 even on unanswerable questions. "
        + (
            "Abstaining at τ: a tier's answer becomes an abstention where its P(abstain) at the first token reaches "
            "τ fitted on the train part (as `calibrate` fits it; see *Abstaining at the first token*)."
            if trust.tiers_with_abstention
            else "No abstention threshold is fitted on this run (no unanswerable item or no P(abstain))."
        ),
        "",
    ]
    for ct in trust.cost_settings:
        cs = next(c for c in res.cost_settings if c.name == ct.name)
        abst = any(rt.with_abstention is not None for rt in ct.routers.values())
        lines += [
            f"### Trust score of the routers held out — {ct.name} costs",
            "",
            "| router · signal | trust | 95 % CI | +1 right | 0 abstained | −1 wrong | escalated |"
            + (" with first-token abstention | 95 % CI |" if abst else ""),
            "| --- | --- | --- | --- | --- | --- | --- |" + (" --- | --- |" if abst else ""),
        ]
        ordered = sorted(ct.routers.items(), key=lambda kv: (kv[0].fitted, -_nan_low(kv[1].recorded.mean)))
        for key, rt in ordered:
            row = (
                f"| {key} | {_t(rt.recorded)} | {_tci(rt.recorded)} | {_shares(rt.recorded)} | "
                f"{_f(cs.routers[key].escalation.mean, 2)} |"
            )
            if abst:
                row += f" {_t(rt.with_abstention)} | {_tci(rt.with_abstention)} |"
            lines.append(row)
        lines.append("")
        if abst:
            lines += [
                "With first-token abstention: each tier's answers abstain where its P(abstain) reaches τ fitted on "
                "the split's train part, the router's decisions replayed as recorded (the cascade would judge the "
                "abstention itself, which the run did not record).",
                "",
            ]
        if ct.best is not None:
            large = ct.routers.get(RouterKey("always_large"))
            lines += [
                f"Highest trust score held out among the fitted routers escalating {MIXING[0]:.0%}–{MIXING[1]:.0%} of "
                f"items: **{ct.best}** "
                f"({_t(ct.routers[ct.best].recorded)}, escalating {_f(cs.routers[ct.best].escalation.mean, 2)})"
                + (f"; always_large {_t(large.recorded)}" if large else "")
                + ".",
                "",
            ]
    if trust.outcomes is not None:
        lines += _render_outcomes(trust.outcomes, res.run.tiers[-1])
    return lines


def _render_outcomes(o: ThreeOutcomes, last: str) -> list[str]:
    lines = [
        '### Three outcomes: keep, escalate or "not sure" (the trust router, held out)',
        "",
        f"The `trust` router (abstain.py) reads P(right) of each tier's answer and keeps it, escalates, or holds it "
        f'back as "not sure"; its thresholds are chosen on the train part for each `[cascade] target`, holding back at '
        f"most {o.not_sure:.0%} of the answers some tier got right (`not_sure`), and played on the test part. Time: "
        f"{o.time_costs}, as a share of always asking {last}. Lost: right answers held back (the app still shows "
        "them as the best guess).",
        "",
        f"| target | trust | always {last} (same parts) | time / always {last} | escalated | not sure | lost |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in o.rows:
        lines.append(
            f"| {r.target} | {r.trust.mean:+.3f} ± {r.trust.std:.3f} | {r.last_trust:+.3f} | "
            f"{r.time.mean:.2f} ± {r.time.std:.2f} | {r.escalated:.0%} | {r.abstained:.0%} | {r.lost:.0%} |"
        )
    lines += [
        "",
        "Reliability of the percentage shown beside an answer (P(right), held out, pooled over the splits; count per "
        "split): a calibrated percentage has the two columns close.",
        "",
        "| tier | P(right) shown | answers | mean shown | share right |",
        "| --- | --- | --- | --- | --- |",
    ]
    for tier, bins in o.reliability.items():
        for b in bins:
            lines.append(
                f"| {tier} | {b.bin[0]:.0%}–{b.bin[1]:.0%} | {b.count} | {b.confidence:.0%} | {b.accuracy:.0%} |"
            )
    return [*lines, ""]


def _render_oracle_share(osh: OracleShare) -> list[str]:
    rates = [f"{r:g}" for r in osh.rates]
    pct = [f"{float(r):.0%}" for r in rates]
    lines = [
        "## Signals at a fixed escalation rate: the share of the oracle's gain",
        "",
        "Each signal, fitted on the train part, escalates its least confident "
        + " or ".join(pct)
        + " of the held-out items; the share is (F1 − random mixing) / (oracle − random mixing) at the same "
        "rate (0: a coin, 1: perfect; mean over the splits, 95 % interval over resamples of the test items). "
        "On all items, random mixing keeps "
        + ", ".join(f"{_f(osh.random_vs_large[r], 3)} ({p})" for r, p in zip(rates, pct, strict=True))
        + " of the large tier's F1 and the oracle "
        + ", ".join(f"{_f(osh.oracle_vs_large[r], 3)} ({p})" for r, p in zip(rates, pct, strict=True))
        + ". Cost: the signal's seconds as a share of the small tier's answer (0: read from the answer itself).",
        "",
        "| signal | " + " | ".join(f"share at {p} (95 % CI)" for p in pct) + " | cost × answer |",
        "| --- | " + " | ".join("---" for _ in pct) + " | --- |",
    ]
    for name, e in osh.signals.items():
        cells = [
            f"{_f(e.rates[r]['share'], 2)} ({_f(e.rates[r]['lo'], 2)} to {_f(e.rates[r]['hi'], 2)})" for r in rates
        ]
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {_f(e.cost_ratio, 2)} |")
    return [*lines, ""]


def plot(res: Results, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    settings = res.cost_settings
    fig, axes = plt.subplots(1, len(settings), figsize=(7 * len(settings), 5.2), squeeze=False)
    for ax, cs in zip(axes[0], settings, strict=True):
        r = cs.routers
        s, large = r[RouterKey("always_small")], r[RouterKey("always_large")]
        xs = [s.cost.mean, large.cost.mean]
        ys = [s.performance.mean, large.performance.mean]
        ax.plot(xs, ys, "k--", lw=1, label="random mixing (IBC baseline)")
        ax.scatter(xs[:1], ys[:1], c="k", marker="s", s=60, zorder=5, label="always-small")
        ax.scatter(xs[1:], ys[1:], c="k", marker="^", s=70, zorder=5, label="always-large")
        cmap = plt.get_cmap("tab10")
        for i, (name, curve) in enumerate(cs.curves.items()):
            ax.plot(
                [p["cost"] for p in curve],
                [p["performance"] for p in curve],
                "-",
                lw=1.2,
                alpha=0.8,
                color=cmap(i % 10),
                label=f"threshold sweep · {name}",
            )
        markers = {"threshold": "o", "pomdp": "*", "self_consistency": "D"}
        for i, name in enumerate(cs.curves):
            for kind, mk in markers.items():
                key = RouterKey(kind, name)
                if key in r:
                    ax.scatter(
                        [r[key].cost.mean],
                        [r[key].performance.mean],
                        marker=mk,
                        s=80,
                        color=cmap(i % 10),
                        edgecolors="k",
                        zorder=6,
                    )
        ax.set_title(f"{cs.name} costs  (★ POMDP, ● threshold, ◆ self-consistency)", fontsize=10)
        ax.set_xlabel("mean cost per question")
        ax.set_ylabel("F1")
        ax.grid(alpha=0.3)
    axes[0][-1].legend(fontsize=7, loc="lower right")
    fig.suptitle(
        f"{' → '.join(res.run.tiers)} on {res.run.items} items (held-out means over {res.seeds} seeds)",
        fontsize=11,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def summary(res: Results) -> str:
    lines = [f"{res.run.items} items · " + " · ".join(f"{n} F1 {t.f1:.3f}" for n, t in res.tiers.items())]
    lines.append("AUROC: " + ", ".join(f"{n} {_or(s.auroc_raw, s.auroc()):.2f}" for n, s in res.signals.items()))
    for cs in res.cost_settings:
        r = cs.routers.get(cs.best) if cs.best else None
        best = (
            f"best {cs.best}: ΔIBC {_pm(r.delta_ibc, 1)}% (95% CI {_ci(r.delta_ibc_ci)}), F1 {r.performance.mean:.3f}"
            if r
            else "no router"
        )
        lines.append(f"[{cs.name}] {best}")
        lines += [f"  warning: {w}" for w in cs.warnings]
    if res.trust is not None:
        lines.append(
            "trust score (+1 right, 0 abstained, −1 wrong): "
            + " · ".join(f"{n} {x.mean:+.2f}" for n, x in res.trust.tiers.items())
            + "".join(
                f" · [{ct.name}] best {ct.best} {ct.routers[ct.best].recorded.mean:+.2f}"
                for ct in res.trust.cost_settings
                if ct.best is not None
            )
        )
    return "\n".join(lines)


def _or(x: float | None, default: float) -> float:
    return default if x is None else x


def write_report(
    run_path: Path,
    out_dir: Path,
    fixed_costs: Sequence[float] = (1.0, 50.0),
    seeds: int = 10,
    train_sizes: Sequence[int] = (50, 100, 200, 500),
    command: str | None = None,
    verify_cost: float = 1.0,
) -> Results:
    run = load_run(run_path)
    res = build_results(run, fixed_costs, seeds, train_sizes, verify_cost)
    res.command = command
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "results.json").write_text(json.dumps(to_json(res), indent=1, ensure_ascii=False) + "\n")
    (out_dir / "report.md").write_text(render_markdown(res, command), encoding="utf-8")
    plot(res, out_dir / "cost_quality.png")
    return res
