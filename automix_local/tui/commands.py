"""The app's commands in the command palette (ctrl+p): a Textual command provider beside Textual's own."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, NamedTuple

from textual.command import DiscoveryHit, Hit, Hits, Provider

from ..errors import AutomixError, one_line
from .settings import REMOTE_MODES, SEND_MODES

if TYPE_CHECKING:
    from .app import AutomixApp


class Command(NamedTuple):
    name: str
    help: str
    run: Callable[[], object]


def app_commands(app: AutomixApp) -> list[Command]:
    """Every command of the app, in the palette's words; the remote/send ones only with a remote tier."""
    s, lib = app.settings, app.library
    out = [
        Command("Open context file…", "Load a text or Markdown file as the context", app.action_open_file),
        Command("Conversations…", "Reopen a saved conversation", app.action_conversations),
        Command("New conversation", "Start over (keeps the context)", app.action_new_conversation),
        Command("Export conversation", "Write the conversation to Markdown and JSON", app.action_export),
        Command("Toggle trace pane", "Per-tier confidence, decision, cost", app.action_toggle_trace),
        Command("Verification: logprob", "One forward pass (fast)", partial(s.set_verifier, "logprob")),
        Command("Verification: sampled", "k sampled verdicts (paper)", partial(s.set_verifier, "sampled")),
        Command("Trade-off…", "Threshold (threshold router) or λ (POMDP) for the next question", s.tradeoff),
        Command("Egress log…", "Every request that left this machine, with its payload", s.audit),
        Command("Documents: ask the whole library", "Questions retrieve from every indexed document", lib.whole),
        Command("Documents…", "The library and its index state; choose what questions ask", lib.open_pane),
        Command("Documents: add a file or folder…", "Index it into the library", lib.add),
        Command("Documents: use the context pane", "Questions are asked over the pasted text again", lib.context),
    ]
    if app.cascade is not None and app.cascade.target is not None:
        for target, what in TARGETS:
            out.append(Command(f"Target: {target}", f"{what} (this session)", partial(set_target, app, target)))
    if any(t.is_remote for t in app.config.tiers):
        for key, label, modes in (("remote", "Remote", REMOTE_MODES), ("send", "Send", SEND_MODES)):
            for mode, what in modes:
                out.append(Command(f"{label} (this conversation): {mode}", what, partial(s.set_policy, key, mode)))
    return out


TARGETS = (  # [cascade] target (the trust router: abstain.py)
    ("quality", "as good as always asking the last model, in the least time"),
    ("balanced", "well under the time of always asking the last model"),
    ("fast", "the first model answers alone: nothing escalates"),
)


def set_target(app: AutomixApp, value: str) -> None:
    """Switch the cascade's [cascade] target for this session, from the next question."""
    cascade = app.cascade
    if cascade is None:
        app.notify("The models are not ready yet (see the status bar).", severity="warning")
        return
    try:
        cascade.set_target(value)
    except AutomixError as exc:
        app.notify(one_line(exc), severity="warning")
        return
    app.update_status()
    app.notify(f"Target: {value} (from the next question, this session)")


class AppCommands(Provider):
    """The app's commands: all listed when the palette opens, fuzzy-matched as you type."""

    def _commands(self) -> list[Command]:
        from .app import AutomixApp

        app = self.app
        return app_commands(app) if isinstance(app, AutomixApp) else []

    async def discover(self) -> Hits:
        for c in sorted(self._commands(), key=lambda c: c.name):
            yield DiscoveryHit(c.name, c.run, help=c.help)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for c in self._commands():
            if (score := matcher.match(c.name)) > 0:
                yield Hit(score, matcher.highlight(c.name), c.run, help=c.help)
