"""`chain`: tasks run one after the other, each result handed to the next."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping, Sequence

from corekit.canvas.group import chord, group
from corekit.canvas.signature import Signature, _ROUTED_TO_LAST, maybe_signature
from corekit.canvas.task_list import _TaskList

if TYPE_CHECKING:
    from corekit.messages import Message


class chain(_TaskList):  # noqa: N801 - Celery's name
    """Tasks run one after another, each getting the previous one's result:
    ``chain(add.s(2, 2), add.s(4))`` or ``add.s(2, 2) | add.s(4)``.  Its
    result is the last task's, with ``.parent`` leading back."""

    TYPE = "chain"
    BUILTIN = "celery.chain"

    def _absorbs(self, sig: Signature) -> bool:
        return isinstance(sig, chain)

    def __repr__(self) -> str:
        return " | ".join(repr(t) for t in self.tasks) if self.tasks else "chain()"

    def link(self, callback: Signature) -> Signature:
        return self.tasks[-1].link(callback) if self.tasks else super().link(callback)

    def link_error(self, errback: Signature) -> Signature:
        for task in self.tasks:
            task.link_error(errback)
        return errback

    def steps(self) -> list[Signature]:
        """The tasks, copied, with a group followed by anything turned into
        a chord (the group's results are what the next step gets)."""
        steps = [t.clone() for t in self.tasks]
        out: list[Signature] = []
        for step in steps:
            if out and isinstance(out[-1], group) and not isinstance(out[-1], chord):
                out[-1] = chord(out[-1], step, app=self._app)
            else:
                out.append(step)
        return out

    def _split(self, options: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        """Options for the first step and for the last (the chain's result)."""
        first = {k: v for k, v in options.items() if k not in _ROUTED_TO_LAST}
        last = {k: v for k, v in options.items() if k in _ROUTED_TO_LAST}
        return first, last

    def freeze(self, _id: str | None = None, group_id: str | None = None, chord: Any = None,
               root_id: str | None = None, parent_id: str | None = None,
               group_index: int | None = None) -> Any:
        steps = self.steps()
        self.kwargs["tasks"] = steps
        results = self._freeze_steps(steps, {"task_id": _id, "group_id": group_id,
                                             "chord": chord, "group_index": group_index})
        return results[-1]

    def _freeze_steps(self, steps: list[Signature], last: Mapping[str, Any]) -> list[Any]:
        results = []
        for i, step in enumerate(steps):
            if i == len(steps) - 1:
                res = step.freeze(last.get("task_id"), group_id=last.get("group_id"),
                                  chord=last.get("chord"), group_index=last.get("group_index"))
                for cb in last.get("link") or ():
                    step.link(cb)
            else:
                res = step.freeze()
            if results and getattr(res, "parent", None) is None:
                res.parent = results[-1]
            results.append(res)
        return results

    def prepare(self, args: Sequence[Any] | None, kwargs: Mapping[str, Any] | None,
                options: Mapping[str, Any]) -> tuple[list[Message], Any]:
        options = {**self.options, **options}
        rest = [maybe_signature(t, self._app) for t in reversed(options.pop("chain", None) or [])]
        steps = self.steps() + [t for t in rest if t is not None]
        if not steps:
            raise ValueError("an empty chain has nothing to run")
        first_opts, last_opts = self._split(options)
        if "link" in last_opts and not isinstance(last_opts["link"], (list, tuple)):
            last_opts["link"] = [last_opts["link"]]
        results = self._freeze_steps(steps, last_opts)
        if "link_error" in first_opts:
            errbacks = first_opts.pop("link_error")
            for step in steps:
                for eb in errbacks if isinstance(errbacks, (list, tuple)) else [errbacks]:
                    step.link_error(eb)
        later = [dict(step) for step in reversed(steps[1:])]
        if later:
            first_opts["chain"] = later
        messages, _ = steps[0].prepare(args, kwargs, first_opts)
        return messages, results[-1]

    def apply(self, args: Sequence[Any] | None = None, kwargs: Mapping[str, Any] | None = None,
              **options: Any) -> Any:
        steps = self.steps()
        result = steps[0].apply(args, kwargs)
        for step in steps[1:]:
            parent, result = result, step.apply((result.get(),))
            result.parent = parent
        return result
