"""Settings: environment (prefix COPYFLOW_, sections joined by "__") over an optional TOML file.

Example: COPYFLOW_KAFKA__BOOTSTRAP=broker:9092 sets ``kafka.bootstrap``.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

ENV_PREFIX = "COPYFLOW_"
ENV_NESTED_DELIMITER = "__"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class KafkaSettings(_Section):
    bootstrap: str = Field(
        default="localhost:9092", description="Comma-separated host:port list of brokers."
    )
    group_id: str = Field(default="copyflow", min_length=1, description="Consumer group id.")
    group_instance_id: str | None = Field(
        default=None,
        min_length=1,
        description="Static membership (Kafka group.instance.id): a name unique to this "
        "worker and stable across its restarts. A restarted worker then gets its partitions "
        "back without a rebalance and takes over its own single-flight locks at once.",
    )
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = "PLAIN"
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_cafile: Path | None = None
    session_timeout_s: float = Field(
        default=10.0,
        gt=0,
        description="How long the group waits for a member that stopped heartbeating: a "
        "worker killed without static membership holds its partitions this long.",
    )
    heartbeat_interval_s: float = Field(default=3.0, gt=0)
    rebalance_timeout_s: float = Field(default=30.0, gt=0)
    max_poll_interval_s: float = Field(default=300.0, gt=0)

    @field_validator("bootstrap")
    @classmethod
    def _host_ports(cls, value: str) -> str:
        for server in value.split(","):
            host, sep, port = server.strip().rpartition(":")
            if not sep or not host or not port.isdigit():
                raise ValueError(f"expected host:port[,host:port...], got {value!r}")
        return value

    def servers(self) -> list[str]:
        return [s.strip() for s in self.bootstrap.split(",")]


class RedisSettings(_Section):
    url: SecretStr = Field(
        default=SecretStr("redis://127.0.0.1:6379/0"),
        description="redis:// or rediss:// URL; may carry a password, hence secret.",
    )
    ssl_cafile: Path | None = Field(default=None, description="CA bundle for rediss:// URLs.")
    socket_timeout_s: float = Field(
        default=0.5, gt=0, description="A slower Redis answer counts as Redis trouble."
    )
    connect_timeout_s: float = Field(default=0.5, gt=0)
    retry_after_s: float = Field(
        default=5.0, ge=0, description="After Redis trouble, how long to run without it."
    )

    @field_validator("url")
    @classmethod
    def _redis_scheme(cls, value: SecretStr) -> SecretStr:
        scheme = value.get_secret_value().partition("://")[0]
        if scheme not in ("redis", "rediss", "unix"):
            raise ValueError(f"expected a redis://, rediss:// or unix:// URL, got {scheme}://")
        return value


class CacheSettings(_Section):
    enabled: bool = Field(default=True, description="Reuse generated copy through Redis.")
    ttl_s: int = Field(default=7 * 86_400, ge=1, description="How long generated copy is kept.")
    skip_unchanged: bool = Field(
        default=True,
        description="An event whose content fields are unchanged since the last suggestion "
        "for its product and channel publishes nothing.",
    )
    seen_ttl_s: int = Field(
        default=90 * 86_400, ge=1, description="How long a product's last suggestion id is kept."
    )
    event_ids_ttl_s: int = Field(
        default=7 * 86_400,
        ge=1,
        description="How long a handled event id is kept, for formats whose source redelivers "
        "events (Shopify retries a webhook for up to 48 hours): a redelivery within it is "
        "dropped.",
    )
    lock_ttl_s: float = Field(
        default=10.0,
        gt=0,
        description="Single-flight lock expiry, renewed while its owner generates: a lock "
        "outlives its owner by at most this.",
    )
    owner_ttl_s: float = Field(
        default=3.0,
        gt=0,
        description="A lock owner's liveness mark expiry, renewed while it generates: a "
        "waiter takes over the locks of an owner whose mark is gone.",
    )
    wait_s: float = Field(
        default=120.0, ge=0, description="Longest wait for another worker's generation."
    )
    prefix: str = Field(default="copyflow", min_length=1, pattern=r"^[^\s]+$")


class TopicSettings(_Section):
    products: str = "catalog.products"
    products_dlq: str = "catalog.products.dlq"
    suggestions: str = "catalog.suggestions"
    feedback: str = "catalog.feedback"
    feedback_dlq: str = "catalog.feedback.dlq"
    control: str = "copyflow.control"
    partitions: int = Field(default=4, ge=1, le=1024)
    replication_factor: int = Field(default=1, ge=1)


class FormatSettings(_Section):
    inputs: dict[str, str] = Field(
        default_factory=dict,
        description="Input topic -> the catalog format of its records (copyflow, cloudevents, "
        "debezium, shopify, commercetools, akeneo, or one another package registers); the "
        "worker reads them all. Empty: topics.products in the copyflow format. As JSON in "
        "the environment.",
    )
    tenant: str = Field(
        default="default",
        min_length=1,
        description="The tenant of records whose format names none (a Debezium row without a "
        "tenant column, a CloudEvent without the tenant extension).",
    )
    fetch: str | None = Field(
        default=None,
        pattern=r"^[\w.]+:[\w.]+$",
        description="module:function that fetches a resource a thin event only names "
        "(commercetools payloadNotIncluded, Akeneo's thin events): called with the format's "
        "name and the event's reference, returns the resource's JSON document or None. "
        "Without it such events are dead letters of kind payload_not_included.",
    )
    write_back_topic: str | None = Field(
        default=None,
        min_length=1,
        description="Where each suggestion also goes as its catalog's own update document "
        "(commercetools update actions, a Shopify productUpdate, an Akeneo values patch, a "
        "CloudEvent), for suggestions from formats that have one; None: not published.",
    )
    options: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="Each format's own options by format name, e.g. "
        "formats.options.debezium.columns (Product field -> column).",
    )


class ModelSettings(_Section):
    name: str = Field(
        default="smollm2-135m-instruct",
        description="'smollm2-135m-instruct' (prepared by `copyflow model prepare`), "
        "a local model directory, or a hub id where a hub is reachable.",
    )
    cache_dir: Path = Field(default=Path("~/.cache/copyflow/models"))
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field(
        default="auto",
        description="auto: bfloat16 on a GPU; on a CPU, bfloat16 where it has AMX tiles "
        "(measured 1.7x whole generation there, where CPUs without them gain too little), "
        "else float32. The dtype chosen is part of the cache key.",
    )
    max_new_tokens: int = Field(
        default=140,
        ge=8,
        le=2048,
        description="Overall cap on generated tokens per suggestion, markers included.",
    )
    max_title_tokens: int = Field(
        default=40,
        ge=4,
        le=2048,
        description="Title budget in tokens (framed prompts, v3 on): when it is spent the "
        "description starts.",
    )
    max_description_tokens: int = Field(
        default=90,
        ge=4,
        le=2048,
        description="Description budget in tokens (framed prompts, v3 on); a description it "
        "cuts is cut back to its last complete sentence.",
    )
    max_input_tokens: int = Field(default=1024, ge=32, le=32768)
    batch_size: int = Field(default=32, ge=1, le=1024, description="Requests per batch.")
    prompt_version: str = Field(
        default="v3",
        description="Prompt template: v3 (framed answer, budgets per field), v2, v1, naive.",
    )


class PoolSettings(_Section):
    devices: str = Field(
        default="auto",
        pattern=r"^(auto|(cpu|cuda(:\d+)?)(,(cpu|cuda(:\d+)?))*)$",
        description="'auto' (every GPU, else one CPU process per core, up to 4) or a comma "
        "list; a repeated device gets several processes: 'cpu,cpu', 'cuda:0,cuda:1'.",
    )
    threads_per_cpu_worker: int | None = Field(default=None, ge=1)
    max_wait_s: float = Field(default=0.05, ge=0, description="Longest wait to fill a batch.")
    capacity: int = Field(default=256, ge=1, description="Requests queued or generating.")


class ChecksSettings(_Section):
    skip_unimproved: bool = Field(
        default=True,
        description="Publish nothing for a product when no candidate improves on the "
        "merchant's original title and description (counted as not improved); false "
        "publishes every suggestion, with improved=false where it is the original back.",
    )
    banned_phrases: list[str] = Field(
        default_factory=list,
        description="Phrases no suggestion may contain (case-insensitive), on top of each "
        "channel's own; as JSON in the environment.",
    )


class TrainerSettings(_Section):
    store_dir: Path = Field(
        default=Path("~/.cache/copyflow/examples"),
        description="Training examples, one folder of JSONL per tenant.",
    )
    registry_dir: Path = Field(
        default=Path("~/.cache/copyflow/adapters"),
        description="Released adapters: <tenant or _global>/<version>/ folders.",
    )
    rank: int = Field(default=16, ge=1, le=512, description="LoRA rank.")
    alpha: int = Field(default=32, ge=1, description="LoRA alpha (scale = alpha / rank).")
    dropout: float = Field(default=0.05, ge=0, lt=1)
    target_modules: list[str] = Field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj"],
        description="Module names LoRA adapts; as JSON in the environment.",
    )
    epochs: int = Field(default=3, ge=1, le=100)
    learning_rate: float = Field(default=1e-3, gt=0, lt=1)
    batch_size: int = Field(default=8, ge=1, le=1024)
    step_tokens: int = Field(
        default=512,
        ge=1,
        description="Most tokens of the rows' own parts a training step computes at once (the "
        "batch's shared prompt prefix is computed once besides); a batch of more goes through "
        "in slices of its rows whose gradients add up to the batch's. Bounds training memory "
        "whatever the examples' lengths; the result is the same.",
    )
    holdout_share: float = Field(
        default=0.2, gt=0, lt=1, description="Share of examples held out for the gate."
    )
    margin: float = Field(
        default=0.02,
        ge=0,
        le=1,
        description="ROUGE-L gain over the current adapter (or base model) needed to release.",
    )
    min_examples: int = Field(
        default=50, ge=2, description="Fewest accepted or edited examples to train on."
    )
    device: str = Field(default="auto", pattern=r"^(auto|cpu|cuda(:\d+)?)$")
    dtype: Literal["auto", "float32", "bfloat16"] = Field(
        default="auto",
        description="The base model's dtype in training (LoRA's own weights stay float32). "
        "auto: bfloat16 on a GPU; on a CPU as model.dtype (bfloat16 where it has AMX tiles), "
        "else float32.",
    )
    seed: int = 0
    prompt_version: str = Field(
        default="s1",
        description="The prompt adapters are trained with and served with (their releases "
        "name it): s1 is short, without v3's instructions and examples, which an adapter "
        "learns from its pairs; model.prompt_version's value trains on the workers' prompt.",
    )
    group_id: str = Field(
        default="copyflow-trainer",
        min_length=1,
        description="Consumer group of `copyflow trainer` (reads suggestions and feedback).",
    )
    http_port: int = Field(
        default=9465,
        ge=0,
        le=65535,
        description="`copyflow trainer`'s /healthz and /readyz (on metrics.host); 0 turns it off.",
    )
    retrain_after: int = Field(
        default=200,
        ge=1,
        description="`copyflow trainer`: train a scope after this many new examples.",
    )
    interval_s: float = Field(
        default=86_400,
        gt=0,
        description="`copyflow trainer`: train a scope with any new example after this long.",
    )
    bootstrap_after: int = Field(
        default=0,
        ge=0,
        description="`copyflow trainer`: bootstrap a tenant from its own catalog (see `copyflow "
        "train --bootstrap`) once its suggestions have shown this many distinct products; "
        "0 turns it off.",
    )
    layouts: bool = Field(
        default=True,
        description="`copyflow trainer`: learn each scope's title layouts from its accepted "
        "titles as they come, and announce them to the workers.",
    )
    layout_min_titles: int = Field(
        default=5,
        ge=2,
        description="Fewest accepted titles of a category (or product type) to learn its layout.",
    )


class MetricsSettings(_Section):
    port: int = Field(
        default=9464, ge=0, le=65535, description="Prometheus /metrics port; 0 turns it off."
    )
    host: str = Field(default="0.0.0.0", description="Address the metrics endpoint binds.")


class WorkerSettings(_Section):
    max_event_bytes: int = Field(
        default=1_048_576, ge=1024, description="Larger events are dead-lettered."
    )
    take_batch: int = Field(default=64, ge=1, description="Events taken from the stream at once.")
    take_within_s: float = Field(default=0.1, gt=0, description="Max wait to fill a take.")
    data_dir: Path = Field(default=Path("~/.cache/copyflow/worker"))
    log_level: Literal["debug", "info", "warning", "error"] = "info"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter=ENV_NESTED_DELIMITER,
        extra="forbid",
    )

    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    redis: RedisSettings = Field(default_factory=RedisSettings)
    cache: CacheSettings = Field(default_factory=CacheSettings)
    topics: TopicSettings = Field(default_factory=TopicSettings)
    formats: FormatSettings = Field(default_factory=FormatSettings)
    model: ModelSettings = Field(default_factory=ModelSettings)
    pool: PoolSettings = Field(default_factory=PoolSettings)
    worker: WorkerSettings = Field(default_factory=WorkerSettings)
    checks: ChecksSettings = Field(default_factory=ChecksSettings)
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)
    trainer: TrainerSettings = Field(default_factory=TrainerSettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The config file's contents arrive as init arguments: the environment overrides them.
        return (env_settings, init_settings)


class SettingsError(ValueError):
    """A setting is invalid; the message names each offending setting and its env variable."""


def setting_env_name(loc: tuple[int | str, ...]) -> str:
    return ENV_PREFIX + ENV_NESTED_DELIMITER.join(str(part).upper() for part in loc)


def setting_error(loc: tuple[str, ...], message: str) -> SettingsError:
    """An error naming one setting (dotted and as its env variable) and what is wrong."""
    return SettingsError(
        f"invalid settings:\n  {'.'.join(loc)} ({setting_env_name(loc)}): {message}"
    )


def load_settings(config_file: Path | None = None) -> Settings:
    """Build Settings from the environment over an optional TOML file.

    Raises SettingsError naming every invalid setting (dotted name and env variable).
    """
    file_values: dict[str, Any] = {}
    if config_file is not None:
        try:
            file_values = tomllib.loads(config_file.read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise SettingsError(f"config file {config_file}: {exc}") from None
    try:
        return Settings(**file_values)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            loc = tuple(err["loc"])
            dotted = ".".join(str(part) for part in loc)
            lines.append(f"  {dotted} ({setting_env_name(loc)}): {err['msg']}")
        raise SettingsError("invalid settings:\n" + "\n".join(lines)) from None


def setting_env_names(model: type[BaseModel] = Settings, prefix: tuple[str, ...] = ()) -> set[str]:
    """Every leaf setting's environment variable name (for checking deployment files)."""
    names: set[str] = set()
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            names |= setting_env_names(annotation, (*prefix, name))
        else:
            names.add(setting_env_name((*prefix, name)))
    return names
