"""amqps:// really verifies the broker: its certificate against the CA and
its host name; passwords and TLS options stay out of what is logged."""
from __future__ import annotations

import pytest

from corekit.plugins.amqp.transport import AmqpTransport
from corekit.transport import mask_url
from servers import RabbitServer


def test_a_verified_connection_round_trips(rabbitmq_server: RabbitServer) -> None:
    transport = AmqpTransport(rabbitmq_server.fresh_tls_url())
    try:
        assert transport.fetch(["q"], 1, 0.05) == []
        assert transport.queue_size("q") == 0
    finally:
        transport.close()


@pytest.mark.parametrize("change", ["no CA", "wrong host name"])
def test_an_unverifiable_broker_is_refused(rabbitmq_server: RabbitServer, change: str) -> None:
    url = rabbitmq_server.fresh_tls_url()
    if change == "no CA":
        url = url.partition("?")[0]  # the system's CAs never signed the test CA
    else:
        url = url.replace("127.0.0.1", "localhost")  # the certificate names IP 127.0.0.1 only
    transport = AmqpTransport(url)
    with pytest.raises(Exception, match="CERTIFICATE_VERIFY_FAILED|certificate|match"):
        transport.connect()
    transport.close()


def test_verification_can_be_switched_off_explicitly(rabbitmq_server: RabbitServer) -> None:
    url = rabbitmq_server.fresh_tls_url().partition("?")[0] + "?ssl_cert_reqs=none"
    transport = AmqpTransport(url)
    try:
        transport.connect()
    finally:
        transport.close()


def test_the_password_is_masked() -> None:
    assert mask_url("amqps://user:s3cret@broker:5671/prod?ssl_ca_certs=/ca.pem") == (
        "amqps://user:**@broker:5671/prod?ssl_ca_certs=/ca.pem")
