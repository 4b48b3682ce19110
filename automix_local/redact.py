"""Redaction of personal data before text leaves the machine, and restoring it in what comes back.

`[policy] redact = [...]` in models.toml lists what to redact: built-in detector names
(`BUILTIN_DETECTORS`), `"all"` for every built-in, or user regular expressions. `Redactor.redact()`
replaces each detected value with a stable placeholder such as `[EMAIL_1]`; the returned mapping
(placeholder -> original) is what `restore()` / `Restorer` use to put the originals back into a
remote model's answer, whole or streamed in token deltas.

The built-in detectors are tuned for precision on ordinary documents (years, dates, quantities,
prices, coordinates, version numbers): every detector is anchored on a shape that plain numbers do
not have (an `@`, a leading `+`, a trunk `0`, a valid NANP block, card grouping), validates check
digits where the scheme has them (Luhn, mod-97, Verhoeff, mod-11, ISO 7064, national keys), and
digit runs that would otherwise be ambiguous are taken next to a context word ("SSN", "BSN",
"Tel.", ...). Bare runs of 9 to 12 digits with no such word — a phone number written 0612345678 or
2025550173, a Dutch BSN or Canadian SIN alone, a 12-digit Maestro card — are taken only with
`bare_numbers=True` (`[policy] redact_bare_numbers`, on by default): a phone number by its national
shape, the others by their check digits; a word naming another kind of number just before the run
("Order", "Invoice", "ISBN", "Barcode", ...) still keeps it out. The detectors (patterns, context
words) are this module's; the check digits and validity rules are python-stdnum's validators. A few
regular-expression passes per call.
"""

from __future__ import annotations

import bisect
import functools
import ipaddress
import re
import unicodedata
from collections.abc import Callable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass

from stdnum import iban, luhn, numdb
from stdnum.ca import sin
from stdnum.de import idnr
from stdnum.es import dni, nie
from stdnum.fr import nir
from stdnum.gb import nhs
from stdnum.in_ import aadhaar
from stdnum.it import codicefiscale
from stdnum.nl import bsn

from .names import NameFinder, NerModel, kinds_of

__all__ = ["BARE_NUMBERS_DEFAULT", "BUILTIN_DETECTORS", "Redaction", "Redactor", "Restorer", "Span", "restore"]

BUILTIN_DETECTORS: tuple[str, ...] = ("email", "phone", "card", "iban", "ip", "national_id")

_NAME_RULE = re.compile(r"^[a-z_]+$")  # the same test config.py applies: such an entry is a name
_PLACEHOLDER_KEY = re.compile(r"^\[([A-Z][A-Z_]*?)_(\d+)\]$")
# On overlapping candidates of equal length: the more specific (validated) detector wins.
_PRIORITY = {"national_id": 0, "card": 1, "iban": 2, "ip": 3, "email": 4, "phone": 5}
_PRIORITY.update({"date_of_birth": 6, "person": 7, "location": 8, "organization": 9})  # names.py's kinds
_CUSTOM_PRIORITY = 19


@dataclass(frozen=True)
class Span:
    kind: str
    start: int
    end: int
    text: str


@dataclass
class Redaction:
    text: str  # redacted text
    mapping: dict[str, str]  # placeholder -> original
    counts: dict[str, int]  # kind -> number of spans replaced in this call


# A check takes (text, match) and returns the (start, end) to redact, or None to drop the match.
Check = Callable[[str, "re.Match[str]"], "tuple[int, int] | None"]


@dataclass(frozen=True)
class _Rule:
    kind: str
    regex: re.Pattern[str]
    check: Check
    context: re.Pattern[str] | None = None  # required keyword just before (or just after) the match
    anti: re.Pattern[str] | None = None  # keyword just before the match that vetoes it
    prefilter: str | None = None  # skip the regex when this substring is absent


# --------------------------------------------------------------------------- check digits (python-stdnum)


def _digits(s: str) -> str:
    """The decimal digits of `s` as ASCII. `\\d` also matches other scripts' digits (full-width １２, Arabic-Indic
    ١٢), which python-stdnum's validators refuse; they are the same number."""
    return "".join(c if c.isascii() else str(unicodedata.decimal(c)) for c in s if c.isdecimal())


def _compact(s: str) -> str:
    """Letters and digits only (no spaces, NBSPs or hyphens), digits as ASCII: the form the validators take."""
    return "".join(str(unicodedata.decimal(c)) if c.isdecimal() else c for c in s if c.isalnum())


# --------------------------------------------------------------------------- helpers for checks

