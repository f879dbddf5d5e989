"""Dead letters: the original bytes, untouched, with headers saying why and where from."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

REASON = "copyflow.error.reason"
KIND = "copyflow.error.kind"
SOURCE_TOPIC = "copyflow.source.topic"
SOURCE_PARTITION = "copyflow.source.partition"
SOURCE_OFFSET = "copyflow.source.offset"
FAILED_AT = "copyflow.error.time"


@dataclass(frozen=True)
class DeadLetter:
    kind: str  # decode | schema | oversize | generation
    reason: str

    def headers(self, topic: str, partition: int, offset: int) -> list[tuple[str, bytes]]:
        return [
            (KIND, self.kind.encode()),
            (REASON, self.reason[:4000].encode()),
            (SOURCE_TOPIC, topic.encode()),
            (SOURCE_PARTITION, str(partition).encode()),
            (SOURCE_OFFSET, str(offset).encode()),
            (FAILED_AT, datetime.now(UTC).isoformat().encode()),
        ]
