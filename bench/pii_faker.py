"""Independent recall and false-positive measurement of automix_local.redact with Faker-generated data.

    .venv/bin/python bench/pii_faker.py [--n 200] [--seed 0] [--json] [--redact-bare-numbers true|false] \\
        [--names 60] [--locales en_US,en_GB,de_DE,fr_FR,es_ES,it_IT,nl_NL,en_CA,en_IN]

`--names N` (default 60; 0 skips) adds people, places and dates of birth: bench/pii_names.py's measurement with the
real NER model (`redact = ["names"]`), on the same seed and locales, N values per kind and locale.

The planted-PII corpus in tests/data was written by the author of the detectors; this script takes its values from
Faker (https://faker.readthedocs.io), a third-party library, instead. Each kind is a row of `KINDS`: its value
sources (Faker calls per locale, plus locale-free generators), its sentence templates (some with a label word such
as "Phone:" or "BSN:", some without), and its real-world validity rule. Every value is planted in every template of
its kind, `Redactor(["all"], bare_numbers=...)` runs `find()`, and a planted value counts as found when detected
spans of the kind's detector cover at least 90% of its non-space characters. Values covered as well by spans of
another kind are reported separately ("as other kind"), as are partial covers. Recall is given overall, with and
without a label word, and on the values valid in the real world (with and without a label word), per locale, per
value source and per group (a card type, an ID scheme, an IBAN length, a phone number's written form).

Locale-free sources: Maestro numbers of every length the scheme allows (12-19 digits; Faker's own are all 12), and
IBANs of every country in the SWIFT IBAN registry (Faker's cover the nine locales only), both drawn with Faker's
random generator and given their check digits here; they are reported under the locale "any".

Phone numbers: Faker appends extensions to many US/Canadian numbers ("555-123-4567x890", "... x123"); the planted
span is the number before the extension (redacting the extension alone identifies no one).

False positives: Faker text that holds none of the kinds (paragraphs, addresses, dates, ISBNs, EANs, prices,
licence plates, coordinates, BICs, version strings: 10 sources x --n texts x locales, 18,000 by default) is embedded
in sentences and every detection is counted. Three more sources are reported on their own lines, outside that
total: a bare BBAN (`fake.bban()`, a domestic bank account number, arguably personal data), an EAN-13 in a sentence
that does not name it, and reference numbers (6-12 random digits) with and without a word naming them ("Order",
"Invoice"): what `redact_bare_numbers` costs.

"Valid in the real world": the rules are written here from the public specifications, not taken from the detector
code (nor from python-stdnum, which the detectors use):
- phone: the national numbering plans. NANP (NANPA): area code and exchange NXX (N = 2-9), neither N11; area codes
  N9X (reserved for expansion) and 37X/96X (reserved) are not in service. UK (Ofcom): 0 + 9 or 10 digits, not 00, 04,
  06. Germany (BNetzA): 0 + 5-13 digits, not 00. France (ARCEP), Netherlands (ACM): 0 + 9 digits, not 00. Spain: 9
  digits starting 6-9. Italy (AGCOM): landlines 0 + 5-10 digits; mobiles 3 + 8 or 9 digits. India (TRAI NNP 2003):
  10 digits not starting 0, after an optional trunk 0. The same national number after +CC / 00CC / (0). Ranges
  reserved for fiction (555-01XX, Ofcom's drama numbers, which all of Faker's en_GB numbers are) have real numbers'
  shape and count as valid.
- card (ISO/IEC 7812, the schemes' published IIN ranges): the Luhn check; JCB 3528-3589 (the 15-digit 2131/1800
  ranges are retired); Maestro 12-19 digits in 50 or 56-69; 0604 is no card IIN.
- iban (ISO 13616, SWIFT IBAN registry release 101/102, copied below as `IBAN_BBAN`): the country's length and BBAN
  structure (n digits, a letters, c either), check digits 02-98 and ISO 7064 mod 97-10.
- national_id: US SSN (SSA): area not 000, 666 or 9XX, group not 00, serial not 0000. UK NI number (HMRC): no ZZ
  prefix, suffix A-D. Dutch BSN: 9 digits, not all 0, the 11-check (weights 9..2, -1). Canadian SIN (ESDC): 9
  digits, the Luhn check, first digit 1-7 or 9 (0 is never issued, 8 is a business number). Aadhaar (UIDAI): 12
  digits, not starting 0 or 1, the Verhoeff check. The NIR, DNI/NIE and codice fiscale are taken as Faker makes them.

`--json` prints the same measurement as one JSON object. To add a kind (say a named-entity detector), add a `Kind`
to `KINDS`: the detector's kind name, its value sources per locale, its templates and its validity rule (and, for a
kind outside the six built-in ones, its rule in the `Redactor` that `main()` builds).

Faker is a development tool only, not a dependency of the project: `.venv/bin/pip install faker`.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import automix_local.redact  # noqa: E402
from automix_local.redact import BARE_NUMBERS_DEFAULT, BUILTIN_DETECTORS, Redactor, Span  # noqa: E402

try:
    import faker
    from faker import Faker
except ImportError:  # pragma: no cover - a dev-only tool
    print("bench/pii_faker.py needs Faker (dev-only, not a project dependency): .venv/bin/pip install faker")
    sys.exit(2)

DEFAULT_LOCALES = "en_US,en_GB,de_DE,fr_FR,es_ES,it_IT,nl_NL,en_CA,en_IN"
ANY = "any"  # the locale column of locale-free sources
COVER = 0.9  # share of the planted value's non-space characters a detection must cover
MAX_MISSES = 5

# --------------------------------------------------------------------------- check digits (public algorithms)


def luhn_ok(digits: str) -> bool:
    """ISO/IEC 7812-1 Annex B (Luhn): every second digit from the right doubled, digit sum divisible by 10."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        n = int(ch) * (2 if i % 2 else 1)
        total += n - 9 if n > 9 else n
    return total % 10 == 0


