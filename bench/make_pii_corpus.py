"""Generate the planted-PII corpus for automix_local.redact: tests/data/pii_corpus.jsonl.

    .venv/bin/python bench/make_pii_corpus.py                    # writes tests/data/pii_corpus.jsonl
    .venv/bin/python bench/make_pii_corpus.py --prose-from ../shared/data/squad_v2_dev_public.jsonl
                                                                 # also writes tests/data/prose_sample.jsonl

Deterministic (fixed seed, stdlib `random` only). Each line is {"text": ..., "spans": [{"kind", "start", "end"}]}.
Positive lines plant at least 100 values of each built-in kind (email, phone, card, iban, ip, national_id) in
e-mails, letters, HR records, invoices, support tickets, server logs, medical-admin notes and chat messages, mixing
formats within each kind, alongside ordinary numbers that must not be flagged (dates, times, amounts, invoice and
ticket references, ports, process ids, versions). Values come from reserved or fictional ranges where such exist:
NANP 555-01xx, Ofcom/ARCEP/ACMA drama numbers (German, Dutch, Spanish, Italian, Irish and Indian phone numbers are
random digits in the national format), example.com/.org/.net and .test/.example domains, the documentation networks
192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24 and 2001:db8::/32, published test card numbers, and randomly
generated card, IBAN and ID numbers whose check digits are valid (computed with python-stdnum's calc_check_digit
functions, not with the detector code; they give the same digits as the hand-written copies this script had before,
so the corpus did not change). Negative lines ("spans": []) hold look-alikes only: years, ranges, dates, times,
prices, counts, ISBNs, versions, coordinates, times and C++ scopes with colons, and card/IBAN/ID numbers with a
wrong check digit or an invalid prefix.

`--prose-from` copies ~40 real, number-heavy contexts (at most 3 per article) from the SQuAD 2.0 dev file into
tests/data/prose_sample.jsonl, whose first line records the source and licence (CC BY-SA 4.0).
"""

from __future__ import annotations

import argparse
import json
import random
import re
import string
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from stdnum import iban as stdnum_iban
from stdnum import luhn, verhoeff
from stdnum.es import dni as stdnum_dni
from stdnum.es import nie
from stdnum.fr import nir as stdnum_nir
from stdnum.gb import nhs as stdnum_nhs
from stdnum.iso7064 import mod_11_10, mod_97_10
from stdnum.it import codicefiscale
from stdnum.nl import bsn as stdnum_bsn

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "data" / "pii_corpus.jsonl"
PROSE_OUT = ROOT / "tests" / "data" / "prose_sample.jsonl"
SEED = 20240611
POSITIVE_LINES = 460
NEGATIVE_LINES = 200
KINDS = ("email", "phone", "card", "iban", "ip", "national_id")

# --------------------------------------------------------------------------- fillers

FIRST = (
    "Alice Bob Carla David Elena Farid Grace Hiro Ines Jonas Kofi Laura Mateo Nadia Omar Priya Quentin Rosa Samir "
    "Tanya Ugo Vera Wei Ximena Yusuf Zoe Amara Bruno Chloe Dmitri Esther Felix Greta Hannah Ivan Julia"
).split()
LAST = [
    w.replace("_", " ")
    for w in "Smith Jones Garcia Müller Rossi Dubois Kowalski Nakamura Okafor Patel Silva Novak Jensen Haddad Moreau "
    "Schmidt Fernández Bianchi de_Vries O'Brien Nguyen Andersson Kumar Lopez Brown Wilson Taylor Martin".split()
]
COMPANIES = ["Example Corp", "Acme Widgets Ltd", "Northwind Traders", "Globex GmbH", "Initech SARL", "Umbrella BV"]
DOMAINS = [
    "example.com", "example.org", "example.net", "mail.example.com", "corp.example.org", "support.example.net",
    "hr.example.com", "billing.example.org", "clinic.example", "acme.test", "students.example.org", "eu.example.net",
]  # fmt: skip
MONTHS = "January February March April May June July August September October November December".split()


def name(rng: random.Random) -> str:
    return f"{rng.choice(FIRST)} {rng.choice(LAST)}"


def date(rng: random.Random) -> str:
    y, m, d = rng.randint(1950, 2025), rng.randint(1, 12), rng.randint(1, 28)
    style = rng.randrange(5)
    if style == 0:
        return f"{y}-{m:02d}-{d:02d}"
    if style == 1:
        return f"{d:02d}/{m:02d}/{y}"
    if style == 2:
        return f"{d} {MONTHS[m - 1]} {y}"
    if style == 3:
        return f"{MONTHS[m - 1]} {d}, {y}"
    return f"{d:02d}.{m:02d}.{y}"


def time_(rng: random.Random) -> str:
    return f"{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}" + (
        f":{rng.randint(0, 59):02d}" if rng.random() < 0.5 else ""
    )


def amount(rng: random.Random) -> str:
    v = rng.randint(5, 250000) + rng.randint(0, 99) / 100
    cur = rng.choice(["$", "€", "£", "EUR ", "USD ", "CHF "])
    s = f"{v:,.2f}"
    if cur in ("€", "EUR ") and rng.random() < 0.5:
        s = s.replace(",", " ").replace(".", ",").replace(" ", ".")
    return f"{cur}{s}"


def iso_ts(rng: random.Random) -> str:
    return (
        f"{rng.randint(2019, 2025)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}T{rng.randint(0, 23):02d}:"
        f"{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}.{rng.randint(0, 999):03d}Z"
    )


def hms(rng: random.Random) -> str:
    return f"{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}"


def syslog_ts(rng: random.Random) -> str:
    return f"{rng.choice(MONTHS)[:3]} {rng.randint(1, 28):2d} {hms(rng)}"


