"""People, places and dates of birth for bench/pii_faker.py: Faker values planted in letters, tickets, medical
and HR notes, with and without a label word, found (or not) by `Redactor(["names"])` with the real NER model.

    .venv/bin/python bench/pii_names.py --seed 1 [--n 60] [--json]     # this part alone
    .venv/bin/python bench/pii_faker.py --seed 1 --json                 # with the structured kinds

The templates below were written for this measurement, not the ones names.py's rules were tuned on (those
used Faker seed 0 and other sentences). A planted value counts as **replaced** when spans of any of the
name kinds (person, location, organization) cover at least 90 % of its letters and digits — what the
privacy contract needs: it does not leave — and as **right kind** when spans of its own kind do. A date of
birth is planted with its label only (a bare date is not a date of birth).

Values: `person` — Faker's `name()` (with its titles and suffixes: "Dr. Rolf-Peter Ring MBA."), and
`first_name() + " " + last_name()`; `location` — `address()` (line breaks kept in letters, joined by commas
in running text), `street_address()` and `city()`; `date_of_birth` — `date_of_birth()` written as
`%d/%m/%Y`, `%Y-%m-%d`, `%B %d, %Y` and `%d %B %Y` (English month names).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from automix_local.config import load_config  # noqa: E402
from automix_local.names import NerModel  # noqa: E402
from automix_local.names import load as load_ner  # noqa: E402
from automix_local.paths import default_paths  # noqa: E402
from automix_local.redact import Redactor  # noqa: E402
from automix_local.sources import ner_model_path  # noqa: E402

LOCALES = "en_US,en_GB,de_DE,fr_FR,es_ES,it_IT,nl_NL,en_CA,en_IN"
NAME_KINDS = ("person", "location", "organization")
COVER = 0.9

# {v}: the value. (template, has a label word)
TEMPLATES: dict[str, list[tuple[str, bool]]] = {
    "person": [
        ("Dear {v},\n\nI am writing about the order I placed in March.", True),
        ("Patient name: {v}\nReason for visit: persistent cough, three weeks.", True),
        ("HR note\nEmployee: {v}\nLeave requested: 12-16 August.", True),
        ("Ticket 88213 — reported by {v}: laptop will not boot after the update.", True),
        ("Kind regards,\n{v}\nAccounts team", True),
        ("Contact person: {v} (ext. 4410)", True),
        ("I met {v} at the conference and we agreed to talk again in May.", False),
        ("{v} presented with fever and a sore throat; antibiotics were prescribed.", False),
        ("We are pleased to offer {v} the position of senior analyst.", False),
        ("The printer on the second floor was fixed by {v} this morning.", False),
        ("According to {v}, the invoice was paid twice.", False),
        ("{v} will be out of office until Monday.", False),
    ],
    "location": [
        ("Address: {v}", True),
        ("Ship to:\n{v}", True),
        ("Home address: {v}\nEmergency contact on file.", True),
        ("Billing address: {v}. Payment by invoice.", True),
        ("Please send the signed contract to {v} by Friday.", False),
        ("She has lived in {v} since 2010.", False),
        ("The warehouse at {v} closes early on Fridays.", False),
        ("He was transferred to our branch in {v} last year.", False),
        ("The courier left the parcel at {v} with a neighbour.", False),
    ],
    "date_of_birth": [
        ("Patient: J. D.\nDOB: {v}\nAllergies: none known.", True),
        ("Date of birth: {v}", True),
        ("The applicant was born on {v} and holds a driving licence.", True),
        ("Birth date {v}; nationality on file.", True),
    ],
}
DOB_FORMATS = ("%d/%m/%Y", "%Y-%m-%d", "%B %d, %Y", "%d %B %Y")


@dataclass
class Tally:
    planted: int = 0
    replaced: int = 0
    right_kind: int = 0
    labelled: list[int] = field(default_factory=lambda: [0, 0])  # replaced, planted
    unlabelled: list[int] = field(default_factory=lambda: [0, 0])
    misses: list[str] = field(default_factory=list)


def values(fake, kind: str, i: int, inline: bool) -> str:
    if kind == "person":
        return fake.name() if i % 2 == 0 else f"{fake.first_name()} {fake.last_name()}"
    if kind == "location":
        pick = i % 3
        if pick == 0:
            address = fake.address()
            return address.replace("\n", ", ") if inline else address
        return fake.street_address() if pick == 1 else fake.city()
    return fake.date_of_birth(minimum_age=18, maximum_age=90).strftime(DOB_FORMATS[i % len(DOB_FORMATS)])


def covered(text: str, start: int, end: int, spans: list[tuple[int, int]]) -> bool:
    chars = [j for j in range(start, end) if text[j].isalnum()]
    hit = sum(1 for j in chars if any(s <= j < e for s, e in spans))
    return bool(chars) and hit >= COVER * len(chars)


def measure(ner: NerModel, seed: int, n: int, locales: list[str], log: Callable[[str], None] = print) -> dict:
    from faker import Faker

    redactor = Redactor(["names"], ner=ner)
    tallies: dict[str, Tally] = {k: Tally() for k in TEMPLATES}
    for locale in locales:
        fake = Faker(locale)
        fake.seed_instance(seed)
        for kind, templates in TEMPLATES.items():
            for i in range(n):
                template, label = templates[i % len(templates)]
                value = values(fake, kind, i, inline="\n{v}" not in template)
                text = template.replace("{v}", value)
                start = template.index("{v}")
                end = start + len(value)
                spans = redactor.find(text)
                any_name = [(s.start, s.end) for s in spans if s.kind in (*NAME_KINDS, "date_of_birth")]
                own = [(s.start, s.end) for s in spans if s.kind == kind]
                t = tallies[kind]
                t.planted += 1
                ok = covered(text, start, end, any_name)
                t.replaced += ok
                t.right_kind += covered(text, start, end, own)
                bucket = t.labelled if label else t.unlabelled
                bucket[0] += ok
                bucket[1] += 1
                if not ok and len(t.misses) < 12:
                    t.misses.append(f"{locale}: {text!r} → {[(s.kind, s.text) for s in spans]}")
    out: dict = {}
    for kind, t in tallies.items():
        out[kind] = {
            "planted": t.planted,
            "recall": t.replaced / t.planted,
            "right_kind": t.right_kind / t.planted,
            "with_label": t.labelled[0] / t.labelled[1] if t.labelled[1] else None,
            "without_label": t.unlabelled[0] / t.unlabelled[1] if t.unlabelled[1] else None,
            "misses": t.misses,
        }
    return out


def prose_share(ner: NerModel, path: Path, contexts: int = 200) -> dict:
    """How much of ordinary public prose (SQuAD contexts, full of names) `names` replaces."""
    redactor = Redactor(["names"], ner=ner)
    seen: list[str] = []
    for line in path.read_text().splitlines():
        c = json.loads(line)["context"]
        if c not in seen:
            seen.append(c)
        if len(seen) == contexts:
            break
    letters = replaced = 0
    kinds: dict[str, int] = {}
    for c in seen:
        spans = redactor.find(c)
        letters += sum(ch.isalnum() for ch in c)
        replaced += sum(sum(ch.isalnum() for ch in s.text) for s in spans)
        for s in spans:
            kinds[s.kind] = kinds.get(s.kind, 0) + 1
    return {"contexts": len(seen), "letters_replaced": replaced / max(1, letters), "spans": kinds}


def default_ner() -> NerModel:
    config = load_config(ROOT / "automix_local" / "data" / "models.toml", default_paths())
    return load_ner(ner_model_path(config), config.paths.cache_dir)


def markdown(result: dict, prose: dict | None) -> str:
    lines = [
        "| kind | planted | replaced (any name kind) | with a label word | without | as its own kind |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for kind, r in result.items():
        wl = f"{r['with_label']:.1%}" if r["with_label"] is not None else "–"
        wo = f"{r['without_label']:.1%}" if r["without_label"] is not None else "–"
        lines.append(f"| {kind} | {r['planted']} | {r['recall']:.1%} | {wl} | {wo} | {r['right_kind']:.1%} |")
    if prose:
        lines += [
            "",
            f"On {prose['contexts']} SQuAD 2.0 contexts (public prose): {prose['letters_replaced']:.1%} of the "
            f"letters and digits replaced; spans by kind: {prose['spans']}.",
        ]
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--n", type=int, default=60, help="values per kind and locale")
    ap.add_argument("--locales", default=LOCALES)
    ap.add_argument("--prose", type=Path, default=ROOT.parent / "shared" / "data" / "squad_v2_dev_public.jsonl")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--misses", action="store_true")
    args = ap.parse_args()
    ner = default_ner()
    result = measure(ner, args.seed, args.n, args.locales.split(","))
    prose = prose_share(ner, args.prose) if args.prose.is_file() else None
    if args.json:
        print(json.dumps({"seed": args.seed, "names": result, "prose": prose}, indent=1))
    else:
        print(markdown(result, prose))
        if args.misses:
            for kind, r in result.items():
                print(f"\n{kind}:")
                for m in r["misses"]:
                    print("  " + m)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
