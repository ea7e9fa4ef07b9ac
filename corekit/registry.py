"""The task registry: name -> task."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Dict

from corekit.exceptions import NotRegistered

if TYPE_CHECKING:
    from corekit.task import Task


class TaskRegistry(Dict[str, "Task[Any, Any]"]):
    """Every task the app knows, by name."""

    def __missing__(self, name: str) -> Task[Any, Any]:
        raise NotRegistered(name)

    def register(self, task: Task[Any, Any]) -> Task[Any, Any]:
        self[task.name] = task
        return task

    def unregister(self, name: str) -> None:
        try:
            del self[name]
        except KeyError:
            raise NotRegistered(name) from None

    def user_tasks(self) -> list[str]:
        """Names of the tasks users defined (not corekit's own, nor the
        canvas's builtins under Celery's ``celery.`` names)."""
        return sorted(n for n in self if not n.startswith(("corekit.", "celery.")))