def clf_ts(rng: random.Random) -> str:
    return f"{rng.randint(1, 28):02d}/{rng.choice(MONTHS)[:3]}/{rng.randint(2019, 2025)}:{hms(rng)} +0000"


def version(rng: random.Random) -> str:
    return f"{rng.randint(1, 12)}.{rng.randint(0, 20)}.{rng.randint(0, 30)}"


# --------------------------------------------------------------------------- PII generators

Gen = Callable[[random.Random], str]


def email(rng: random.Random) -> str:
    first, last = rng.choice(FIRST).lower(), rng.choice(LAST).lower()
    last = re.sub(r"[^a-z]", "", last.replace("ü", "ue").replace("á", "a"))
    local = rng.choice(
        [
            f"{first}.{last}",
            f"{first[0]}.{last}",
            f"{first}{last}",
            f"{first}_{last}",
            f"{first}.{last}+{rng.choice(['invoices', 'news', 'hr', 'test', 'tag'])}",
            f"{first}{rng.randint(1, 99)}",
            f"{last}.{first}",
            f"{first}-{last}",
            rng.choice(["support", "billing", "noreply", "hr-team", "it.helpdesk", "patients"]),
        ]
    )
    addr = f"{local}@{rng.choice(DOMAINS)}"
    if rng.random() < 0.1:
        addr = addr[0].upper() + addr[1:]
    return addr


def phone(rng: random.Random) -> str:
    r = rng.randint
    nanp_area = rng.choice(["202", "212", "310", "415", "617", "312", "303", "206", "512", "646", "718"])
    line = f"01{r(0, 99):02d}"
    uk_london, uk_mob, uk_man = f"7946 0{r(0, 999):03d}", f"7700 900{r(0, 999):03d}", f"496 0{r(0, 999):03d}"
    fr = f"{r(0, 99):02d} {r(0, 99):02d}"
    d7 = f"{r(0, 9999999):07d}"
    forms = [
        f"({nanp_area}) 555-{line}",
        f"{nanp_area}-555-{line}",
        f"{nanp_area}.555.{line}",
        f"+1 {nanp_area} 555 {line}",
        f"+1-{nanp_area}-555-{line}",
        f"1-800-555-{line}",
        f"+1 ({nanp_area}) 555-{line}",
        f"020 {uk_london}",
        f"+44 20 {uk_london}",
        f"+44 (0)20 {uk_london}",
        f"0044 20 {uk_london}",
        f"001 {nanp_area} 555 {line}",
        f"0{uk_mob}",
        f"+44 {uk_mob}",
        f"0161 {uk_man}",
        f"+44 161 {uk_man}",
        f"01 99 00 {fr}",
        f"01.99.00.{fr.replace(' ', '.')}",
        f"+33 1 99 00 {fr}",
        f"06 39 98 {fr}",
        f"+33 6 39 98 {fr}",
        f"+49 30 {d7}",
        f"030 {d7}",
        f"(030) {d7}",
        f"030/{d7}",
        f"+49 (0)89 {d7}",
        f"0171 {d7}",
        f"+31 20 {r(100, 999)} {r(0, 9999):04d}",
        f"020-{r(100, 999)} {r(0, 9999):04d}",
        f"06-{r(10000000, 99999999)}",
        f"+61 491 570 {r(0, 999):03d}",
        f"0491 570 {r(0, 999):03d}",
        f"(02) 5550 {r(0, 9999):04d}",
        f"+34 91 {r(100, 999)} {r(10, 99)} {r(10, 99)}",
        f"+39 06 {r(1000, 9999)} {r(1000, 9999)}",
        f"+91 98765 {r(10000, 99999)}",
        f"+353 1 {r(200, 999)} {r(1000, 9999)}",
        f"+4930{d7}",
    ]
    return rng.choice(forms)


def phone_bare(rng: random.Random) -> str:
    """Formats only taken next to a phone keyword (the template supplies one)."""
    area = rng.choice(["202", "415", "617", "312"])
    line = f"01{rng.randint(0, 99):02d}"
    return rng.choice([f"555-{line}", f"{area}555{line}", f"07700900{rng.randint(0, 999):03d}", f"555 {line}"])


CARD_BRANDS = [  # (prefix choices, length, grouping)
    (["4"], 16, (4, 4, 4, 4)),
    (["4"], 16, (4, 4, 4, 4)),
    (["51", "52", "53", "54", "55"], 16, (4, 4, 4, 4)),
    (["2221", "2300", "2720"], 16, (4, 4, 4, 4)),
    (["34", "37"], 15, (4, 6, 5)),
    (["6011", "65"], 16, (4, 4, 4, 4)),
    (["3528", "3530", "3589"], 16, (4, 4, 4, 4)),
    (["36"], 14, (4, 6, 4)),
    (["62"], 19, (4, 4, 4, 4, 3)),
    (["4"], 13, (4, 4, 5)),
]
TEST_CARDS = [
    "4111111111111111", "4242424242424242", "4012888888881881", "5555555555554444", "5105105105105100",
    "378282246310005", "371449635398431", "6011111111111117", "6011000990139424", "3530111333300000",
    "30569309025904", "36227206271667", "2223003122003222", "4000056655665556", "5200828282828210",
]  # fmt: skip


def group(digits: str, sizes: tuple[int, ...], sep: str) -> str:
    out, i = [], 0
    for s in sizes:
        out.append(digits[i : i + s])
        i += s
    return sep.join(p for p in out if p)


def card_digits(rng: random.Random) -> tuple[str, tuple[int, ...]]:
    if rng.random() < 0.25:
        d = rng.choice(TEST_CARDS)
        sizes = {14: (4, 6, 4), 15: (4, 6, 5)}.get(len(d), (4, 4, 4, 4))
        return d, sizes
    prefixes, length, sizes = rng.choice(CARD_BRANDS)
    body = rng.choice(prefixes)
    body += "".join(rng.choice(string.digits) for _ in range(length - 1 - len(body)))
    return body + luhn.calc_check_digit(body), sizes


