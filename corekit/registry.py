"""The task registry: name -> task."""
from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any, Callable, Dict

from corekit.exceptions import DuplicateTaskWarning, NotRegistered

if TYPE_CHECKING:
    from corekit.task import Task


class TaskRegistry(Dict[str, "Task[Any, Any]"]):
    """Every task the app knows, by name."""

    def __init__(self) -> None:
        super().__init__()
        #: (file, line, qualname) of each function given a generated name -> that name
        self._origins: dict[tuple[str, int, str], str] = {}

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

    def note_origin(self, name: str, fn: Callable[..., Any]) -> None:
        """Remember where the function of task *name* (a name made from its
        module) is defined; warn when it was registered before under another
        name (its module imported twice, under two names)."""
        code = getattr(fn, "__code__", None)
        if code is None:
            return
        key = (code.co_filename, code.co_firstlineno, getattr(fn, "__qualname__", name))
        other = self._origins.setdefault(key, name)
        if other != name:
            module, other_module = name.rpartition(".")[0], other.rpartition(".")[0]
            warnings.warn(
                f"task {name!r} is also registered as {other!r}: {code.co_filename} was "
                f"imported as both {module} and {other_module}, and a worker that imported "
                f"it only one way does not know the other name. Import it one way (as "
                f"INSTALLED_APPS names the app, for Django), or name the task: "
                f"@task(name=...)", DuplicateTaskWarning, stacklevel=5)
