"""automix_local: local-first document Q&A with AutoMix self-verification and escalation."""

import os as _os

# llama.cpp's OpenMP worker threads busy-wait between calls; with two models in one process on a
# small CPU they starve each other (measured 3x slower). This must be set before llama.cpp loads.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
# For the same reason numpy's OpenBLAS runs on one thread: its workers spin for a while after each call, and the
# library's dense scan (10,000 vectors, one matrix product) left them spinning while the next question was
# embedded: 65 ms instead of 37 (p50, 2 cores; issue 24 §4). One thread scans the 10,000 in 1 ms (2: 0.5 ms).
# Read when numpy loads, which is below (llama_cpp imports it).
_os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

# Load llama.cpp's shared libraries before numpy, here, where every entry point (the CLI, `python -m`, the app,
# `serve`, a script that imports the package) passes first. On a CUDA build (H200, CUDA 13, numpy 2.x whose
# OpenBLAS uses pthreads) numpy loaded first made llama_model_load_from_file segfault on the first model load,
# GPU offload or not; llama_cpp first loads and runs (issue 24; the same order dependence is reported in
# llama-cpp-python's issue #1581, "import llama_cpp first and pandas second"). llama_cpp imports numpy
# itself, after its library. A missing or broken llama-cpp-python is reported where a model loads, with the
# fix, so a failure here is ignored. tests/test_import_order.py keeps the order.
try:
    import llama_cpp as _llama_cpp  # noqa: F401
except Exception:  # pragma: no cover - reported with its fix where a model is loaded
    pass

__version__ = "0.1.0"