def card(rng: random.Random) -> str:
    d, sizes = card_digits(rng)
    return rng.choice([group(d, sizes, " "), group(d, sizes, "-"), d, group(d, sizes, " ")])


IBAN_SPECS = {  # country: BBAN as (kind, count) chunks, n = digits, a = upper letters, c = alphanumeric
    "DE": "n18", "GB": "a4 n14", "FR": "n10 c11 n2", "ES": "n20", "IT": "a1 n10 c12", "NL": "a4 n10",
    "BE": "n12", "CH": "n5 c12", "AT": "n16", "IE": "a4 n14", "PL": "n24", "PT": "n21", "SE": "n20",
    "DK": "n14", "NO": "n11", "FI": "n14", "LU": "n3 c13", "GR": "n7 c16", "CZ": "n20", "HU": "n24",
}  # fmt: skip
KNOWN_IBANS = ["DE89370400440532013000", "GB82WEST12345698765432", "FR1420041010050500013M02606",
               "NL91ABNA0417164300", "ES9121000418450200051332", "IT60X0542811101000000123456"]  # fmt: skip


def iban_compact(rng: random.Random, country: str | None = None) -> str:
    if country is None and rng.random() < 0.1:
        return rng.choice(KNOWN_IBANS)
    cc = country or rng.choice(list(IBAN_SPECS))
    bban = ""
    for chunk in IBAN_SPECS[cc].split():
        kind, count = chunk[0], int(chunk[1:])
        pool = {"n": string.digits, "a": string.ascii_uppercase, "c": string.digits * 3 + string.ascii_uppercase}[kind]
        bban += "".join(rng.choice(pool) for _ in range(count))
    return f"{cc}{stdnum_iban.calc_check_digits(cc + '00' + bban)}{bban}"


def iban_print(compact: str) -> str:
    return " ".join(compact[i : i + 4] for i in range(0, len(compact), 4))


def iban(rng: random.Random, country: str | None = None) -> str:
    c = iban_compact(rng, country)
    return iban_print(c) if rng.random() < 0.65 else c


def ip(rng: random.Random) -> str:
    r = rng.randint
    if rng.random() < 0.6:
        net = rng.choice(["192.0.2", "198.51.100", "203.0.113"])
        return f"{net}.{r(1, 254)}"
    h = [f"{r(0, 0xFFFF):x}" for _ in range(6)]
    forms = [
        f"2001:db8::{h[0]}",
        f"2001:db8:{h[0]}::{h[1]}",
        f"2001:db8:{h[0]}:{h[1]}::{h[2]}:{h[3]}",
        f"2001:0db8:{int(h[0], 16):04x}:{int(h[1], 16):04x}:{int(h[2], 16):04x}:{int(h[3], 16):04x}:"
        f"{int(h[4], 16):04x}:{int(h[5], 16):04x}",
        f"2001:db8:{h[0]}:{h[1]}:{h[2]}:{h[3]}:{h[4]}:{h[5]}",
        f"2001:DB8::{h[0].upper()}:{h[1].upper()}",
        f"2001:db8::ffff:{rng.choice(['192.0.2', '198.51.100', '203.0.113'])}.{r(1, 254)}",
        f"::ffff:{rng.choice(['192.0.2', '198.51.100', '203.0.113'])}.{r(1, 254)}",
    ]
    return rng.choice(forms)


NINO_FIRST = "ABCEGHJKLMNOPRSTWXYZ"
NINO_SECOND = "ABCEGHJKLMNPRSTWXYZ"
NINO_BAD = {"BG", "GB", "KN", "NK", "NT", "TN", "ZZ"}


def ssn_parts(rng: random.Random) -> tuple[str, str, str]:
    area = rng.choice([a for a in range(1, 900) if a != 666])
    return f"{area:03d}", f"{rng.randint(1, 99):02d}", f"{rng.randint(1, 9999):04d}"


def ssn(rng: random.Random) -> str:
    return "-".join(ssn_parts(rng))


def ssn_ctx(rng: random.Random) -> str:  # formats taken only after "SSN"/"Social Security"
    a, g, s = ssn_parts(rng)
    return rng.choice([f"{a} {g} {s}", f"{a}{g}{s}"])


def nino(rng: random.Random) -> str:
    while (prefix := rng.choice(NINO_FIRST) + rng.choice(NINO_SECOND)) in NINO_BAD:
        pass
    d = f"{rng.randint(0, 999999):06d}"
    suffix = rng.choice("ABCD")
    return rng.choice([f"{prefix} {d[:2]} {d[2:4]} {d[4:]} {suffix}", f"{prefix}{d}{suffix}"])


def nir(rng: random.Random) -> str:
    dept = rng.choice([f"{rng.randint(1, 95):02d}", "2A", "2B"])
    body = f"{rng.randint(1, 2)}{rng.randint(0, 99):02d}{rng.randint(1, 12):02d}{dept}{rng.randint(1, 990):03d}"
    body += f"{rng.randint(1, 999):03d}"
    key = stdnum_nir.calc_check_digits(body)
    if rng.random() < 0.6:
        return f"{body[0]} {body[1:3]} {body[3:5]} {body[5:7]} {body[7:10]} {body[10:13]} {key}"
    return body + key


DNI_LETTERS = "TRWAGMYFPDXBNJZSQVHLCKE"  # the letters a DNI/NIE may end in (its check letter is stdnum's)


def dni(rng: random.Random) -> str:
    if rng.random() < 0.3:  # NIE
        lead = rng.choice("XYZ")
        num = f"{rng.randint(0, 9999999):07d}"
        letter = nie.calc_check_digit(lead + num)
        return rng.choice([f"{lead}{num}{letter}", f"{lead}-{num}-{letter}"])
    num = f"{rng.randint(10000000, 99999999)}"
    letter = stdnum_dni.calc_check_digit(num)
    return rng.choice([f"{num}{letter}", f"{num}-{letter}"])


