"""A GGUF quantized by llama.cpp itself, for the benches that measure a quantized embedding model (issue 24 §4).

The app does not quantize: Q8_0 of nomic-embed-text-v1.5 filled no faster than its F16 file on this build
(docs/results/library_speed.md), so the packaged model is used as it is pulled.
"""

from __future__ import annotations

import os
from pathlib import Path

from automix_local.backends.base import BackendError
from automix_local.backends.llama import _route_llama_logs


def quantize(source: Path, target: Path, kind: str = "Q8_0", threads: int | None = None) -> None:
    """Write ``source`` (a GGUF) quantized to ``kind`` (a llama.cpp file type: "Q8_0", "Q4_K_M", …) at ``target``,
    by llama.cpp's own ``llama_model_quantize`` (written beside ``target`` first, then renamed: never half a
    file). The output is a function of the input and llama.cpp's version (same bytes twice: measured)."""
    import llama_cpp

    ftype = getattr(llama_cpp, f"LLAMA_FTYPE_MOSTLY_{kind.upper()}", None)
    if ftype is None:
        raise BackendError(f"embedding model: llama.cpp has no quantization type {kind!r}")
    _route_llama_logs(llama_cpp)  # its progress lines go to logging, not over the terminal
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = ftype
    params.nthread = threads or os.cpu_count() or 1
    partial = target.with_name(target.name + ".part")
    rc = llama_cpp.llama_model_quantize(str(source).encode(), str(partial).encode(), params)
    if rc != 0 or not partial.is_file():
        partial.unlink(missing_ok=True)
        raise BackendError(f"embedding model: llama.cpp could not quantize {source} to {kind} (code {rc})")
    partial.replace(target)