def luhn_digit(payload: str) -> str:
    return next(d for d in "0123456789" if luhn_ok(payload + d))


_VERHOEFF_P = (1, 5, 7, 6, 2, 8, 3, 0, 9, 4)  # the position permutation; the group is the dihedral group D5


def verhoeff_ok(number: str) -> bool:
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


def elfproef_ok(digits: str) -> bool:
    """The Dutch BSN 11-check: weights 9, 8, ..., 2 and -1 on the last digit; the sum divisible by 11."""
    return sum(int(d) * w for d, w in zip(digits, (9, 8, 7, 6, 5, 4, 3, 2, -1), strict=True)) % 11 == 0


def _iban_number(s: str) -> int:
    return int("".join(str(int(c, 36)) for c in s[4:] + s[:4]))


def iban_with_check(country: str, bban: str) -> str:
    """ISO 13616: the check digits make the rearranged number 1 mod 97 (ISO 7064 MOD 97-10)."""
    return f"{country}{98 - _iban_number(country + '00' + bban) % 97:02d}{bban}"


# SWIFT IBAN registry (release 101/102): the BBAN structure per country; n: digits, a: upper-case letters, c: either.
IBAN_BBAN = {
    "AD": "4!n4!n12!c", "AE": "3!n16!n", "AL": "8!n16!c", "AT": "5!n11!n", "AZ": "4!a20!c", "BA": "3!n3!n8!n2!n",
    "BE": "3!n7!n2!n", "BG": "4!a4!n2!n8!c", "BH": "4!a14!c", "BI": "5!n5!n11!n2!n", "BR": "8!n5!n10!n1!a1!c",
    "BY": "4!c4!n16!c", "CH": "5!n12!c", "CR": "4!n14!n", "CY": "3!n5!n16!c", "CZ": "4!n6!n10!n", "DE": "8!n10!n",
    "DJ": "5!n5!n11!n2!n", "DK": "4!n9!n1!n", "DO": "4!c20!n", "EE": "2!n14!n", "EG": "4!n4!n17!n",
    "ES": "4!n4!n1!n1!n10!n", "FI": "3!n11!n", "FK": "2!a12!n", "FO": "4!n9!n1!n", "FR": "5!n5!n11!c2!n",
    "GB": "4!a6!n8!n", "GE": "2!a16!n", "GI": "4!a15!c", "GL": "4!n9!n1!n", "GR": "3!n4!n16!c", "GT": "4!c20!c",
    "HN": "4!a20!n", "HR": "7!n10!n", "HU": "3!n4!n1!n15!n1!n", "IE": "4!a6!n8!n", "IL": "3!n3!n13!n",
    "IQ": "4!a3!n12!n", "IS": "4!n2!n6!n10!n", "IT": "1!a5!n5!n12!c", "JO": "4!a4!n18!c", "KW": "4!a22!c",
    "KZ": "3!n13!c", "LB": "4!n20!c", "LC": "4!a24!c", "LI": "5!n12!c", "LT": "5!n11!n", "LU": "3!n13!c",
    "LV": "4!a13!c", "LY": "3!n3!n15!n", "MC": "5!n5!n11!c2!n", "MD": "2!c18!c", "ME": "3!n13!n2!n",
    "MK": "3!n10!c2!n", "MN": "4!n12!n", "MR": "5!n5!n11!n2!n", "MT": "4!a5!n18!c", "MU": "4!a2!n2!n12!n3!n3!a",
    "NI": "4!a20!n", "NL": "4!a10!n", "NO": "4!n6!n1!n", "OM": "3!n16!c", "PK": "4!a16!c", "PL": "8!n16!n",
    "PS": "4!a21!c", "PT": "4!n4!n11!n2!n", "QA": "4!a21!c", "RO": "4!a16!c", "RS": "3!n13!n2!n",
    "RU": "9!n5!n15!c", "SA": "2!n18!c", "SC": "4!a2!n2!n16!n3!a", "SD": "2!n12!n", "SE": "3!n16!n1!n",
    "SI": "5!n8!n2!n", "SK": "4!n6!n10!n", "SM": "1!a5!n5!n12!c", "SO": "4!n3!n12!n", "ST": "4!n4!n11!n2!n",
    "SV": "4!a20!n", "TL": "3!n14!n2!n", "TN": "2!n3!n13!n2!n", "TR": "5!n1!n16!c", "UA": "6!n19!c",
    "VA": "3!n15!n", "VG": "4!a16!n", "XK": "4!n10!n2!n", "YE": "4!a4!n18!c",
}  # fmt: skip
_CHARS = {"n": "0123456789", "a": "ABCDEFGHIJKLMNOPQRSTUVWXYZ", "c": "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"}


def _bban_fields(country: str) -> list[tuple[int, str]]:
    return [(int(n), t) for n, t in re.findall(r"(\d+)!([nac])", IBAN_BBAN[country])]