_SEP = r"[ \u00a0.\-]"  # separators inside phone numbers
_NOT_AFTER_NUMBER = r"(?!\w|[.,/:\-]?\d)"  # not followed by more of a number (a sentence's full stop is fine)
# The same for phone numbers, which may carry a glued extension (202-555-0173x123, ...ext.12); it stays unredacted.
_NOT_AFTER_PHONE = rf"(?=(?:(?:x|ext\.?)\d{{1,6}})?{_NOT_AFTER_NUMBER})"
# Before a bare digit run (bare_numbers): not inside a longer number, a word, an amount or "#123".
_BARE_BEFORE = r"(?<![\w+.,/\-#$€£¥])(?<!\d[ .\-])"
# A word naming another kind of number just before a bare digit run vetoes it: "Order 1787978129", "ISBN 0306406152",
# "Rechnungsnummer: 4711081512". Also for ungrouped card-length runs (EAN barcodes pass Luhn one time in ten).
_BARE_ANTI = re.compile(
    r"(?i:\b(?:order|invoice|inv|receipt|ref|reference|tracking|shipment|parcel|consignment|package|booking"
    r"|reservation|confirmation|ticket|case|claim|transaction|txn|serial|s/n|item|article|sku|part|model|product"
    r"|isbn|issn|ean|upc|gtin|barcode|bar code|batch|lot|po|pnr|bestellung|bestellnummer|rechnung|rechnungsnummer"
    r"|artikel|artikelnummer|auftrag|auftragsnummer|sendungsnummer|commande|facture|référence|pedido|factura"
    r"|referencia|ordine|fattura|riferimento|bestelling|bestelnummer|factuur|factuurnummer|referentie|kenmerk)"
    r"(?:\s*(?:no\b\.?|nr\b\.?|n°|num\b\.?|number|nummer|numéro|número|numero|code|id\b|#|is\b|was\b|[:.=\-]))*\s*$)"
)


def _whole(text: str, m: re.Match[str]) -> tuple[int, int]:
    return m.span()


def _when(pred: Callable[[str], bool]) -> Check:
    def check(text: str, m: re.Match[str]) -> tuple[int, int] | None:
        return m.span() if pred(m.group()) else None

    return check


def _looks_like_date(groups: list[str]) -> bool:
    """Groups shaped dd.mm.yyyy, mm/dd/yy, yyyy-mm-dd (followed by at most a time) are a date."""
    if len(groups) < 3:
        return False
    a, b, c = (int(g) for g in groups[:3])
    la, lb, lc = (len(g) for g in groups[:3])
    if la <= 2 and lb <= 2 and (lc == 4 or (lc == 2 and len(groups) == 3)):
        return (1 <= a <= 31 and 1 <= b <= 12) or (1 <= a <= 12 and 1 <= b <= 31)
    return la == 4 and 1000 <= a <= 2100 and lb <= 2 and lc <= 2 and 1 <= b <= 12 and 1 <= c <= 31


def _is_year(g: str) -> bool:
    return len(g) == 4 and g[0] in "12" and 1000 <= int(g) <= 2100


# --------------------------------------------------------------------------- email

_EMAIL = re.compile(
    r"(?<![\w.%+\-])"
    r"[A-Za-z0-9](?:[A-Za-z0-9._%+\-]{0,63})"
    r"@(?:[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,24}"
    r"(?![\w\-@])"
)


def _email_ok(s: str) -> bool:
    local = s.split("@", 1)[0]
    return ".." not in local and not local.endswith(".")


# --------------------------------------------------------------------------- phone

_PHONE_INTL = re.compile(
    r"(?<![\w+])\+[1-9]\d{0,2}"
    rf"(?:{_SEP}?\(0\))?"
    rf"(?:{_SEP}?(?:\(\d{{1,5}}\)|\d{{1,5}}+)){{1,7}}" + _NOT_AFTER_PHONE
)
# The same with the 00 international prefix (0044 20 7946 0958); a separator after the country code is required,
# so that 00-padded references (00123456789) stay out.
_PHONE_INTL00 = re.compile(
    r"(?<![\w+.,/\-])(?<!\d )00[1-9]\d{0,2}"
    rf"(?:{_SEP}\(0\) ?|{_SEP})(?:\(\d{{1,5}}\)|\d{{1,10}}+)"
    rf"(?:{_SEP}(?:\(\d{{1,5}}\)|\d{{1,10}}+)){{0,6}}" + _NOT_AFTER_PHONE
)


def _phone_intl(text: str, m: re.Match[str]) -> tuple[int, int] | None:
    # At most 15 digits (E.164); a run that goes on (into a card number, say) is cut back to the last group
    # boundary that keeps it a phone number.
    n, kept, end = 0, 0, m.start()
    for g in re.finditer(r"\(0\)|\d+", m.group()):
        if g.group() == "(0)":
            continue
        if g.start() == 0 and g.group().startswith("00"):  # the 00 international prefix counts as the +
            n -= 2
        n += len(g.group())
        if n > 15:
            break
        kept, end = n, m.start() + g.end()
    return (m.start(), end) if kept >= 8 else None


_PHONE_NANP = re.compile(
    r"(?<![\w+.,/\-])(?<!\d )"
    r"(?:1[ .\-])?"
    r"(?:\((?P<a1>[2-9]\d\d)\)[ \u00a0]?|(?P<a2>[2-9]\d\d)(?P<s>[ \u00a0.\-]))"
    r"(?P<x>[2-9]\d\d)(?P<s2>[ \u00a0.\-])\d{4}" + _NOT_AFTER_PHONE
)


def _phone_nanp(text: str, m: re.Match[str]) -> tuple[int, int] | None:
    area = m.group("a1") or m.group("a2")
    if area[1:] == "11" or m.group("x")[1:] == "11":  # N11 service codes
        return None
    if m.group("s") is not None and m.group("s") != m.group("s2"):  # 202-555 0173: mixed, not a phone
        return None
    return m.span()


