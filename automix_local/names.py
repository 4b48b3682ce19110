"""People, places, organisations and dates of birth: the redaction kinds that need more than a pattern.

`[policy] redact = ["names"]` (or `person`, `location`, `organization`) asks for them. Three layers, each
for what the one before misses (measured in docs/privacy.md, `bench/pii_faker.py`):

1. **A named-entity model**, spaCy's `en_core_web_md` pipeline (tok2vec + ner only), loaded from the wheel
   `models pull ner` fetched and checked by SHA-256 (`[ner]` in models.toml). PERSON → person; GPE, LOC, FAC
   → location; ORG → organization. Why spaCy and this model: DEVELOPERS.md "Names and places".
2. **Rules the model does not need**: a name after a title or a label word ("Dr. …", "Patient: …", "Dear …"),
   a street address (house number and a street word, in the languages of the measured locales), a postal
   code with its town; an entity is widened over adjacent capitalised words and name particles ("van der").
3. **Consistency**: once a person is found, every other mention of the name, or of its surname, in the same
   text is redacted too — a text that says "Maria Gonzalez" once and "Ms Gonzalez" later must not send the
   second.

`date_of_birth` is a date next to a birth label ("DOB", "born on", "date of birth", "geboren am", "né le",
"fecha de nacimiento", ...): a rule alone, no model.

The model is optional: without it, `NameFinder` cannot be made (`NerUnavailable`, one line saying how to
get it), and `policy.py` refuses to send anything under a policy that asks for these kinds.
"""

from __future__ import annotations

import functools
import re
import shutil
import threading
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import AutomixError

NER_KINDS: tuple[str, ...] = ("person", "location", "organization")  # need the model
NAME_KINDS: tuple[str, ...] = (*NER_KINDS, "date_of_birth")
SHORTHAND = "names"  # redact = ["names"]: every kind of NAME_KINDS
_LABELS = {"PERSON": "person", "GPE": "location", "LOC": "location", "FAC": "location", "ORG": "organization"}


class NerUnavailable(AutomixError):
    """The NER model (or spaCy) is not there: the kinds that need it cannot be honoured."""

    api_code = "ner_unavailable"


def needs_model(rules: Iterable[str]) -> bool:
    """Whether `[policy] redact` asks for a kind the NER model finds."""
    return any(r == SHORTHAND or r in NER_KINDS for r in rules)


# --------------------------------------------------------------------------- the model


def pipeline_dir(model_file: Path, cache_root: Path) -> Path:
    """The spaCy pipeline directory of ``model_file``: the directory itself, or the one inside a wheel
    (extracted once under ``cache_root``, named by the file's size and mtime so a new file is extracted anew).

    A pipeline directory is the one holding ``config.cfg``, ``meta.json`` and ``ner/``.
    """
    if model_file.is_dir():
        return model_file
    try:
        zf = zipfile.ZipFile(model_file)
    except (OSError, zipfile.BadZipFile) as exc:
        raise NerUnavailable(f"the NER model {model_file} is not a wheel or zip archive ({exc})") from None
    with zf:
        names = zf.namelist()
        heads = [n[: -len("config.cfg")] for n in names if n.endswith("config.cfg")]
        heads = [h for h in heads if f"{h}meta.json" in names and any(n.startswith(f"{h}ner/") for n in names)]
        if not heads:
            raise NerUnavailable(f"the NER model {model_file} holds no spaCy pipeline with an ner component")
        head = min(heads, key=len)
        st = model_file.stat()
        target = cache_root / "ner" / f"{model_file.name}-{st.st_size}-{st.st_mtime_ns}"
        if (target / "config.cfg").is_file():
            return target
        tmp = target.with_name(target.name + ".part")
        shutil.rmtree(tmp, ignore_errors=True)
        for name in names:
            if not name.startswith(head) or name.endswith("/"):
                continue
            rel = Path(name[len(head) :])
            if rel.is_absolute() or ".." in rel.parts:
                continue  # never write outside the target
            out = tmp / rel
            out.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(name) as src, out.open("wb") as dst:
                shutil.copyfileobj(src, dst)
        shutil.rmtree(target, ignore_errors=True)
        tmp.rename(target)
        return target


