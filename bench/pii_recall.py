"""Recall and false positives of automix_local.redact on the planted-PII corpus and on real prose.

    .venv/bin/python bench/pii_recall.py [--corpus tests/data/pii_corpus.jsonl] \\
        [--prose ../shared/data/squad_v2_dev_public.jsonl --prose-limit 2000]

Prints a markdown table per built-in kind: values planted in the corpus, found (a detected span of the same kind
covers the planted one), recall, detections on the corpus's negative lines (look-alikes only: every one is a false
positive), detections in positive lines that are not a planted value, and detections on real prose contexts, which
contain no planted PII. Real text can hold a genuine e-mail address or phone number, so those are reported as
"flags", with a sample to judge by eye. `--prose` may be given more than once; each file's distinct contexts are
read up to `--prose-limit`.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from automix_local.redact import BUILTIN_DETECTORS, Redactor  # noqa: E402

DEFAULT_CORPUS = ROOT / "tests" / "data" / "pii_corpus.jsonl"
DEFAULT_PROSE = ROOT.parent / "shared" / "data" / "squad_v2_dev_public.jsonl"


def load_contexts(path: Path, limit: int) -> list[str]:
    contexts: dict[str, str] = {}
    with path.open(encoding="utf-8") as f:
        for raw in f:
            row = json.loads(raw)
            text = row.get("context") or row.get("text")
            if not text:
                continue
            contexts.setdefault(row.get("context_id") or text, text)
            if len(contexts) >= limit:
                break
    return list(contexts.values())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    ap.add_argument("--prose", type=Path, action="append", help=f"real-text JSONL (default {DEFAULT_PROSE})")
    ap.add_argument("--prose-limit", type=int, default=2000, help="distinct contexts read per prose file")
    ap.add_argument("--sample", type=int, default=15, help="prose flags and misses listed")
    ap.add_argument("--rules", nargs="*", default=["all"], help="[policy] redact entries (default: all)")
    args = ap.parse_args()
    redactor = Redactor(args.rules)

    planted: Counter[str] = Counter()
    hit: Counter[str] = Counter()
    fp_negative: Counter[str] = Counter()
    extra_positive: Counter[str] = Counter()
    misses: list[tuple[str, str]] = []
    false_flags: list[tuple[str, str]] = []
    n_lines = n_negative = corpus_chars = 0
    t0 = time.perf_counter()
    for raw in args.corpus.read_text(encoding="utf-8").splitlines():
        line = json.loads(raw)
        text, gold = line["text"], line["spans"]
        n_lines += 1
        n_negative += not gold
        corpus_chars += len(text)
        spans = redactor.find(text)
        for p in gold:
            planted[p["kind"]] += 1
            if any(s.kind == p["kind"] and s.start <= p["start"] and s.end >= p["end"] for s in spans):
                hit[p["kind"]] += 1
            else:
                misses.append((p["kind"], text[p["start"] : p["end"]]))
        for s in spans:
            if not any(p["kind"] == s.kind and p["start"] < s.end and s.start < p["end"] for p in gold):
                (extra_positive if gold else fp_negative)[s.kind] += 1
                false_flags.append((s.kind, s.text))
    corpus_s = time.perf_counter() - t0

    prose_files = args.prose if args.prose is not None else ([DEFAULT_PROSE] if DEFAULT_PROSE.is_file() else [])
    prose_flags: Counter[str] = Counter()
    prose_examples: list[tuple[str, str, str]] = []
    n_contexts = prose_chars = 0
    t0 = time.perf_counter()
    for path in prose_files:
        for context in load_contexts(path, args.prose_limit):
            n_contexts += 1
            prose_chars += len(context)
            for s in redactor.find(context):
                prose_flags[s.kind] += 1
                snippet = context[max(0, s.start - 40) : s.end + 25].replace("\n", " ")
                prose_examples.append((s.kind, s.text, f"{path.name}: …{snippet}…"))
    prose_s = time.perf_counter() - t0

    print(
        f"Corpus: `{args.corpus.relative_to(ROOT) if args.corpus.is_relative_to(ROOT) else args.corpus}`, "
        f"{n_lines} lines ({n_negative} negative, look-alikes only). Rules: {args.rules}."
    )
    if prose_files:
        print(
            f"Prose: {', '.join(f'`{p.name}`' for p in prose_files)}, {n_contexts} distinct contexts "
            f"(first {args.prose_limit} per file), {prose_chars:,} characters, no planted PII."
        )
    print()
    print(
        "| kind | planted | found | recall | FP on corpus negatives | extra flags in positive lines "
        "| prose flags | prose flags / 1000 contexts |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    kinds = [*BUILTIN_DETECTORS, *sorted(set(prose_flags) - set(BUILTIN_DETECTORS))]
    for kind in kinds:
        recall = f"{hit[kind] / planted[kind]:.3f}" if planted[kind] else "–"
        per_k = f"{1000 * prose_flags[kind] / n_contexts:.1f}" if n_contexts else "–"
        print(
            f"| {kind} | {planted[kind]} | {hit[kind]} | {recall} | {fp_negative[kind]} | {extra_positive[kind]} "
            f"| {prose_flags[kind]} | {per_k} |"
        )
    total_p, total_h = sum(planted.values()), sum(hit.values())
    total_prose = sum(prose_flags.values())
    per_k = f"{1000 * total_prose / n_contexts:.1f}" if n_contexts else "–"
    print(
        f"| **all** | {total_p} | {total_h} | {total_h / max(total_p, 1):.3f} | {sum(fp_negative.values())} "
        f"| {sum(extra_positive.values())} | {total_prose} | {per_k} |"
    )
    print()
    speed = (corpus_chars + prose_chars) / max(corpus_s + prose_s, 1e-9) / 1e6
    print(f"Speed: {speed:.2f} M characters/s (corpus {corpus_s:.2f} s, prose {prose_s:.2f} s), one thread.")
    if misses:
        print(f"\nMissed ({len(misses)}), first {args.sample}:")
        for kind, value in misses[: args.sample]:
            print(f"- {kind}: `{value}`")
    if false_flags:
        print(f"\nCorpus false positives ({len(false_flags)}), first {args.sample}:")
        for kind, value in false_flags[: args.sample]:
            print(f"- {kind}: `{value}`")
    if prose_examples:
        print(f"\nProse flags ({len(prose_examples)}), first {args.sample}:")
        for kind, value, where in prose_examples[: args.sample]:
            print(f"- {kind}: `{value}` in {where}")
    elif prose_files:
        print("\nProse flags: none.")


if __name__ == "__main__":
    main()