def iban_length(country: str) -> int:
    return 4 + sum(n for n, _ in _bban_fields(country))


# Maestro IINs (Mastercard's published Maestro prefixes; the scheme's range is 50 and 56-69)
MAESTRO_IINS = ("5018", "5020", "5038", "5893", "6304", "6759", "6761", "6762", "6763")

# --------------------------------------------------------------------------- real-world validity (independent rules)


def _nanp_invalid(ten: str) -> str | None:
    if len(ten) != 10:
        return "a NANP number has 10 digits"
    area, exchange = ten[:3], ten[3:6]
    if area[0] in "01" or area[1:] == "11":
        return "NANP area code starting with 0/1 or an N11 code"
    if area[1] == "9" or area[:2] in ("37", "96"):
        return "NANP area code N9X / 37X / 96X (reserved, not in service)"
    if exchange[0] in "01" or exchange[1:] == "11":
        return "NANP exchange starting with 0/1 or an N11 code"
    return None


# locale: (country code, trunk prefix, rule on the national significant number -> why not valid)
PHONE_PLANS: dict[str, tuple[str, str, Callable[[str], str | None]]] = {
    "en_US": ("1", "1", _nanp_invalid),
    "en_CA": ("1", "1", _nanp_invalid),
    "en_GB": (
        "44",
        "0",
        lambda n: None if len(n) in (9, 10) and n[0] in "1235789" else "UK: 0 + 9-10 digits, no 04/06",
    ),
    "de_DE": ("49", "0", lambda n: None if 5 <= len(n) <= 13 and n[0] != "0" else "Germany: 0 + 5-13 digits, not 00"),
    "fr_FR": ("33", "0", lambda n: None if len(n) == 9 and n[0] != "0" else "France: 0 + 9 digits, not 00"),
    "nl_NL": ("31", "0", lambda n: None if len(n) == 9 and n[0] != "0" else "Netherlands: 0 + 9 digits, not 00"),
    "es_ES": ("34", "", lambda n: None if len(n) == 9 and n[0] in "6789" else "Spain: 9 digits starting 6-9"),
    "it_IT": (
        "39",
        "",
        lambda n: (
            None
            if (n[:1] == "0" and 6 <= len(n) <= 11) or (n[:1] == "3" and len(n) in (9, 10))
            else "Italy: landline 0 + 5-10 digits, mobile 3 + 8-9 digits"
        ),
    ),
    "en_IN": ("91", "0", lambda n: None if len(n) == 10 and n[0] != "0" else "India: 10 digits, not starting 0"),
}
_EXTENSION = re.compile(r"(?: ?x| ?ext\.? ?)\d+$")


def phone_core(value: str) -> str:
    """The number without a trailing extension (x123): the planted span."""
    ext = _EXTENSION.search(value)
    return value[: ext.start()] if ext else value


def phone_invalid(locale: str, group: str, value: str) -> str | None:
    cc, trunk, rule = PHONE_PLANS[locale]
    core = phone_core(value).replace("(0)", "")
    digits = "".join(c for c in core if c.isdigit())
    if core.lstrip().startswith("+"):
        if not digits.startswith(cc):
            return f"country code is not +{cc}"
        nsn = digits[len(cc) :]
    elif re.match(rf"00{cc}[ \-]", core):  # the 00 international prefix: 001-202-555-0173
        nsn = digits[2 + len(cc) :]
    elif trunk and digits.startswith(trunk) and (trunk != "1" or len(digits) == 11):
        nsn = digits[len(trunk) :]
    elif trunk == "0" and locale != "en_IN":
        return "a national number starts with the trunk 0"
    else:
        nsn = digits
    if trunk == "0" and nsn.startswith("0"):
        return "national number starting 00 (the international prefix)"
    return rule(nsn)


def card_invalid(locale: str, group: str, value: str) -> str | None:
    digits = "".join(c for c in value if c.isdigit())
    if not luhn_ok(digits):
        return "fails the Luhn check"
    if digits.startswith(("2131", "1800")):
        return "retired 15-digit JCB range 2131/1800"
    if digits.startswith("35") and not 3528 <= int(digits[:4]) <= 3589:
        return "JCB prefix outside 3528-3589"
    if digits.startswith("0604"):
        return "0604 is not a card IIN"
    if group.startswith("maestro"):
        if not (digits[:2] == "50" or 56 <= int(digits[:2]) <= 69):
            return "Maestro IIN outside 50 and 56-69"
        if not 12 <= len(digits) <= 19:
            return "a Maestro number has 12-19 digits"
    return None


def iban_invalid(locale: str, group: str, value: str) -> str | None:
    s = value.replace(" ", "")
    country = s[:2]
    if country not in IBAN_BBAN:
        return f"{country} is not in the SWIFT IBAN registry"
    if len(s) != iban_length(country):
        return f"wrong length for a {country} IBAN (must be {iban_length(country)})"
    pos = 4
    for n, t in _bban_fields(country):
        if any(c not in _CHARS[t] for c in s[pos : pos + n]):
            return f"BBAN does not have the {country} structure {IBAN_BBAN[country]}"
        pos += n
    if not 2 <= int(s[2:4]) <= 98 or _iban_number(s) % 97 != 1:
        return "fails the ISO 7064 mod 97-10 check"
    return None


