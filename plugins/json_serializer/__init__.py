"""The ``json`` serializer (the default): kombu's JSON, ``application/json``
(see `corekit.plugins.json_serializer.serializer`).  Hooks only: this module
is imported at every start-up."""
from __future__ import annotations

from typing import TYPE_CHECKING

from corekit.hookspecs import hookimpl

if TYPE_CHECKING:
    from corekit.serialization import Serializer


@hookimpl
def corekit_register_serializers() -> list[Serializer]:
    from corekit.plugins.json_serializer.serializer import JSONSerializer

    return [JSONSerializer()]
