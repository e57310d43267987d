"""Kafka TLS and SASL settings become kafka-python's client options, or a clear refusal."""

from __future__ import annotations

import pytest

from consumer.kafka_loop import ConsumerSettings
from consumer.kafka_security import kafka_connection
from consumer.publisher import PublisherSettings


def test_plaintext_by_default_and_sasl_over_tls_when_asked(tmp_path):
    assert kafka_connection({}) == {"security_protocol": "PLAINTEXT"}
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    env = {"LEDGER_KAFKA_SECURITY_PROTOCOL": "sasl_ssl", "LEDGER_KAFKA_SSL_CAFILE": str(ca),
           "LEDGER_KAFKA_SASL_MECHANISM": "SCRAM-SHA-256", "LEDGER_KAFKA_SASL_USERNAME": "ledger",
           "LEDGER_KAFKA_SASL_PASSWORD": "pw"}
    expected = {"security_protocol": "SASL_SSL", "ssl_cafile": str(ca), "ssl_check_hostname": True,
                "sasl_mechanism": "SCRAM-SHA-256", "sasl_plain_username": "ledger", "sasl_plain_password": "pw"}
    assert kafka_connection(env) == expected
    assert dict(ConsumerSettings.from_env(env).connection) == expected  # both clients take them
    assert dict(PublisherSettings.from_env(env).connection) == expected


@pytest.mark.parametrize("env, complaint", [
    ({"LEDGER_KAFKA_SECURITY_PROTOCOL": "TLS"}, "LEDGER_KAFKA_SECURITY_PROTOCOL"),
    ({"LEDGER_KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "LEDGER_KAFKA_SASL_USERNAME": "u"}, "SASL_PASSWORD"),
    ({"LEDGER_KAFKA_SECURITY_PROTOCOL": "SSL", "LEDGER_KAFKA_SSL_CAFILE": "/nowhere/ca.pem"}, "no file"),
    ({"LEDGER_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT", "LEDGER_KAFKA_SASL_MECHANISM": "GSSAPI",
      "LEDGER_KAFKA_SASL_USERNAME": "u", "LEDGER_KAFKA_SASL_PASSWORD": "p"}, "MECHANISM"),
])
def test_settings_that_cannot_work_are_refused_at_start(env, complaint):
    with pytest.raises(ValueError, match=complaint):
        kafka_connection(env)