def national_id_invalid(locale: str, group: str, value: str) -> str | None:
    digits = "".join(c for c in value if c.isdigit())
    if locale == "en_US":
        if digits[:3] in ("000", "666") or digits[0] == "9" or digits[3:5] == "00" or digits[5:] == "0000":
            return "SSN area 000/666/9XX, group 00 or serial 0000 (never issued)"
    if locale == "en_GB":
        compact = value.replace(" ", "")
        if compact[:2] == "ZZ":
            return "ZZ is an HMRC-reserved prefix, never issued"
        if compact[-1] not in "ABCD":
            return "NI number suffix must be A-D"
    if locale == "nl_NL" and (len(digits) != 9 or digits == "0" * 9 or not elfproef_ok(digits)):
        return "not 9 digits passing the BSN 11-check"
    if locale == "en_CA":
        if len(digits) != 9 or not luhn_ok(digits):
            return "not 9 digits passing the Luhn check"
        if digits[0] in "08":
            return "a SIN never starts with 0 (unused) or 8 (business numbers)"
    if locale == "en_IN":
        if digits[0] in "01":
            return "Aadhaar numbers never start with 0 or 1"
        if not verhoeff_ok(digits):
            return "fails the Aadhaar Verhoeff check (Faker uses Luhn)"
    return None


def always_valid(locale: str, group: str, value: str) -> str | None:
    return None


# --------------------------------------------------------------------------- value sources

# A draw takes (fake, i) and returns (group, value): the group is a sub-kind for the report.
Draw = Callable[[Faker, int], tuple[str, str]]


@dataclass(frozen=True)
class Source:
    call: str  # what made the values ("phone_number()")
    draw: Draw
    count: Callable[[int], int] = lambda n: n  # values drawn, given --n


def _method(method: str, group: str = "") -> Draw:
    return lambda fake, i: (group or method, getattr(fake, method)())


def _phone_form(value: str) -> str:
    core = phone_core(value)
    if core.startswith(("+", "00")):
        return "international"
    return "digits only" if core.isdigit() else "with separators"


CARD_TYPES = ("visa16", "visa13", "visa19", "mastercard", "amex", "discover", "diners", "jcb16", "jcb15", "maestro")


def _faker_card(fake: Faker, i: int) -> tuple[str, str]:
    card_type = CARD_TYPES[i % len(CARD_TYPES)]
    return card_type, fake.credit_card_number(card_type=card_type)


