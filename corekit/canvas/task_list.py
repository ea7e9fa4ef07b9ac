"""What `chain` and `group` share: a signature whose ``kwargs["tasks"]``
lists the signatures it is made of."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Mapping

from corekit.canvas.signature import Signature, maybe_signature
from corekit.exceptions import MalformedSignature

if TYPE_CHECKING:
    from corekit.app import Corekit


def _flatten_args(tasks: tuple[Any, ...]) -> list[Any]:
    """``group(a, b)``, ``group([a, b])`` and ``group(x for x in ...)``."""
    if len(tasks) == 1 and not isinstance(tasks[0], dict):
        if isinstance(tasks[0], (str, bytes)) or not hasattr(tasks[0], "__iter__"):
            raise MalformedSignature(f"not a signature: expected signatures or an iterable "
                                     f"of them, not {type(tasks[0]).__name__} {tasks[0]!r:.60}")
        return list(tasks[0])
    return list(tasks)


def _wire_form(value: Any) -> bool:
    """A signature's plain dict (from a message), not a Signature or a list."""
    return isinstance(value, dict) and not isinstance(value, Signature) and "task" in value


class _TaskList(Signature):
    """What `chain` and `group` share: a list of signatures under
    ``kwargs["tasks"]``, built from signatures (nested ones of the same
    kind without options are taken apart) or from the wire form."""

    BUILTIN: ClassVar[str] = ""

    def __init__(self, *tasks: Any, app: Corekit | None = None, **options: Any) -> None:
        if len(tasks) == 1 and _wire_form(tasks[0]):
            super().__init__(tasks[0], app=app)
            self.kwargs["tasks"] = [maybe_signature(t, app) for t in self.kwargs["tasks"]]
            return
        members: list[Signature] = []
        for t in _flatten_args(tasks):
            sig = maybe_signature(t, app)
            assert sig is not None
            if self._absorbs(sig) and not sig.options:
                members.extend(sig.tasks)  # type: ignore[attr-defined]
            else:
                members.append(sig)
        app = app or next((m._app for m in members if m._app is not None), None)
        super().__init__(self.BUILTIN, (), {"tasks": members}, options, app=app)

    def _absorbs(self, sig: Signature) -> bool:
        raise NotImplementedError

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], app: Corekit | None = None) -> Signature:
        return cls(dict(data), app=app)

    @property
    def tasks(self) -> list[Signature]:
        return self.kwargs["tasks"]

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.apply_async(args, kwargs)