# National numbers with a trunk 0: 020 7946 0958, 07700 900123, 01 23 45 67 89, (030) 901820, 020-123 4567,
# (0114)4960454, (036)-6252378
_PHONE_NAT0 = re.compile(
    r"(?<![\w+.,/\-])(?<!\d )"
    r"(?P<area>\(0[1-9]\d{0,3}\)|0[1-9]\d{0,3})"
    rf"(?P<sep>{_SEP}|/|(?<=\)))\d{{2,8}}"  # German style 030/901820: a slash; after a bracket: nothing
    rf"(?P<rest>(?:{_SEP}\d{{2,8}}){{0,3}})(?!{_SEP}\d)" + _NOT_AFTER_PHONE
)


def _phone_nat0(text: str, m: re.Match[str]) -> tuple[int, int] | None:
    if m.group("area").startswith("(") and m.group("sep") not in (" ", "\u00a0", "", "-"):
        return None
    if len(set(re.findall(_SEP, m.group("rest")))) > 1:  # after the area code one separator style throughout
        return None
    groups = re.findall(r"\d+", m.group())
    if len(groups[1]) < 3 and any(len(g) != 2 for g in groups):  # 012-00-4567; but 01 23 45 67 89 is French
        return None
    if len(groups) == 2 and len(groups[0]) == 5 and len(groups[1]) == 4 and m.group("sep") == "-":
        return None  # a US ZIP+4 code (MA 02110-1301)
    if all(len(g) == 2 for g in groups) and re.search(r"[0-9A-Fa-f]{2} $", text[max(0, m.start() - 3) : m.start()]):
        return None  # inside a hex dump: <Buffer a0 8b 01 00 00 00 50>
    n = sum(len(g) for g in groups)
    if not 9 <= n <= 12 or (m.group("sep") != " " and _looks_like_date(groups)):
        return None
    return m.span()


# bare_numbers: a run of digits alone in the shape of a national number (no label word needed): a trunk 0 and 8-10
# more digits (0612345678 NL/FR, 07700900123 UK, 03012345678 DE, 0212345678 IT, 02263701486 IN), ten digits not
# starting with 0 (2025550173 NANP, 9876543210 India, 3123456789 Italian mobile), nine starting with 3 or 6-9
# (312345678 Italian mobile, 612345678 / 912345678 Spain).
_PHONE_BARE = re.compile(_BARE_BEFORE + r"(?:0[1-9]\d{7,9}|[1-9]\d{9}|[36-9]\d{8})" + _NOT_AFTER_PHONE)


def _phone_bare(text: str, m: re.Match[str]) -> tuple[int, int] | None:
    s = m.group()
    if s.endswith("00000") or len(set(s)) <= 2:  # 1000000000, 3333333333: an amount or a filler, not a subscriber
        return None
    return m.span()


# Any digit run (7-15 digits, optional single separators) right after a phone keyword: "Tel. 5550173".
_PHONE_CTX_RUN = re.compile(
    r"(?<![\w+.,/\-])\+?(?:\(\d{1,5}\)|\d{1,5})(?:[ \u00a0.\-]?(?:\(\d{1,5}\)|\d{1,5}+)){1,6}" + _NOT_AFTER_PHONE
)
_PHONE_CONTEXT = re.compile(
    r"(?:\b(?:[Tt]el|TEL|[Tt]elephone|[Pp]hone|PHONE|[Pp]h|[Mm]obile|[Mm]ob|[Cc]ell|[Cc]ellphone|[Ff]ax|[Cc]all"
    r"|[Rr]ing|[Tt]ext|SMS|[Ww]hats[Aa]pp|[Hh]otline|[Hh]elpline|[Ll]andline|[Dd]ial|[Cc]ontact number"
    r"|[Tt]éléphone|[Tt]él|[Tt]elefon|[Tt]elefonnummer|[Tt]eléfono|[Tt]elefono|[Tt]elefoon|[Tt]elefoonnummer|[Mm]obiel"
    r"|[Hh]andy|[Hh]andynummer|[Pp]ortable|[Cc]ellulare|[Mm]óvil)\b|\b[TMF]\b)"
    r"(?:[\s:.#=()\-]|\b(?:no|nr|num|number|on|at|is|me|us|him|her|them|to|or)\b){0,8}$"
)


def _phone_ctx(text: str, m: re.Match[str]) -> tuple[int, int] | None:
    s = m.group()
    groups = re.findall(r"\d+", s)
    n = sum(len(g) for g in groups)
    if not 7 <= n <= 15 or _looks_like_date(groups) or all(_is_year(g) for g in groups):
        return None
    if re.fullmatch(r"\d{1,3}(?:[.,]\d{3})+", s):  # 1.234.567: a count, not a phone
        return None
    return m.span()


# --------------------------------------------------------------------------- payment cards

_CARD_RUN = re.compile(r"(?<![\w.,+\-])\d{1,19}(?:[ \-]\d{1,19}){0,7}(?!\w|[.,]\d)")
_IBAN_HEAD = re.compile(r"(?<![A-Za-z0-9])[A-Z]{2}\d{2}(?: [A-Z0-9]{4})* $")
_CARD_GROUPINGS = {
    (4, 4, 4, 4),
    (4, 4, 4),  # a 12-digit Maestro
    (4, 4, 4, 4, 3),
    (4, 4, 4, 4, 2),
    (4, 4, 4, 4, 1),
    (4, 6, 5),
    (4, 6, 4),
    (4, 4, 4, 3),
    (4, 4, 4, 2),
    (4, 4, 4, 1),
    (4, 4, 5),
}