class NerModel:
    """A loaded spaCy pipeline, reduced to what finding entities needs. Thread-safe (one call at a time)."""

    def __init__(self, directory: Path) -> None:
        try:
            import spacy
        except ImportError:
            raise NerUnavailable(
                "the person/location/organization kinds need spaCy: pip install 'spacy>=3.8,<3.9'"
            ) from None
        try:
            self._nlp: Any = spacy.load(
                directory, exclude=["parser", "tagger", "lemmatizer", "attribute_ruler", "senter"]
            )
        except (OSError, ValueError) as exc:
            raise NerUnavailable(f"the NER model at {directory} does not load: {exc}") from None
        self._lock = threading.Lock()
        self.name = f"{self._nlp.meta.get('lang', '?')}_{self._nlp.meta.get('name', '?')}"
        self.version = str(self._nlp.meta.get("version", "?"))

    def entities(self, text: str) -> list[tuple[str, int, int]]:
        """(kind, start, end) of each entity the model finds, kinds as in NER_KINDS."""
        if not text.strip():
            return []
        with self._lock:
            doc = self._nlp(text)
        return [(_LABELS[e.label_], e.start_char, e.end_char) for e in doc.ents if e.label_ in _LABELS]


_loaded: dict[tuple[str, int, int], NerModel] = {}
_loading = threading.Lock()


def load(model_file: Path, cache_root: Path) -> NerModel:
    """The NER model of ``model_file`` (a wheel or a pipeline directory), loaded once per process."""
    st = model_file.stat()
    key = (str(model_file.resolve()), st.st_size, st.st_mtime_ns)
    with _loading:
        model = _loaded.get(key)
        if model is None:
            model = _loaded[key] = NerModel(pipeline_dir(model_file, cache_root))
        return model


# --------------------------------------------------------------------------- rules around the model

_UPPER = r"[A-ZÀ-ÖØ-ÞŁŚŻŹĆŃŠŽČŘĎŤŇ]"
_WORD = rf"{_UPPER}(?![.][A-Za-z])[\w'’\-]*\.?"  # O'Neil, Jean-Luc, Müller; not the B. of B.Sc.
_PARTICLE = r"(?:van|von|der|den|de|del|della|di|da|dos|das|du|la|le|bin|ibn|al|el|ter|ten|zu|y|e)"
_NAME = rf"{_WORD}(?:[ \u00a0]+(?:{_PARTICLE}[ \u00a0]+)*{_WORD}){{0,4}}"
_TITLES = (
    r"Univ\.[ ]?Prof|Mr|Mrs|Ms|Miss|Mx|Dr|Prof|Sir|Dame|Lady|Lord|Rev|Herr|Frau|Fr|Hr|Dipl\.-Ing|Ing|Mag|"
    r"M|Mme|Mlle|Me|Sr|Sra|Srta|Don|Doña|Dña|Sig|Sig\.ra|Sigg|Dott|Dott\.ssa|Avv|Dhr|Mevr|Mw|Shri|Smt|Kumari"
)
_SUFFIXES = (
    r"(?:,?[ \u00a0]+(?:Jr|Sr|II|III|IV|MD|DDS|DVM|PhD|Ph\.D|MBA|Esq|RN|CPA|B\.Sc|M\.Sc|B\.A|M\.A|B\.Eng|"
    r"M\.Eng|MSc|BSc|Dipl\.-Ing|Dr\.|MdB|MdL)\.?(?![\w]))*"
)
_TITLED = re.compile(rf"(?<![\w.])(?P<name>(?:{_TITLES})\.?[ \u00a0]+{_NAME}{_SUFFIXES})")
# a label word and then a name on the same line: "Patient: …", "Dear …", "signed by …"
_NAME_LABELS = (
    r"name|full name|patient|employee|applicant|candidate|customer|client|contact|contact person|tenant|"
    r"landlord|driver|passenger|guest|member|student|user|owner|recipient|sender|(?:from|to|attn|cc|by)(?=:)|attention|"
    r"requester|reported by|submitted by|assigned to|signed by|witness|next of kin|emergency contact|"
    r"referred by|physician|doctor|nurse|manager|supervisor|dear|hi|hello|sincerely|regards|best regards|"
    r"kind regards|yours sincerely|yours truly|nom|prénom|nombre|apellido|nome|cognome|naam|patiënt|"
    r"paciente|paziente|mitarbeiter|vorname|nachname|sehr geehrte|sehr geehrter|liebe|lieber|cher|chère|"
    r"estimado|estimada|gentile|caro|cara|beste|geachte"
)
_LABELLED = re.compile(
    rf"(?i:\b(?:{_NAME_LABELS}))\b[ \t]*[:,\-]?[ \t]*(?:\r?\n[ \t]*)?"
    rf"(?P<name>(?:(?:{_TITLES})\.?[ \u00a0]+)?{_NAME}{_SUFFIXES})"
)

