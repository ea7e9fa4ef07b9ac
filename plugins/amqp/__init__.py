"""The ``amqp://`` transport (RabbitMQ, through kombu and py-amqp) and the
``rpc://`` result backend, which sends results back to the caller as messages."""
from __future__ import annotations

from corekit.hookspecs import hookimpl


@hookimpl
def corekit_register_transports() -> dict[str, type]:
    from corekit.plugins.amqp.transport import AmqpTransport

    return {"amqp": AmqpTransport, "amqps": AmqpTransport, "pyamqp": AmqpTransport}


@hookimpl
def corekit_register_result_backends() -> dict[str, type]:
    from corekit.plugins.amqp.rpc import RpcBackend

    return {"rpc": RpcBackend}
