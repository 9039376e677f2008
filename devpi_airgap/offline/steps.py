"""The step layer: every change to a server is a step that reads, diffs and applies.

A step reads the server's current state (`read`), says what would have to
change (`diff`, a pure function of that state, testable from recorded facts
with no host), and makes exactly that change (`apply`). The Runner runs steps
in order and records an Outcome for each; under `check` it reads and diffs but
applies nothing, which is how `fab deploy --check` comes for free. Steps never
print: the Runner hands each Outcome to the task layer, which does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from devpi_airgap.offline.remote import Host


class Step:
    """One change to one server. Subclasses set `name` and implement the three phases."""

    name: str = ""

    def read(self, host: Host) -> Any:
        raise NotImplementedError

    def diff(self, state: Any) -> list[str]:
        """What would change, one phrase each; empty when the server is as wanted."""
        raise NotImplementedError

    def apply(self, host: Host, state: Any) -> list[str] | None:
        """Make the change; may return a more exact account of what changed than the diff gave."""
        raise NotImplementedError


@dataclass(frozen=True)
class Outcome:
    step: str
    changes: tuple[str, ...] = ()  # what changed, or under --check what would
    applied: bool = False  # False for a step that found nothing to do, and for every step under --check


@dataclass
class Runner:
    host: Host
    check: bool = False
    on_outcome: Callable[[Outcome], None] = lambda outcome: None
    outcomes: list[Outcome] = field(default_factory=list)

    def run(self, step: Step) -> Outcome:
        state = step.read(self.host)
        changes = step.diff(state)
        if changes and not self.check:
            changes = step.apply(self.host, state) or changes
        return self.record(step.name, changes, applied=bool(changes) and not self.check)

    def record(self, name: str, changes: list[str] | tuple[str, ...] = (), *, applied: bool | None = None) -> Outcome:
        """Record an outcome worked out outside a Step (a check that passed, a wait, an upload's result)."""
        outcome = Outcome(name, tuple(changes), bool(changes) and not self.check if applied is None else applied)
        self.outcomes.append(outcome)
        self.on_outcome(outcome)
        return outcome

    @property
    def changed(self) -> bool:
        return any(outcome.changes for outcome in self.outcomes)