# street addresses: "221B Baker Street", "Hauptstraße 5", "12, rue de la Paix", "Via Roma 3", "Kerkstraat 12a"
# street suffixes: the USPS list (Publication 28, appendix C1: the primary names and the usual abbreviations),
# and the Indian and British words the measured locales use
_STREET_EN = (
    r"Alley|Annex|Arcade|Avenue|Ave|Bayou|Beach|Bend|Bluffs?|Bottom|Boulevard|Blvd|Branch|Bridge|Brooks?|Burgs?|"
    r"Bypass|Camp|Canyon|Cape|Causeway|Centers?|Centre|Circles?|Cir|Cliffs?|Club|Commons?|Corners?|Course|"
    r"Courts?|Ct|Coves?|Creek|Crescent|Crest|Crossing|Crossroads?|Curve|Dale|Dam|Divide|Drives?|Dr|Estates?|"
    r"Expressway|Extensions?|Falls?|Ferry|Fields?|Flats?|Fords?|Forest|Forges?|Forks?|Fort|Freeway|Gardens?|"
    r"Gateway|Glens?|Greens?|Groves?|Harbou?rs?|Haven|Heights|Highway|Hwy|Hills?|Hollow|Inlet|Islands?|Isle|"
    r"Junctions?|Keys?|Knolls?|Lakes?|Land|Landing|Lane|Ln|Lights?|Loaf|Locks?|Lodge|Loop|Mall|Manors?|"
    r"Meadows?|Mews|Mills?|Mission|Motorway|Mount|Mountains?|Neck|Orchard|Oval|Overpass|Parks?|Parkways?|Pkwy|"
    r"Pass|Passage|Path|Pike|Pines?|Place|Pl|Plains?|Plaza|Points?|Ports?|Prairie|Radial|Ramp|Ranch|Rapids?|"
    r"Rest|Ridges?|River|Roads?|Rd|Route|Row|Rue|Run|Shoals?|Shores?|Skyway|Springs?|Spurs?|Squares?|Sq|"
    r"Station|Stravenue|Stream|Streets?|St|Summit|Terrace|Throughway|Trace|Track|Trafficway|Trail|Trl|Trailer|"
    r"Tunnel|Turnpike|Underpass|Unions?|Valleys?|Viaduct|Views?|Villages?|Ville|Vista|Walks?|Wall|Ways?|"
    r"Wells?|Close|Grove|Mews|Marg|Nagar|Chowk|Gali|Colony|Vihar|Enclave|Ganj|Bazar|Bagh|Puram"
)
_UNIT = (
    r"(?:,?[ \u00a0]+(?:Apt|Apartment|Suite|Ste|Unit|Flat|Studio|Floor|Fl|Room|Rm|#|Piso|Puerta|Planta|Escalera|"
    r"Appartamento|Piano|Scala|Interno)\.?[ \u00a0]*[\w\-]+)*"
)
_HOUSE = r"\d{1,5}[A-Za-z]?(?:[/\-]\d{1,4}[A-Za-z]?)?"
_ADDR_EN = (
    rf"(?:(?:Flat|Apt|Apartment|Unit|Suite|Studio)\.?[ \u00a0]*[\w\-]+,?(?:[ \u00a0]+|\r?\n))?"
    rf"{_HOUSE},?(?:[ \u00a0]+|\r?\n)(?:{_WORD}[ \u00a0]+){{0,4}}(?:{_STREET_EN})\.?(?![\w])"
)
_STREET_SUFFIX = (
    r"straße|strasse|str\.|weg|allee|platz|gasse|ring|damm|ufer|chaussee|steig|pfad|markt|"
    r"straat|laan|gracht|plein|kade|singel|dijk|dreef|hof|pad|steeg|wal"
)
_ADDR_SUFFIXED = (
    rf"(?:{_UPPER}[\w\-]*(?:{_STREET_SUFFIX})|(?:{_WORD}[ \u00a0\-]){{1,3}}"
    rf"(?:Straße|Strasse|Weg|Allee|Platz|Gasse|Ring|Damm))[ \u00a0]+{_HOUSE}"
)
_STREET_WORD_FIRST = (
    r"rue|avenue|boulevard|bd|place|chemin|allée|allee|impasse|quai|route|cours|passage|square|voie|"
    r"via|viale|piazza|piazzale|corso|largo|vicolo|contrada|strada|borgo|"
    r"calle|c/|avenida|avda|plaza|paseo|carrer|camino|ronda|glorieta|travesía|callejón|cuesta|urbanización|"
    r"acceso|alameda|bulevar|cañada|carrera|carretera|pasadizo|pasaje|plazuela|polígono|senda|rúa|vía|"
    r"rambla|praça|rua|canale|rotonda|incrocio|stretto|vico|traversa|circonvallazione|lungomare"
)
_ADDR_WORD_FIRST = (
    rf"(?:{_HOUSE},?[ \u00a0]+)?(?i:{_STREET_WORD_FIRST})\.?[ \u00a0]+"
    rf"(?:(?:{_PARTICLE}|d'|l'|de la|de las|de los|del)[ \u00a0]*)*"
    rf"(?:{_WORD}[ \u00a0]*){{1,4}}(?:,?[ \u00a0]*(?:n\.?|nº|no\.?|#)?[ \u00a0]*{_HOUSE}{_UNIT})?"
)
_ADDR_UNIT_LINE = (
    rf"(?:Flat|Apt|Apartment|Unit|Suite|Studio)\.?[ \u00a0]*[\w\-]+,?(?:[ \u00a0]+|\r?\n)"
    rf"(?:{_WORD}[ \u00a0]+){{0,3}}(?:{_STREET_EN})\.?(?![\w])"
)
_STREET = re.compile(rf"(?<![\w])(?:{_ADDR_EN}{_UNIT}|{_ADDR_UNIT_LINE}|{_ADDR_SUFFIXED}|{_ADDR_WORD_FIRST})")
# a postal code with the town after it (or a US state before it): "10115 Berlin", "1012 AB Amsterdam",
# "SW1A 1AA", "Springfield, IL 62704", "H3Z 2Y7", "Mumbai 400001"
_TOWN = rf"{_WORD}(?:[ \u00a0\-]+(?:{_PARTICLE}[ \u00a0\-]+)*{_WORD}){{0,3}}"
_POSTAL = re.compile(
    rf"(?<![\w])(?:"
    rf"\d{{4}}[ \u00a0]?[A-Z]{{2}}(?![\w])(?:,?[ \u00a0]+{_TOWN})?"  # NL
    rf"|(?:[A-Z]{{1,2}}-)?\d{{4,5}},?[ \u00a0]+{_TOWN}"  # DE, FR, ES, IT, AT, CH, BE, DK (optional country prefix)
    rf"|[A-Z]{{1,2}}\d[A-Z\d]?[ \u00a0]\d[A-Z]{{2}}"  # UK
    rf"|[A-Z]\d[A-Z][ \u00a0]?\d[A-Z]\d"  # CA
    rf"|{_TOWN},?[ \u00a0]+(?:[A-Z]{{2}}|[A-Z][a-z]+(?:[ \u00a0][A-Z][a-z]+)?)[ \u00a0]+\d{{5}}(?:-\d{{4}})?"  # US
    rf"|{_TOWN}[ \u00a0]*[-–][ \u00a0]*\d{{6}}|{_TOWN},?[ \u00a0]+\d{{6}}"  # IN
    rf"|(?:FPO|APO|DPO)[ \u00a0]+A[AEP][ \u00a0]+\d{{5}}"  # US military mail
    rf"|(?:USNS|USNV|USS|USCGC|PSC|Unit)[ \u00a0]+{_WORD}(?:[ \u00a0]+\d+)?(?:,[ \u00a0]*Box[ \u00a0]+\d+)?"
    rf")(?![\w])"
)
# a house number and capitalised words: a street only when joined to a town, a postal code or a street
_WEAK_STREET = re.compile(
    rf"(?<![\w])(?:(?:H\.?[ \u00a0]?No\.?|House[ \u00a0]No\.?|Plot[ \u00a0]No\.?|Flat[ \u00a0]No\.?)[ \u00a0]*{_HOUSE}"
    rf"|{_TOWN},?[ \u00a0]+\d{{5}}"
    rf"|{_HOUSE},?[ \u00a0]+(?:{_WORD}[ \u00a0]+){{0,3}}{_WORD}"
    rf"|(?:{_WORD}[ \u00a0]+){{0,3}}{_WORD}[ \u00a0]+{_HOUSE}){_UNIT}(?![\w])"
)
_ADDRESS_GAP = re.compile(
    r"[ \t]*(?:,|\r?\n)?[ \t]*(?:(?:\d{1,5}\w?|Apt|Apartment|Appartamento|Piano|Scala|Interno|Suite|Ste|Unit|Flat|"
    r"Floor|Box|Piso|Puerta|Planta|Bus|\([A-Z]{2}\)|[A-Z]{2})\.?[ \t]*,?[ \t]*){0,4}"
    # or a town between two parts of the address: "…Elizabeth Circles, South Deantown, KY60 5LD"
    rf"|[ \t]*(?:,|\r?\n)[ \t]*{_TOWN}[ \t]*(?:,|\r?\n)[ \t]*"
)
_ADDRESS_LABEL = re.compile(
    r"(?i:\b(?:address|home address|street address|ship to|shipping address|billing address|mailing address|"
    r"residence|resides at|lives at|living at|located at|adresse|anschrift|wohnhaft in|dirección|domicilio|"
    r"indirizzo|residente a|adres|woonadres)\b)[ \t]*[:,\-]?[ \t]*"
)
# a date of birth: a label, then a date in any common writing
_MONTHS = (
    r"jan(?:uary|vier|uar|\.)?|feb(?:ruary|\.)?|février|febbraio|febrero|februar(?:i)?|mar(?:ch|s|zo|\.)?|märz|"
    r"maart|apr(?:il|ile|\.)?|avril|abril|ma[iy]|mai|maggio|mayo|mei|jun(?:e|i|io|\.)?|juin|giugno|junio|"
    r"jul(?:y|i|io|\.)?|juillet|luglio|julio|aug(?:ust|\.)?|août|agosto|augustus|sep(?:t(?:ember)?|\.)?|"
    r"septembre|settembre|septiembre|oct(?:ober|\.)?|octobre|ottobre|octubre|oktober|nov(?:ember|\.)?|novembre|"
    r"noviembre|dec(?:ember|\.)?|décembre|dicembre|diciembre|dezember|januari|janvier|enero|gennaio|januar"
)
_DATE = (
    rf"(?:\d{{1,2}}[./\-]\d{{1,2}}[./\-]\d{{2,4}}|\d{{4}}-\d{{2}}-\d{{2}}|"
    rf"\d{{1,2}}(?:st|nd|rd|th|er|º)?\.?[ \u00a0]+(?:de[ \u00a0]+)?(?i:{_MONTHS})\.?,?[ \u00a0]+"
    rf"(?:de[ \u00a0]+)?\d{{4}}|"
    rf"(?i:{_MONTHS})\.?[ \u00a0]+\d{{1,2}}(?:st|nd|rd|th)?,?[ \u00a0]+\d{{4}})"
)
_DOB = re.compile(
    r"(?i:\b(?:dob|d\.o\.b\.?|date of birth|birth ?date|birthday|born(?: on)?|b\.|geburtsdatum|geboren(?: am)?|"
    r"geb\.|date de naissance|né(?:e)? le|fecha de nacimiento|nacido el|nacida el|nato il|nata il|"
    r"data di nascita|geboortedatum|geboren op)\b\.?)[ \t]*[:\-]?[ \t]*(?P<date>" + _DATE + ")"
)