def _card_prefix_ok(d: str) -> bool:
    n = len(d)
    p2, p3, p4 = int(d[:2]), int(d[:3]), int(d[:4])
    if d[0] == "4":  # Visa
        return n in (13, 16, 19)
    if 51 <= p2 <= 55 or 2221 <= p4 <= 2720:  # Mastercard
        return n == 16
    if p2 in (34, 37):  # American Express
        return n == 15
    if 2200 <= p4 <= 2204:  # Mir
        return n in (16, 17, 18, 19)
    if p4 == 6011 or 644 <= p3 <= 649 or p2 == 65 or p2 == 62:  # Discover, UnionPay
        return 16 <= n <= 19
    if 3528 <= p4 <= 3589:  # JCB
        return 16 <= n <= 19
    if 300 <= p3 <= 305 or p2 in (36, 38, 39):  # Diners Club
        return 14 <= n <= 19
    if p2 == 50 or 56 <= p2 <= 69:  # Maestro
        return 12 <= n <= 19
    return False


_CARD_CONTEXT = re.compile(
    r"(?i)\b(?:card|maestro|visa|mastercard|amex|karte|kreditkarte|bankkarte|carte|tarjeta|carta|kaart|pinpas"
    r"|bankpas)\b(?:\s*(?:no\.?|nr\.?|number|nummer|numéro|número|numero|#))?(?:\s+(?:is|was|ist))?[\s:#.=\-]{0,6}$"
)


def _card_check(bare_numbers: bool) -> Check:
    def check(text: str, m: re.Match[str]) -> tuple[int, int] | None:
        if _IBAN_HEAD.search(text, max(0, m.start() - 40), m.start()):
            return None  # the body of an IBAN-shaped number (one whose checksum failed, or the IBAN detector is off)
        parts = [(g.start(), g.end(), g.group()) for g in re.finditer(r"\d+", m.group())]
        if len(parts) > 1 and len(set(re.findall(r"[ \-]", m.group()))) > 1:
            return None  # mixed separators
        sizes = [len(p[2]) for p in parts]
        best: tuple[int, int] | None = None
        for i in range(len(parts)):  # the longest window of groups that is a card; groups must follow a card grouping
            total = 0
            for j in range(i, len(parts)):
                total += sizes[j]
                if total > 19:
                    break
                if total < 12 or (j > i and tuple(sizes[i : j + 1]) not in _CARD_GROUPINGS):
                    continue
                if total == 12 and (i > 0 or j < len(parts) - 1):
                    continue  # 12 digits only as the whole run: 4 groups of 4 hold three-group windows
                start = m.start() + parts[i][0]
                if j == i:  # one ungrouped run: not after "Order", "ISBN", "Barcode", ...
                    if _in_context(text, start, _BARE_ANTI):
                        continue
                    if total == 12 and not bare_numbers and not _in_context(text, start, _CARD_CONTEXT):
                        continue  # a bare 12-digit Maestro needs bare_numbers or a card word
                d = _digits("".join(p[2] for p in parts[i : j + 1]))
                if _card_prefix_ok(d) and luhn.is_valid(d):
                    span = (start, m.start() + parts[j][1])
                    if best is None or span[1] - span[0] > best[1] - best[0]:
                        best = span
        return best

    return check


# --------------------------------------------------------------------------- IBAN

_IBAN_REGISTRY = numdb.get("iban")  # python-stdnum's copy of the SWIFT IBAN registry


@functools.cache
def _iban_length(country: str) -> int | None:
    """The length of a country's IBANs, from its BBAN structure in the registry ("8!n10!n": 4 + 18), or None."""
    bban = _IBAN_REGISTRY.info(country)[0][1].get("bban")
    return 4 + sum(int(n) for n in re.findall(r"\d+", bban)) if bban else None


_IBAN = re.compile(r"(?<![A-Za-z0-9])[A-Z]{2}\d{2}(?:[ \u00a0]?[A-Z0-9]{4}){2,7}(?:[ \u00a0]?[A-Z0-9]{1,4})?")


def _iban(text: str, m: re.Match[str]) -> tuple[int, int] | None:
    s = m.group()
    length = _iban_length(s[:2])
    if length is None:
        return None
    # Cut after the country's length (the regex may have run on into a following word or number).
    count = 0
    for k, ch in enumerate(s):
        if ch.isalnum():
            count += 1
            if count == length:
                end = m.start() + k + 1
                break
    else:
        return None
    if end < len(text) and text[end].isalnum():
        return None
    # mod 97 and the country's BBAN structure; not the national checks of check_country (Belgian ones need the bank
    # in stdnum's bank list, which ages: a real IBAN of a newer bank would go out unredacted).
    return (m.start(), end) if iban.is_valid(_compact(text[m.start() : end]), check_country=False) else None


# --------------------------------------------------------------------------- IP addresses

_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
_IPV4 = re.compile(rf"(?<![\w.]){_OCTET}(?:\.{_OCTET}){{3}}(?!\w|\.\d|-[A-Za-z])")
_IP_ANTI = re.compile(
    r"(?i)(?:\b(?:version|ver|v|release|rel|build|firmware|fw|rev|revision|update|upgrade|downgrade|bump|patch|"
    r"section|sect|sec|"
    r"chapter|ch|clause|para|paragraph|article|art|rule|step|figure|fig|table|item|no|isbn|oid)\.?|§|"
    r"[<>~!=]=|[<>^~]|\w@|\b(?:upgrade|upgraded|update|updated|downgrade|bump|bumped|patch|pin|pinned|move|moved)\b"
    r"[^.\n]{0,25}\bto)\s*$"  # "lz4>=1.7.4.2", "pkg==1.2.0.2", "upgrade V8 to 2.2.4.2" are versions
)


