"""One error hierarchy: every foreseeable failure is an ``AutomixError``.

``str(error)`` is the one line shown to the user; ``exit_code`` is what the CLI exits with and
``http_status`` what ``serve`` answers with. The CLI, the app and the server each catch
``AutomixError`` once; anything else is a bug and is reported as one.

Each class lives beside the code that raises it (so ``from .cascade import CascadeError`` keeps working);
this module is the root and the map::

    AutomixError                      exit 1  HTTP 500  (the root: an unforeseen-but-handled failure)
    ├── UsageError                    exit 2  HTTP 400  a command or request asked for something impossible
    │   ├── cli.UserError             exit 1/2 (its own code)  a foreseeable mistake on the command line
    │   └── server.ServeError         exit 2            the server cannot start as asked
    ├── config.ConfigError            exit 2  HTTP 500  models.toml is wrong (file: key: what is expected)
    ├── cascade.CascadeError          exit 1  HTTP 400  a question the cascade cannot run (too long, empty)
    ├── routers.RouterError           exit 1  HTTP 400  a router file or choice that cannot be used
    ├── signals.SignalError           exit 1  HTTP 500  a calibrated signal that cannot be read
    ├── sources.ModelError            exit 1  HTTP 500  a model file missing, corrupt, not downloadable
    ├── backends.base.BackendError    exit 1  HTTP 500  a model failed while answering
    │   └── backends.openai.RemoteError                 the remote tier failed (one line: refused, TLS, …)
    ├── documents.library.LibraryError  exit 1  HTTP 400  the document library cannot answer as asked
    ├── documents.parse.DocumentError   exit 1  HTTP 400  a file that cannot be read as a document
    ├── docs_cli.DocsError            exit 1  HTTP 400  a `docs` command that cannot run
    ├── storage.StoreError            exit 1  HTTP 500  the conversation database cannot be used
    ├── audit.AuditError              exit 1  HTTP 500  the egress log cannot be written (nothing is sent)
    ├── evaluation.EvalError          exit 1  HTTP 500  an evaluation that cannot run
    └── report.runs.ReportError       exit 1  HTTP 500  a recorded run that cannot be reported

``server.ApiError`` (a refused HTTP request: 400, 404, 408, 413, 503) is an ``AutomixError`` whose
``http_status`` is set per instance.
"""

from __future__ import annotations

EXIT_FAIL = 1
EXIT_USAGE = 2


class AutomixError(Exception):
    """The root of every error the user may see. ``str()`` is one line."""

    exit_code: int = EXIT_FAIL
    http_status: int = 500
    #: OpenAI-style error code in a server response (``None``: none)
    api_code: str | None = None


class UsageError(AutomixError):
    """A command, option or request that asks for something that cannot be done as asked."""

    exit_code = EXIT_USAGE
    http_status = 400


def one_line(exc: BaseException) -> str:
    """What the user is shown for ``exc``: its message for an ``AutomixError``, else that it is a bug."""
    if isinstance(exc, AutomixError):
        return str(exc)
    return f"unexpected error: {type(exc).__name__}: {exc}"
