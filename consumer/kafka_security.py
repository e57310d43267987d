"""How the consumer and the publisher connect to Kafka: plaintext, TLS, SASL or both,
from the environment (deploy/README.md), as kafka-python's client options."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from service.settings import InvalidSetting

PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")


def kafka_connection(env: Mapping[str, str]) -> dict[str, Any]:
    """kafka-python options for LEDGER_KAFKA_SECURITY_PROTOCOL and its companions; a
    setting that cannot work (SASL without a password, a missing certificate file) is
    refused at start with its name."""
    protocol = (env.get("LEDGER_KAFKA_SECURITY_PROTOCOL") or "PLAINTEXT").upper()
    if protocol not in PROTOCOLS:
        raise InvalidSetting(f"LEDGER_KAFKA_SECURITY_PROTOCOL must be one of {', '.join(PROTOCOLS)}, got {protocol!r}")
    options: dict[str, Any] = {"security_protocol": protocol}
    if protocol in ("SSL", "SASL_SSL"):
        for setting, option in (("LEDGER_KAFKA_SSL_CAFILE", "ssl_cafile"), ("LEDGER_KAFKA_SSL_CERTFILE", "ssl_certfile"),
                                ("LEDGER_KAFKA_SSL_KEYFILE", "ssl_keyfile")):
            path = env.get(setting)
            if path:
                if not Path(path).is_file():
                    raise InvalidSetting(f"{setting}: no file at {path}")
                options[option] = path
        if env.get("LEDGER_KAFKA_SSL_PASSWORD"):
            options["ssl_password"] = env["LEDGER_KAFKA_SSL_PASSWORD"]
        options["ssl_check_hostname"] = (env.get("LEDGER_KAFKA_SSL_CHECK_HOSTNAME") or "true").lower() != "false"
    if protocol.startswith("SASL_"):
        mechanism = (env.get("LEDGER_KAFKA_SASL_MECHANISM") or "SCRAM-SHA-512").upper()
        if mechanism not in MECHANISMS:
            raise InvalidSetting(f"LEDGER_KAFKA_SASL_MECHANISM must be one of {', '.join(MECHANISMS)}")
        username, password = env.get("LEDGER_KAFKA_SASL_USERNAME"), env.get("LEDGER_KAFKA_SASL_PASSWORD")
        if not username or not password:
            raise InvalidSetting("SASL needs LEDGER_KAFKA_SASL_USERNAME and LEDGER_KAFKA_SASL_PASSWORD")
        options.update(sasl_mechanism=mechanism, sasl_plain_username=username, sasl_plain_password=password)
    return options