def _ipv4(text: str, m: re.Match[str]) -> tuple[int, int] | None:
    # Loopback, 0.0.0.0 and netmasks (255.255.255.0) identify no one; keep them for technical answers.
    first = m.group().split(".", 1)[0]
    return None if first in ("0", "127", "255") else m.span()


_IPV6 = re.compile(r"(?<![\w:.])(?=[0-9A-Fa-f]{0,4}:[0-9A-Fa-f]{0,4}:)[0-9A-Fa-f:]{2,39}(?:\.\d{1,3}){0,3}(?![\w:])")


def _ipv6(text: str, m: re.Match[str]) -> tuple[int, int] | None:
    s = m.group()
    start, end = m.span()
    try:
        ipaddress.IPv6Address(s)
    except ValueError:
        if s.endswith(":") and not s.endswith("::"):
            s, end = s[:-1], end - 1
            try:
                ipaddress.IPv6Address(s)
            except ValueError:
                return None
        else:
            return None
    body, _, tail = s.rpartition(":") if "." in s else (s, "", "")
    groups = [g for g in body.split(":") if g] + (["v4", "v4"] if tail else [])
    if len(groups) < 2 or not any(len(g) >= 2 for g in groups):  # "::1", "a::b", 1:2:3:4:5:6:7:8
        return None
    if len(groups) == 2 and max(len(g) for g in groups) < 4:  # "ab::cd" in prose; real ones read fe80::1
        return None
    if s.lower().startswith("ffff:ffff:"):  # a netmask
        return None
    return start, end


# --------------------------------------------------------------------------- national IDs

_ID_CONTEXT_END = r"(?:\s+(?:is|was|ist))?[\s:#.=\-]{0,6}$"  # "SSN: ", "BSN nr. ", "my SIN is "
_SSN_DASH = re.compile(r"(?<![\w\-])(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}(?!\w|-\d)")
_SSN_CTX_RUN = re.compile(r"(?<![\w\-])(?!000|666|9\d\d)\d{3}([ .]?)(?!00)\d{2}\1(?!0000)\d{4}" + _NOT_AFTER_NUMBER)
_SSN_CONTEXT = re.compile(
    r"(?:\bSSN|\bSS#|\b[Ss]ocial [Ss]ecurity(?: [Nn]umber| [Nn]o\.?| #)?|\bSoc\.? ?Sec\.?)" + _ID_CONTEXT_END
)
_NINO = re.compile(
    r"(?<![A-Za-z0-9])(?!BG|GB|KN|NK|NT|TN|ZZ)[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z]"
    r"(?P<s>[ \u00a0]?)\d{2}(?P=s)\d{2}(?P=s)\d{2}(?P=s)[A-D](?![A-Za-z0-9])"
)
_NIR = re.compile(
    r"(?<![\w.\-])[12](?P<s>[ \u00a0]?)\d{2}(?P=s)(?:0[1-9]|1[0-2]|[2-9]\d)(?P=s)(?:\d{2}|2[ABab])(?P=s)"
    r"\d{3}(?P=s)\d{3}(?P=s)?\d{2}" + _NOT_AFTER_NUMBER
)
_DNI = re.compile(r"(?<![\w\-.])(?:\d{8}|[XYZ][ \-]?\d{7})[ \-]?[A-HJ-NP-TV-Z](?![\w\-])")
_CF = re.compile(r"(?<![\w])[A-Z]{6}[\dLMNP-V]{2}[A-EHLMPR-T][\dLMNP-V]{2}[A-Z][\dLMNP-V]{3}[A-Z](?![\w])")
_AADHAAR_GROUPED = re.compile(r"(?<![\w\-.,])(?<!\d )[2-9]\d{3}(?P<s>[ \-])\d{4}(?P=s)\d{4}(?!\w|[ \-.,]?\d)")
_AADHAAR_CTX_RUN = re.compile(r"(?<![\w\-.,])[2-9]\d{11}" + _NOT_AFTER_NUMBER)
_AADHAAR_CONTEXT = re.compile(r"(?i)\b(?:aadhaa?r|uidai)\b(?:\s*(?:no\.?|number|card|#))?" + _ID_CONTEXT_END)
_NINE_CTX_RUN = re.compile(r"(?<![\w\-.,])(?:\d{9}|\d{3}([ .\-])\d{3}\1\d{3}|\d{4}\.\d{2}\.\d{3})" + _NOT_AFTER_NUMBER)
# bare_numbers: the same shapes with no label word (a BSN or SIN alone), by their check digits.
_NINE_BARE = re.compile(
    _BARE_BEFORE + r"(?:\d{9}|\d{3}([ .\-])\d{3}\1\d{3}|\d{4}\.\d{2}\.\d{3})(?![ \u00a0.\-]\d)" + _NOT_AFTER_NUMBER
)
# ... not after a word naming another kind of number, nor after a phone word ("Phone: 111222333" is a phone number).
_NINE_BARE_ANTI = re.compile(f"{_BARE_ANTI.pattern}|{_PHONE_CONTEXT.pattern}")
_BSN_CONTEXT = re.compile(
    r"(?i)\b(?:bsn|burgerservicenummer|sofinummer|sofi-nummer)\b(?:\s*(?:nr\.?|nummer|number))?" + _ID_CONTEXT_END
)
_SIN_CONTEXT = re.compile(
    r"(?:\bSIN|\b[Ss]ocial [Ii]nsurance(?: [Nn]umber| [Nn]o\.?)?|\bNAS)(?:\s*#)?" + _ID_CONTEXT_END
)
_NHS_RUN = re.compile(r"(?<![\w\-.,])\d{3}([ \-]?)\d{3}\1\d{4}" + _NOT_AFTER_NUMBER)
_NHS_CONTEXT = re.compile(r"\bNHS(?: [Nn]o\.?| [Nn]umber| #)?" + _ID_CONTEXT_END)
_STEUER_RUN = re.compile(r"(?<![\w\-.,])[1-9]\d(?P<s>[ \u00a0]?)\d{3}(?P=s)\d{3}(?P=s)\d{3}" + _NOT_AFTER_NUMBER)
_STEUER_CONTEXT = re.compile(
    r"(?i)(?:steuer[\s\-]?id(?:entifikationsnummer)?|identifikationsnummer|\bidnr\.?|\btax[\s\-]id(?:entification)?"
    r"(?: number| no\.?)?|\bTIN)(?:\s*(?:nr\.?|nummer|number))?" + _ID_CONTEXT_END
)