def codice_fiscale(rng: random.Random) -> str:
    consonants = "BCDFGHJKLMNPQRSTVWXZ"
    letters = "".join(rng.choice(consonants) for _ in range(6))
    day = rng.randint(1, 28) + (40 if rng.random() < 0.5 else 0)
    town = rng.choice(string.ascii_uppercase[:13]) + f"{rng.randint(1, 999):03d}"
    body = f"{letters}{rng.randint(0, 99):02d}{rng.choice('ABCDEHLMPRST')}{day:02d}{town}"
    return body + codicefiscale.calc_check_digit(body)


def aadhaar_digits(rng: random.Random) -> str:
    body = str(rng.randint(2, 9)) + "".join(rng.choice(string.digits) for _ in range(10))
    return body + verhoeff.calc_check_digit(body)


def aadhaar(rng: random.Random) -> str:
    d = aadhaar_digits(rng)
    return f"{d[:4]} {d[4:8]} {d[8:]}" if rng.random() < 0.8 else f"{d[:4]}-{d[4:8]}-{d[8:]}"


def aadhaar_ctx(rng: random.Random) -> str:
    return aadhaar_digits(rng)


def bsn(rng: random.Random) -> str:
    while True:
        body = "".join(str(rng.randint(0, 9)) for _ in range(8))
        checks = [c for c in string.digits if stdnum_bsn.is_valid(body + c)]  # none when the 11-check needs a 10
        if checks and body[:2] != "00":
            s = body + checks[0]
            return s if rng.random() < 0.7 else f"{s[:4]}.{s[4:6]}.{s[6:]}"


def sin(rng: random.Random) -> str:
    body = str(rng.choice([1, 2, 3, 4, 5, 6, 7, 9])) + "".join(rng.choice(string.digits) for _ in range(7))
    d = body + luhn.calc_check_digit(body)
    return rng.choice([f"{d[:3]} {d[3:6]} {d[6:]}", f"{d[:3]}-{d[3:6]}-{d[6:]}", d])


def nhs(rng: random.Random) -> str:
    while True:
        body = "".join(rng.choice(string.digits) for _ in range(9))
        checks = [c for c in string.digits if stdnum_nhs.is_valid(body + c)]  # none when mod 11 asks for a 10
        if checks:
            d = body + checks[0]
            return f"{d[:3]} {d[3:6]} {d[6:]}" if rng.random() < 0.8 else d


def steuer_id(rng: random.Random) -> str:
    while True:
        digits = rng.sample(string.digits, 9)
        digits.append(rng.choice(digits))
        rng.shuffle(digits)
        if digits[0] != "0":
            break
    body = "".join(digits)
    d = body + mod_11_10.calc_check_digit(body)
    return d if rng.random() < 0.6 else f"{d[:2]} {d[2:5]} {d[5:8]} {d[8:]}"


PII: dict[str, tuple[str, Gen]] = {  # template field -> (kind, generator)
    "email": ("email", email),
    "email2": ("email", email),
    "phone": ("phone", phone),
    "phone2": ("phone", phone),
    "phone_bare": ("phone", phone_bare),
    "card": ("card", card),
    "card2": ("card", card),
    "iban": ("iban", iban),
    "iban2": ("iban", iban),
    "iban_de": ("iban", lambda rng: iban(rng, "DE")),
    "iban_nl": ("iban", lambda rng: iban(rng, "NL")),
    "iban_es": ("iban", lambda rng: iban(rng, "ES")),
    "iban_gb": ("iban", lambda rng: iban(rng, "GB")),
    "ip": ("ip", ip),
    "ip2": ("ip", ip),
    "ssn": ("national_id", ssn),
    "ssn_ctx": ("national_id", ssn_ctx),
    "nino": ("national_id", nino),
    "nir": ("national_id", nir),
    "dni": ("national_id", dni),
    "cf": ("national_id", codice_fiscale),
    "aadhaar": ("national_id", aadhaar),
    "aadhaar_ctx": ("national_id", aadhaar_ctx),
    "bsn": ("national_id", bsn),
    "sin": ("national_id", sin),
    "nhs": ("national_id", nhs),
    "steuer": ("national_id", steuer_id),
}
FILLERS: dict[str, Gen] = {
    "name": name,
    "name2": name,
    "company": lambda rng: rng.choice(COMPANIES),
    "date": date,
    "date2": date,
    "time": time_,
    "amount": amount,
    "amount2": amount,
    "iso_ts": iso_ts,
    "syslog_ts": syslog_ts,
    "clf_ts": clf_ts,
    "version": version,
    "n3": lambda rng: str(rng.randint(100, 999)),
    "n4": lambda rng: str(rng.randint(1000, 9999)),
    "n5": lambda rng: f"{rng.randint(0, 99999):05d}",
    "n6": lambda rng: str(rng.randint(100000, 999999)),
    "port": lambda rng: str(rng.randint(1024, 65535)),
    "pid": lambda rng: str(rng.randint(300, 65000)),
    "year": lambda rng: str(rng.randint(1990, 2025)),
    "hex": lambda rng: "".join(rng.choice("0123456789abcdef") for _ in range(16)),
    "bytes": lambda rng: str(rng.randint(120, 5_000_000)),
    "ms": lambda rng: f"{rng.randint(1, 2500) / 10:.1f}",
    "exp": lambda rng: f"{rng.randint(1, 12):02d}/{rng.randint(25, 31)}",
    "dose": lambda rng: rng.choice(["2.5 mg", "10 mg", "500 mg", "0.5 ml", "20 IU"]),
    "bic": lambda rng: "".join(rng.choice(string.ascii_uppercase) for _ in range(6)) + "2X",
    "user": lambda rng: rng.choice(["admin", "root", "oracle", "test", "deploy", "guest"]),
}

