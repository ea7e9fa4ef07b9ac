"""Signatures and workflows: ``add.s(2, 2)``, `chain`, `group`, `chord`,
`chunks`, ``add.map``/``add.starmap``.

A `Signature` is a dict in Celery's wire form ``{task, args, kwargs,
options, subtask_type, immutable, chord_size}`` (DESIGN.md §3), so it
travels inside task messages as it is: ``link``/``link_error`` callbacks,
the rest of a chain, a chord's body.  The workflow types are signatures too
(``subtask_type`` chain, group, chord, chunks, xmap, xstarmap) and nest in
any way.

Publishing a workflow first *prepares* it: every task gets its id up front
(so the caller's result objects are right from the start) and every message
is built; then all messages go to the broker in one batch.  The worker does
the rest (`corekit.workflow`): it sends the next task of a chain and the
callbacks when a task succeeds, calls the errbacks when it fails, and joins
a chord with a counter in the result backend, never with a polling task.

The package's modules: `Signature` and the functions that make one
(`corekit.canvas.signature`), what chain and group share
(`corekit.canvas.task_list`), `chain` (`corekit.canvas.chain`), `group` and
`chord` (`corekit.canvas.group`), `xmap`, `xstarmap` and `chunks`
(`corekit.canvas.maps`).  Import them from here, as Celery users import
from ``celery.canvas``.
"""
from __future__ import annotations

from corekit.canvas.chain import chain
from corekit.canvas.group import chord, group
from corekit.canvas.maps import chunks, xmap, xstarmap
from corekit.canvas.signature import Signature, maybe_signature, signature, subtask

__all__ = ["Signature", "chain", "chord", "chunks", "group", "maybe_signature", "signature",
           "subtask", "xmap", "xstarmap"]
