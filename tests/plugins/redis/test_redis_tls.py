"""``rediss://``: the session's redis-server listens with TLS too, and corekit
hands the URL's TLS options to redis-py, which verifies the certificate.
(The transport and result backend contract suites run on ``rediss://``.)"""
from __future__ import annotations

import pytest
import redis

from corekit.plugins.redis.client import connect
from corekit.transport import mask_url
from servers import RedisServer


def test_tls_options_in_the_url_reach_redis_py(redis_server: RedisServer) -> None:
    client = connect(redis_server.tls_url)
    try:
        kwargs = client.connection_pool.connection_kwargs
        assert client.connection_pool.connection_class is redis.SSLConnection
        assert kwargs["ssl_cert_reqs"] == "required"
        assert kwargs["ssl_ca_certs"] == str(redis_server.ca_path)
        assert client.ping()
    finally:
        client.close()


@pytest.mark.parametrize("change", ["without the session CA", "by a name not in the cert"])
def test_the_server_certificate_is_verified(redis_server: RedisServer, change: str) -> None:
    url = redis_server.tls_url
    if change == "without the session CA":
        url = url.split("&ssl_ca_certs=")[0]  # the system's CAs never signed it
    else:
        url = url.replace("127.0.0.1", "localhost")  # the cert names IP:127.0.0.1 only
    client = connect(url)
    try:
        with pytest.raises(redis.ConnectionError, match="CERTIFICATE_VERIFY_FAILED"):
            client.ping()
    finally:
        client.close()


def test_plain_redis_protocol_is_refused_on_the_tls_port(redis_server: RedisServer) -> None:
    client = connect(f"redis://127.0.0.1:{redis_server.tls_port}/0?socket_timeout=2")
    try:
        with pytest.raises(redis.ConnectionError):
            client.ping()
    finally:
        client.close()


def test_mask_url_hides_passwords_of_rediss_urls() -> None:
    options = "ssl_cert_reqs=required&ssl_ca_certs=/tmp/ca.pem"
    assert (mask_url(f"rediss://:s3cret@127.0.0.1:6390/0?{options}")
            == f"rediss://:**@127.0.0.1:6390/0?{options}")
    assert (mask_url(f"rediss://user:s3cret@[::1]:6390/0?{options}")
            == f"rediss://user:**@[::1]:6390/0?{options}")
    assert (mask_url("rediss://h:6390/0?password=s3cret&ssl_password=k3y&ssl_cert_reqs=none")
            == "rediss://h:6390/0?password=**&ssl_password=**&ssl_cert_reqs=none")
    assert mask_url(f"rediss://127.0.0.1:6390/0?{options}") == f"rediss://127.0.0.1:6390/0?{options}"
