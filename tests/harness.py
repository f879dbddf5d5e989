"""Helpers for tests that drive a real broker: worker processes, producing, collecting."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from prometheus_client.parser import text_string_to_metric_families

from copyflow.consumer.pipeline import InputFormats
from copyflow.embedded import free_port, stop_process, wait_for_port
from copyflow.plugins.catalog import CopyflowFormat
from copyflow.schemas import Suggestion

# A pipeline's inputs in copyflow's own format, as most tests read them.
COPYFLOW_INPUT = InputFormats.only(CopyflowFormat())


def make_tiny_model(directory: Path) -> Path:
    """A random 2-layer Llama with the SmolLM2 tokenizer in directory: real transformers code,
    fast."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from copyflow.plugins.generators.smollm2 import save_tokenizer

    save_tokenizer(directory)
    tokenizer = AutoTokenizer.from_pretrained(directory)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=1024,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
    )
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(directory)
    return directory


class WorkerProcess:
    """A `copyflow worker` (or another long-running command) subprocess, its log in a file."""

    def __init__(self, env: dict[str, str], log: Path, command: str = "worker") -> None:
        self.log = log
        with log.open("wb") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "copyflow", command],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    @property
    def pid(self) -> int:
        return self.process.pid

    def kill(self) -> None:
        os.kill(self.pid, signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        stop_process(self.process, timeout_s=20)

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


class RedisServer:
    """A redis-server of a test's own, on a free port, that the test may stop, pause and
    start again (on the same port). Keeps nothing on disk."""

    def __init__(self, *extra_args: str) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed (make services installs it)")
        self.binary = binary
        self.port = free_port()
        self.extra_args = extra_args
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        args = ["--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly"]
        self.process = subprocess.Popen(
            [self.binary, *args, "no", *self.extra_args],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for_port(self.port, 10.0, self.process)
        return self

    def stop(self) -> None:
        if self.process is not None:
            self.resume()
            stop_process(self.process)
            self.process = None

    def pause(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGCONT)


def scrape(port: int) -> dict[str, float]:
    """A worker's /metrics as {sample name with labels: value}."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        return parse_metrics(response.read().decode())


def parse_metrics(text: str) -> dict[str, float]:
    """Prometheus text as {sample name with labels: value}."""
    samples: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
            samples[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    return samples


def produce(bootstrap: str, topic: str, messages: Iterable[tuple[bytes | None, bytes]]) -> int:
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    count = 0
    try:
        for key, value in messages:
            producer.send(topic, key=key, value=value)
            count += 1
        producer.flush()
    finally:
        producer.close()
    return count


@dataclass
class DeadLetterRecord:
    value: bytes
    headers: dict[str, str]


@dataclass
class Outputs:
    """Everything read from the suggestions and dead-letter topics so far (all records)."""

    suggestions: list[Suggestion] = field(default_factory=list)
    dead: list[DeadLetterRecord] = field(default_factory=list)
    deleted: list[tuple[str, dict[str, str]]] = field(default_factory=list)  # tombstones
    other: dict[str, list[tuple[bytes | None, bytes | None]]] = field(default_factory=dict)

    def product_ids(self) -> set[str]:
        return {s.product_id for s in self.suggestions}


class OutputReader:
    """Reads output topics by partition assignment (no consumer group, so no join wait)."""

    def __init__(
        self,
        bootstrap: str,
        suggestions: str,
        dlq: str,
        partitions: int,
        others: Iterable[str] = (),
    ) -> None:
        """others: more topics to read, (key, value) pairs into outputs.other[topic]."""
        self.suggestions_topic = suggestions
        self.dlq_topic = dlq
        self.consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
        topics = (suggestions, dlq, *others)
        self.consumer.assign([TopicPartition(t, p) for t in topics for p in range(partitions)])
        self.consumer.seek_to_beginning()
        self.outputs = Outputs()

    def poll(self) -> Outputs:
        for records in self.consumer.poll(timeout_ms=500).values():
            for record in records:
                headers = {k: v.decode() for k, v in record.headers}
                if record.topic == self.suggestions_topic and record.value is None:
                    self.outputs.deleted.append((record.key.decode(), headers))
                elif record.topic == self.suggestions_topic:
                    self.outputs.suggestions.append(Suggestion.model_validate_json(record.value))
                elif record.topic == self.dlq_topic:
                    self.outputs.dead.append(DeadLetterRecord(record.value, headers))
                else:
                    pair = (record.key, record.value)
                    self.outputs.other.setdefault(record.topic, []).append(pair)
        return self.outputs

    def wait_for(
        self, done: object, timeout_s: float, worker: WorkerProcess | None = None
    ) -> Outputs:
        """Poll until done(outputs) is true; fail with the worker's log on timeout."""
        assert callable(done)
        deadline = time.monotonic() + timeout_s
        while not done(self.poll()):
            if worker is not None and worker.process.poll() is not None:
                raise AssertionError(
                    f"the worker exited ({worker.process.returncode}) with "
                    f"{len(self.outputs.suggestions)} suggestions, "
                    f"{len(self.outputs.dead)} dead letters\n{worker.log_tail()}"
                )
            if time.monotonic() > deadline:
                log = worker.log_tail() if worker else ""
                raise AssertionError(
                    f"timed out: {len(self.outputs.suggestions)} suggestions, "
                    f"{len(self.outputs.dead)} dead letters\n{log}"
                )
        return self.outputs

    def close(self) -> None:
        self.consumer.close()


def product_event(index: int, tenant: str = "tenant-a", **product: object) -> dict[str, object]:
    data: dict[str, object] = {
        "product_id": f"p-{index}",
        "title": f"test product {index} blue cotton shirt",
        "brand": "Testbrand",
        "category": ["Apparel", "Shirts"],
        "attributes": {"color": "blue", "material": "cotton"},
        **product,
    }
    return {
        "id": f"evt-{index}",
        "type": "product.created",
        "source": "tests",
        "time": "2026-11-01T10:00:00Z",
        "tenant": tenant,
        "data": data,
    }


def encoded(event: dict[str, object]) -> tuple[bytes, bytes]:
    data = event["data"]
    assert isinstance(data, dict)
    return str(data["product_id"]).encode(), json.dumps(event).encode()
