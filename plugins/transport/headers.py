"""Headers on what copyflow publishes (dead letters have their own: transport.dead_letters)."""

SUGGESTION_ID = "copyflow.suggestion_id"  # on suggestions and write-back updates
FORMAT = "copyflow.format"  # on write-back updates: the format that encoded it
DELETED_TENANT = "copyflow.deleted.tenant"  # on tombstones: whose product was deleted
SOURCE_EVENT = "copyflow.source_event_id"  # on tombstones: the deletion event's id