# a known given name followed by capitalised words: "Gabino Isaías Escribano Barriga"
_GIVEN = re.compile(rf"(?<![\w.])(?P<first>{_UPPER}[\w'’\-]+)(?:[ \u00a0]+(?:{_PARTICLE}[ \u00a0]+)*{_WORD}){{1,4}}")
# a capitalised name after a preposition of place: "moved to Vanessaville", "grew up in Hemrik"
_LOCATIVE = re.compile(
    rf"(?<![\w])(?i:in|at|to|from|near|into|towards?|outside|around|nach|aus|bei|à|en|a|di|da|naar|uit|bij|te)"
    rf"[ \u00a0]+(?P<place>{_TOWN})"
)

_STOP = frozenset(
    "The A An And Or Of In On At To For From By With Dear Hi Hello Regards Sincerely Best Kind Yours Thanks "
    "Thank Please Note Re Subject Date Patient Employee Name Address Phone Email Street "
    "Road Avenue Monday Tuesday Wednesday Thursday Friday Saturday Sunday January February March April May "
    "June July August September October November December I We You He She They It This That Yesterday Today "
    "Tomorrow Ticket Please Signed Our Your His Her Their Its Yes No Mon Tue Wed Thu Fri Sat Sun".split()
) | frozenset(  # a sentence's first word before a name ("Contact Anna Schmidt", "When Jan de Vries called"): not
    # part of it. Verbs and conjunctions only, none in the given-name list ("Tell", "Ping", "Can", "Will" stay out)
    "Call Contact Ask Visit Email Meet See Send Write Invite Inform Notify Remind Let Help Text Welcome "
    "Congratulations When While If After Before Since Because Although Though Unless Once Until Where Whether As "
    "But Then Also Only Did Does Is Was Were Has Had Have Could Should Would Shall Must".split()
)


