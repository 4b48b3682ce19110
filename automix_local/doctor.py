"""`automix-local doctor`: what a user needs to know before asking for help, in one report.

``gather`` collects it as typed data and never loads a model:

* llama-cpp-python: its version, whether it loads, and its build as llama.cpp reports it
  (``llama_print_system_info``: CPU features; the ggml backends and devices it registered; whether it can
  offload to a GPU). That is asked of a child process (``probe_main``), so a library that fails to load,
  dies of "Illegal instruction" or hangs in a GPU driver is reported rather than taking the report with it.
* each tier, the [embedding] and the [ner] model: where the file is, present, size, SHA-256 (from the hash
  cache that a pull or a load fills; ``verify=True`` re-hashes), ``n_gpu_layers`` and whether this build can
  honour it, the threads it runs with, and its measured speed from the history database (speeds.py);
* the config file in use and how it was found, the state directories, the policy in force, the thread
  settings llama.cpp sees.

Every problem found is a ``Problem``: one line saying what is wrong and one saying what to do. Errors make the
command exit 1; warnings (a degraded but working setup) do not.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import signal
import sqlite3
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from . import __version__
from .config import Config, ConfigError, EmbeddingConfig, NerConfig, PathSource, TierConfig, find_config, load_config
from .paths import CONFIG_ENV, HOME_ENV, Paths, default_paths
from .sources import ModelSpec, pull_command, status

Severity = Literal["error", "warning"]

# the fix for a llama-cpp-python that does not load (DEVELOPERS.md, "Building llama-cpp-python")
BUILD_DOC = 'DEVELOPERS.md, "Building llama-cpp-python"'
REBUILD = f"rebuild it: make rebuild-llama ({BUILD_DOC})"
PROBE_TIMEOUT = 60.0  # seconds for the child that asks llama.cpp about its build (a GPU driver may be slow)
_DEVICE_TYPES = {0: "cpu", 1: "gpu", 2: "igpu", 3: "accel"}  # enum ggml_backend_dev_type
_NOT_GPU_BACKENDS = frozenset({"CPU", "BLAS", "RPC", "AMX"})


@dataclass(frozen=True)
class Problem:
    severity: Severity  # "error": exit 1; "warning": works, but not as configured or not at its best
    what: str  # one line: what is wrong
    fix: str  # one line: what to do


@dataclass(frozen=True)
class Device:
    """A device llama.cpp's ggml registered (``ggml_backend_dev_*``)."""

    name: str  # "CPU", "CUDA0", "Metal"
    description: str  # "NVIDIA H100 80GB HBM3", the CPU's model name
    type: str  # "cpu", "gpu", "igpu" (integrated), "accel" (BLAS, AMX), or "unknown"
    backend: str  # the ggml backend it belongs to: "CPU", "CUDA", "Metal", "Vulkan", …
    memory_total: int | None  # bytes
    memory_free: int | None


@dataclass(frozen=True)
class LlamaInfo:
    installed: bool
    version: str | None
    loads: bool  # the library imports and answers
    error: str | None  # why not, in one line
    system_info: str | None  # llama_print_system_info(), as printed
    cpu_features: tuple[str, ...]  # the CPU section's features that are on (SSE3, AVX2, AVX512, AMX_INT8, …)
    backends: tuple[str, ...]  # the ggml backends compiled in ("CPU", "CUDA", "BLAS", …)
    gpu_backend: str | None  # the GPU backend of this build ("CUDA", "Metal", "Vulkan", …); None: CPU only
    gpu_offload: bool | None  # llama_supports_gpu_offload(): a GPU (or RPC) device is there to offload to
    devices: tuple[Device, ...] | None  # None: this build does not expose them


@dataclass(frozen=True)
class ConfigInfo:
    file: str
    found_by: str  # "--config", "$AUTOMIX_LOCAL_CONFIG", "user config" or "packaged default"
    loads: bool
    error: str | None


@dataclass(frozen=True)
class PolicyInfo:
    summary: str  # policy.describe()
    remote: str
    send: str
    redact: tuple[str, ...]
    private: int  # how many private rules


@dataclass(frozen=True)
class Threads:
    cpu_count: int | None  # os.cpu_count(): what a tier without n_threads uses
    usable_cpus: int | None  # the CPUs this process may run on (its affinity)
    omp_wait_policy: str | None
    omp_num_threads: str | None


