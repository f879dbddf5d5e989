"""Kafka client configuration and topic administration (kafka-python)."""

from __future__ import annotations

import logging
import ssl
from typing import Any

from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError

from schemas.settings import KafkaSettings, TopicSettings

log = logging.getLogger(__name__)


class BrokerUnavailable(ConnectionError):
    pass


def kafka_python_config(kafka: KafkaSettings) -> dict[str, Any]:
    """Connection and security options for kafka-python clients."""
    config: dict[str, Any] = {
        "bootstrap_servers": kafka.servers(),
        "security_protocol": kafka.security_protocol,
    }
    if kafka.security_protocol.startswith("SASL"):
        config["sasl_mechanism"] = kafka.sasl_mechanism
        config["sasl_plain_username"] = kafka.sasl_username
        if kafka.sasl_password is not None:
            config["sasl_plain_password"] = kafka.sasl_password.get_secret_value()
    if kafka.ssl_cafile is not None:
        config["ssl_cafile"] = str(kafka.ssl_cafile)
    return config


def ssl_context(kafka: KafkaSettings) -> ssl.SSLContext | None:
    if not kafka.security_protocol.endswith("SSL"):
        return None
    cafile = str(kafka.ssl_cafile) if kafka.ssl_cafile else None
    return ssl.create_default_context(cafile=cafile)


def ensure_topics(kafka: KafkaSettings, topics: TopicSettings) -> list[str]:
    """Create copyflow's topics with their partition counts; return the ones that were new.

    Topics are never left to broker auto-creation: its partition count is the broker's choice.
    """
    names = [
        topics.products,
        topics.products_dlq,
        topics.suggestions,
        topics.feedback,
        topics.feedback_dlq,
        topics.control,
    ]
    try:
        admin = KafkaAdminClient(**kafka_python_config(kafka), client_id="copyflow-admin")
    except KafkaError as exc:
        raise BrokerUnavailable(
            f"no Kafka broker answered at {kafka.bootstrap} "
            f"(kafka.bootstrap, COPYFLOW_KAFKA__BOOTSTRAP): {exc}"
        ) from None
    try:
        existing = set(admin.list_topics())
        missing = [name for name in names if name not in existing]
        created = []
        for name in missing:
            # One request per topic: a topic created meanwhile by another worker is fine.
            # The control topic is the workers' record of what serves each scope: compacted
            # (keyed by scope), so the latest release of every scope outlives retention.
            configs = {"cleanup.policy": "compact"} if name == topics.control else {}
            try:
                admin.create_topics(
                    [
                        NewTopic(
                            name,
                            topics.partitions,
                            topics.replication_factor,
                            topic_configs=configs,
                        )
                    ]
                )
                created.append(name)
            except TopicAlreadyExistsError:
                pass
    finally:
        admin.close()
    if created:
        log.info("created topics %s with %d partitions", created, topics.partitions)
    return created
