"""The prompt and abstention variants of issue 3, side by side on the same questions.

    .venv/bin/python bench/variants.py --out docs/results/variants/README.md

Reads recorded runs only (no model): `eval run` directories (answer-prompt variants) and
`bench/reverify.py` files (verifier variants re-scoring the same recorded answers). Every table is
restricted to the questions all its sources share, and every AUROC difference comes with a paired
bootstrap interval (items resampled, the same resample for every variant).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from automix_local.report import CORRECT_F1, auroc  # noqa: E402

DATASETS = {
    "SQuAD 2.0": {
        "paper": "docs/results/squad300-logprob/run",
        "examples": "docs/results/variants/squad100-examples",
        "shared": "docs/results/squad300-shared/run",
        "reverify_shared": "docs/results/reverify-shared/reverify-squad300-shared.jsonl",
        "reverify_chat": "docs/results/variants/reverify-squad60-chat.jsonl",
    },
    "FairyTaleQA": {
        "paper": "docs/results/fairytale200-logprob/run",
        "examples": "docs/results/variants/fairytale100-examples",
        "shared": "docs/results/fairytale200-shared/run",
        "reverify_shared": "docs/results/reverify-shared/reverify-fairytale200-shared.jsonl",
        "reverify_chat": "docs/results/variants/reverify-fairytale200-chat.jsonl",
    },
}
PROMPTS = {
    "paper": "paper layout (the answer prompt of the committed runs)",
    "examples": "paper layout + `answer_examples = true` (3 worked examples, one abstention)",
    "shared": "shared layout (4 verification examples in the answer prompt)",
}


def _rows(path: Path) -> dict[str, dict]:
    if path.is_dir():
        path = path / "items.jsonl"
    out = {}
    for line in path.read_text().splitlines():
        if line.strip():
            r = json.loads(line)
            if "error" not in r:
                out[r["id"]] = r
    return out


def _boot(ids: Sequence[str], stat: Callable[[Sequence[str]], float], n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.array([stat(list(rng.choice(ids, size=len(ids), replace=True))) for _ in range(n)])


def _f3(x: float) -> str:
    return "–" if math.isnan(x) else f"{x:.3f}"


def _ci(a: np.ndarray) -> str:
    lo, hi = np.nanpercentile(a, [2.5, 97.5])
    return f"{lo:+.3f} to {hi:+.3f}"


def verifier_table(name: str, src: dict[str, str], boot: int) -> list[str]:
    paper = _rows(ROOT / src["paper"])
    chat_path, shared_path = ROOT / src["reverify_chat"], ROOT / src["reverify_shared"]
    if not chat_path.exists():
        return [f"(no chat-template re-verification for {name} yet)", ""]
    chat = _rows(chat_path)
    shared = _rows(shared_path) if shared_path.exists() else {}
    ids = [i for i in paper if i in chat and (not shared or i in shared)]
    small = {i: paper[i]["tiers"]["small"] for i in ids}
    label = {i: small[i]["f1"] >= CORRECT_F1 for i in ids}
    signals: dict[str, Callable[[str], float]] = {
        "paper layout, raw completion (the paper's; recorded)": lambda i: small[i]["verification"]["logprob"][
            "confidence"
        ],
        "paper layout, chat template": lambda i: chat[i]["logprob"]["conf"],
    }
    if shared:
        signals["shared layout"] = lambda i: shared[i]["logprob"]["conf"]
    signals["free: min token log-probability (no verifier)"] = lambda i: small[i]["features"]["min_logprob"]

    def score(f: Callable[[str], float]) -> Callable[[Sequence[str]], float]:
        return lambda sample: auroc([f(i) for i in sample], [label[i] for i in sample])

    ref = next(iter(signals.values()))
    ref_boot = _boot(ids, score(ref), boot)
    lines = [
        f"### {name}: {len(ids)} recorded small answers ({sum(label.values())} correct), `logprob` verdict",
        "",
        "| verification prompt | AUROC | − raw completion | 95 % CI of the difference |",
        "| --- | --- | --- | --- |",
    ]
    for k, f in signals.items():
        point = score(f)(ids)
        if f is ref:
            lines.append(f"| {k} | {point:.3f} | – | – |")
            continue
        diff = _boot(ids, score(f), boot) - ref_boot
        lines.append(f"| {k} | {point:.3f} | {point - score(ref)(ids):+.3f} | {_ci(diff)} |")
    secs = np.mean([chat[i]["logprob"]["s"] for i in ids])
    lines += ["", f"Chat-template verification: {secs:.2f} s per answer re-verified from scratch.", ""]
    return lines


def prompt_table(name: str, src: dict[str, str], boot: int) -> list[str]:
    runs = {k: _rows(ROOT / src[k]) for k in PROMPTS if (ROOT / src[k]).exists()}
    if "examples" not in runs:
        return [f"(no answer_examples run for {name} yet)", ""]
    ids = [i for i in runs["examples"] if all(i in r for r in runs.values())]
    unans = [i for i in ids if runs["paper"][i]["unanswerable"]]
    lines = [
        f"### {name}: the same {len(ids)} questions" + (f" ({len(unans)} unanswerable)" if unans else ""),
        "",
        "| answer prompt | small F1 | large F1 | small abstains | large abstains"
        + (" | small F1 unanswerable | small F1 answerable" if unans else "")
        + " | AUROC min logprob | − paper, 95 % CI | AUROC mean logprob | AUROC verifier (logprob) |",
        "| --- | --- | --- | --- | ---" + (" | --- | ---" if unans else "") + " | --- | --- | --- | --- |",
    ]

    def min_lp_auroc(r: dict[str, dict]) -> Callable[[Sequence[str]], float]:
        return lambda sample: auroc(
            [r[i]["tiers"]["small"]["features"]["min_logprob"] for i in sample],
            [r[i]["tiers"]["small"]["f1"] >= CORRECT_F1 for i in sample],
        )

    paper_boot = _boot(ids, min_lp_auroc(runs["paper"]), boot)
    paper_point = min_lp_auroc(runs["paper"])(ids)
    for k, r in runs.items():
        s = [r[i]["tiers"]["small"] for i in ids]
        big = [r[i]["tiers"].get("large") for i in ids]
        lab = [t["f1"] >= CORRECT_F1 for t in s]
        large_f1 = f"{np.mean([t['f1'] for t in big]):.3f}" if all(big) else "– (not run)"
        large_ab = f"{np.mean([t['abstained'] for t in big]):.2f}" if all(big) else "–"
        row = (
            f"| {PROMPTS[k]} | {np.mean([t['f1'] for t in s]):.3f} | {large_f1} | "
            f"{np.mean([t['abstained'] for t in s]):.2f} | {large_ab}"
        )
        if unans:
            su = np.mean([r[i]["tiers"]["small"]["f1"] for i in unans])
            sa = np.mean([r[i]["tiers"]["small"]["f1"] for i in ids if i not in set(unans)])
            row += f" | {su:.3f} | {sa:.3f}"
        ver = [t["verification"].get("logprob", {}).get("confidence") for t in s]
        v_auc = auroc(ver, lab) if all(v is not None for v in ver) else math.nan
        point = auroc([t["features"]["min_logprob"] for t in s], lab)
        diff = (
            "–"
            if k == "paper"
            else f"{point - paper_point:+.3f} ({_ci(_boot(ids, min_lp_auroc(r), boot) - paper_boot)})"
        )
        row += (
            f" | {point:.3f} | {diff}"
            f" | {auroc([t['features']['mean_logprob'] for t in s], lab):.3f}"
            f" | {'–' if math.isnan(v_auc) else f'{v_auc:.3f}'} |"
        )
        lines.append(row)
    return [*lines, ""]


def abstention_table(name: str, src: dict[str, str]) -> list[str]:
    lines = [
        f"### {name}",
        "",
        "| answer prompt · signal | items | small abstains | correct small answers | AUROC as recorded | "
        "answerable items only | abstention → confidence 0 | abstention → confidence 1 |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for k in PROMPTS:
        path = ROOT / src[k]
        if not path.exists():
            continue
        r = _rows(path)
        s = [x["tiers"]["small"] for x in r.values()]
        ans = [not x["unanswerable"] for x in r.values()]
        lab = [t["f1"] >= CORRECT_F1 for t in s]
        ab = [bool(t["abstained"]) for t in s]
        sigs: dict[str, list[float]] = {"min logprob": [t["features"]["min_logprob"] for t in s]}
        for strat in ("logprob", "sampled"):
            if all(strat in t["verification"] for t in s):
                sigs[f"verifier {strat}"] = [t["verification"][strat]["confidence"] for t in s]
        for sname, v in sigs.items():
            lo, hi = min(v), max(v)
            only = auroc([x for x, a in zip(v, ans, strict=True) if a], [y for y, a in zip(lab, ans, strict=True) if a])
            zero = auroc([lo - 1 if a else x for x, a in zip(v, ab, strict=True)], lab)
            one = auroc([hi + 1 if a else x for x, a in zip(v, ab, strict=True)], lab)
            lines.append(
                f"| {k} · {sname} | {len(s)} | {sum(ab)} | {sum(lab)} | {auroc(v, lab):.3f} | "
                f"{only:.3f} | {zero:.3f} | {one:.3f} |"
            )
    return [*lines, ""]


TAUS = (1.0, 0.5, 0.2, 0.1, 0.05, 0.02, 0.01, 0.005, 0.002, 0.001, 0.0005, 0.0002, 0.0001)


def abstain_threshold_table(name: str, src: dict[str, str], seeds: int = 10) -> list[str]:
    """Abstain whenever the model's probability of starting "unanswerable" reaches τ (decided at the
    first token, so it costs nothing): τ is chosen on a random half (best F1), scored on the other."""
    r = list(_rows(ROOT / src["paper"]).values())
    lines = [
        f"### {name} ({len(r)} questions, {sum(x['unanswerable'] for x in r)} unanswerable), paper layout",
        "",
        f"| tier | F1 as answered (held-out halves, {seeds} splits) | F1 with τ chosen on the other half | "
        "τ chosen | answers turned into abstentions | always abstaining | AUROC of p_abstain for unanswerable |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    un = np.array([x["unanswerable"] for x in r], dtype=float)
    for tier in r[0]["tiers"]:
        pab = np.array([x["tiers"][tier]["features"]["p_abstain"] for x in r])
        f1 = np.array([x["tiers"][tier]["f1"] for x in r])

        def f1_at(tau: float, idx: np.ndarray, pab: np.ndarray = pab, f1: np.ndarray = f1) -> float:
            return float(np.where(pab[idx] >= tau, un[idx], f1[idx]).mean())

        base, scores, taus, turned = [], [], [], []
        for seed in range(seeds):
            perm = np.random.default_rng(seed).permutation(len(r))
            tr, te = perm[: len(r) // 2], perm[len(r) // 2 :]
            tau = max(TAUS, key=lambda t: (f1_at(t, tr), t))  # ties: the larger τ (fewer abstentions)
            scores.append(f1_at(tau, te))
            base.append(float(f1[te].mean()))
            taus.append(tau)
            turned.append(float((pab[te] >= tau).mean()))
        lines.append(
            f"| {tier} | {np.mean(base):.3f} ± {np.std(base, ddof=1):.3f} | "
            f"{np.mean(scores):.3f} ± {np.std(scores, ddof=1):.3f} | "
            f"{min(taus):g}–{max(taus):g} | {np.mean(turned):.0%} | {un.mean():.3f} | "
            f"{_f3(auroc(list(pab), list(un.astype(bool))))} |"
        )
    return [*lines, ""]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--boot", type=int, default=2000)
    args = ap.parse_args()
    lines = ["## Verification prompt: raw completion vs chat template (same answers, same labels)", ""]
    for name, src in DATASETS.items():
        lines += verifier_table(name, src, args.boot)
    lines += ["## Answer prompt: worked examples, and the shared layout (same questions)", ""]
    for name, src in DATASETS.items():
        lines += prompt_table(name, src, args.boot)
    lines += ["## Abstentions: how they are scored by each signal", ""]
    for name, src in DATASETS.items():
        lines += abstention_table(name, src)
    lines += ['## Abstaining on the first token\'s probability of "unanswerable" (τ fitted, held out)', ""]
    for name, src in DATASETS.items():
        lines += abstain_threshold_table(name, src)
    text = "\n".join(lines)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        head = args.out.read_text().split("<!-- generated -->")[0] if args.out.exists() else ""
        args.out.write_text(head + "<!-- generated -->\n\n" + text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