# words of a name that are not the name: never redacted on their own elsewhere in the text
_NOT_NAMES = _STOP | frozenset(
    "King Queen Pope Saint Duke Duchess Prince Princess Emperor Empress Lord Lady Sir Dame Count Countess Baron "
    "President General Captain Colonel Major Bishop Archbishop Cardinal Father Sister Brother Herr Frau Mr Mrs Ms "
    "Miss Dr Prof Jr Sr II III IV VI VII VIII IX XI XII XIII XIV XV XVI MD PhD MBA".split()
)


@dataclass(frozen=True)
class Found:
    kind: str
    start: int
    end: int


def _trim(text: str, start: int, end: int) -> tuple[int, int]:
    """Drop trailing punctuation and spaces from a span (a sentence's full stop is not part of a name)."""
    while end > start and (text[end - 1].isspace() or text[end - 1] in ".,;:"):
        # keep the dot of an abbreviation such as "Jr." or "St."
        if text[end - 1] == "." and end - start >= 3 and text[end - 3 : end - 1].isalpha() and end - 3 >= start:
            word = re.search(r"(\w+)\.$", text[start:end])
            if word and word.group(1) in ("Jr", "Sr", "St", "Ave", "Rd", "Dr", "Blvd", "Ln", "Ct", "Pl"):
                break
        end -= 1
    while start < end and text[start].isspace():
        start += 1
    if text[start:end].endswith(("'s", "’s")):  # "Maria Gonzalez's doctor": the name, not the possessive
        return _trim(text, start, end - 2)
    return start, end