# --------------------------------------------------------------------------- templates

POSITIVE_TEMPLATES = [
    # e-mails and letters
    "Dear {name},\n\nThank you for your letter of {date}. Please send the signed form to {email} or call me on "
    "{phone}.\n\nKind regards,\n{name2}\n{company}",
    "From: {name} <{email}>\nTo: {email2}\nDate: {date} {time}\nSubject: Re: order {n6}\n\nHi, the parcel "
    "({amount}) has not arrived. My number is {phone}.",
    "Hi team — {name} has joined as of {date}. Reach her at {email} (desk {phone}, mobile {phone2}).",
    "Please update my contact details: e-mail {email}, telephone {phone}. My old address {email2} is no longer read.",
    # HR records
    "Employee: {name} | DOB: {date} | SSN: {ssn} | Email: {email} | Phone: {phone} | Start: {date2} | Salary: {amount}",
    "HR record {n5}: {name}, National Insurance number {nino}, joined {date}, payroll IBAN {iban_gb}.",
    "New hire checklist for {name}: SSN {ssn_ctx} verified on {date}; direct deposit to {iban}; badge {n4}.",
    "Personnel file — {name}; Steuer-ID {steuer}; IBAN {iban_de}; Tel. {phone}; Eintritt {date}.",
    "Onboarding (NL): {name}, BSN {bsn}, IBAN {iban_nl}, telefoon {phone}, start {date}.",
    "Payroll (CA): {name}, SIN {sin}, direct deposit reference {n6}, contact {email}.",
    "Ficha del empleado: {name}, DNI {dni}, IBAN {iban_es}, teléfono {phone}, alta {date}.",
    "Scheda dipendente: {name}, codice fiscale {cf}, tel. {phone}, email {email}, assunto il {date}.",
    "Dossier salarié : {name}, n° de sécurité sociale {nir}, téléphone {phone}, courriel {email}.",
    "KYC form {n5}: applicant {name}, Aadhaar {aadhaar}, mobile {phone}, email {email}, submitted {date}.",
    "eKYC log: Aadhaar number {aadhaar_ctx} matched for {name} at {time} on {date}.",
    # invoices and payments
    "Invoice INV-{year}-{n5} dated {date}. Amount due: {amount} by {date2}. Please pay to IBAN {iban} "
    "(BIC {bic}). Questions: {email}.",
    "Remittance advice: {amount} transferred from {iban} to {iban_de} on {date}, reference {n6}.",
    "Payment received with card {card} (exp {exp}) for {amount}. Receipt sent to {email}.",
    "Refund of {amount} issued to card ending in the number {card}; original charge {date}, order {n6}.",
    "Card number: {card}  Exp: {exp}  Name on card: {name}  Billing phone: {phone}",
    "Chargeback case {n6}: cardholder {name} disputes {amount} on {card}; merchant contact {email}.",
    # support tickets
    "Ticket #{n6} ({date} {time}): Customer {name} reports card {card} was charged twice ({amount}). Callback "
    "number: {phone}. Logged from {ip}.",
    "Support chat: hi, my email is {email} and my phone is {phone}, I can't log in since the v{version} update",
    "Ticket {n5}: user {email} locked out after 5 failed logins from {ip} and {ip2}; please call {phone}.",
    "Customer says: please ring me back on {phone} or text {phone2}, or mail {email}. Order {n6}, {amount}.",
    "Callback request — Tel: {phone_bare}, preferred time {time}.",
    "Please call me at {phone_bare} after {time} regarding ticket {n5}.",
    # server logs
    "{syslog_ts} web01 sshd[{pid}]: Failed password for invalid user {user} from {ip} port {port} ssh2",
    '{ip} - - [{clf_ts}] "GET /api/v2/orders/{n6} HTTP/1.1" 200 {bytes} "-" "Mozilla/5.0 (X11; Linux x86_64)"',
    "{iso_ts} INFO auth: login ok user={email} src={ip} session={hex} latency={ms}ms",
    "{iso_ts} WARN ratelimit: client {ip} exceeded {n3} req/min (limit 100), user {email}",
    "{iso_ts} ERROR smtp: delivery to {email} failed (550 5.1.1), relay {ip}",
    "{syslog_ts} fw01 kernel: DROP IN=eth0 SRC={ip} DST={ip2} LEN={n3} TTL=64 PROTO=TCP SPT={port} DPT=443",
    "{iso_ts} DEBUG payments: tokenised card {card} for customer {n6} in {ms} ms",
    # medical-admin notes
    "Patient {name}, DOB {date}, NHS number {nhs}, seen {date2} at {time}. Contact: {phone}. {dose} twice daily; "
    "review in 6 weeks.",
    "Referral letter for {name} (NHS No. {nhs}) — GP surgery tel. {phone}; please reply to {email}.",
    "Clinic note {date}: {name}, SSN {ssn}, insurance ID {n6}, BP 128/82, weight 71.5 kg; call {phone} for results.",
    "Rendez-vous du {date} : patient {name}, n° de sécurité sociale {nir}, téléphone {phone}.",
    # mixed / misc
    "Account holder {name}, IBAN {iban}, registered email {email}, last login {date} from {ip}.",
    "Travel booking for {name}: passport contact {phone}, NINO {nino}, card {card}.",
    "Data subject request {n5}: erase {email}, {phone}, IP {ip}, and national ID {ssn} from all systems by {date}.",
    "Contractor {name} (SIN {sin}) invoiced {amount}; pay to {iban}; ring {phone} with questions.",
    "Saved payment methods for {name}: {card} (default) and {card2}.",
    "Subscription {n6} renewal failed: card {card} declined (insufficient funds); next retry {date}.",
    "{iso_ts} INFO checkout: order {n6} paid {amount} with card={card} ip={ip}",
    "Booking confirmation {n5}: guaranteed with card {card}, exp {exp}; guest phone {phone}.",
    "Please charge {amount} to my card {card}, expiry {exp}, security code on request. — {name}",
    "{iso_ts} INFO vpn: tunnel up for {email} from {ip}, assigned {ip2}",
    "Admin panel accessed from {ip} ({syslog_ts}); previous session from {ip2}.",
    "Please whitelist {ip} for our office and {ip2} for {name} working from home.",
    "{syslog_ts} mail postfix/smtpd[{pid}]: connect from unknown[{ip}]",
    "Bankverbindung: {name}, IBAN {iban_de}, BIC {bic}, Verwendungszweck Rechnung {n6}.",
    "Standing order: {amount} monthly from {iban} to {iban2} starting {date}.",
    "Refund to IBAN {iban} requested by {email} on {date}; card on file {card}.",
    "Belegschaft: {name}, Steuer-ID {steuer}, geboren {date}, E-Mail {email}.",
    "Cliente {name}, NIE/DNI {dni}, móvil {phone}, correo {email}, IBAN {iban_es}.",
]

