"""Bootsteps: the parts of a worker, started in dependency order."""
from __future__ import annotations

import logging
from typing import Any, ClassVar, Iterable

from corekit.exceptions import ImproperlyConfigured

logger = logging.getLogger("corekit.bootsteps")


class Step:
    """One part of a blueprint.  ``requires`` names the step classes that
    must be created and started before this one."""

    name: ClassVar[str] = ""
    requires: ClassVar[tuple[type[Step], ...]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if not cls.__dict__.get("name"):
            cls.name = cls.__name__

    def enabled(self, parent: Any) -> bool:
        return True

    def create(self, parent: Any) -> None:
        """Build the objects this step owns."""

    def start(self, parent: Any) -> None:
        """Start them."""

    def stop(self, parent: Any) -> None:
        """Stop them."""

    def terminate(self, parent: Any) -> None:
        self.stop(parent)


class Blueprint:
    """Orders steps by ``requires``, creates, starts and stops them."""

    def __init__(self, steps: Iterable[type[Step]]) -> None:
        self.declared = list(steps)
        self.steps: dict[type[Step], Step] = {}
        self.started: list[Step] = []
        self.state = "initial"

    def order(self) -> list[type[Step]]:
        ordered: list[type[Step]] = []
        visiting: list[type[Step]] = []

        def visit(cls: type[Step]) -> None:
            if cls in ordered:
                return
            if cls in visiting:
                cycle = visiting[visiting.index(cls):] + [cls]
                raise ImproperlyConfigured(
                    "circular requires: " + " -> ".join(c.__name__ for c in cycle))
            visiting.append(cls)
            for req in cls.requires:
                visit(req)
            visiting.pop()
            ordered.append(cls)

        for cls in self.declared:
            visit(cls)
        return ordered

    def apply(self, parent: Any) -> Blueprint:
        instances = [(cls, cls()) for cls in self.order()]
        enabled = {cls for cls, step in instances if step.enabled(parent)}
        for cls, step in instances:
            if cls not in enabled:
                continue
            missing = [r.__name__ for r in cls.requires if r not in enabled]
            if missing:
                raise ImproperlyConfigured(
                    f"step {cls.__name__} requires disabled step(s): {', '.join(missing)}")
            self.steps[cls] = step
            step.create(parent)
        return self

    def __getitem__(self, cls: type[Step]) -> Any:
        return self.steps[cls]

    def start(self, parent: Any) -> None:
        for step in self.steps.values():
            try:
                step.start(parent)
            except BaseException:
                self.stop(parent)
                raise
            self.started.append(step)
        self.state = "running"

    def stop(self, parent: Any) -> None:
        first: BaseException | None = None
        while self.started:
            step = self.started.pop()
            try:
                step.stop(parent)
            except Exception as exc:
                logger.exception("error stopping step %s", step.name)
                first = first or exc
        self.state = "stopped"
        if first is not None:
            raise first