@dataclass(frozen=True)
class Speed:
    """A local tier's measured speed on this machine (speeds.py's estimate)."""

    prompt_tokens_per_second: float
    generated_tokens_per_second: float
    observations: int  # answers (and the probe at load) the estimate rests on


@dataclass(frozen=True)
class ModelInfo:
    role: str  # "tier", "embedding" or "ner"
    name: str
    backend: str  # "llama", "openai" (a remote tier) or "spacy"
    where: str  # the source as models.toml names it (a remote tier: its base_url)
    path: str | None  # the file on disk (None: remote, or an hf file not cached)
    present: bool | None  # None: a remote tier
    size: int | None  # bytes
    verified: str | None  # "ok", "mismatch", "not a GGUF", "not a wheel", "no sha256", "unchecked", "absent"
    n_gpu_layers: int | None  # None: not a llama model
    gpu: str | None  # "cpu", "gpu" (honoured), "ignored" (this build cannot), "unknown" (llama.cpp not loaded)
    gpu_note: str | None
    n_threads: int | None  # the threads llama.cpp runs it with
    speed: Speed | None
    speed_note: str | None  # why there is no speed ("not measured yet", …)
    api_key_env: str | None = None  # a remote tier's key variable
    api_key_set: bool | None = None
    # a remote tier with logprobs = true (an endpoint judged like a local tier): the top_logprobs it asks for
    top_logprobs: int | None = None


@dataclass(frozen=True)
class Report:
    automix_local: str
    python: str
    platform: str
    llama_cpp: LlamaInfo
    config: ConfigInfo
    paths: dict[str, str]
    policy: PolicyInfo | None
    threads: Threads
    models: tuple[ModelInfo, ...]
    problems: tuple[Problem, ...] = field(default_factory=tuple)

    @property
    def ok(self) -> bool:
        """No error (warnings allowed): the exit code is 0."""
        return not any(p.severity == "error" for p in self.problems)

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.ok, **asdict(self)}


# --------------------------------------------------------------------------- llama.cpp, in a child process


def parse_system_info(text: str) -> dict[str, dict[str, str]]:
    """``llama_print_system_info()`` as {section: {feature: value}}:
    "CUDA : ARCHS = 900 | USE_GRAPHS = 1 | CPU : SSE3 = 1 | AVX2 = 1 | " → {"CUDA": {…}, "CPU": {…}}.
    Features before any section name (older builds) go under ""."""
    sections: dict[str, dict[str, str]] = {}
    current: dict[str, str] | None = None
    for item in text.split("|"):
        item = item.strip()
        if not item:
            continue
        colon, equals = item.find(":"), item.find("=")
        if colon >= 0 and (equals < 0 or colon < equals):
            name, item = item[:colon].strip(), item[colon + 1 :].strip()
            current = sections.setdefault(name, {})
            if not item:
                continue
        if current is None:
            current = sections.setdefault("", {})
        key, _, value = item.partition("=")
        current[key.strip()] = value.strip()
    return sections


def _ggml(llama_cpp: Any) -> Any:
    """The ggml library that llama-cpp-python loaded (where ggml_backend_dev_* live), or None."""
    import importlib

    for get in (
        lambda: importlib.import_module("llama_cpp._ggml").libggml,
        lambda: llama_cpp.llama_cpp._lib,  # dlsym searches its dependencies (libggml) on Linux and macOS
    ):
        try:
            lib = get()
            lib.ggml_backend_dev_count  # noqa: B018 - is it exported?
            return lib
        except Exception:
            continue
    return None