# --------------------------------------------------------------------------- the rule table


def _builtin_rules(kind: str, bare_numbers: bool) -> list[_Rule]:
    if kind == "email":
        return [_Rule("email", _EMAIL, _when(_email_ok), prefilter="@")]
    if kind == "phone":
        return [
            _Rule("phone", _PHONE_INTL, _phone_intl, prefilter="+"),
            _Rule("phone", _PHONE_INTL00, _phone_intl, prefilter="00"),
            _Rule("phone", _PHONE_NANP, _phone_nanp),
            _Rule("phone", _PHONE_NAT0, _phone_nat0, prefilter="0"),
            _Rule("phone", _PHONE_CTX_RUN, _phone_ctx, context=_PHONE_CONTEXT),
            *([_Rule("phone", _PHONE_BARE, _phone_bare, anti=_BARE_ANTI)] if bare_numbers else []),
        ]
    if kind == "card":
        return [_Rule("card", _CARD_RUN, _card_check(bare_numbers))]
    if kind == "iban":
        return [_Rule("iban", _IBAN, _iban)]
    if kind == "ip":
        return [
            _Rule("ip", _IPV4, _ipv4, anti=_IP_ANTI, prefilter="."),
            _Rule("ip", _IPV6, _ipv6, prefilter=":"),
        ]
    if kind == "national_id":

        def digits_when(pred: Callable[[str], bool]) -> Check:
            return _when(lambda s: pred(_digits(s)))

        def compact_when(pred: Callable[[str], bool]) -> Check:
            return _when(lambda s: pred(_compact(s)))

        return [
            _Rule("national_id", _SSN_DASH, _whole, prefilter="-"),
            # The SSA rules (no area 000/666/9xx, group 00, serial 0000) are in both SSN patterns. Not stdnum.us.ssn:
            # it also refuses three published numbers (078-05-1120, 457-55-5462, ...) that real people have used.
            _Rule("national_id", _SSN_CTX_RUN, _whole, context=_SSN_CONTEXT),
            _Rule("national_id", _NINO, _whole),
            _Rule("national_id", _NIR, compact_when(nir.is_valid)),
            _Rule("national_id", _DNI, compact_when(lambda c: dni.is_valid(c) or nie.is_valid(c))),
            _Rule("national_id", _CF, compact_when(codicefiscale.is_valid)),
            _Rule("national_id", _AADHAAR_GROUPED, digits_when(aadhaar.is_valid)),
            _Rule("national_id", _AADHAAR_CTX_RUN, digits_when(aadhaar.is_valid), context=_AADHAAR_CONTEXT),
            _Rule("national_id", _NINE_CTX_RUN, digits_when(bsn.is_valid), context=_BSN_CONTEXT),
            _Rule("national_id", _NINE_CTX_RUN, digits_when(sin.is_valid), context=_SIN_CONTEXT),
            *(
                [
                    _Rule("national_id", _NINE_BARE, digits_when(bsn.is_valid), anti=_NINE_BARE_ANTI),
                    _Rule("national_id", _NINE_BARE, digits_when(sin.is_valid), anti=_NINE_BARE_ANTI),
                ]
                if bare_numbers
                else []
            ),
            _Rule("national_id", _NHS_RUN, digits_when(nhs.is_valid), context=_NHS_CONTEXT),
            _Rule("national_id", _STEUER_RUN, digits_when(idnr.is_valid), context=_STEUER_CONTEXT),
        ]
    raise AssertionError(kind)


_CONTEXT_BEFORE = 48


def _in_context(text: str, start: int, pattern: re.Pattern[str]) -> bool:
    return pattern.search(text, max(0, start - _CONTEXT_BEFORE), start) is not None


# --------------------------------------------------------------------------- placeholders


def _label(kind: str) -> str:
    return kind.upper()


