"""The app's settings (from the command palette): this conversation's [policy] remote/send, the verification
strategy, the router's trade-off, and the egress log that shows what the policy let out."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..cascade import CascadeError
from ..config import PolicyConfig
from ..paths import display_path
from ..policy import describe as describe_policy
from ..policy import override as policy_override
from .screens import AuditScreen, PromptScreen

if TYPE_CHECKING:
    from .app import AutomixApp

REMOTE_MODES = (
    ("never", "nothing leaves this machine"),
    ("ask", "show each request and send only if I approve"),
    ("allow", "send under the policy's send/redact rules"),
)
SEND_MODES = (
    ("question", "only the question"),
    ("relevant", "the question and the passage the answer depends on"),
    ("full", "the question and the whole context"),
)


class Settings:
    """What the palette changes. The policy override belongs to the conversation (saved with it); the
    verifier and the trade-off to the cascade, from the next question."""

    def __init__(self, app: AutomixApp) -> None:
        self.app = app
        self.policy_override: dict[str, str] = {}  # this conversation's [policy] remote/send changes

    @property
    def policy(self) -> PolicyConfig:
        """The policy in force for this conversation: models.toml's, with the conversation's override."""
        return policy_override(self.app.config.policy, self.policy_override)

    def policy_words(self) -> str:
        """The policy in the status bar: "local only", or remote/send (and whose it is)."""
        remote_tiers = any(t.is_remote for t in self.app.config.tiers)
        policy = self.policy
        words = "local only" if policy.remote == "never" or not remote_tiers else describe_policy(policy)
        return words + (" (this conversation)" if self.policy_override else "")

    def set_policy(self, key: str, value: str) -> None:
        app = self.app
        self.policy_override[key] = value
        if getattr(app.config.policy, key) == value:
            del self.policy_override[key]  # back to models.toml's
        if app.store is not None and app.conversation_id is not None:
            app.store.set_privacy(app.conversation_id, self.policy_override or None, app.document)
        app.update_status()
        app.notify(f"This conversation: {describe_policy(self.policy)}")

    def set_verifier(self, strategy: str) -> None:
        app = self.app
        if app.cascade is None:
            return
        try:
            app.cascade.set_verifier(strategy)
        except CascadeError as exc:
            app.notify(f"{str(exc)[0].upper()}{str(exc)[1:]}.", severity="warning")
            return
        app.notify(f"Verification: {strategy} (from the next question)")

    def tradeoff(self) -> None:
        """Ask for the router's threshold (or λ) for the next question."""
        app, cascade = self.app, self.app.cascade
        if cascade is None:
            return
        knob = cascade.tradeoff()
        if knob is None:
            app.notify(f"The {cascade.router.kind} router has no trade-off to set.", severity="warning")
            return
        if knob[0] == "threshold":
            title, value = "Escalate when confidence is below (0–1):", f"{knob[1]:.2f}"
        else:
            title, value = "POMDP λ (cost weight; larger escalates less):", f"{knob[1]:g}"

        def apply(text: str | None) -> None:
            if text is None:
                return
            try:
                x = float(text)
            except ValueError:
                app.notify(f"Not a number: {text!r}", severity="error")
                return
            app.notify(f"Trade-off set to {cascade.set_tradeoff(x):g} (from the next question)")

        app.push_screen(PromptScreen(title, value), apply)

    def audit(self) -> None:
        """The egress log: every request that left this machine, with its exact bytes."""
        from ..audit import AuditError, EgressLog

        app = self.app
        path = app.config.paths.egress_log
        entries = []
        if path.exists():
            try:
                log = EgressLog(path)
            except AuditError as exc:
                app.notify(str(exc), severity="error")
                return
            try:
                entries = log.entries()
            finally:
                log.close()
        app.push_screen(AuditScreen(entries, display_path(path)))
