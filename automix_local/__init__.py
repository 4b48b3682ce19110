"""automix_local: local-first document Q&A with AutoMix self-verification and escalation."""

import os as _os

# llama.cpp's OpenMP worker threads busy-wait between calls; with two models in one process on a
# small CPU they starve each other (measured 3x slower). This must be set before llama.cpp loads.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"
