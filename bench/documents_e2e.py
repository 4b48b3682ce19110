"""The cascade over the document library, end to end, against the paragraph-given setting.

    .venv/bin/python bench/documents_e2e.py --data ../shared/data/squad_v2_dev_public.jsonl --n 240 --seed 4 \
        --context-tokens 512 --library .cache/e2e/squad --out docs/results/documents_e2e.md

The library is built from the file as in bench/documents.py (one Markdown document per article) and
filled with vectors (``--library DIR`` keeps it for the next run). For each sampled question (half answerable,
half unanswerable where the file has unanswerable questions; seed given; asked in a shuffled order, so the
first k records are a random subset) the default cascade (the packaged models.toml; the trust router at the
operating point in its file unless ``--measured-speeds``) answers over the question's own paragraph (what
`ask --context` does; ``--no-given`` skips it), and over the whole library through `ask --all`'s own
retrieval, packing and not-found decisions, once per `--context-tokens` cap (`[documents] context_tokens`;
0: as many passages as the window holds), side by side on the same questions. (The runs of 2026-12-02
capped the window budget itself; over libraries of 20+ articles that never fit whole, that is the same
packing.)

Each library answer is recorded with the features of automix_local/documents/answerable.py (the rule that
says "not in your documents" for on-topic questions the passages do not answer), its trace and the ids of
the passages it was answered over: ``--records FILE --library DIR`` renders the report again from them,
with the features recomputed by the current code and the current rule applied (bench/answerable_fit.py fits
the rule on these records).
Reported: SQuAD F1 (an unanswerable question scores 1 only for an abstention or "not in your documents"),
the share of unanswerable questions answered "not in your documents" or abstained and of answerable ones
lost so, by reason (retrieval floor, abstained, the router's "not sure", the rule), on all questions and on
those the rule was not fitted on, with the trust score; the escalation rate, seconds per question; and
whether the retrieval's best cosine similarity tells a right small-tier answer from a wrong one, alone and
beside the router's own confidence (AUROC). Small N: read the intervals, not the digits.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from documents import build_documents  # noqa: E402

from automix_local.cascade import Cascade, Step, Trace  # noqa: E402
from automix_local.config import find_config, load_config  # noqa: E402
from automix_local.documents import answerable as rule  # noqa: E402
from automix_local.documents.asking import retrieve  # noqa: E402
from automix_local.documents.library import Library  # noqa: E402
from automix_local.documents.vectors import fill, model_key, open_embedder  # noqa: E402
from automix_local.paths import default_paths  # noqa: E402
from automix_local.prompts import is_abstention  # noqa: E402
from automix_local.scoring import score_item  # noqa: E402


def bootstrap(values: list[float], seed: int = 0, reps: int = 1000) -> tuple[float, float]:
    rng = random.Random(seed)
    means = sorted(statistics.fmean(rng.choices(values, k=len(values))) for _ in range(reps))
    return means[int(0.025 * reps)], means[int(0.975 * reps)]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--n", type=int, default=40)
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--context-tokens", default="0", help="comma-separated caps on the passages' tokens (0: none)")
    ap.add_argument("--out", type=Path)
    ap.add_argument(
        "--library", type=Path, help="keep the built library (with its vectors) in this folder and reuse it next time"
    )
    ap.add_argument("--no-given", action="store_true", help="skip the paragraph-given setting (faster)")
    ap.add_argument(
        "--measured-speeds",
        action="store_true",
        help="let the trust router take its operating point from this machine's tiers' speeds, probed at load "
        "(the app's behaviour; not reproducible); default: the operating point in the router file",
    )
    ap.add_argument(
        "--records", type=Path, help="render the report from these recorded questions (the .json it wrote) only"
    )
    args = ap.parse_args()
    caps = [int(c) for c in args.context_tokens.split(",")]
    if args.records:
        config = load_config(find_config(), default_paths())
        out = json.loads(args.records.read_text(encoding="utf-8"))
        rows = {r["id"]: r for r in map(json.loads, args.data.open(encoding="utf-8"))}
        for rec in out:  # scored again from the recorded answers (the scoring is deterministic)
            for res in rec.values():
                if isinstance(res, dict) and "answer" in res:
                    res["f1"] = score_item(res["answer"], rows[rec["id"]])[0]
                    if "small_answer" in res:
                        res["small_f1"] = score_item(res["small_answer"], rows[rec["id"]])[0]
                    if (res.get("trace") or {}).get("best_guess"):
                        res["guess_f1"] = score_item(res["trace"]["best_guess"], rows[rec["id"]])[0]
        if args.library is not None:
            refeature(out, rows, args.library / "library.sqlite")
        args.records.write_text(json.dumps(out, indent=1) + "\n", encoding="utf-8")
        argv = [a for a in sys.argv[1:] if a != "--records" and Path(a) != args.records]
        text = render(out, argv, args, caps, config.tiers[-1].name)
        print(text)
        if args.out:
            args.out.write_text(text, encoding="utf-8")
        return 0
    config = load_config(find_config(), default_paths())
    rows = [json.loads(line) for line in args.data.open(encoding="utf-8")]
    rows = [r for r in rows if r["context_id"].partition("#")[2].isdigit()]
    rng = random.Random(args.seed)
    answerable = [r for r in rows if r.get("answers") and not r.get("unanswerable")]
    unanswerable = [r for r in rows if r.get("unanswerable")]
    n_una = args.n - args.n // 2 if unanswerable else 0
    sample = rng.sample(answerable, args.n - n_una) + rng.sample(unanswerable, n_una)
    random.Random(args.seed).shuffle(sample)  # asked in a mixed order: the first k records are a random subset
    embedder = open_embedder(config)
    key = model_key(config.embedding) if config.embedding is not None else None
    cascade = Cascade(config, measure_speeds=args.measured_speeds)
    out: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.library or Path(tmp)
        db = folder / "library.sqlite"
        if not db.exists() or args.library is None:
            build_documents(rows, folder / "docs")
            with Library(db) as lib:
                lib.add([folder / "docs"])
        with Library(db) as lib:  # vectors: whatever an earlier, interrupted build left out
            if embedder is not None and key is not None:
                fill(lib, embedder, key)
        for i, r in enumerate(sample, 1):
            rec: dict = {"id": r["id"], "unanswerable": bool(r.get("unanswerable"))}
            if not args.no_given:
                t0 = time.perf_counter()
                given = cascade.ask(r["context"], r["question"])
                rec["given"] = {
                    "answer": given.answer,
                    "f1": score_item(given.answer, r)[0],
                    "tier": given.tier,
                    "seconds": time.perf_counter() - t0,
                }
            for cap in caps:
                t0 = time.perf_counter()
                got = retrieve(
                    db,
                    None,
                    r["question"],
                    cascade.document_budget,
                    embed_query=embedder.embed_query if embedder is not None else None,
                    model=key,
                    cap=cap,
                )
                small: dict = {}
                reason = None
                if got.not_found:
                    answer, tier = "unanswerable", None  # "not in your documents": scored as an abstention
                    reason = "retrieval"
                else:
                    trace = cascade.ask(got.context, r["question"], sources=got.sources)
                    answer, tier = trace.answer, trace.tier
                    first, last = trace.steps[0], trace.steps[-1]
                    if is_abstention(answer) or not answer.strip():  # as AskService says why
                        reason = "not_sure" if trace.decision == "abstain" else "abstained"
                    small = {
                        "small_answer": first.answer,
                        "small_f1": score_item(first.answer, r)[0],
                        "small_confidence": first.confidence,
                        # what the service's rule reads (answerable.features on the same inputs)
                        "features": rule.features(r["question"], got.packed.passages, got.best_cosine, trace),
                        "trace": trace.to_json(),  # the features can be recomputed from it and the passages
                        "passage_ids": [p.id for p in got.packed.passages],
                    }
                    if trace.best_guess:  # held back as "not sure": how good the answer held back was
                        small["guess_f1"] = score_item(trace.best_guess, r)[0]
                    if len(trace.steps) > 1:
                        small |= {"large_answer": last.answer, "large_f1": score_item(last.answer, r)[0]}
                rec[f"library@{cap}"] = {
                    "answer": answer,
                    "not_found": got.not_found or is_abstention(answer),
                    "not_found_reason": reason,
                    "f1": score_item(answer, r)[0],
                    "tier": tier,
                    "mode": got.packed.mode,
                    "passages": len(got.packed.passages),
                    "tokens": got.packed.tokens,
                    "best_cosine": got.best_cosine,
                    "seconds": time.perf_counter() - t0,
                    **small,
                }
            out.append(rec)
            print(i, json.dumps(rec), flush=True)
    cascade.close()
    if embedder is not None:
        embedder.close()
    text = render(out, sys.argv[1:], args, caps, config.tiers[-1].name)
    print(text)
    if args.out:
        args.out.write_text(text, encoding="utf-8")
        args.out.with_suffix(".json").write_text(json.dumps(out, indent=1) + "\n")
    return 0


def refeature(out: list[dict], rows: dict[str, dict], db: Path) -> None:
    """The rule's features computed again from each recorded trace and the passages it was answered over (the
    library the run used, kept with --library): a feature added to answerable.FEATURES needs no new run."""
    with Library(db) as lib:
        for rec in out:
            for res in rec.values():
                if isinstance(res, dict) and "trace" in res and "passage_ids" in res:
                    passages = [lib.passage(pid) for pid in res["passage_ids"]]
                    res["features"] = rule.features(
                        rows[rec["id"]]["question"], passages, res["best_cosine"], trace_from_json(res["trace"])
                    )


def trace_from_json(data: dict) -> Trace:
    steps = [Step(**s) for s in data["steps"]]
    return Trace(**{**data, "steps": steps})


def paired_bootstrap(a: list[float], b: list[float], seed: int = 0, reps: int = 1000) -> tuple[float, float]:
    """95 % interval of mean(a - b) over the same questions."""
    diffs = [x - y for x, y in zip(a, b, strict=True)]
    return bootstrap(diffs, seed, reps)


def outcome(rec: dict, setting: str) -> tuple[str | None, float]:
    """How `ask` ends on this question now: why it is "not in your documents" (None: it is answered) and its F1
    as shown (a question turned away scores as an abstention). "unsupported": the rule of
    automix_local/documents/answerable.py, applied to the recorded features."""
    res = rec[setting]
    reason = res.get("not_found_reason") or ("abstained" if res.get("not_found") else None)
    if reason == "abstained" and (res.get("trace") or {}).get("decision") == "abstain":
        reason = "not_sure"  # the router held the answer back (recorded as "abstained" before it was told apart)
    if setting == "given":
        reason = "abstained" if is_abstention(res["answer"]) else None
    elif reason is None and res.get("features") and rule.turn_away(res["features"]):
        reason = "unsupported"
    if reason == "unsupported":  # the recorded F1 is the answer's; an abstention's already scores as one
        return reason, 1.0 if rec["unanswerable"] else 0.0
    return reason, res["f1"]


def render(out: list[dict], argv: list[str], args: argparse.Namespace, caps: list[int], large: str) -> str:
    n_una = sum(1 for r in out if r["unanswerable"])
    data = args.data.name
    lines = [
        "# The cascade over the document library, end to end",
        "",
        f"`python bench/documents_e2e.py {' '.join(argv)}`",
        "",
        f"{len(out)} questions of {data} ({len(out) - n_una} answerable, {n_una} unanswerable, seed {args.seed}); "
        "the packaged models.toml (default models, router and layout); the library: every article or story of "
        "the file as one document, BM25 + vectors; 95 % bootstrap intervals over the questions. `library@N`: "
        "`ask --all` with `[documents] context_tokens = N` (0: as many passages as the window holds). Every "
        "number is what `ask` answers now, the not-in-your-documents rule (`automix_local/documents/answerable.py`) "
        "included: a question turned away scores as an abstention (F1 1 on an unanswerable question, 0 on an "
        "answerable one); lost: an answerable question turned away.",
        "",
        "| setting | F1 (95 % CI) | answerable F1 | unanswerable: abstained or not in your documents | "
        "answerable lost | escalated | passages (median) | s / question |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    settings = (["given"] if "given" in out[0] else []) + [f"library@{c}" for c in caps]
    for setting in settings:
        shown = [outcome(r, setting) for r in out]
        f1 = [f for _, f in shown]
        lo, hi = bootstrap(f1)
        ans = [f for r, (_, f) in zip(out, shown, strict=True) if not r["unanswerable"]]
        lost = sum(1 for r, (why, _) in zip(out, shown, strict=True) if not r["unanswerable"] and why)
        una = [why for r, (why, _) in zip(out, shown, strict=True) if r["unanswerable"]]
        nf = f"{sum(1 for why in una if why) / len(una):.0%}" if una else "–"
        esc = sum(1 for r in out if r[setting]["tier"] == large) / len(out)
        secs = statistics.fmean(r[setting]["seconds"] for r in out)
        packed = [r[setting]["passages"] for r in out if r[setting].get("mode") == "retrieved"]
        med = f"{statistics.median(packed):.0f}" if packed else "–"
        name = "paragraph given (`ask --context`)" if setting == "given" else f"whole library, `{setting}`"
        lines.append(
            f"| {name} | {statistics.fmean(f1):.3f} ({lo:.3f}–{hi:.3f}) | {statistics.fmean(ans):.3f} | "
            f"{nf} | {lost / max(1, len(ans)):.0%} | {esc:.0%} | {med} | {secs:.1f} |"
        )
    base = caps[-1] if 0 not in caps else 0  # each cap against the whole window (or the last cap given)
    for cap in (c for c in caps if c != base):
        a, b = f"library@{cap}", f"library@{base}"
        fa = [outcome(r, a)[1] for r in out]
        fb = [outcome(r, b)[1] for r in out]
        lo, hi = paired_bootstrap(fa, fb)
        speed = statistics.fmean(r[b]["seconds"] for r in out) / statistics.fmean(r[a]["seconds"] for r in out)
        lines += [
            "",
            f"`{a}` against `{b}` on the same questions: F1 difference {lo:+.3f} to {hi:+.3f} (95 %), "
            f"{speed:.1f}× {'faster' if speed >= 1 else 'as fast'}.",
        ]
    lines += ["", *not_found_table(out, caps)]
    lines += ["", *router_feature(out, caps)]
    return "\n".join(lines) + "\n"


def not_found_table(out: list[dict], caps: list[int]) -> list[str]:
    """Why questions are turned away, before and with the rule, on all questions and on the part the rule was
    not fitted on (bench/answerable_fit.py's split); the trust score (+1 right, 0 abstained, −1 wrong) of each."""
    from answerable_fit import fitting_part

    from automix_local.scoring import RIGHT_F1, trust_value

    lines = [
        "Not in your documents, by reason (retrieval: no passage is relevant, no model asked · abstained: the model "
        "said so · not sure: the router held the answer back · unsupported: the rule, fitted by "
        "`bench/answerable_fit.py` on the questions whose id's SHA-256 is even; held out: the others). Trust score: "
        "+1 right (F1 ≥ 0.5, or turned away when unanswerable), 0 turned away when answerable, −1 wrong.",
        "",
        "| setting | questions | unanswerable turned away: retrieval · abstained · not sure · unsupported = total | "
        "answerable lost: retrieval · abstained · not sure · unsupported = total | "
        "answerable lost that were right: not sure · unsupported | "
        "trust score without → with the rule |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for cap in caps:
        setting = f"library@{cap}"
        if not any(r[setting].get("features") for r in out):
            continue
        for part, keep in (
            ("all", lambda r: True),
            ("held out", lambda r: not fitting_part(r["id"])),
            ("fitting part", lambda r: fitting_part(r["id"])),
        ):
            rows = [r for r in out if keep(r)]
            cells = []
            for una in (True, False):
                group = [r for r in rows if r["unanswerable"] is una]
                if not group:
                    cells.append("–")
                    continue
                why = [outcome(r, setting)[0] for r in group]
                counts = [sum(1 for w in why if w == k) for k in ("retrieval", "abstained", "not_sure", "unsupported")]
                total = sum(counts)
                cells.append(
                    " · ".join(f"{c / len(group):.0%}" for c in counts)
                    + f" = **{total / len(group):.0%}** of {len(group)}"
                )
            right_lost = [
                sum(
                    1
                    for r in rows
                    if not r["unanswerable"]
                    and outcome(r, setting)[0] == why
                    and r[setting].get("guess_f1", r[setting]["f1"]) >= RIGHT_F1
                )
                for why in ("not_sure", "unsupported")
            ]
            before = [trust_value(r[setting]["f1"], bool(r[setting].get("not_found")), r["unanswerable"]) for r in rows]
            after = [trust_value(r[setting]["f1"], outcome(r, setting)[0] is not None, r["unanswerable"]) for r in rows]
            lines.append(
                f"| {setting} | {part} ({len(rows)}) | {cells[0]} | {cells[1]} | {right_lost[0]} · {right_lost[1]} | "
                f"{statistics.fmean(before):+.2f} → {statistics.fmean(after):+.2f} |"
            )
    return lines


def router_feature(out: list[dict], caps: list[int]) -> list[str]:
    """Does the retrieval's best cosine tell a right small answer (F1 ≥ 0.5) from a wrong one, beside the
    router's own confidence? AUROC of each, and of their rank average (no fitting, so no held-out split)."""
    from automix_local.report import auroc

    lines = [
        "Retrieval scores as a router signal (questions the small tier answered over the library; a small "
        "answer counts as right at F1 ≥ 0.5):",
        "",
        "| setting | answered | right | AUROC: router confidence | AUROC: best cosine | AUROC: rank average |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for cap in caps:
        rows = [
            r[f"library@{cap}"]
            for r in out
            if r[f"library@{cap}"].get("small_confidence") is not None and r[f"library@{cap}"]["best_cosine"]
        ]
        labels = [x["small_f1"] >= 0.5 for x in rows]
        if len(set(labels)) < 2:
            continue
        conf = [x["small_confidence"] for x in rows]
        cos = [x["best_cosine"] for x in rows]
        avg = [a + b for a, b in zip(ranks(conf), ranks(cos), strict=True)]
        lines.append(
            f"| library@{cap} | {len(rows)} | {sum(labels)} | {auroc(conf, labels):.3f} | {auroc(cos, labels):.3f} | "
            f"{auroc(avg, labels):.3f} |"
        )
    return lines


def ranks(values: list[float]) -> list[float]:
    order = sorted(range(len(values)), key=values.__getitem__)
    out = [0.0] * len(values)
    for rank, i in enumerate(order):
        out[i] = rank / max(1, len(values) - 1)
    return out


if __name__ == "__main__":
    sys.exit(main())
