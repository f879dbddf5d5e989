"""The one translation of the connection settings into client options.

kafka-python and aiokafka name their connection options alike, so both get the same dict:
bootstrap servers, security protocol, SASL credentials and an SSL context built once here.
"""

from __future__ import annotations

import ssl
from typing import Any

from copyflow.schemas.settings import KafkaSettings


def client_options(kafka: KafkaSettings) -> dict[str, Any]:
    """Connection and security options for kafka-python and aiokafka clients."""
    options: dict[str, Any] = {
        "bootstrap_servers": kafka.servers(),
        "security_protocol": kafka.security_protocol,
    }
    if kafka.security_protocol.endswith("SSL"):
        cafile = str(kafka.ssl_cafile.expanduser()) if kafka.ssl_cafile else None
        options["ssl_context"] = ssl.create_default_context(cafile=cafile)
    if kafka.security_protocol.startswith("SASL"):
        options["sasl_mechanism"] = kafka.sasl_mechanism
        options["sasl_plain_username"] = kafka.sasl_username
        if kafka.sasl_password is not None:
            options["sasl_plain_password"] = kafka.sasl_password.get_secret_value()
    return options