NEGATIVE_TEMPLATES: list[Callable[[random.Random], str]] = []


def neg(fn: Callable[[random.Random], str]) -> Callable[[random.Random], str]:
    NEGATIVE_TEMPLATES.append(fn)
    return fn


@neg
def _years(rng: random.Random) -> str:
    a = rng.randint(1800, 1990)
    return (
        f"The war lasted from {a}–{a + rng.randint(1, 8)} and the treaty was signed on {rng.randint(1, 28)} "
        f"{rng.choice(MONTHS)} {a + rng.randint(4, 10)}; casualties reached {rng.randint(1, 9)},"
        f"{rng.randint(100, 999)},{rng.randint(100, 999)}."
    )


@neg
def _range(rng: random.Random) -> str:
    a = rng.randint(1900, 2000)
    return f"Between {a} and {a + rng.randint(2, 20)} ({a}-{a + rng.randint(2, 20)}), output rose from {amount(rng)} to {amount(rng)}."  # noqa: E501


@neg
def _constants(rng: random.Random) -> str:
    return (
        f"Pi is approximately 3.14159, e is 2.71828 and the sample mean was {rng.randint(1, 999)}."
        f"{rng.randint(1000, 99999)} with standard error 0.{rng.randint(1000, 9999)}."
    )


@neg
def _dates_times(rng: random.Random) -> str:
    y = rng.randint(1990, 2025)
    m, d = rng.randint(1, 12), rng.randint(1, 28)
    return (
        f"The meeting moved from {y}-{m:02d}-{d:02d} {rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:"
        f"{rng.randint(0, 59):02d} to {d:02d}.{m:02d}.{y} at {time_(rng)} (UTC+05:30), i.e. {m:02d}/{d:02d}/{y}."
    )


@neg
def _prices(rng: random.Random) -> str:
    return f"Price: {amount(rng)} (was {amount(rng)}); VAT {rng.randint(5, 25)}%; shipping {amount(rng)} per {rng.randint(2, 50)} kg."  # noqa: E501


def isbn13(rng: random.Random) -> str:
    body = "978" + "".join(rng.choice(string.digits) for _ in range(9))
    check = (10 - sum(int(c) * (1 if i % 2 == 0 else 3) for i, c in enumerate(body)) % 10) % 10
    d = body + str(check)
    return f"{d[:3]}-{d[3]}-{d[4:7]}-{d[7:12]}-{d[12]}"


def isbn10(rng: random.Random) -> str:
    body = "".join(rng.choice(string.digits) for _ in range(9))
    check = (11 - sum(int(c) * (10 - i) for i, c in enumerate(body)) % 11) % 11
    c = "X" if check == 10 else str(check)
    return f"{body[0]}-{body[1:4]}-{body[4:9]}-{c}"


@neg
def _isbn(rng: random.Random) -> str:
    return f"See {rng.choice(LAST)} ({rng.randint(1950, 2024)}), ISBN {isbn13(rng)}, pp. {rng.randint(10, 200)}–{rng.randint(201, 400)}; also ISBN {isbn10(rng)}."  # noqa: E501


@neg
def _versions(rng: random.Random) -> str:
    return (
        f"Upgrade from version {rng.randint(1, 20)}.{rng.randint(0, 9)}.{rng.randint(0, 9)}.{rng.randint(0, 99)} "
        f"to v{rng.randint(1, 9)}.{rng.randint(10, 20)}.{rng.randint(0, 9)}.{rng.randint(0, 9)} (release "
        f"{version(rng)}, build {rng.randint(1000, 99999)}); see section {rng.randint(1, 9)}.{rng.randint(1, 9)}."
        f"{rng.randint(1, 9)}.{rng.randint(1, 9)}."
    )


@neg
def _coords(rng: random.Random) -> str:
    return (
        f"The summit lies at {rng.randint(0, 89)}.{rng.randint(1000, 9999)}° N, {rng.randint(0, 179)}."
        f"{rng.randint(1000, 9999)}° W ({rng.randint(-89, 89)}.{rng.randint(1000, 9999)}, -{rng.randint(0, 179)}."
        f"{rng.randint(1000, 9999)}), elevation {rng.randint(1, 8)},{rng.randint(100, 999)} m "
        f"({rng.randint(1, 28)},{rng.randint(100, 999)} ft)."
    )


@neg
def _counts(rng: random.Random) -> str:
    return (
        f"The population was {rng.randint(1, 99)},{rng.randint(100, 999)},{rng.randint(100, 999)} at the "
        f"{rng.randint(1900, 2020)} census, up {rng.randint(1, 30)}.{rng.randint(0, 9)}% from "
        f"{rng.randint(1, 99)} {rng.randint(100, 999)} {rng.randint(100, 999)} ten years earlier."
    )