def _devices(llama_cpp: Any) -> tuple[list[dict[str, Any]] | None, list[str] | None]:
    """The devices and backends ggml registered (ggml-backend.h), or None where the library does not export
    them. Asks for no backend to be loaded and loads no model."""
    import ctypes

    lib = _ggml(llama_cpp)
    if lib is None:
        return None, None
    try:
        vp, cp, sz = ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t
        for fn, args, res in (
            ("ggml_backend_reg_count", [], sz),
            ("ggml_backend_reg_get", [sz], vp),
            ("ggml_backend_reg_name", [vp], cp),
            ("ggml_backend_dev_count", [], sz),
            ("ggml_backend_dev_get", [sz], vp),
            ("ggml_backend_dev_name", [vp], cp),
            ("ggml_backend_dev_description", [vp], cp),
            ("ggml_backend_dev_type", [vp], ctypes.c_int),
            ("ggml_backend_dev_backend_reg", [vp], vp),
            ("ggml_backend_dev_memory", [vp, ctypes.POINTER(sz), ctypes.POINTER(sz)], None),
        ):
            f = getattr(lib, fn)
            f.argtypes, f.restype = args, res

        def text(raw: bytes | None) -> str:
            return (raw or b"").decode("utf-8", errors="replace")

        backends = [
            text(lib.ggml_backend_reg_name(lib.ggml_backend_reg_get(i))) for i in range(lib.ggml_backend_reg_count())
        ]
        devices = []
        for i in range(lib.ggml_backend_dev_count()):
            dev = lib.ggml_backend_dev_get(i)
            free, total = ctypes.c_size_t(0), ctypes.c_size_t(0)
            lib.ggml_backend_dev_memory(dev, ctypes.byref(free), ctypes.byref(total))
            devices.append(
                {
                    "name": text(lib.ggml_backend_dev_name(dev)),
                    "description": text(lib.ggml_backend_dev_description(dev)),
                    "type": _DEVICE_TYPES.get(lib.ggml_backend_dev_type(dev), "unknown"),
                    "backend": text(lib.ggml_backend_reg_name(lib.ggml_backend_dev_backend_reg(dev))),
                    "memory_total": total.value or None,
                    "memory_free": free.value or None,
                }
            )
        return devices, backends
    except Exception:
        return None, None


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")[:300]


def probe_main() -> None:
    """Run in the child process: print what llama.cpp says about its build as one JSON object."""
    try:
        import llama_cpp
    except BaseException as exc:  # the library itself (a missing .so, a CUDA runtime not found)
        print(json.dumps({"loads": False, "error": _one_line(exc)}))
        return
    llama_cpp.llama_backend_init()
    info = llama_cpp.llama_print_system_info()
    devices, backends = _devices(llama_cpp)
    print(
        json.dumps(
            {
                "loads": True,
                "system_info": info.decode("utf-8", errors="replace").strip() if info else "",
                "gpu_offload": bool(llama_cpp.llama_supports_gpu_offload()),
                "devices": devices,
                "backends": backends,
            }
        )
    )


def _signal_name(code: int) -> str:
    try:
        return signal.Signals(code).name
    except ValueError:
        return f"signal {code}"


