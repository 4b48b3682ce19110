"""The status bar and the question box's placeholder: the tiers and where they run, what is loading, the
last answer's speed, what questions ask, the cascade's target, the session's time saved against always asking
the last tier, the policy and the config."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..paths import display_path

if TYPE_CHECKING:
    from .app import AutomixApp

ASK_PLACEHOLDER = "Ask about the context… (Enter to send, Esc to cancel)"


def status_line(app: AutomixApp) -> str:
    """One row: the tiers [what is loading] · tok/s · what questions ask · the target · time saved · the
    policy · the config file (left out when the row would not fit the screen)."""
    parts = []
    for t in app.config.tiers:
        if t.is_remote:
            parts.append(f"{t.name}: {t.model} (remote)")
        else:
            gpu = "GPU all layers" if t.n_gpu_layers < 0 else f"GPU {t.n_gpu_layers} layers"
            parts.append(f"{t.name} ({'CPU' if t.n_gpu_layers == 0 else gpu})")
    state = app.models_state
    if state == "ready":
        state = "all models ready"
    elif state.startswith("loading ") and app.ready_tiers:
        state = f"{', '.join(app.ready_tiers)} ready · {state}"
    tps = f" · {app.last_tps:.1f} tok/s" if app.last_tps else ""
    scope = "" if app.library.source is None else f" · asking: {app.library.words()}"
    target = target_words(app)
    saved = saved_words(app)
    extra = "".join(f" · {w}" for w in (target, saved) if w)
    line = f"{' → '.join(parts)} [{state}]{tps}{scope}{extra} · {app.settings.policy_words()}"
    config = f" · config {display_path(app.config.source_file)}"
    width = app.size.width
    return line if width and len(line + config) > width else line + config


def target_words(app: AutomixApp) -> str | None:
    """The cascade's target ("target balanced", "target ≤ 25% escalated"), when its router reads one: the
    cascade's own (the palette may have switched it for this session), else the config's."""
    if app.cascade is not None:
        value = app.cascade.target
    else:
        value = app.config.cascade.target if app.config.cascade.router == "trust" else None
    if value is None:
        return None
    if isinstance(value, str):
        return f"target {value}"
    return f"target ≤ {value:.0%} escalated"


def saved_words(app: AutomixApp) -> str | None:
    """This session's time against always asking the last local tier ("saved 12 s vs always-large"), once a
    question has been answered and that tier's speed is known."""
    from ..speeds import session_savings

    found = session_savings(app.service)
    return found[0].words(found[1]) if found is not None else None


def placeholder(app: AutomixApp) -> str:
    """The question box says what the models are doing: a question asked while they load is kept and
    answered when its tier is ready, without another key."""
    state = app.models_state
    if state.startswith("loading "):
        done = f"{', '.join(app.ready_tiers)} ready; " if app.ready_tiers else ""
        return f"{done}{state} ask now: your question is answered as soon as it can be"
    if state == "starting":
        return "starting… ask now: your question is answered as soon as the models are ready"
    if state == "missing":
        return "models missing: pull them (see the screen) or point models.toml at files you have"
    if state == "error":
        return "a model failed to load (see the message); questions cannot be answered"
    if app.library.source is not None:
        what = ", ".join(app.library.source.names) or "your documents"
        return f"Ask {what}… (Enter to send, Esc to cancel, ctrl+f: documents)"
    return ASK_PLACEHOLDER