def _maestro_any_length(fake: Faker, i: int) -> tuple[str, str]:
    length = 12 + i % 8
    iin = MAESTRO_IINS[(i // 8) % len(MAESTRO_IINS)]
    payload = iin + "".join(fake.random.choice("0123456789") for _ in range(length - len(iin) - 1))
    number = payload + luhn_digit(payload)
    if (i // 8) % 2:  # every other round written in groups of four
        number = " ".join(number[k : k + 4] for k in range(0, length, 4))
    return f"maestro {length}", number


def _faker_iban(fake: Faker, i: int) -> tuple[str, str]:
    value = fake.iban()
    return f"length {len(value)}", value


IBAN_COUNTRIES = tuple(sorted(IBAN_BBAN))


def _registry_iban(fake: Faker, i: int) -> tuple[str, str]:
    country = IBAN_COUNTRIES[i % len(IBAN_COUNTRIES)]
    bban = "".join(fake.random.choice(_CHARS[t]) for n, t in _bban_fields(country) for _ in range(n))
    value = iban_with_check(country, bban)
    if (i // len(IBAN_COUNTRIES)) % 2:  # every other round in the print format: groups of four
        value = " ".join(value[k : k + 4] for k in range(0, len(value), 4))
    return f"length {len(value.replace(' ', ''))}", value


def _phone(fake: Faker, i: int) -> tuple[str, str]:
    value = fake.phone_number()
    return _phone_form(value), value


# The locale's national ID. `ssn()` falls back to the generic "###-##-####" in locales whose provider has no national
# ID of its own (de_DE, es_ES, en_IN: checked with Faker 40), so those use the locale's own method or are skipped.
NATIONAL_ID: dict[str, Source] = {
    "en_US": Source("ssn() (SSN)", _method("ssn", "SSN")),
    "en_GB": Source("ssn() (NI number)", _method("ssn", "NI number")),
    "fr_FR": Source("ssn() (NIR)", _method("ssn", "NIR")),
    "es_ES": Source(
        "nif() / nie() (DNI / NIE)", lambda f, i: ("DNI" if i % 2 == 0 else "NIE", f.nif() if i % 2 == 0 else f.nie())
    ),
    "it_IT": Source("ssn() (codice fiscale)", _method("ssn", "codice fiscale")),
    "nl_NL": Source("ssn() (BSN)", _method("ssn", "BSN")),
    "en_CA": Source("ssn() (SIN)", _method("ssn", "SIN")),
    "en_IN": Source("aadhaar_id() (Aadhaar)", _method("aadhaar_id", "Aadhaar")),
}

# --------------------------------------------------------------------------- the kinds

# (template, labelled): labelled templates put a word naming the kind right before the value. `{x}` is the value;
# other names come from the kind's `words(locale)`.
Template = tuple[str, bool]


@dataclass(frozen=True)
class Kind:
    name: str  # the kind in the report
    detector: str  # the Span.kind that finds it
    templates: tuple[Template, ...]
    sources: Callable[[str], list[Source]]  # per locale ([]: skipped there)
    valid: Callable[[str, str, str], str | None] = always_valid  # (locale, group, value) -> why not valid, or None
    anywhere: tuple[Source, ...] = ()  # locale-free sources, drawn once (locale "any")
    words: Callable[[str], dict[str, str]] = lambda locale: {}
    core: Callable[[str], str] = lambda value: value  # the planted span within the value
    skipped: dict[str, str] = field(default_factory=dict)  # locale -> why it has no source


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

KINDS: tuple[Kind, ...] = (
    Kind(
        "email",
        "email",
        (
            ("Please write to {x} if anything changes.", False),
            ("Send the signed copy to {x} before Friday.", False),
            ("Email: {x}", True),
            ("Contact e-mail {x} (office hours only)", True),
        ),
        lambda locale: [
            Source(
                "email() / company_email() / free_email()",
                lambda f, i: (m := ("email", "company_email", "free_email")[i % 3], getattr(f, m)()),
            )
        ],
    ),
    Kind(
        "phone",
        "phone",
        (
            ("I'm on {x} after six, ask for Anna.", False),
            ("The number is {x}, the landlord picks up.", False),
            ("Call me at {x} tomorrow.", True),
            ("Phone: {x}", True),
            ("{native}: {x}", True),
        ),
        lambda locale: [Source("phone_number()", _phone)],
        valid=phone_invalid,
        words=lambda locale: {"native": NATIVE_PHONE_LABEL.get(locale, "Phone")},
        core=phone_core,
    ),
    Kind(
        "card",
        "card",
        (
            ("I paid with {x} last week and was charged twice.", False),
            ("Please refund it to {x}.", False),
            ("Card number: {x}", True),
            ("Credit card {x}, expiry 08/27", True),
        ),
        lambda locale: [Source(f"credit_card_number(), {len(CARD_TYPES)} card types in turn", _faker_card)],
        valid=card_invalid,
        anywhere=(
            Source(
                f"Maestro 12-19 digits (IINs {', '.join(MAESTRO_IINS)}), bare or in fours",
                _maestro_any_length,
                lambda n: 2 * n,
            ),
        ),
    ),
    Kind(
        "iban",
        "iban",
        (
            ("Please transfer the deposit to {x} by Friday.", False),
            ("The rent goes to {x}, as before.", False),
            ("IBAN: {x}", True),
            ("Bank account (IBAN) {x}", True),
        ),
        lambda locale: [Source("iban()", _faker_iban)],
        valid=iban_invalid,
        anywhere=(
            Source(
                f"every SWIFT registry country ({len(IBAN_BBAN)}), compact or in fours", _registry_iban, lambda n: 5 * n
            ),
        ),
    ),
    Kind(
        "ip",
        "ip",
        (
            ("The login from {x} was blocked last night.", False),
            ("Requests from {x} time out after 30 s.", False),
            ("IP address: {x}", True),
            ("Client IP {x}", True),
        ),
        lambda locale: [
            Source(
                "ipv4() / ipv4_public() / ipv6()",
                lambda f, i: (m := ("ipv4", "ipv4_public", "ipv6")[i % 3], getattr(f, m)()),
            )
        ],
    ),
    Kind(
        "national_id",
        "national_id",
        (
            ("Here it is: {x}, please keep it private.", False),
            ("My number is {x}.", False),
            ("{label}: {x}", True),
            ("My {short} is {x}, as on the form.", True),
        ),
        lambda locale: [NATIONAL_ID[locale]] if locale in NATIONAL_ID else [],
        valid=national_id_invalid,
        words=lambda locale: dict(zip(("label", "short"), ID_LABELS.get(locale, ("", "")), strict=True)),
        skipped={"de_DE": "no Faker provider for a German national ID; ssn() is the generic ###-##-####"},
    ),
)

# --------------------------------------------------------------------------- false-positive sources


def _version(fake: Faker, i: int) -> str:
    r = fake.random_int
    if i % 3 == 0:
        return f"{r(0, 20)}.{r(0, 30)}.{r(0, 40)}"
    if i % 3 == 1:
        return f"{r(1, 12)}.{r(0, 9)}.{r(0, 9)}.{r(0, 999)}"  # four parts: the shape of an IPv4 address
    return f"v{r(1, 9)}.{r(0, 99)}"


def _reference(fake: Faker, i: int) -> str:
    return fake.numerify("%" + "#" * (5 + i % 7))  # 6-12 digits


FpSource = tuple[str, Callable[[Faker, int], str], list[str]]
FP_SOURCES: list[FpSource] = [
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
# Reported on their own lines, outside the total: personal data arguably (a BBAN), and what bare numbers cost.
FP_EXTRA: list[FpSource] = [
    ("bban() (domestic account number)", lambda f, i: f.bban(), ["Account {x}", "Pay into {x} please."]),
    ("ean13(), no word naming it", lambda f, i: f.ean13(), ["Scan {x} at the till.", "It came back as {x} today."]),
    (
        "reference numbers (6-12 digits), named",
        _reference,
        ["Order {x} has shipped.", "Invoice no. {x}, due in 30 days.", "Tracking number: {x}", "Ref. {x}"],
    ),
    (
        "reference numbers (6-12 digits), not named",
        _reference,
        ["Please quote {x} in all correspondence.", "It is filed under {x}.", "The code {x} worked."],
    ),
]

# --------------------------------------------------------------------------- measurement


@dataclass
class Cell:
    """Planted and found counts by (labelled, valid in the real world)."""

    planted: Counter[tuple[bool, bool]] = field(default_factory=Counter)
    found: Counter[tuple[bool, bool]] = field(default_factory=Counter)
    other_kind: int = 0
    partial: int = 0
    values: int = 0  # distinct values drawn
    misses: dict[str, str] = field(default_factory=dict)  # first MAX_MISSES distinct missed values -> an example

    def add(self, other: Cell) -> None:
        self.planted.update(other.planted)
        self.found.update(other.found)
        self.other_kind += other.other_kind
        self.partial += other.partial
        self.values += other.values

    def count(self, labelled: bool | None = None, valid: bool | None = None) -> tuple[int, int]:
        keys = [(lab, val) for lab in (True, False) for val in (True, False)]
        keys = [k for k in keys if labelled in (None, k[0]) and valid in (None, k[1])]
        return sum(self.planted[k] for k in keys), sum(self.found[k] for k in keys)

    def recall(self, labelled: bool | None = None, valid: bool | None = None) -> float | None:
        planted, found = self.count(labelled, valid)
        return found / planted if planted else None

    def json(self) -> dict[str, Any]:
        def part(labelled: bool | None, valid: bool | None) -> dict[str, Any]:
            planted, found = self.count(labelled, valid)
            return {"planted": planted, "found": found, "recall": _round(found / planted if planted else None)}

        out = part(None, None)
        out |= {
            "with_label": part(True, None),
            "without_label": part(False, None),
            "valid": part(None, True),
            "valid_with_label": part(True, True),
            "valid_without_label": part(False, True),
            "not_valid": self.count(None, False)[0],
            "as_other_kind": self.other_kind,
            "redacted_as_any_kind": _round(
                (out["found"] + self.other_kind) / out["planted"] if out["planted"] else None
            ),
            "partial": self.partial,
        }
        return out


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 4)


def _coverage(text: str, start: int, end: int, spans: list[Span], kind: str, same: bool) -> float:
    need = [i for i in range(start, end) if not text[i].isspace()]
    covered = sum(1 for i in need if any(s.start <= i < s.end and (s.kind == kind) == same for s in spans))
    return covered / len(need) if need else 0.0


def _seeded(locale: str, seed: int, salt: str) -> Faker:
    fake = Faker(locale)
    fake.seed_instance(f"{seed}/{locale}/{salt}")
    return fake


@dataclass
class Recall:
    """Per kind: the total, and cells per locale, per source and per group."""

    total: dict[str, Cell] = field(default_factory=dict)
    by: dict[tuple[str, str], dict[str, Cell]] = field(default_factory=dict)  # (kind, "locale"|"source"|"group")
    misses: dict[tuple[str, str], Cell] = field(default_factory=dict)  # (kind, locale)
    reasons: dict[str, Counter[str]] = field(default_factory=dict)  # kind -> reason -> planted instances

    def cell(self, kind: str, dim: str, key: str) -> Cell:
        return self.by.setdefault((kind, dim), {}).setdefault(key, Cell())


def measure_recall(redactor: Redactor, locales: list[str], n: int, seed: int) -> Recall:
    out = Recall()
    for kind in KINDS:
        total = out.total.setdefault(kind.name, Cell())
        reasons = out.reasons.setdefault(kind.name, Counter())
        plans = [(locale, k, src) for locale in locales for k, src in enumerate(kind.sources(locale))]
        plans += [(ANY, k, src) for k, src in enumerate(kind.anywhere)]
        for locale, k, src in plans:
            # the first source of a kind keeps the seeding of earlier versions of this script (the same values)
            salt = kind.name if k == 0 and locale != ANY else f"{kind.name}:{src.call}"
            fake = _seeded("en_US" if locale == ANY else locale, seed, salt)
            words = kind.words(locale)
            miss = out.misses.setdefault((kind.name, locale), Cell())
            for i in range(src.count(n)):
                group, value = src.draw(fake, i)
                core = kind.core(value)
                invalid = kind.valid(locale, group, value)
                cells = [
                    total,
                    out.cell(kind.name, "locale", locale),
                    out.cell(kind.name, "source", src.call),
                    out.cell(kind.name, "group", group),
                ]
                for c in cells:
                    c.values += 1
                if invalid:
                    reasons[f"{locale}: {invalid}"] += len(kind.templates)
                for template, labelled in kind.templates:
                    filled = template.format(x="\x00", **words)
                    start = filled.index("\x00")
                    text = filled.replace("\x00", value)
                    end = start + len(core)
                    spans = redactor.find(text)
                    hit = _coverage(text, start, end, spans, kind.detector, True) >= COVER
                    key = (labelled, invalid is None)
                    for c in cells:
                        c.planted[key] += 1
                        c.found[key] += hit
                    if hit:
                        continue
                    other = _coverage(text, start, end, spans, kind.detector, False) >= COVER
                    part = not other and any(s.start < end and start < s.end for s in spans)
                    for c in cells:
                        c.other_kind += other
                        c.partial += part
                    miss.planted[key] += 1
                    if value not in miss.misses and len(miss.misses) < MAX_MISSES:
                        near = [f"{s.kind} `{s.text}`" for s in spans if s.start < end and start < s.end]
                        miss.misses[value] = (
                            f"`{value}` in “{text}”"
                            + (f"; detected {', '.join(near)}" if near else "")
                            + (f" (not valid: {invalid})" if invalid else "")
                        )
    return out


@dataclass
class FpRow:
    name: str
    texts: int = 0
    texts_flagged: int = 0
    flags: Counter[str] = field(default_factory=Counter)
    examples: list[str] = field(default_factory=list)

    def json(self) -> dict[str, Any]:
        return {
            "texts": self.texts,
            "texts_flagged": self.texts_flagged,
            "flags": sum(self.flags.values()),
            "rate": _round(self.texts_flagged / self.texts if self.texts else None),
            "by_detector": {k: self.flags[k] for k in [*_detectors(), *sorted(set(self.flags) - set(_detectors()))]},
        }


def measure_fp(redactor: Redactor, sources: list[FpSource], locales: list[str], n: int, seed: int) -> list[FpRow]:
    rows = []
    for name, gen, templates in sources:
        row = FpRow(name)
        for locale in locales:
            fake = _seeded(locale, seed, "fp:" + name)
            for i in range(n):
                value = gen(fake, i)
                text = fake.random.choice(templates).format(x=value)  # independent of the value's own variant
                row.texts += 1
                spans = redactor.find(text)
                row.texts_flagged += bool(spans)
                for s in spans:
                    row.flags[s.kind] += 1
                    if len(row.examples) < 8:
                        row.examples.append(f"{s.kind} `{s.text}` in “{text}” ({locale})")
        rows.append(row)
    return rows


def _total(rows: list[FpRow], name: str) -> FpRow:
    total = FpRow(name)
    for row in rows:
        total.texts += row.texts
        total.texts_flagged += row.texts_flagged
        total.flags.update(row.flags)
    return total


# --------------------------------------------------------------------------- output


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{x:.3f}"


def _row(kind: str, locale: str, source: str, c: Cell, bold: bool = False) -> str:
    b = "**" if bold else ""
    planted, found = c.count()
    return (
        f"| {b}{kind}{b} | {b}{locale}{b} | {source} | {planted} | {found} | {b}{_pct(c.recall())}{b} "
        f"| {_pct(c.recall(True))} | {_pct(c.recall(False))} | {c.count(None, False)[0]} "
        f"| {b}{_pct(c.recall(None, True))}{b} | {_pct(c.recall(True, True))} | {b}{_pct(c.recall(False, True))}{b} "
        f"| {c.other_kind} | {c.partial} |"
    )


def _detectors() -> list[str]:
    return list(dict.fromkeys([*BUILTIN_DETECTORS, *(k.detector for k in KINDS)]))


def _fp_line(row: FpRow, bold: bool = False) -> str:
    b = "**" if bold else ""
    cells = " | ".join(str(row.flags[k]) for k in _detectors())
    return f"| {b}{row.name}{b} | {row.texts} | {cells} | {b}{sum(row.flags.values())}{b} | {row.texts_flagged} |"


def print_markdown(args: argparse.Namespace, head: dict[str, Any], rec: Recall, fp: list[FpRow], extra: list[FpRow]):
    locales = head["locales"]
    print(f"    {head['command']}")
    print()
    print(
        f"Faker {head['faker']}; `Redactor(['all'], bare_numbers={head['redact_bare_numbers']})` from "
        f"`{head['detectors']}` (sha256 {head['detectors_sha256']}). Each value is planted in every template of its "
        f"kind ({', '.join(f'{k.name} {len(k.templates)}' for k in KINDS)}); found = spans of the same kind cover "
        f"≥ {COVER:.0%} of its non-space characters. Phone extensions (x123) are outside the planted span. "
        "“not valid”: planted instances whose value breaks a real-world rule (see the docstring); the “valid” columns "
        f"leave them out. Locale “{ANY}”: locale-free sources."
    )
    print()
    print("## Recall")
    print()
    print(
        "| kind | locale | source | planted | found | recall | with label | without label | not valid "
        "| valid | valid, with label | valid, without label | as other kind | partial |"
    )
    print("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for kind in KINDS:
        for locale in [*locales, ANY]:
            c = rec.by.get((kind.name, "locale"), {}).get(locale)
            if c is None:
                if locale in kind.skipped:
                    print(f"| {kind.name} | {locale} | – ({kind.skipped[locale]}) |{' |' * 11}")
                continue
            srcs = kind.sources(locale) if locale != ANY else list(kind.anywhere)
            print(_row(kind.name, locale, " + ".join(s.call for s in srcs), c))
        print(_row(kind.name, "all", "", rec.total[kind.name], bold=True))
    print()
    for dim, title in (("source", "value source"), ("group", "group (card type, ID scheme, IBAN length, phone form)")):
        print(f"### Recall per {title}, all locales")
        print()
        print(
            f"| kind | {dim} | values | planted | recall | with label | without label | not valid | valid "
            "| valid, with label | valid, without label |"
        )
        print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for kind in KINDS:
            for key, c in rec.by.get((kind.name, dim), {}).items():
                print(
                    f"| {kind.name} | {key} | {c.values} | {c.count()[0]} | {_pct(c.recall())} "
                    f"| {_pct(c.recall(True))} | {_pct(c.recall(False))} | {c.count(None, False)[0]} "
                    f"| {_pct(c.recall(None, True))} "
                    f"| {_pct(c.recall(True, True))} | {_pct(c.recall(False, True))} |"
                )
        print()
    if any(rec.reasons.values()):
        print("### Values that are not valid real-world instances (planted instances)")
        print()
        for kind in KINDS:
            for reason, count in sorted(rec.reasons[kind.name].items()):
                print(f"- {kind.name} / {reason}: {count}")
        print()
    missed = {key: c for key, c in rec.misses.items() if c.misses}
    if missed:
        print(f"### Missed examples (first {MAX_MISSES} distinct values per kind and locale)")
        print()
        for (kind_name, locale), c in missed.items():
            print(f"- **{kind_name} / {locale}** ({c.count()[0]} missed, {c.count(None, True)[0]} of them valid)")
            for example in c.misses.values():
                print(f"  - {example}")
        print()

    kinds = ", ".join(k.name for k in KINDS)
    print(f"## False positives on Faker text with none of the kinds ({kinds})")
    print()
    dets = _detectors()
    print(f"| source | texts | {' | '.join(dets)} | flags | texts flagged |")
    print(f"|---|---:|{'---:|' * len(dets)}---:|---:|")
    for row in fp:
        print(_fp_line(row))
    print(_fp_line(_total(fp, f"all {len(fp)} sources"), bold=True))
    for row in extra:
        print(_fp_line(row))
    print()
    flagged = [row for row in [*fp, *extra] if row.examples]
    if flagged:
        print("### Flag examples (first 8 per source)")
        print()
        for row in flagged:
            print(f"- **{row.name}**")
            for example in row.examples:
                print(f"  - {example}")
    else:
        print("No flags.")


def as_json(head: dict[str, Any], rec: Recall, fp: list[FpRow], extra: list[FpRow]) -> dict[str, Any]:
    recall: dict[str, Any] = {}
    for kind in KINDS:
        entry = rec.total[kind.name].json()
        for dim in ("locale", "source", "group"):
            entry[f"by_{dim}"] = {key: c.json() for key, c in rec.by.get((kind.name, dim), {}).items()}
        entry["not_valid_reasons"] = dict(sorted(rec.reasons[kind.name].items()))
        if kind.skipped:
            entry["skipped_locales"] = {loc: why for loc, why in kind.skipped.items() if loc in head["locales"]}
        recall[kind.name] = entry
    total = _total(fp, "all")
    return {
        **head,
        "recall": recall,
        "false_positives": {
            **total.json(),
            "by_source": {row.name: row.json() for row in fp},
            "extra": {row.name: row.json() for row in extra},
        },
    }


def _bool(text: str) -> bool:
    if text.lower() not in ("true", "false"):
        raise argparse.ArgumentTypeError("expected true or false")
    return text.lower() == "true"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=200, help="values per kind, source and locale (default 200)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--locales", default=DEFAULT_LOCALES)
    ap.add_argument("--json", action="store_true", help="print one JSON object instead of Markdown")
    ap.add_argument(
        "--names",
        type=int,
        default=60,
        metavar="N",
        help="person, location, date_of_birth (bench/pii_names.py, the real NER model): N values per kind and "
        "locale (default 60; 0: skip)",
    )
    ap.add_argument(
        "--redact-bare-numbers",
        type=_bool,
        default=BARE_NUMBERS_DEFAULT,
        metavar="true|false",
        help=f"the [policy] setting measured (default: the config default, {str(BARE_NUMBERS_DEFAULT).lower()})",
    )
    args = ap.parse_args()
    locales = [loc.strip() for loc in args.locales.split(",") if loc.strip()]
    for locale in locales:
        try:
            Faker(locale)
        except AttributeError:
            sys.exit(f"Faker has no locale {locale!r}")
    bare = args.redact_bare_numbers
    redactor = Redactor(["all"], bare_numbers=bare)
    detectors = Path(automix_local.redact.__file__)
    command = (
        f".venv/bin/python bench/pii_faker.py --n {args.n} --seed {args.seed} --locales {','.join(locales)} "
        f"--redact-bare-numbers {str(bare).lower()} --names {args.names}" + (" --json" if args.json else "")
    )
    head = {
        "command": command,
        "faker": faker.VERSION,
        "seed": args.seed,
        "n": args.n,
        "locales": locales,
        "redact_bare_numbers": bare,
        "detectors": str(detectors.relative_to(detectors.parents[1])),
        "detectors_sha256": hashlib.sha256(detectors.read_bytes()).hexdigest()[:12],
        "cover": COVER,
    }
    rec = measure_recall(redactor, locales, args.n, args.seed)
    fp = measure_fp(redactor, FP_SOURCES, locales, args.n, args.seed)
    extra = measure_fp(redactor, FP_EXTRA, locales, args.n, args.seed)
    names = measure_names(args.names, args.seed, locales) if args.names else None
    if args.json:
        out = as_json(head, rec, fp, extra)
        if names is not None:
            out["names"] = names
        print(json.dumps(out, indent=1, ensure_ascii=False))
    else:
        print_markdown(args, head, rec, fp, extra)
        if names is not None:
            import pii_names

            print()
            print(
                "People, places and dates of birth (`Redactor(['names'])`, the NER model; bench/pii_names.py): "
                "replaced = covered by any of the name kinds"
            )
            print()
            print(pii_names.markdown(names["recall"], names["prose"]))


def measure_names(n: int, seed: int, locales: list[str]) -> dict[str, Any]:
    """The name kinds of bench/pii_names.py on the same seed and locales, with the real NER model."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import pii_names

    ner = pii_names.default_ner()
    prose = ROOT.parent / "shared" / "data" / "squad_v2_dev_public.jsonl"
    return {
        "n": n,
        "model": f"{ner.name} {ner.version}",
        "recall": pii_names.measure(ner, seed, n, locales),
        "prose": pii_names.prose_share(ner, prose) if prose.is_file() else None,
    }


if __name__ == "__main__":
    main()
