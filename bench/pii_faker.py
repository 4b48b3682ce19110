"""Independent recall and false-positive measurement of automix_local.redact with Faker-generated data.

    .venv/bin/python bench/pii_faker.py [--n 200] [--seed 0] \\
        [--locales en_US,en_GB,de_DE,fr_FR,es_ES,it_IT,nl_NL,en_CA,en_IN]

The planted-PII corpus in tests/data was written by the author of the detectors; this script takes its values from
Faker (https://faker.readthedocs.io), a third-party library, instead. For every built-in kind and locale it draws
`--n` values from Faker's providers, embeds each one in every sentence template of its kind (some with a label
word such as "Phone:" or "BSN:", some without), runs `Redactor(["all"]).find()` and counts a planted value as
found when detected spans of the same kind cover at least 90% of its non-space characters. Values covered as well
by spans of another kind are reported separately ("as other kind"), as are partial covers.

Phone numbers: Faker appends extensions to many US/Canadian numbers ("555-123-4567x890", "... x123"); the planted
span is the number before the extension (redacting the extension alone identifies no one), and the table says how
many values had one.

False positives: Faker text that holds none of the six kinds (paragraphs, addresses, dates, ISBNs, EANs, prices,
licence plates, version strings) is embedded in sentences and every detection is counted. A bare BBAN
(`fake.bban()`, a domestic bank account number) is arguably personal data and is reported on its own line.

Faker is a development tool only, not a dependency of the project: `.venv/bin/pip install faker`.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from automix_local.redact import BUILTIN_DETECTORS, Redactor, Span  # noqa: E402

try:
    import faker
    from faker import Faker
except ImportError:  # pragma: no cover - a dev-only tool
    print("bench/pii_faker.py needs Faker (dev-only, not a project dependency): .venv/bin/pip install faker")
    sys.exit(2)

DEFAULT_LOCALES = "en_US,en_GB,de_DE,fr_FR,es_ES,it_IT,nl_NL,en_CA,en_IN"
COVER = 0.9  # share of the planted value's non-space characters a detection must cover
MAX_MISSES = 5

# --------------------------------------------------------------------------- value sources per kind and locale

Gen = Callable[[Faker], str]
CARD_TYPES = ("visa16", "visa13", "visa19", "mastercard", "amex", "discover", "diners", "jcb16", "jcb15", "maestro")


def _cycle(*gens: Gen) -> Callable[[Faker, int], str]:
    return lambda fake, i: gens[i % len(gens)](fake)


def _email(fake: Faker, i: int) -> str:
    return _cycle(lambda f: f.email(), lambda f: f.company_email(), lambda f: f.free_email())(fake, i)


def _phone(fake: Faker, i: int) -> str:
    return fake.phone_number()


def _card(fake: Faker, i: int) -> str:
    return fake.credit_card_number(card_type=CARD_TYPES[i % len(CARD_TYPES)])


def _iban(fake: Faker, i: int) -> str:
    return fake.iban()


def _ip(fake: Faker, i: int) -> str:
    return _cycle(lambda f: f.ipv4(), lambda f: f.ipv4_public(), lambda f: f.ipv6())(fake, i)


# Which Faker call is the locale's national ID. `ssn()` falls back to the generic "###-##-####" in locales whose
# provider has no national ID of its own (de_DE, es_ES, en_IN), so those use the locale's own method or are skipped.
NATIONAL_ID: dict[str, tuple[str, Callable[[Faker, int], str]]] = {
    "en_US": ("ssn() (SSN)", lambda f, i: f.ssn()),
    "en_GB": ("ssn() (NI number)", lambda f, i: f.ssn()),
    "fr_FR": ("ssn() (NIR)", lambda f, i: f.ssn()),
    "es_ES": ("nif() / nie() (DNI/NIE)", lambda f, i: f.nif() if i % 2 == 0 else f.nie()),
    "it_IT": ("ssn() (codice fiscale)", lambda f, i: f.ssn()),
    "nl_NL": ("ssn() (BSN)", lambda f, i: f.ssn()),
    "en_CA": ("ssn() (SIN)", lambda f, i: f.ssn()),
    "en_IN": ("aadhaar_id() (Aadhaar)", lambda f, i: f.aadhaar_id()),
}
NATIONAL_ID_SKIPPED = {"de_DE": "no Faker provider for a German national ID (ssn() is the generic ###-##-####)"}

SOURCES: dict[str, str] = {
    "email": "email() / company_email() / free_email()",
    "phone": "phone_number()",
    "card": f"credit_card_number(), {len(CARD_TYPES)} card types in turn",
    "iban": "iban()",
    "ip": "ipv4() / ipv4_public() / ipv6()",
}
GENERATORS: dict[str, Callable[[Faker, int], str]] = {
    "email": _email,
    "phone": _phone,
    "card": _card,
    "iban": _iban,
    "ip": _ip,
}

# --------------------------------------------------------------------------- sentence templates

# (template, labelled): labelled templates put a word naming the kind right before the value.
TEMPLATES: dict[str, list[tuple[str, bool]]] = {
    "email": [
        ("Please write to {x} if anything changes.", False),
        ("Send the signed copy to {x} before Friday.", False),
        ("Email: {x}", True),
        ("Contact e-mail {x} (office hours only)", True),
    ],
    "phone": [
        ("I'm on {x} after six, ask for Anna.", False),
        ("The number is {x}, the landlord picks up.", False),
        ("Call me at {x} tomorrow.", True),
        ("Phone: {x}", True),
        ("{native}: {x}", True),
    ],
    "card": [
        ("I paid with {x} last week and was charged twice.", False),
        ("Please refund it to {x}.", False),
        ("Card number: {x}", True),
        ("Credit card {x}, expiry 08/27", True),
    ],
    "iban": [
        ("Please transfer the deposit to {x} by Friday.", False),
        ("The rent goes to {x}, as before.", False),
        ("IBAN: {x}", True),
        ("Bank account (IBAN) {x}", True),
    ],
    "ip": [
        ("The login from {x} was blocked last night.", False),
        ("Requests from {x} time out after 30 s.", False),
        ("IP address: {x}", True),
        ("Client IP {x}", True),
    ],
    "national_id": [
        ("Here it is: {x}, please keep it private.", False),
        ("My number is {x}.", False),
        ("{label}: {x}", True),
        ("My {short} is {x}, as on the form.", True),
    ],
}
NATIVE_PHONE_LABEL = {
    "en_US": "Phone",
    "en_GB": "Tel",
    "de_DE": "Telefon",
    "fr_FR": "Téléphone",
    "es_ES": "Teléfono",
    "it_IT": "Telefono",
    "nl_NL": "Telefoon",
    "en_CA": "Tel.",
    "en_IN": "Mobile",
}
ID_LABELS = {  # (label, short) per locale
    "en_US": ("Social Security Number", "SSN"),
    "en_GB": ("National Insurance number", "NI number"),
    "fr_FR": ("Numéro de sécurité sociale", "NIR"),
    "es_ES": ("DNI", "NIF"),
    "it_IT": ("Codice fiscale", "codice fiscale"),
    "nl_NL": ("BSN", "burgerservicenummer"),
    "en_CA": ("SIN", "Social Insurance Number"),
    "en_IN": ("Aadhaar", "Aadhaar number"),
}

_EXTENSION = re.compile(r"(?: ?x| ?ext\.? ?)\d+$")

# --------------------------------------------------------------------------- false-positive sources


def _version(fake: Faker, i: int) -> str:
    r = fake.random_int
    return (f"{r(0, 20)}.{r(0, 30)}.{r(0, 40)}", f"{r(1, 12)}.{r(0, 9)}.{r(0, 9)}.{r(0, 999)}", f"v{r(1, 9)}.{r(0, 99)}")[
        i % 3
    ]


FP_SOURCES: list[tuple[str, Callable[[Faker, int], str], list[str]]] = [
    ("paragraph()", lambda f, i: f.paragraph(nb_sentences=5), ["{x}"]),
    ("address()", lambda f, i: f.address().replace("\n", ", "), ["Ship it to {x}.", "Address: {x}"]),
    ("date() / iso8601()", lambda f, i: f.date() if i % 2 else f.iso8601(), ["Due on {x}.", "Created {x}"]),
    ("isbn13() / isbn10()", lambda f, i: f.isbn13() if i % 2 else f.isbn10(), ["ISBN {x}", "See the book {x}."]),
    ("ean13() / ean8()", lambda f, i: f.ean13() if i % 2 else f.ean8(), ["Barcode {x}", "Item {x} is out of stock."]),
    ("pricetag()", lambda f, i: f.pricetag(), ["Total: {x}", "It costs {x} now."]),
    ("license_plate()", lambda f, i: f.license_plate(), ["Plate {x}", "The car ({x}) was parked outside."]),
    ("version strings", _version, ["Upgraded to {x} yesterday.", "Released version {x}.", "pkg=={x}"]),
]
BBAN = ("bban() (domestic account number)", lambda f, i: f.bban(), ["Account {x}", "Pay into {x} please."])

# --------------------------------------------------------------------------- measurement


@dataclass
class Cell:
    planted: int = 0
    found: int = 0
    found_labelled: int = 0
    planted_labelled: int = 0
    other_kind: int = 0
    partial: int = 0
    extensions: int = 0
    misses: list[str] = field(default_factory=list)


def _coverage(text: str, start: int, end: int, spans: list[Span], same: bool, kind: str) -> float:
    need = [i for i in range(start, end) if not text[i].isspace()]
    if not need:
        return 0.0
    covered = sum(1 for i in need if any(s.start <= i < s.end and (s.kind == kind) == same for s in spans))
    return covered / len(need)


def _describe(text: str, start: int, end: int, spans: list[Span]) -> str:
    near = [f"{s.kind} `{s.text}`" for s in spans if s.start < end and start < s.end]
    return "; detected " + ", ".join(near) if near else ""


def _seeded(locale: str, seed: int, salt: str) -> Faker:
    fake = Faker(locale)
    fake.seed_instance(f"{seed}/{locale}/{salt}")
    return fake


def measure_recall(redactor: Redactor, locales: list[str], n: int, seed: int) -> dict[tuple[str, str], Cell]:
    cells: dict[tuple[str, str], Cell] = {}
    for kind in BUILTIN_DETECTORS:
        for locale in locales:
            if kind == "national_id" and locale not in NATIONAL_ID:
                continue
            gen = NATIONAL_ID[locale][1] if kind == "national_id" else GENERATORS[kind]
            fake = _seeded(locale, seed, kind)
            cell = cells.setdefault((kind, locale), Cell())
            for i in range(n):
                value = gen(fake, i)
                core = value
                if kind == "phone":
                    ext = _EXTENSION.search(value)
                    if ext:
                        core = value[: ext.start()]
                        cell.extensions += 1
                label, short = ID_LABELS.get(locale, ("", ""))
                for template, labelled in TEMPLATES[kind]:
                    filled = template.format(x="\x00", native=NATIVE_PHONE_LABEL[locale], label=label, short=short)
                    start = filled.index("\x00")
                    text = filled.replace("\x00", value)
                    end = start + len(core)
                    spans = redactor.find(text)
                    cell.planted += 1
                    cell.planted_labelled += labelled
                    if _coverage(text, start, end, spans, True, kind) >= COVER:
                        cell.found += 1
                        cell.found_labelled += labelled
                        continue
                    if _coverage(text, start, end, spans, False, kind) >= COVER:
                        cell.other_kind += 1
                    elif any(s.start < end and start < s.end for s in spans):
                        cell.partial += 1
                    if len(cell.misses) < MAX_MISSES:
                        cell.misses.append(f"`{value}` in “{text}”{_describe(text, start, end, spans)}")
    return cells


def measure_fp(redactor: Redactor, locales: list[str], n: int, seed: int) -> list[tuple[str, int, Counter, list[str]]]:
    rows = []
    for name, gen, templates in [*FP_SOURCES, BBAN]:
        flags: Counter[str] = Counter()
        examples: list[str] = []
        texts = 0
        for locale in locales:
            fake = _seeded(locale, seed, "fp:" + name)
            for i in range(n):
                value = gen(fake, i)
                text = templates[i % len(templates)].format(x=value)
                texts += 1
                for s in redactor.find(text):
                    flags[s.kind] += 1
                    if len(examples) < 8:
                        examples.append(f"{s.kind} `{s.text}` in “{text}” ({locale})")
        rows.append((name, texts, flags, examples))
    return rows


def _pct(a: int, b: int) -> str:
    return f"{a / b:.3f}" if b else "–"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=200, help="values per kind and locale (default 200)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--locales", default=DEFAULT_LOCALES)
    args = ap.parse_args()
    locales = [loc.strip() for loc in args.locales.split(",") if loc.strip()]
    redactor = Redactor(["all"])

    print(f"    .venv/bin/python bench/pii_faker.py --n {args.n} --seed {args.seed} --locales {','.join(locales)}")
    print()
    print(
        f"Faker {faker.VERSION}; `Redactor(['all'])`. Each value is planted in every template of its kind "
        f"({', '.join(f'{k} {len(t)}' for k, t in TEMPLATES.items())}); found = spans of the same kind cover "
        f"≥ {COVER:.0%} of its non-space characters. Phone extensions (x123) are outside the planted span. "
        f"Card types: {', '.join(CARD_TYPES)} (Faker's output: bare digits)."
    )
    print()

    cells = measure_recall(redactor, locales, args.n, args.seed)
    print("## Recall")
    print()
    print(
        "| kind | locale | Faker source | planted | found | recall | recall labelled | recall unlabelled "
        "| as other kind | partial |"
    )
    print("|---|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for kind in BUILTIN_DETECTORS:
        total = Cell()
        for locale in locales:
            c = cells.get((kind, locale))
            if c is None:
                print(f"| {kind} | {locale} | – ({NATIONAL_ID_SKIPPED.get(locale, 'no source')}) | | | | | | | |")
                continue
            source = NATIONAL_ID[locale][0] if kind == "national_id" else SOURCES[kind]
            if c.extensions:
                source += f"; {c.extensions}/{args.n} with an extension"
            print(
                f"| {kind} | {locale} | {source} | {c.planted} | {c.found} | {_pct(c.found, c.planted)} "
                f"| {_pct(c.found_labelled, c.planted_labelled)} "
                f"| {_pct(c.found - c.found_labelled, c.planted - c.planted_labelled)} | {c.other_kind} | {c.partial} |"
            )
            for attr in ("planted", "found", "found_labelled", "planted_labelled", "other_kind", "partial"):
                setattr(total, attr, getattr(total, attr) + getattr(c, attr))
        print(
            f"| **{kind}** | **all** | | **{total.planted}** | **{total.found}** | **{_pct(total.found, total.planted)}**"
            f" | {_pct(total.found_labelled, total.planted_labelled)} "
            f"| {_pct(total.found - total.found_labelled, total.planted - total.planted_labelled)} "
            f"| {total.other_kind} | {total.partial} |"
        )
    print()
    missed = {key: c for key, c in cells.items() if c.misses}
    if missed:
        print(f"### Missed examples (first {MAX_MISSES} per kind and locale)")
        print()
        for (kind, locale), c in missed.items():
            print(f"- **{kind} / {locale}** ({c.planted - c.found} missed)")
            for example in c.misses:
                print(f"  - {example}")
        print()

    print("## False positives on Faker text with none of the six kinds")
    print()
    rows = measure_fp(redactor, locales, args.n, args.seed)
    print(f"| source | texts | {' | '.join(BUILTIN_DETECTORS)} | flags |")
    print(f"|---|---:|{'---:|' * len(BUILTIN_DETECTORS)}---:|")
    totals: Counter[str] = Counter()
    total_texts = 0
    for name, texts, flags, _ in rows[:-1]:
        totals.update(flags)
        total_texts += texts
        print(f"| {name} | {texts} | {' | '.join(str(flags[k]) for k in BUILTIN_DETECTORS)} | {sum(flags.values())} |")
    print(
        f"| **all but BBAN** | **{total_texts}** | {' | '.join(str(totals[k]) for k in BUILTIN_DETECTORS)} "
        f"| **{sum(totals.values())}** |"
    )
    name, texts, flags, _ = rows[-1]
    print(f"| {name} | {texts} | {' | '.join(str(flags[k]) for k in BUILTIN_DETECTORS)} | {sum(flags.values())} |")
    print()
    flagged = [(name, examples) for name, _, _, examples in rows if examples]
    if flagged:
        print("### Flag examples")
        print()
        for name, examples in flagged:
            print(f"- **{name}**")
            for example in examples:
                print(f"  - {example}")
    else:
        print("No flags.")


if __name__ == "__main__":
    main()