def _norm(label: str, value: str) -> str:
    """The identity of a value for placeholder reuse: the same e-mail in two cases, or the same IBAN with
    and without spaces, is the same person's data and gets the same placeholder."""
    if label == "EMAIL":
        return value.lower()
    if label == "PHONE":
        return ("+" if value.lstrip().startswith("+") else "") + _digits(value)
    if label in ("PERSON", "LOCATION", "ORGANIZATION"):
        return " ".join(value.casefold().replace(".", " ").split())  # "Dr. Ann  Lee" and "dr ann lee"
    if label in ("CARD", "IBAN", "NATIONAL_ID"):
        return "".join(c for c in value if c.isalnum()).upper()
    if label == "IP":
        try:
            return str(ipaddress.ip_address(value))
        except ValueError:
            return value.lower()
    return value


BARE_NUMBERS_DEFAULT = True  # `[policy] redact_bare_numbers`


class Redactor:
    """Finds personal data per the `[policy] redact` rules and replaces it with stable placeholders.

    `bare_numbers` (`[policy] redact_bare_numbers`): also take digit runs with no label word that have the shape of a
    phone number, a BSN or SIN, or a 12-digit Maestro card (see the module docstring).
    """

    def __init__(
        self, rules: Sequence[str], bare_numbers: bool = BARE_NUMBERS_DEFAULT, ner: NerModel | None = None
    ) -> None:
        """``ner``: the NER model (names.py), needed when the rules ask for person, location or organization
        (``names``); without it those raise NerUnavailable, so nothing is sent under a policy that cannot be met."""
        kinds: list[str] = []
        self._custom: list[re.Pattern[str]] = []
        named: list[str] = []  # kinds names.py finds
        for rule in rules:
            if rule == "all":
                kinds.extend(k for k in BUILTIN_DETECTORS if k not in kinds)
            elif kinds_of(rule):
                named.extend(k for k in kinds_of(rule) if k not in named)
            elif _NAME_RULE.match(rule):
                if rule not in BUILTIN_DETECTORS:
                    raise ValueError(
                        f"unknown redaction detector {rule!r}; valid names: all, {', '.join(BUILTIN_DETECTORS)} "
                        "(anything else is taken as a regular expression)"
                    )
                if rule not in kinds:
                    kinds.append(rule)
            else:
                self._custom.append(re.compile(rule))
        self._names = NameFinder(named, ner) if named else None
        self.kinds: tuple[str, ...] = (*kinds, *named)
        self.bare_numbers = bare_numbers
        self._rules = [r for k in kinds for r in _builtin_rules(k, bare_numbers)]

    def find(self, text: str) -> list[Span]:
        """Non-overlapping spans sorted by start; where candidates overlap the longer one wins."""
        cands: list[tuple[int, int, int, str]] = []  # (start, end, priority, kind)
        for rule in self._rules:
            if rule.prefilter is not None and rule.prefilter not in text:
                continue
            for m in rule.regex.finditer(text):
                span = rule.check(text, m)
                if span is None or span[1] <= span[0]:
                    continue
                if rule.context is not None and not _in_context(text, span[0], rule.context):
                    continue
                if rule.anti is not None and _in_context(text, span[0], rule.anti):
                    continue
                cands.append((span[0], span[1], _PRIORITY[rule.kind], rule.kind))
        if self._names is not None:
            cands += [(f.start, f.end, _PRIORITY[f.kind], f.kind) for f in self._names.find(text)]
        for pattern in self._custom:
            for m in pattern.finditer(text):
                named = [(name, m.span(name)) for name, value in m.groupdict().items() if value]
                if not named:
                    named = [("", m.span())]
                for name, (s, e) in named:
                    if e > s:
                        kind = name.upper() if name.isascii() and name.isalpha() else "custom"
                        cands.append((s, e, _CUSTOM_PRIORITY, kind))
        cands.sort(key=lambda c: (c[0] - c[1], c[2], c[0]))
        starts: list[int] = []
        ends: list[int] = []
        kept: list[tuple[int, int, str]] = []
        for s, e, _, kind in cands:
            i = bisect.bisect_left(starts, s)
            if i > 0 and ends[i - 1] > s:
                continue
            if i < len(starts) and starts[i] < e:
                continue
            starts.insert(i, s)
            ends.insert(i, e)
            kept.insert(i, (s, e, kind))
        return [Span(kind, s, e, text[s:e]) for s, e, kind in kept]

    def redact(self, text: str, mapping: Mapping[str, str] | None = None) -> Redaction:
        """Replace every span with its placeholder.

        Pass the mapping of an earlier call (e.g. the question's) to share numbering with it: a mutable
        mapping is extended in place (and is the returned `mapping` when it is a dict), a read-only one is
        copied first.
        """
        if isinstance(mapping, dict):
            target: dict[str, str] = mapping
        else:
            target = dict(mapping or {})
        known: dict[tuple[str, str], str] = {}
        next_number: dict[str, int] = {}
        for taken, original in target.items():
            parsed = _PLACEHOLDER_KEY.match(taken)
            if parsed:
                label, number = parsed.group(1), int(parsed.group(2))
                known.setdefault((label, _norm(label, original)), taken)
                next_number[label] = max(next_number.get(label, 1), number + 1)
        out: list[str] = []
        counts: dict[str, int] = {}
        pos = 0
        for span in self.find(text):
            label = _label(span.kind)
            key = (label, _norm(label, span.text))
            placeholder = known.get(key)
            if placeholder is None:
                number = next_number.get(label, 1)
                next_number[label] = number + 1
                placeholder = f"[{label}_{number}]"
                known[key] = placeholder
                target[placeholder] = span.text
            out.append(text[pos : span.start])
            out.append(placeholder)
            pos = span.end
            counts[span.kind] = counts.get(span.kind, 0) + 1
        out.append(text[pos:])
        if isinstance(mapping, MutableMapping) and mapping is not target:
            mapping.update(target)
        return Redaction("".join(out), target, counts)