def llama_info() -> tuple[LlamaInfo, list[Problem]]:
    """llama-cpp-python's version and build, asked of a child process (``probe_main``)."""
    try:
        version: str | None = importlib.metadata.version("llama-cpp-python")
    except importlib.metadata.PackageNotFoundError:
        version = None

    def failed(reason: str, fix: str) -> tuple[LlamaInfo, list[Problem]]:
        info = LlamaInfo(version is not None, version, False, reason, None, (), (), None, None, None)
        return info, [Problem("error", f"llama-cpp-python {version or ''}: {reason}".replace(" :", ":"), fix)]

    if version is None:
        return failed("not installed", "run: make install (README, Two commands)")
    cmd = [sys.executable, "-c", "from automix_local.doctor import probe_main; probe_main()"]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=PROBE_TIMEOUT)
    except subprocess.TimeoutExpired:
        return failed(
            f"llama.cpp did not report its build within {PROBE_TIMEOUT:.0f} s", f"check the GPU driver, or {REBUILD}"
        )
    if proc.returncode < 0:
        if -proc.returncode == signal.SIGILL:
            return failed(
                "dies with Illegal instruction (SIGILL): built for instructions this CPU does not enable "
                "(AMX on some VMs)",
                "rebuild it minus AMX: make rebuild-llama (on Linux x86-64 it adds -mno-amx-tile -mno-amx-int8 "
                f"-mno-amx-bf16; {BUILD_DOC})",
            )
        return failed(f"crashes ({_signal_name(-proc.returncode)}) when asked about its build", REBUILD)
    try:
        got = json.loads(proc.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        last = (proc.stderr.strip().splitlines() or [f"exit code {proc.returncode}"])[-1]
        return failed(f"could not be asked about its build: {last[:300]}", REBUILD)
    if not got.get("loads"):
        return failed(f"does not load: {got.get('error')}", REBUILD)
    text = str(got.get("system_info") or "")
    sections = parse_system_info(text)
    cpu = sections.get("CPU", sections.get("", {}))
    features = tuple(k for k, v in cpu.items() if v not in ("0", ""))
    raw_devices = got.get("devices")
    devices = tuple(Device(**d) for d in raw_devices) if isinstance(raw_devices, list) else None
    backends = tuple(got.get("backends") or [s for s in sections if s])
    gpu = [d.backend for d in devices or () if d.type in ("gpu", "igpu")]
    gpu += [b for b in backends if b.upper() not in _NOT_GPU_BACKENDS]
    info = LlamaInfo(
        True, version, True, None, text, features, backends, gpu[0] if gpu else None, got.get("gpu_offload"), devices
    )
    return info, []


# --------------------------------------------------------------------------- the rest


def config_origin(explicit: str | Path | None, paths: Paths) -> str:
    """How ``find_config`` found the config in use (the same order)."""
    if explicit:
        return "--config"
    if os.environ.get(CONFIG_ENV):
        return f"${CONFIG_ENV}"
    if paths.user_config.is_file():
        return "user config"
    return "packaged default"


def _paths(paths: Paths) -> dict[str, str]:
    from .documents.library import default_path
    from .storage import DATABASE

    out = {
        "config_dir": paths.config_dir,
        "data_dir": paths.data_dir,
        "cache_dir": paths.cache_dir,
        "state_dir": paths.state_dir,
        "models_dir": paths.models_dir,
        "history": paths.data_dir / DATABASE,
        "library": default_path(paths.data_dir),
        "egress_log": paths.egress_log,
        "hash_cache": paths.hash_cache,
    }
    return {k: str(v) for k, v in out.items()}


def _writable(directory: Path) -> bool:
    """Whether ``directory`` can be written, or created where it does not exist yet."""
    for p in (directory, *directory.parents):
        if p.exists():
            return os.access(p, os.W_OK | os.X_OK)
    return False


def _threads() -> Threads:
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return Threads(os.cpu_count(), usable, os.environ.get("OMP_WAIT_POLICY"), os.environ.get("OMP_NUM_THREADS"))


def _who(spec: ModelSpec) -> str:
    if isinstance(spec, NerConfig):
        return "the NER model"
    return "the embedding model" if isinstance(spec, EmbeddingConfig) else f"tier '{spec.name}'"


def _rebuild_for_gpu() -> str:
    metal = '"-DGGML_METAL=on"' if sys.platform == "darwin" else '"-DGGML_CUDA=on" (NVIDIA)'
    return f"rebuild with GPU support: make rebuild-llama CMAKE_ARGS={metal} (README, GPU builds)"


def _gpu(layers: int, llama: LlamaInfo) -> tuple[str, str | None, str | None]:
    """(gpu, note, fix) for a llama model's n_gpu_layers on this build; fix None: nothing to do."""
    if layers == 0:
        return "cpu", None, None
    asked = "all layers" if layers < 0 else f"{layers} layers"
    if not llama.loads:
        return "unknown", f"{asked} asked; llama-cpp-python does not load", None
    if llama.gpu_offload:
        gpus = [d for d in llama.devices or () if d.type in ("gpu", "igpu")]
        on = f" on {gpus[0].backend} ({gpus[0].description})" if gpus else ""
        return "gpu", f"{asked}{on}", None
    if llama.gpu_backend:
        note = f"ignored: this build has {llama.gpu_backend} but found no {llama.gpu_backend} device"
        return "ignored", note, "check the GPU driver (nvidia-smi) and CUDA_VISIBLE_DEVICES, or set n_gpu_layers = 0"
    return "ignored", "ignored: this build has no GPU offload", f"{_rebuild_for_gpu()}, or set n_gpu_layers = 0"


def _speeds(config: Config) -> tuple[dict[str, Speed], set[str]]:
    """Each local tier's measured speed from the history database, and the tiers measured only with another
    model file or setup; reads, never creates, the database."""
    from .speeds import SpeedBook
    from .storage import DATABASE, Store, StoreError

    book = SpeedBook.for_config(config)
    speeds = {
        name: Speed(1.0 / s.prompt_token_seconds, 1.0 / s.gen_token_seconds, s.observations)
        for name, s in book.speeds().items()
    }
    others: set[str] = set()
    db = config.paths.data_dir / DATABASE
    if db.exists():
        try:
            store = Store(db)
            try:
                others = {tier for tier, _, _ in store.speed_sums()}
            finally:
                store.close()
        except (StoreError, sqlite3.Error, OSError):
            others = set()
    return speeds, others - set(speeds)


def _model(
    spec: ModelSpec,
    config: Config,
    explicit: bool,
    llama: LlamaInfo,
    verify: bool,
    speeds: dict[str, Speed],
    other_setups: set[str],
    problems: list[Problem],
) -> ModelInfo:
    role = "ner" if isinstance(spec, NerConfig) else "embedding" if isinstance(spec, EmbeddingConfig) else "tier"
    who = _who(spec)
    if isinstance(spec, TierConfig) and spec.is_remote:
        key_set = bool(os.environ.get(spec.api_key_env, "").strip()) if spec.api_key_env else None
        if spec.api_key_env and not key_set and config.policy.remote != "never":
            problems.append(
                Problem(
                    "warning",
                    f"{who}: its API key variable ${spec.api_key_env} is not set",
                    f"export {spec.api_key_env}=… before starting automix-local",
                )
            )
        return ModelInfo(
            role, spec.name, spec.backend, spec.base_url or "-", None, None, None, None, None, None, None, None,
            None, None, spec.api_key_env, key_set, spec.top_logprobs if spec.logprobs else None,
        )  # fmt: skip
    st = status(spec, config.paths, full_hash=verify)
    pull = "run: " + pull_command(spec, config.source_file if explicit else None)
    is_path = isinstance(spec.source, PathSource)
    verified = st.verified if st.present else "absent"
    if not st.present:
        optional = role == "embedding" or (role == "ner" and not _needs_ner(config))
        if is_path:
            what, fix = f"{who}: model file not found: {st.path}", f"fix its path in {config.source_file}"
        else:
            where = f" ({st.path})" if st.path else ""
            what, fix = f"{who}: model not downloaded{where}", pull
        if role == "embedding":
            what += ": documents are retrieved by BM25 alone"
        elif optional:
            what += ' (only redact = ["names"] needs it)'
        problems.append(Problem("warning" if optional else "error", what, fix))
    elif st.verified in ("mismatch", "not a GGUF", "not a wheel"):
        what = (
            f"{who}: {st.path} does not match its sha256 (corrupt or a different file)"
            if st.verified == "mismatch"
            else f"{who}: {st.path} is {st.verified} (corrupt or the wrong file)"
        )
        fix = (
            f"replace the file, or correct path/sha256 in {config.source_file}" if is_path else f"delete it and {pull}"
        )
        problems.append(Problem("error", what, fix))
    layers = gpu = note = threads = None
    speed = speed_note = None
    if isinstance(spec, TierConfig | EmbeddingConfig):
        layers = spec.n_gpu_layers
        gpu, note, gpu_fix = _gpu(layers, llama)
        if gpu_fix is not None:
            problems.append(Problem("error", f"{who}: n_gpu_layers = {layers} is {note}", gpu_fix))
        threads = spec.n_threads or os.cpu_count()
    if isinstance(spec, TierConfig):
        speed = speeds.get(spec.name)
        if speed is None:
            speed_note = (
                "not measured with this model file and setup yet (measured with another)"
                if spec.name in other_setups
                else "not measured yet (measured at its first load, then on every answer)"
            )
    return ModelInfo(
        role, spec.name, spec.backend, st.where, str(st.path) if st.path else None, st.present, st.size, verified,
        layers, gpu, note, threads, speed, speed_note,
    )  # fmt: skip


def _needs_ner(config: Config) -> bool:
    from .names import needs_model

    return needs_model(config.policy.redact)


def _setup_problems(config: Config, llama: LlamaInfo, threads: Threads, problems: list[Problem]) -> None:
    """What concerns the whole setup rather than one model."""
    if _needs_ner(config):
        import importlib.util

        if config.ner is None:
            problems.append(
                Problem(
                    "error",
                    f"[policy] redact asks for names, and {config.source_file} has no [ner] table: refused at start",
                    "copy the packaged [ner] table (docs/configuration.md), then run: automix-local models pull ner",
                )
            )
        if importlib.util.find_spec("spacy") is None:
            problems.append(
                Problem(
                    "error",
                    "[policy] redact asks for names, and spaCy is not installed",
                    "pip install 'spacy>=3.8,<3.9'",
                )
            )
    local = [t for t in config.tiers if not t.is_remote]
    if llama.gpu_offload and local and all(t.n_gpu_layers == 0 for t in local):
        gpus = [d for d in llama.devices or () if d.type in ("gpu", "igpu")]
        on = f" ({gpus[0].description})" if gpus else ""
        problems.append(
            Problem(
                "warning",
                f"this build offloads to {llama.gpu_backend or 'a GPU'}{on}, but every tier runs on the CPU",
                f"set n_gpu_layers = -1 on the tiers in {config.source_file}",
            )
        )
    llama_models: list[TierConfig | EmbeddingConfig] = [*local, *([config.embedding] if config.embedding else [])]
    unset = [m for m in llama_models if m.n_threads is None]
    if unset and threads.usable_cpus and threads.cpu_count and threads.usable_cpus < threads.cpu_count:
        problems.append(
            Problem(
                "warning",
                f"llama.cpp starts {threads.cpu_count} threads per model, and this process may use only "
                f"{threads.usable_cpus} CPUs",
                f"set n_threads = {threads.usable_cpus} on the tiers in {config.source_file}",
            )
        )
    policy = (threads.omp_wait_policy or "").upper()
    if len(llama_models) > 1 and policy and policy != "PASSIVE":
        problems.append(
            Problem(
                "warning",
                f"OMP_WAIT_POLICY={threads.omp_wait_policy}: llama.cpp's threads busy-wait, and two models in one "
                "process starve each other (3x slower measured)",
                "unset OMP_WAIT_POLICY (automix-local then sets PASSIVE)",
            )
        )


def gather(explicit_config: str | Path | None = None, verify: bool = False) -> Report:
    """The doctor's report. Loads no model; hashes a model file only with ``verify`` (else the hash cache says)."""
    paths = default_paths()
    llama, problems = llama_info()
    threads = _threads()
    file = find_config(explicit_config, paths)
    found_by = config_origin(explicit_config, paths)
    config: Config | None = None
    error = None
    try:
        config = load_config(explicit_config, paths)
    except ConfigError as exc:
        error = str(exc)
        problems.append(
            Problem("error", error, "correct it (docs/configuration.md lists every key); config check re-reads it")
        )
    cfg_info = ConfigInfo(str(file.absolute()), found_by, config is not None, error)
    for name, directory in (("data", paths.data_dir), ("state", paths.state_dir), ("cache", paths.cache_dir)):
        if not _writable(directory):
            problems.append(
                Problem(
                    "error",
                    f"the {name} directory {directory} cannot be written",
                    f"set {HOME_ENV} to a writable directory",
                )
            )
    models: list[ModelInfo] = []
    policy = None
    if config is not None:
        from .policy import describe
        from .sources import model_specs

        p = config.policy
        policy = PolicyInfo(describe(p), p.remote, p.send, tuple(p.redact), len(p.private))
        speeds, others = _speeds(config)
        explicit = found_by == "--config"
        for spec in model_specs(config):
            models.append(_model(spec, config, explicit, llama, verify, speeds, others, problems))
        _setup_problems(config, llama, threads, problems)
    return Report(
        __version__,
        platform.python_version(),
        f"{platform.system()} {platform.machine()}",
        llama,
        cfg_info,
        _paths(paths),
        policy,
        threads,
        tuple(models),
        tuple(problems),
    )


# --------------------------------------------------------------------------- the text report


def _size(n: int | None) -> str:
    if n is None:
        return "-"
    size = float(n)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if size < 1000 or unit == "TB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return str(n)


def _rows(rows: list[tuple[str, str]], indent: str = "  ") -> list[str]:
    width = max((len(k) for k, _ in rows), default=0)
    return [f"{indent}{k:<{width}}  {v}".rstrip() for k, v in rows]


def _device(d: Device) -> str:
    kind = d.type if d.backend == d.name else f"{d.backend} {d.type}"
    mem = f", {_size(d.memory_total)}" if d.memory_total else ""
    free = f", {_size(d.memory_free)} free" if d.memory_free and d.memory_free != d.memory_total else ""
    return f"{d.name}: {d.description} ({kind}{mem}{free})"


def _file_line(m: ModelInfo) -> str:
    if not m.present:
        return f"{m.path or '-'}: absent"
    sha = {
        "ok": "sha256 ok",
        "mismatch": "sha256 MISMATCH",
        "unchecked": "sha256 not checked yet (doctor --verify hashes it)",
        "no sha256": "no sha256 in the config",
    }.get(m.verified or "", m.verified or "")
    return f"{m.path}: {_size(m.size)}, {sha}"


def render(report: Report) -> str:
    """The report as plain text (no colours: it is pasted into bug reports)."""
    r, ll = report, report.llama_cpp
    out = [f"automix-local {r.automix_local} · Python {r.python} · {r.platform}", ""]
    if ll.loads:
        out.append(f"llama-cpp-python {ll.version}: loads")
        rows = [("CPU features", " ".join(ll.cpu_features) or "-")]
        rows.append(("backends", ", ".join(ll.backends) or "-"))
        rows.append(("GPU backend", ll.gpu_backend or "none (a CPU-only build)"))
        rows.append(("GPU offload", "yes" if ll.gpu_offload else "no"))
        if ll.devices is None:
            rows.append(("devices", "not exposed by this build"))
        for i, d in enumerate(ll.devices or ()):
            rows.append(("devices" if i == 0 else "", _device(d)))
    else:
        out.append(f"llama-cpp-python {ll.version or ''}: {ll.error}".replace(" :", ":"))
        rows = []
    t = r.threads
    threads = f"{t.cpu_count} CPUs" + (f" ({t.usable_cpus} usable)" if t.usable_cpus != t.cpu_count else "")
    threads += f" · OMP_WAIT_POLICY={t.omp_wait_policy or '(unset)'}"
    if t.omp_num_threads:
        threads += f" · OMP_NUM_THREADS={t.omp_num_threads}"
    rows.append(("threads", threads))
    out += _rows(rows)
    out.append("")
    c = r.config
    out.append(f"config  {c.file} ({c.found_by})" + ("" if c.loads else ": DOES NOT LOAD"))
    if r.policy is not None:
        out.append(f"policy  {r.policy.summary}")
    out.append("paths")
    out += _rows([(k, v) for k, v in r.paths.items()])
    for m in r.models:
        out.append("")
        title = {"tier": f"tier {m.name}", "embedding": "embedding model", "ner": "NER model"}[m.role]
        out.append(f"{title} ({m.backend})")
        if m.present is None:  # remote
            key = "-" if m.api_key_env is None else f"${m.api_key_env} {'set' if m.api_key_set else 'NOT SET'}"
            judged = (
                f"yes: an endpoint judged like a local tier (top {m.top_logprobs} alternatives per token)"
                if m.top_logprobs
                else "no: only the last tier"
            )
            out += _rows([("url", m.where), ("API key", key), ("logprobs", judged)])
            continue
        rows = [("source", m.where), ("file", _file_line(m))]
        if m.n_gpu_layers is not None:
            gpu = "0 (CPU)" if m.gpu == "cpu" else f"{m.n_gpu_layers}: {m.gpu_note}"
            rows.append(("n_gpu_layers", gpu))
            rows.append(("threads", str(m.n_threads)))
        if m.role == "tier":
            s = m.speed
            speed = (
                f"prompt {s.prompt_tokens_per_second:,.0f} tok/s · generation {s.generated_tokens_per_second:,.1f} "
                f"tok/s ({s.observations} measurement{'s' if s.observations != 1 else ''})"
                if s
                else m.speed_note or "-"
            )
            rows.append(("speed", speed))
        out += _rows(rows)
    out.append("")
    errors = sum(1 for p in r.problems if p.severity == "error")
    warnings = len(r.problems) - errors
    for p in r.problems:
        out.append(f"{'✗ error' if p.severity == 'error' else '! warning'}: {p.what}")
        out.append(f"    fix: {p.fix}")
    if not r.problems:
        out.append("✓ no problem found")
    else:
        words = [f"{n} {w}{'s' if n != 1 else ''}" for n, w in ((errors, "error"), (warnings, "warning")) if n]
        out.append(f"{' and '.join(words)} found" + ("" if errors else ": it works as it is"))
    return "\n".join(out)
