"""Topic administration (kafka-python): copyflow creates its topics itself."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError

from copyflow.plugins.transport.connection import client_options
from copyflow.schemas.settings import KafkaSettings, TopicSettings

log = logging.getLogger(__name__)


class BrokerUnavailable(ConnectionError):
    pass


def ensure_topics(
    kafka: KafkaSettings, topics: TopicSettings, extra: Sequence[str] = ()
) -> list[str]:
    """Create copyflow's topics (and extra ones: input topics in other formats, the write-back
    topic) with their partition counts; return the ones that were new.

    Topics are never left to broker auto-creation: its partition count is the broker's choice.
    """
    names = [
        topics.products,
        topics.products_dlq,
        topics.suggestions,
        topics.feedback,
        topics.feedback_dlq,
        topics.control,
        *extra,
    ]
    names = list(dict.fromkeys(names))
    try:
        admin = KafkaAdminClient(**client_options(kafka), client_id="copyflow-admin")
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