# --------------------------------------------------------------------------- restoring


def _lookup(mapping: Mapping[str, str]) -> tuple[dict[tuple[str, int], str], dict[str, str], list[str]]:
    by_label: dict[tuple[str, int], str] = {}
    other: dict[str, str] = {}
    for placeholder, original in mapping.items():
        parsed = _PLACEHOLDER_KEY.match(placeholder)
        if parsed:
            by_label[(parsed.group(1), int(parsed.group(2)))] = original
        else:
            other[placeholder] = original
    labels = sorted({label for label, _ in by_label}, key=len, reverse=True)
    return by_label, other, labels


def _restore_regex(labels: list[str], other: Mapping[str, str]) -> re.Pattern[str] | None:
    alts = []
    if labels:
        # [EMAIL_1] exactly, and what a model may echo: [email_1], [Email 1], [ EMAIL-1 ], markdown \[EMAIL\_1\],
        # or the bare token EMAIL_1.
        lab = "|".join(r"\\?[_\- ]".join(re.escape(p) for p in label.split("_")) for label in labels)
        bare = "|".join(re.escape(label) for label in labels)
        alts.append(rf"\\?\[[ ]?(?P<label>(?i:{lab}))\\?[_\- ](?P<num>\d+)[ ]?\\?\]")
        alts.append(rf"(?<![A-Za-z0-9_])(?P<bare>{bare})_(?P<bnum>\d+)(?![A-Za-z0-9_])")
    if other:
        alts.append("|".join(re.escape(k) for k in sorted(other, key=len, reverse=True)))
    return re.compile("|".join(f"(?:{a})" for a in alts)) if alts else None


def _canonical_label(raw: str) -> str:
    return re.sub(r"\\?[_\- ]", "_", raw).upper()


class _Restore:
    def __init__(self, mapping: Mapping[str, str]) -> None:
        self.by_label, self.other, self.labels = _lookup(mapping)
        self.regex = _restore_regex(self.labels, self.other)

    def __call__(self, text: str) -> str:
        if self.regex is None:
            return text

        def sub(m: re.Match[str]) -> str:
            groups = m.groupdict()
            if groups.get("label"):
                key = (_canonical_label(groups["label"]), int(groups["num"]))
            elif groups.get("bare"):
                key = (groups["bare"], int(groups["bnum"]))
            else:
                return self.other.get(m.group(), m.group())
            return self.by_label.get(key, m.group())

        return self.regex.sub(sub, text)


def restore(text: str, mapping: Mapping[str, str]) -> str:
    """Put the originals back into a (remote) answer; placeholders not in `mapping` are left as they are."""
    return _Restore(mapping)(text)


_HOLD_MAX = 40  # longest tail held back while it may still become a placeholder


class Restorer:
    """Streaming `restore()`: feed token deltas, get back text that is safe to show now.

    A tail that may still turn into a placeholder (`[EMA`, `[EMAIL_1`, `EMAIL_1` which may become
    `EMAIL_12`, a lone backslash) is held until the next delta decides it, or until `flush()`.
    """

    def __init__(self, mapping: Mapping[str, str]) -> None:
        self._restore = _Restore(mapping)
        self._buffer = ""
        # "x" when the text already emitted ends in a word character: EMAIL_1 straight after it is not a token.
        self._glue = ""
        bare = "|".join(re.escape(label) for label in self._restore.labels)
        self._bare_tail = re.compile(rf"(?<![A-Za-z0-9_])(?:{bare})_\d*$") if bare else None
        self._prefixes = {label[:i] for label in self._restore.labels for i in range(1, len(label) + 1)}
        self._other_prefixes = {k[:i] for k in self._restore.other for i in range(1, len(k))}

    def _hold_from(self, buf: str) -> int:
        hold = len(buf)
        bracket = buf.rfind("[")
        if bracket != -1 and "]" not in buf[bracket:] and len(buf) - bracket <= _HOLD_MAX:
            if re.fullmatch(r"\[[ A-Za-z0-9_\-\\]*", buf[bracket:]):
                hold = bracket - 1 if bracket > 0 and buf[bracket - 1] == "\\" else bracket
        if buf.endswith("\\"):
            hold = min(hold, len(buf) - 1)
        if self._bare_tail is not None:
            m = self._bare_tail.search(buf)
            if m:
                hold = min(hold, m.start())
            else:
                word = re.search(r"(?<![A-Za-z0-9_])[A-Z][A-Z_]*$", buf)
                if word and word.group() in self._prefixes:
                    hold = min(hold, word.start())
        for k in range(1, min(len(buf), _HOLD_MAX) + 1):
            if buf[-k:] in self._other_prefixes:
                hold = min(hold, len(buf) - k)
        return hold

    def _emit(self, ready: str) -> str:
        out = self._restore(self._glue + ready)[len(self._glue) :]
        if ready:
            self._glue = "x" if ready[-1].isalnum() or ready[-1] == "_" else ""
        return out

    def feed(self, delta: str) -> str:
        self._buffer += delta
        cut = self._hold_from(self._buffer)
        ready, self._buffer = self._buffer[:cut], self._buffer[cut:]
        return self._emit(ready)

    def flush(self) -> str:
        rest, self._buffer = self._buffer, ""
        return self._emit(rest)