def _strip_stops(text: str, start: int, end: int) -> tuple[int, int] | None:
    """Drop leading and trailing stop words ("Dear", "The", a weekday) from a name span; None if nothing is left."""
    words = list(re.finditer(r"\S+", text[start:end]))
    while words and words[0].group().strip(".,:;") in _STOP:
        words.pop(0)
    while words and words[-1].group().strip(".,:;") in _STOP:
        words.pop()
    if not words:
        return None
    return _trim(text, start + words[0].start(), start + words[-1].end())


class NameFinder:
    """Finds the kinds of NAME_KINDS asked for. Needs the NER model unless only `date_of_birth` is asked."""

    def __init__(self, kinds: Iterable[str], model: NerModel | None) -> None:
        self.kinds = tuple(k for k in NAME_KINDS if k in set(kinds))
        if model is None and any(k in NER_KINDS for k in self.kinds):
            raise NerUnavailable(
                "the person/location/organization kinds need the NER model: automix-local models pull ner"
            )
        self.model = model

    def find(self, text: str) -> list[Found]:
        out: list[Found] = []
        want = set(self.kinds)
        if "date_of_birth" in want:
            out += [Found("date_of_birth", *m.span("date")) for m in _DOB.finditer(text)]
        if not want & set(NER_KINDS) or self.model is None:
            return out
        ents = self.model.entities(text)
        if "person" in want:
            out += self._people(text, ents)
        if "location" in want:
            out += self._places(text, ents)
        if "organization" in want:
            out += [Found("organization", s, e) for k, s, e in ents if k == "organization"]
        return out

    # ------------------------------------------------------------------ people
    def _people(self, text: str, ents: list[tuple[str, int, int]]) -> list[Found]:
        spans: list[tuple[int, int]] = []
        for kind, s, e in ents:
            if kind == "person":
                spans.append(_widen(text, s, e))
        for rx in (_TITLED, _LABELLED):
            for m in rx.finditer(text):
                got = _strip_stops(text, *m.span("name"))
                if got is not None:
                    spans.append(got)
        given = _given_names()
        for m in _GIVEN.finditer(text):
            # the given name may be any word of the run but the last: "Yesterday Autumn Robinson"
            run = list(re.finditer(r"[^\s]+", m.group()))
            for w in run[:-1]:
                if w.group() in given:
                    got = _strip_stops(text, m.start() + w.start(), m.end())
                    if got is not None and got[1] - got[0] > len(w.group()):
                        spans.append(_widen(text, *got))
                    break
        # every other mention of a found name, or of its last word (the surname), in the same text
        mentions: set[str] = set()
        for s, e in spans:
            name = text[s:e].strip(" .,")
            if len(name) >= 2:
                mentions.add(name)
            words = [w.strip(".,") for w in name.split()]
            if len(words) >= 2:
                last = words[-1]
                if len(last) >= 3 and last not in _NOT_NAMES and last[0].isupper():
                    mentions.add(last)
                first = words[0]
                if len(first) >= 3 and first not in _NOT_NAMES and first[0].isupper() and not first.endswith("."):
                    mentions.add(first)
        for name in sorted(mentions, key=len, reverse=True):
            for m in re.finditer(rf"(?<![\w]){re.escape(name)}(?![\w])", text):
                spans.append(m.span())
        return [Found("person", *_trim(text, s, e)) for s, e in spans if e > s]

    # ------------------------------------------------------------------ places
    def _places(self, text: str, ents: list[tuple[str, int, int]]) -> list[Found]:
        spans = [(s, e) for k, s, e in ents if k == "location"]
        for rx in (_STREET, _POSTAL):
            spans += [_trim(text, *m.span()) for m in rx.finditer(text)]
        for m in _LOCATIVE.finditer(text):
            got = _strip_stops(text, *m.span("place"))
            if got is not None:
                spans.append(got)
        # what follows an address label up to the end of the line is the address
        for m in _ADDRESS_LABEL.finditer(text):
            end = text.find("\n", m.end())
            end = len(text) if end < 0 else end
            if end - m.end() <= 120:
                s, e = _trim(text, m.end(), end)
                if e > s and re.search(r"\d|\b" + _UPPER, text[s:e]):
                    spans.append((s, e))
        # one address: street, town and code joined by commas, a line break or unit words are one span;
        # a house number with capitalised words counts only when it joins such a span
        strong = _join(text, spans)
        weak = [_trim(text, *m.span()) for m in _WEAK_STREET.finditer(text)]
        # a name the model took for a person or a firm, inside an address ("H.No. 22, Mann, Tenali 417304"):
        # part of it only between two other parts, never at its start or end (the next line's "Ms Gonzalez")
        inner = [(s, e) for k, s, e in ents if k != "location"]
        joined = _join(text, strong + weak)
        kept = [(s, e) for s, e in _join(text, strong + weak + inner) if any(s <= a and b <= e for a, b in strong)]
        out = []
        for s, e in kept:
            parts = [(a, b) for a, b in joined if s <= a and b <= e]  # the span without the inner names
            out.append((min(a for a, _ in parts), max(b for _, b in parts)) if parts else (s, e))
        return [Found("location", s, e) for s, e in out if e > s]