@neg
def _times(rng: random.Random) -> str:
    return (
        f"Lap times: {rng.randint(1, 2)}:{rng.randint(10, 59)}:{rng.randint(10, 59)}.{rng.randint(100, 999)}, "
        f"{rng.randint(10, 23)}:{rng.randint(10, 59)}:{rng.randint(10, 59)}; final score {rng.randint(0, 5)}–"
        f"{rng.randint(0, 5)}; ratio 1:{rng.randint(2, 9)}:{rng.randint(2, 9)}; John {rng.randint(1, 20)}:"
        f"{rng.randint(1, 40)}."
    )


@neg
def _cpp(rng: random.Random) -> str:
    return (
        f"In C++ use std::vector<int> and a::b::c, not ::operator new; the MAC was "
        f"{':'.join(f'{rng.randint(0, 255):02X}' for _ in range(6))} at {rng.randint(10, 23)}:{rng.randint(10, 59)}."
    )


def luhn_invalid_card(rng: random.Random) -> str:
    d, sizes = card_digits(rng)
    d = d[:-1] + str((int(d[-1]) + rng.randint(1, 9)) % 10)
    return rng.choice([group(d, sizes, " "), group(d, sizes, "-"), d])


@neg
def _bad_card(rng: random.Random) -> str:
    return rng.choice(
        [
            f"The number {luhn_invalid_card(rng)} fails the Luhn check and was rejected on {date(rng)}.",
            f"Reference {luhn_invalid_card(rng)} (not a valid card) was typed by mistake.",
            f"Batch {luhn_invalid_card(rng)} and serial {luhn_invalid_card(rng)} are checksum-invalid.",
        ]
    )


def bad_iban(rng: random.Random) -> str:
    """A valid IBAN with its check digits or one BBAN digit changed (mod-97 catches every single change)."""
    c = iban_compact(rng)
    if rng.random() < 0.5:
        c = f"{c[:2]}{(int(c[2:4]) - 2 + rng.randint(1, 90)) % 95 + 2:02d}{c[4:]}"
    else:
        i = rng.choice([k for k in range(4, len(c)) if c[k].isdigit()])
        c = c[:i] + str((int(c[i]) + rng.randint(1, 9)) % 10) + c[i + 1 :]
    assert not mod_97_10.is_valid(c[4:] + c[:4]), c
    return iban_print(c) if rng.random() < 0.6 else c


@neg
def _bad_iban(rng: random.Random) -> str:
    return (
        f"The account {bad_iban(rng)} has an invalid checksum; transfer of {amount(rng)} was returned on {date(rng)}."
    )


@neg
def _bad_ssn(rng: random.Random) -> str:
    area, grp, serial = ssn_parts(rng)
    which = rng.randrange(5)
    area = ["000", "666", f"9{rng.randint(0, 99):02d}", area, area][which]
    grp = "00" if which == 3 else grp
    serial = "0000" if which == 4 else serial
    return (
        f"Form rejected: {area}-{grp}-{serial} is not a valid SSN (see rule {rng.randint(1, 9)}.{rng.randint(1, 9)})."
    )


@neg
def _phone_like(rng: random.Random) -> str:
    return rng.choice(
        [
            f"Part no. ({rng.randint(100, 199)}) {rng.randint(100, 999)}-{rng.randint(1000, 9999)} ships in {rng.randint(2, 9)} days.",  # noqa: E501
            f"Model {rng.randint(100, 999)}-{rng.randint(10, 99)} replaced the {rng.randint(1000, 9999)}-{rng.randint(100, 999)} in {rng.randint(1960, 2020)}.",  # noqa: E501
            f"The Boeing 747-{rng.randint(1, 8)}00 carried {rng.randint(300, 500)} passengers {rng.randint(8000, 14000):,} km.",  # noqa: E501
            f"Route {rng.randint(1, 99)} runs {rng.randint(100, 999)}.{rng.randint(1, 9)} km from exit {rng.randint(1, 99)} to mile {rng.randint(100, 999)}.",  # noqa: E501
            f"Scores: {rng.randint(100, 300)} {rng.randint(100, 300)} {rng.randint(100, 300)} {rng.randint(100, 300)} in {rng.randint(1990, 2024)}.",  # noqa: E501
        ]
    )


@neg
def _bad_ip(rng: random.Random) -> str:
    return (
        f"Invalid address {rng.randint(256, 999)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}, "
        f"three parts {rng.randint(1, 255)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}, tag v{rng.randint(1, 9)}."
        f"{rng.randint(0, 20)}.{rng.randint(0, 9)}.{rng.randint(0, 9)}."
    )


def bad_nino(rng: random.Random) -> str:
    prefix = rng.choice(["QQ", "BG", "GB", "NK", "TN", "ZZ", "DA", "FA", "IA", "UA", "VA", "AD", "AO"])
    d = f"{rng.randint(0, 999999):06d}"
    return f"{prefix} {d[:2]} {d[2:4]} {d[4:]} {rng.choice('ABCD')}"


@neg
def _bad_ids(rng: random.Random) -> str:
    num = f"{rng.randint(10000000, 99999999)}"
    wrong = rng.choice([c for c in DNI_LETTERS if c != stdnum_dni.calc_check_digit(num)])
    a = aadhaar_digits(rng)
    a = a[:-1] + str((int(a[-1]) + rng.randint(1, 9)) % 10)
    cf = codice_fiscale(rng)
    cf = cf[:-1] + rng.choice([c for c in string.ascii_uppercase if c != cf[-1]])
    return rng.choice(
        [
            f"Example identifiers such as {bad_nino(rng)} use prefixes that are never issued.",
            f"The DNI {num}{wrong} has the wrong control letter.",
            f"Reference {a[:4]} {a[4:8]} {a[8:]} fails the Verhoeff check.",
            f"The code {cf} has a wrong check character.",
        ]
    )


