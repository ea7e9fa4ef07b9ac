"""Bootsteps: the parts of a worker, started in dependency order.

A `Step` owns the objects it builds in `create` and exposes them as its own
attributes; other steps reach them through the blueprint (``bp[PoolStep].pool``),
never through attributes written onto the parent.
"""
from __future__ import annotations

import logging
from typing import Any, ClassVar, Iterable, Literal, Mapping, TypeVar, cast

from corekit.exceptions import ImproperlyConfigured

logger = logging.getLogger("corekit.bootsteps")

S = TypeVar("S", bound="Step")
State = Literal["initial", "running", "stopped"]


class Step:
    """One part of a blueprint.  ``requires`` names the step classes that
    must be created and started before this one; ``name`` defaults to the
    class name."""

    name: ClassVar[str] = "Step"
    requires: ClassVar[tuple[type[Step], ...]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if not cls.__dict__.get("name"):
            cls.name = cls.__name__

    def enabled(self, parent: Any) -> bool:
        """Whether this step takes part; a disabled step is skipped."""
        return True

    def create(self, parent: Any) -> None:
        """Build the objects this step owns."""

    def start(self, parent: Any) -> None:
        """Start them."""

    def stop(self, parent: Any) -> None:
        """Stop them, letting work in progress finish."""

    def terminate(self, parent: Any) -> None:
        """Stop them at once; by default the same as `stop`."""
        self.stop(parent)

    def __repr__(self) -> str:
        return f"<step {self.name}>"


def _label(cls: type[Step]) -> str:
    return cls.__qualname__ if "<locals>" not in cls.__qualname__ else cls.__name__


class Blueprint:
    """Orders steps by ``requires``, creates and starts them in that order,
    and stops them in reverse.

    Every step a step requires must be among *steps*: a required class is
    never pulled in behind the user's back (it may belong to a plugin that
    is not installed, or be left out on purpose).  *owners* says which
    plugin added a step, for the error messages.
    """

    def __init__(self, steps: Iterable[type[Step]],
                 owners: Mapping[type[Step], str] | None = None) -> None:
        self.declared: list[type[Step]] = list(steps)
        self.owners: dict[type[Step], str] = dict(owners or {})
        self.steps: dict[type[Step], Step] = {}
        self.started: list[Step] = []
        self.state: State = "initial"
        self._applied = False

    def order(self) -> list[type[Step]]:
        """Every step class after those it requires, declared order kept where
        free.  A cycle, or a requirement that was not declared, is an
        `ImproperlyConfigured` naming the steps."""
        ordered: dict[type[Step], None] = {}
        visiting: list[type[Step]] = []
        declared = set(self.declared)

        def visit(cls: type[Step]) -> None:
            if cls in ordered:
                return
            if cls in visiting:
                cycle = visiting[visiting.index(cls):] + [cls]
                raise ImproperlyConfigured(
                    "bootsteps have circular requires: " + " -> ".join(map(_label, cycle)))
            visiting.append(cls)
            for required in cls.requires:
                if required not in declared:
                    raise ImproperlyConfigured(
                        f"step {self._named(cls)} requires step {_label(required)}, which is "
                        f"not in this blueprint: install or enable the plugin that adds it, "
                        f"or drop the requirement")
                visit(required)
            visiting.pop()
            ordered[cls] = None

        for cls in self.declared:
            visit(cls)
        return list(ordered)

    def _named(self, cls: type[Step]) -> str:
        owner = self.owners.get(cls)
        return f"{_label(cls)} (plugin {owner!r})" if owner else _label(cls)

    def apply(self, parent: Any) -> Blueprint:
        """Instantiate every enabled step once and call `create` in order.
        Checks everything before creating anything; a second call does nothing."""
        if self._applied:
            return self
        instances = {cls: cls() for cls in self.order()}
        enabled = {cls: step for cls, step in instances.items() if step.enabled(parent)}
        for cls in enabled:
            missing = [_label(r) for r in cls.requires if r not in enabled]
            if missing:
                raise ImproperlyConfigured(
                    f"step {_label(cls)} requires disabled step(s): {', '.join(missing)}")
        self._applied = True
        for cls, step in enabled.items():
            step.create(parent)
            self.steps[cls] = step
        return self

    def __getitem__(self, cls: type[S]) -> S:
        try:
            return cast(S, self.steps[cls])
        except KeyError:
            raise KeyError(f"step {_label(cls)} is not part of this blueprint "
                           "(not listed, disabled, or the blueprint is not applied)") from None

    def __contains__(self, cls: object) -> bool:
        return cls in self.steps

    def start(self, parent: Any) -> None:
        """Start the steps in order.  If one fails, stop those already
        started (in reverse) and re-raise its error."""
        if self.state == "running":
            return
        if self.state == "stopped":
            raise RuntimeError("a stopped blueprint cannot start again")
        for step in self.steps.values():
            try:
                step.start(parent)
            except BaseException:
                try:
                    self.stop(parent)
                except Exception:
                    pass  # already logged by stop; the start error is the one to report
                raise
            self.started.append(step)
        self.state = "running"

    def stop(self, parent: Any, terminate: bool = False) -> None:
        """Stop started steps in reverse order (``terminate`` them if asked).
        Every step gets its turn; the first error is re-raised at the end.
        Calling it again does nothing."""
        first: BaseException | None = None
        while self.started:
            step = self.started.pop()
            try:
                if terminate:
                    step.terminate(parent)
                else:
                    step.stop(parent)
            except Exception as exc:
                logger.exception("bootstep %s failed to stop", step.name)
                first = first or exc
        self.state = "stopped"
        if first is not None:
            raise first
