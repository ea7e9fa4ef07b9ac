"""The ``amqp://`` transport (RabbitMQ, through kombu and py-amqp) and the
``rpc://`` result backend, which sends results back to the caller as messages."""
from __future__ import annotations

from corekit.hookspecs import hookimpl


@hookimpl
def corekit_register_transports() -> dict[str, str]:
    return dict.fromkeys(("amqp", "amqps", "pyamqp"),
                         "corekit.plugins.amqp.transport:AmqpTransport")


@hookimpl
def corekit_register_result_backends() -> dict[str, str]:
    return {"rpc": "corekit.plugins.amqp.rpc:RpcBackend"}