@neg
def _prose(rng: random.Random) -> str:
    return (
        f"In {rng.randint(1066, 1990)}, the {rng.randint(2, 99)}th regiment ({rng.randint(1000, 9999)} men) marched "
        f"{rng.randint(10, 400)} miles in {rng.randint(2, 30)} days; by {rng.randint(1700, 2000)} the town had "
        f"{rng.randint(1000, 99999):,} inhabitants and {rng.randint(2, 40)} churches (p. {rng.randint(1, 900)})."
    )


@neg
def _science(rng: random.Random) -> str:
    return (
        f"Avogadro's number is 6.022 × 10^23; the sample weighed {rng.randint(1, 999)}.{rng.randint(0, 999)} g at "
        f"{rng.randint(-40, 120)} °C and {rng.randint(900, 1100)} hPa; doi:10.{rng.randint(1000, 9999)}/"
        f"{rng.randint(100000, 999999)}; RFC {rng.randint(791, 9999)}; ISO {rng.randint(1000, 9999)}:{rng.randint(1990, 2024)}."  # noqa: E501
    )


@neg
def _refs(rng: random.Random) -> str:
    return (
        f"Order {rng.randint(10**9, 10**10 - 1)} shipped {date(rng)} with tracking {rng.choice(['1Z', 'JD'])}"
        f"{rng.randint(10**9, 10**10 - 1)}, invoice INV-{rng.randint(2019, 2025)}-{rng.randint(0, 99999):05d}, "
        f"PO Box {rng.randint(100, 9999)}, ZIP {rng.randint(10000, 99999)}."
    )


@neg
def _log_noise(rng: random.Random) -> str:
    return (
        f"{iso_ts(rng)} INFO worker[{rng.randint(300, 65000)}]: processed {rng.randint(1, 10**6)} rows in "
        f"{rng.randint(1, 9999)} ms (p99 {rng.randint(1, 999)}.{rng.randint(0, 9)} ms), heap {rng.randint(100, 4096)} MiB, "  # noqa: E501
        f"build {version(rng)}+{rng.randint(1000, 9999)}, commit {''.join(rng.choice('0123456789abcdef') for _ in range(12))}"  # noqa: E501
    )


# --------------------------------------------------------------------------- rendering


def render(template: str, rng: random.Random) -> dict:
    text: list[str] = []
    spans: list[dict] = []
    pos = 0
    for i, piece in enumerate(re.split(r"\{(\w+)\}", template)):
        if i % 2 == 0:
            value = piece
        elif piece in PII:
            kind, gen = PII[piece]
            value = gen(rng)
            spans.append({"kind": kind, "start": pos, "end": pos + len(value)})
        else:
            value = FILLERS[piece](rng)
        text.append(value)
        pos += len(value)
    return {"text": "".join(text), "spans": spans}


def build(seed: int = SEED) -> list[dict]:
    rng = random.Random(seed)
    lines = []
    for i in range(POSITIVE_LINES):
        template = POSITIVE_TEMPLATES[i % len(POSITIVE_TEMPLATES)] if i < 2 * len(POSITIVE_TEMPLATES) else None
        lines.append(render(template or rng.choice(POSITIVE_TEMPLATES), rng))
    for i in range(NEGATIVE_LINES):
        lines.append({"text": NEGATIVE_TEMPLATES[i % len(NEGATIVE_TEMPLATES)](rng), "spans": []})
    rng.shuffle(lines)
    return lines


def write_prose_sample(source: Path, out: Path, n: int = 40, per_article: int = 3) -> int:
    """The `n` SQuAD contexts richest in numbers, at most `per_article` per article, in file order."""
    contexts: dict[str, dict] = {}
    for line in source.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        contexts.setdefault(row["context_id"], row)
    ranked = sorted(contexts.values(), key=lambda r: -len(re.findall(r"\d+", r["context"])))
    taken: Counter[str] = Counter()
    chosen: set[str] = set()
    for row in ranked:
        title = row.get("meta", {}).get("title", row["context_id"])
        if taken[title] < per_article and len(chosen) < n:
            taken[title] += 1
            chosen.add(row["context_id"])
    header = {
        "_source": f"{n} number-rich contexts (at most {per_article} per article) from {source.name}: SQuAD 2.0 dev "
        "(Rajpurkar et al., 2018, https://rajpurkar.github.io/SQuAD-explorer/), via the automix shared data; "
        "id = context_id; text unchanged; written by bench/make_pii_corpus.py --prose-from",
        "_licence": "CC BY-SA 4.0",
    }
    rows = [{"id": cid, "context": contexts[cid]["context"]} for cid in contexts if cid in chosen]
    out.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in [header, *rows]), encoding="utf-8")
    return len(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--seed", type=int, default=SEED)
    ap.add_argument("--prose-from", type=Path, help="SQuAD-style JSONL to copy tests/data/prose_sample.jsonl from")
    args = ap.parse_args()
    lines = build(args.seed)
    counts = Counter(s["kind"] for line in lines for s in line["spans"])
    negatives = sum(1 for line in lines if not line["spans"])
    short = [k for k in KINDS if counts[k] < 100]
    if short or negatives < 150:
        raise SystemExit(f"too few planted items: {dict(counts)}, negatives {negatives}")
    body = "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines)
    args.out.write_text(body, encoding="utf-8")
    size = len(body.encode()) // 1024
    print(f"{args.out}: {len(lines)} lines, {negatives} negative, {size} KiB, planted {dict(counts)}")
    if args.prose_from:
        n = write_prose_sample(args.prose_from, PROSE_OUT)
        print(f"{PROSE_OUT}: {n} contexts")


if __name__ == "__main__":
    main()
