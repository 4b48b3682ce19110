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

Faker values that are not valid real-world instances are counted and also left out of a second recall column,
by rules written here from the public specifications, not taken from the detector code: NANP numbers whose area
code or exchange starts with 0/1 or is an N11 code; national numbers whose trunk 0 is followed by another 0; card
numbers outside today's IIN ranges (JCB outside 3528-3589, the retired 2131/1800 JCB ranges, the 0604 "Maestro"
prefix); IBANs of the wrong length for their country; NI numbers with the HMRC-reserved ZZ prefix or a suffix other
than A-D; Aadhaar numbers starting with 0/1 or failing the Verhoeff check. Anything else missed counts as a miss.

Faker is a development tool only, not a dependency of the project: `.venv/bin/pip install faker`.
"""

from __future__ import annotations

import argparse
import hashlib
import re
import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import automix_local.redact  # noqa: E402
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

# A source takes (fake, i) and returns (what Faker call made the value, the value).
Source = Callable[[Faker, int], tuple[str, str]]
CARD_TYPES = ("visa16", "visa13", "visa19", "mastercard", "amex", "discover", "diners", "jcb16", "jcb15", "maestro")


def _email(fake: Faker, i: int) -> tuple[str, str]:
    method = ("email", "company_email", "free_email")[i % 3]
    return f"{method}()", getattr(fake, method)()


def _phone(fake: Faker, i: int) -> tuple[str, str]:
    return "phone_number()", fake.phone_number()


def _card(fake: Faker, i: int) -> tuple[str, str]:
    card_type = CARD_TYPES[i % len(CARD_TYPES)]
    return f"credit_card_number({card_type!r})", fake.credit_card_number(card_type=card_type)


def _iban(fake: Faker, i: int) -> tuple[str, str]:
    return "iban()", fake.iban()


def _ip(fake: Faker, i: int) -> tuple[str, str]:
    method = ("ipv4", "ipv4_public", "ipv6")[i % 3]
    return f"{method}()", getattr(fake, method)()


def _call(method: str) -> Source:
    return lambda fake, i: (f"{method}()", getattr(fake, method)())


# The locale's national ID. `ssn()` falls back to the generic "###-##-####" in locales whose provider has no national
# ID of its own (de_DE, es_ES, en_IN: checked with Faker 40), so those use the locale's own method or are skipped.
NATIONAL_ID: dict[str, tuple[str, Source]] = {
    "en_US": ("ssn() (SSN)", _call("ssn")),
    "en_GB": ("ssn() (NI number)", _call("ssn")),
    "fr_FR": ("ssn() (NIR)", _call("ssn")),
    "es_ES": ("nif() / nie() (DNI / NIE)", lambda f, i: _call("nif" if i % 2 == 0 else "nie")(f, i)),
    "it_IT": ("ssn() (codice fiscale)", _call("ssn")),
    "nl_NL": ("ssn() (BSN)", _call("ssn")),
    "en_CA": ("ssn() (SIN)", _call("ssn")),
    "en_IN": ("aadhaar_id() (Aadhaar)", _call("aadhaar_id")),
}
NATIONAL_ID_SKIPPED = {"de_DE": "no Faker provider for a German national ID; ssn() is the generic ###-##-####"}

SOURCES: dict[str, tuple[str, Source]] = {
    "email": ("email() / company_email() / free_email()", _email),
    "phone": ("phone_number()", _phone),
    "card": (f"credit_card_number(), {len(CARD_TYPES)} card types in turn", _card),
    "iban": ("iban()", _iban),
    "ip": ("ipv4() / ipv4_public() / ipv6()", _ip),
}

# --------------------------------------------------------------------------- real-world validity (independent rules)

_IBAN_LENGTH = {"DE": 22, "ES": 24, "FR": 27, "GB": 22, "IT": 27, "NL": 18}  # SWIFT IBAN registry
_VERHOEFF_P = (1, 5, 7, 6, 2, 8, 3, 0, 9, 4)  # the position permutation; the group is the dihedral group D5


def _verhoeff_valid(number: str) -> bool:
    def mul(j: int, k: int) -> int:  # D5: 0-4 rotations, 5-9 reflections
        if j < 5:
            return (j + k) % 5 if k < 5 else 5 + (j + k) % 5
        return 5 + (j - k) % 5 if k < 5 else (j - k) % 5

    c = 0
    for i, ch in enumerate(reversed(number)):
        n = int(ch)
        for _ in range(i % 8):
            n = _VERHOEFF_P[n]
        c = mul(c, n)
    return c == 0


def _nanp_invalid(digits: str) -> str | None:
    ten = digits[-10:]
    area, exchange = ten[:3], ten[3:6]
    if area[0] in "01" or area[1:] == "11":
        return "NANP area code starting with 0/1 or an N11 code"
    if exchange[0] in "01" or exchange[1:] == "11":
        return "NANP exchange starting with 0/1 or an N11 code"
    return None


def faker_invalid(kind: str, locale: str, value: str) -> str | None:
    """Why a Faker value is not a valid real-world instance of its kind, or None (it is, as far as checked)."""
    digits = "".join(c for c in value if c.isdigit())
    if kind == "phone":
        if locale in ("en_US", "en_CA"):
            core = re.sub(r"(?: ?x| ?ext\.? ?)\d+$", "", value)
            return _nanp_invalid("".join(c for c in core if c.isdigit()))
        if re.match(r"^(?:\+\d{2} ?\(0\) ?|\(?)00", value):
            return "national number starting 00 (the international prefix)"
    if kind == "card":
        if digits.startswith(("2131", "1800")):
            return "retired 15-digit JCB range 2131/1800"
        if digits.startswith("35") and not 3528 <= int(digits[:4]) <= 3589:
            return "JCB prefix outside 3528-3589"
        if digits.startswith("0604"):
            return "0604 is not a card IIN"
    if kind == "iban":
        expected = _IBAN_LENGTH.get(value[:2])
        if expected is not None and len(value.replace(" ", "")) != expected:
            return f"wrong length for a {value[:2]} IBAN (must be {expected})"
    if kind == "national_id":
        if locale == "en_GB":
            compact = value.replace(" ", "")
            if compact[:2] == "ZZ":
                return "ZZ is an HMRC-reserved prefix, never issued"
            if compact[-1] not in "ABCD":
                return "NI number suffix must be A-D"
        if locale == "en_IN":
            if digits[0] in "01":
                return "Aadhaar numbers never start with 0 or 1"
            if not _verhoeff_valid(digits):
                return "fails the Aadhaar Verhoeff check (Faker uses Luhn)"
    return None


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
    "en_US": "Cell",
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
    if i % 3 == 0:
        return f"{r(0, 20)}.{r(0, 30)}.{r(0, 40)}"
    if i % 3 == 1:
        return f"{r(1, 12)}.{r(0, 9)}.{r(0, 9)}.{r(0, 999)}"  # four parts: the shape of an IPv4 address
    return f"v{r(1, 9)}.{r(0, 99)}"


FP_SOURCES: list[tuple[str, Callable[[Faker, int], str], list[str]]] = [
    ("paragraph()", lambda f, i: f.paragraph(nb_sentences=5), ["{x}"]),
    ("address()", lambda f, i: f.address().replace("\n", ", "), ["Ship it to {x}.", "Address: {x}"]),
    ("date() / iso8601() / time()", lambda f, i: (f.date(), f.iso8601(), f.time())[i % 3], ["Due {x}.", "At {x}"]),
    ("isbn13() / isbn10()", lambda f, i: f.isbn13() if i % 2 else f.isbn10(), ["ISBN {x}", "See the book {x}."]),
    ("ean13() / ean8()", lambda f, i: f.ean13() if i % 2 else f.ean8(), ["Barcode {x}", "Item {x} is out of stock."]),
    ("pricetag()", lambda f, i: f.pricetag(), ["Total: {x}", "It costs {x} now."]),
    ("license_plate()", lambda f, i: f.license_plate(), ["Plate {x}", "The car ({x}) was parked outside."]),
    ("latitude, longitude", lambda f, i: f"{f.latitude()}, {f.longitude()}", ["Location: {x}", "Meet at {x}."]),
    ("swift() (bank BIC)", lambda f, i: f.swift(), ["BIC {x}", "Use {x} for transfers from abroad."]),
    ("version strings", _version, ["Upgraded to {x} yesterday.", "Released version {x}.", "pkg=={x}", "Build {x}"]),
]
BBAN = ("bban() (domestic account number)", lambda f, i: f.bban(), ["Account {x}", "Pay into {x} please."])

# --------------------------------------------------------------------------- measurement


@dataclass
class Cell:
    planted: int = 0
    found: int = 0
    planted_labelled: int = 0
    found_labelled: int = 0
    invalid: int = 0  # planted instances whose value is not a valid real-world one
    found_invalid: int = 0
    other_kind: int = 0
    partial: int = 0
    extensions: int = 0
    misses: dict[str, str] = field(default_factory=dict)  # first MAX_MISSES distinct missed values -> an example

    def add(self, other: Cell) -> None:
        for name in ("planted", "found", "planted_labelled", "found_labelled", "invalid", "found_invalid"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.other_kind += other.other_kind
        self.partial += other.partial


def _coverage(text: str, start: int, end: int, spans: list[Span], kind: str, same: bool) -> float:
    need = [i for i in range(start, end) if not text[i].isspace()]
    covered = sum(1 for i in need if any(s.start <= i < s.end and (s.kind == kind) == same for s in spans))
    return covered / len(need) if need else 0.0


def _seeded(locale: str, seed: int, salt: str) -> Faker:
    fake = Faker(locale)
    fake.seed_instance(f"{seed}/{locale}/{salt}")
    return fake


def measure_recall(
    redactor: Redactor, locales: list[str], n: int, seed: int
) -> tuple[dict[tuple[str, str], Cell], dict[tuple[str, str], Cell], Counter[str]]:
    cells: dict[tuple[str, str], Cell] = {}
    by_source: dict[tuple[str, str], Cell] = {}
    reasons: Counter[str] = Counter()
    for kind in BUILTIN_DETECTORS:
        for locale in locales:
            if kind == "national_id" and locale not in NATIONAL_ID:
                continue
            source = NATIONAL_ID[locale][1] if kind == "national_id" else SOURCES[kind][1]
            fake = _seeded(locale, seed, kind)
            cell = cells.setdefault((kind, locale), Cell())
            label, short = ID_LABELS.get(locale, ("", ""))
            for i in range(n):
                call, value = source(fake, i)
                src = by_source.setdefault((kind, call), Cell())
                core = value
                ext = _EXTENSION.search(value) if kind == "phone" else None
                if ext:
                    core = value[: ext.start()]
                    cell.extensions += 1
                invalid = faker_invalid(kind, locale, value)
                if invalid:
                    reasons[f"{kind} / {locale}: {invalid}"] += len(TEMPLATES[kind])
                for template, labelled in TEMPLATES[kind]:
                    native = NATIVE_PHONE_LABEL.get(locale, "Phone")
                    filled = template.format(x="\x00", native=native, label=label, short=short)
                    start = filled.index("\x00")
                    text = filled.replace("\x00", value)
                    end = start + len(core)
                    spans = redactor.find(text)
                    hit = _coverage(text, start, end, spans, kind, True) >= COVER
                    for c in (cell, src):
                        c.planted += 1
                        c.planted_labelled += labelled
                        c.invalid += invalid is not None
                        c.found += hit
                        c.found_labelled += hit and labelled
                        c.found_invalid += hit and invalid is not None
                    if hit:
                        continue
                    if _coverage(text, start, end, spans, kind, False) >= COVER:
                        cell.other_kind += 1
                    elif any(s.start < end and start < s.end for s in spans):
                        cell.partial += 1
                    if value not in cell.misses and len(cell.misses) < MAX_MISSES:
                        near = [f"{s.kind} `{s.text}`" for s in spans if s.start < end and start < s.end]
                        cell.misses[value] = (
                            f"`{value}` in “{text}”"
                            + (f"; detected {', '.join(near)}" if near else "")
                            + (f" (not valid: {invalid})" if invalid else "")
                        )
    return cells, by_source, reasons


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
                text = fake.random.choice(templates).format(x=value)  # independent of the value's own variant
                texts += 1
                for s in redactor.find(text):
                    flags[s.kind] += 1
                    if len(examples) < 8:
                        examples.append(f"{s.kind} `{s.text}` in “{text}” ({locale})")
        rows.append((name, texts, flags, examples))
    return rows


def _pct(a: int, b: int) -> str:
    return f"{a / b:.3f}" if b else "–"


def _row(kind: str, locale: str, source: str, c: Cell, bold: bool = False) -> str:
    b = "**" if bold else ""
    valid = c.planted - c.invalid
    return (
        f"| {b}{kind}{b} | {b}{locale}{b} | {source} | {c.planted} | {c.found} | {b}{_pct(c.found, c.planted)}{b} "
        f"| {_pct(c.found_labelled, c.planted_labelled)} "
        f"| {_pct(c.found - c.found_labelled, c.planted - c.planted_labelled)} "
        f"| {c.invalid} | {_pct(c.found - c.found_invalid, valid)} | {c.other_kind} | {c.partial} |"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=200, help="values per kind and locale (default 200)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--locales", default=DEFAULT_LOCALES)
    args = ap.parse_args()
    locales = [loc.strip() for loc in args.locales.split(",") if loc.strip()]
    for locale in locales:
        try:
            Faker(locale)
        except AttributeError:
            sys.exit(f"Faker has no locale {locale!r}")
    redactor = Redactor(["all"])
    detectors = Path(automix_local.redact.__file__)
    digest = hashlib.sha256(detectors.read_bytes()).hexdigest()[:12]

    print(f"    .venv/bin/python bench/pii_faker.py --n {args.n} --seed {args.seed} --locales {','.join(locales)}")
    print()
    print(
        f"Faker {faker.VERSION}; `Redactor(['all'])` from `{detectors.relative_to(detectors.parents[1])}` "
        f"(sha256 {digest}). Each value is planted in every template of its kind "
        f"({', '.join(f'{k} {len(t)}' for k, t in TEMPLATES.items())}); found = spans of the same kind cover "
        f"≥ {COVER:.0%} of its non-space characters. Phone extensions (x123) are outside the planted span. "
        "“Faker-invalid”: planted instances whose value breaks a real-world rule (see the docstring); "
        "“recall valid” leaves them out."
    )
    print()

    cells, by_source, reasons = measure_recall(redactor, locales, args.n, args.seed)
    print("## Recall")
    print()
    print(
        "| kind | locale | Faker source | planted | found | recall | recall labelled | recall unlabelled "
        "| Faker-invalid | recall valid | as other kind | partial |"
    )
    print("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for kind in BUILTIN_DETECTORS:
        total = Cell()
        for locale in locales:
            c = cells.get((kind, locale))
            if c is None:
                print(f"| {kind} | {locale} | – ({NATIONAL_ID_SKIPPED.get(locale, 'no source')}) |{' |' * 9}")
                continue
            source = NATIONAL_ID[locale][0] if kind == "national_id" else SOURCES[kind][0]
            if c.extensions:
                source += f"; {c.extensions}/{args.n} with an extension"
            print(_row(kind, locale, source, c))
            total.add(c)
        print(_row(kind, "all", "", total, bold=True))
    print()

    print("### Recall per Faker call (all locales)")
    print()
    print("| kind | Faker call | planted | found | recall | Faker-invalid | recall valid |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for (kind, call), c in sorted(by_source.items(), key=lambda kv: BUILTIN_DETECTORS.index(kv[0][0])):
        valid = c.planted - c.invalid
        print(
            f"| {kind} | `{call}` | {c.planted} | {c.found} | {_pct(c.found, c.planted)} | {c.invalid} "
            f"| {_pct(c.found - c.found_invalid, valid)} |"
        )
    print()
    if reasons:
        print("### Faker values that are not valid real-world instances (planted instances)")
        print()
        for reason, count in sorted(reasons.items()):
            print(f"- {reason}: {count}")
        print()
    missed = {key: c for key, c in cells.items() if c.misses}
    if missed:
        print(f"### Missed examples (first {MAX_MISSES} distinct values per kind and locale)")
        print()
        for (kind, locale), c in missed.items():
            print(f"- **{kind} / {locale}** ({c.planted - c.found} missed)")
            for example in c.misses.values():
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
        print("### Flag examples (first 8 per source)")
        print()
        for name, examples in flagged:
            print(f"- **{name}**")
            for example in examples:
                print(f"  - {example}")
    else:
        print("No flags.")


if __name__ == "__main__":
    main()