@functools.cache
def _given_names() -> frozenset[str]:
    """Given names of 50-odd countries (gender-guesser's copy of Jörg Michael's name dictionary, GFDL-1.2): a
    capitalised word in it followed by more capitalised words is a person even where the model misses them.
    Empty when the package is absent."""
    try:
        from importlib import resources

        raw = (resources.files("gender_guesser") / "data" / "nam_dict.txt").read_text(encoding="utf-8")
    except (ImportError, OSError):
        return frozenset()
    out = set()
    for line in raw.splitlines():
        if line[:1] in ("#", "=", "") or len(line) < 30:
            continue
        name = line.split()[1].replace("+", "-")
        if len(name) >= 3 and name[0].isupper():
            out.add(name)
    return frozenset(out - _STOP)


def _widen(text: str, s: int, e: int) -> tuple[int, int]:
    """Widen an entity over the capitalised words and name particles right after it ("Jan" → "Jan van der
    Berg") and an initial or particle right before it; trim what the model took too much (a title, a stop)."""
    cut = text.find("\n", s, e)
    if cut > s:
        e = cut
    tail = re.match(rf"(?:(?:[ \u00a0]+(?:{_PARTICLE}[ \u00a0]+)*|-){_WORD})*", text[e:])
    if tail is not None:
        e += len(tail.group())
    suffix = re.match(rf"{_SUFFIXES}", text[e:])
    if suffix is not None:
        e += len(suffix.group())
    while True:  # capitalised words, particles and initials before it, not stop words
        head = re.search(rf"(?<![\w'’\-.])(?:{_WORD}|{_PARTICLE})[ \u00a0]+$", text[max(0, s - 40) : s])
        if head is None or head.group().split()[0].strip(".,") in _STOP:
            break
        if head.group().rstrip().endswith(".") and not re.fullmatch(rf"{_UPPER}\.", head.group().strip()):
            break  # a sentence's last word, not an initial
        s -= len(head.group())
    title = re.search(rf"(?<![\w.])(?:{_TITLES})\.?[ \u00a0]+$", text[max(0, s - 12) : s])
    if title is not None:
        s -= len(title.group())
    got = _strip_stops(text, s, e)
    return got if got is not None else _trim(text, s, e)


def _join(text: str, spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Merge overlapping spans, and spans of one address separated only by commas, a line break or unit words."""
    out: list[tuple[int, int]] = []
    for s, e in sorted(spans):
        if out:
            ps, pe = out[-1]
            if s <= pe or (s - pe <= 40 and _ADDRESS_GAP.fullmatch(text, pe, s) is not None):
                out[-1] = (ps, max(pe, e))
                continue
        out.append((s, e))
    return out


@functools.cache
def kinds_of(rule: str) -> tuple[str, ...]:
    """The kinds a `redact` entry names among NAME_KINDS (the shorthand: all of them)."""
    if rule == SHORTHAND:
        return NAME_KINDS
    return (rule,) if rule in NAME_KINDS else ()
