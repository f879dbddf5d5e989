"""Cold start end to end: bootstrap a tenant from its catalog, and a running worker serves it.

On the bundled broker, with a registry and example store of its own: `copyflow train
--bootstrap` on the first N rows of a catalog file (gate, registry, release, announcement on
the control topic, as an operator runs it), then `copyflow worker` started afresh and the next
rows sent as the tenant's product events (fashion_styles: the attributes plus a messy title,
as `copyflow eval --messy` reads them). It reports the training command's time, the gate's
figures from the run's report, and for the published suggestions: the share made by the
tenant's adapter, the share whose title is not the model's (fallbacks), the share improved,
and title ROUGE-L against the catalog's real titles next to the messy input's. The last line is
one JSON object; `ratio` = published ROUGE-L over the input titles'.

    python -m bench.cold_start [--quick] [--data fashion_styles] [--products 2000]
        [--holdout 200] [--output F]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from itertools import islice
from pathlib import Path
from typing import Any

from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from bench.common import SHARED_DATA, report
from copyflow.embedded import TANSU_GROUP_ENV, EmbeddedBroker, stop_process
from copyflow.evaluation.data import Item, load_items
from copyflow.plugins.similarity import rouge_l
from copyflow.plugins.transport.topics import ensure_topics
from copyflow.schemas import ProductEvent, Suggestion, load_settings

TENANT = "cold-start"


def _served(
    bootstrap: str,
    topic: str,
    partitions: int,
    want: int,
    timeout_s: float,
    worker: subprocess.Popen[bytes],
) -> list[Suggestion]:
    """The suggestions on topic, one per product, until want have come or the time is up."""
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, consumer_timeout_ms=1000
    )
    consumer.assign([TopicPartition(topic, p) for p in range(partitions)])
    consumer.seek_to_beginning()
    found: dict[str, Suggestion] = {}
    deadline = time.monotonic() + timeout_s
    try:
        while len(found) < want and time.monotonic() < deadline and worker.poll() is None:
            for record in consumer:
                suggestion = Suggestion.model_validate_json(record.value)
                found[suggestion.product_id] = suggestion
    finally:
        consumer.close()
    return list(found.values())


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="120 products, 20 held out")
    parser.add_argument("--data", choices=["fashion_styles", "myntra"], default="fashion_styles")
    parser.add_argument("--products", type=int, default=2000)
    parser.add_argument("--holdout", type=int, default=200)
    parser.add_argument("--timeout", type=float, default=1800, help="seconds for the worker")
    parser.add_argument("--output", type=Path)
    args = parser.parse_args()
    if args.quick:
        args.products, args.holdout = 120, 20
    path = SHARED_DATA / f"{args.data}.jsonl"
    messy = args.data == "fashion_styles"
    held: list[Item] = list(
        islice(load_items(path, messy_titles=messy), args.products, args.products + args.holdout)
    )
    settings = load_settings()
    topics = settings.topics
    figures: dict[str, Any] = {"bench": "cold_start", "data": args.data}
    with tempfile.TemporaryDirectory() as folder, EmbeddedBroker() as broker:
        work = Path(folder)
        env = {
            **os.environ,
            **TANSU_GROUP_ENV,
            "COPYFLOW_KAFKA__BOOTSTRAP": broker.bootstrap,
            "COPYFLOW_TRAINER__STORE_DIR": str(work / "examples"),
            "COPYFLOW_TRAINER__REGISTRY_DIR": str(work / "adapters"),
            "COPYFLOW_TRAINER__EPOCHS": "1",
            "COPYFLOW_WORKER__DATA_DIR": str(work / "worker"),
            "COPYFLOW_CACHE__PREFIX": f"copyflow-cold-start-{work.name}",
            "COPYFLOW_METRICS__PORT": "0",
            "COPYFLOW_CHECKS__SKIP_UNIMPROVED": "false",
        }
        settings.kafka.bootstrap = broker.bootstrap
        ensure_topics(settings.kafka, topics)
        started = time.perf_counter()
        train = [sys.executable, "-m", "copyflow", "train", "--bootstrap", str(path)]
        train += ["--limit", str(args.products), "--tenant", TENANT]
        subprocess.run(train, env=env, check=True)
        figures["train_command_s"] = round(time.perf_counter() - started, 1)
        [metrics_file] = (work / "adapters" / ".runs").glob("*/metrics.json")
        metrics = json.loads(metrics_file.read_text())
        figures["gate"] = {k: metrics[k] for k in ("released", "verdict", "current", "candidate")}
        figures["train_examples"] = metrics["train_examples"]
        figures["training_s"] = round(metrics["seconds"], 1)
        figures["training_peak_rss_mb"] = round(metrics["peak_rss_mb"])
        with (work / "worker.log").open("wb") as log:
            worker = subprocess.Popen(
                [sys.executable, "-m", "copyflow", "worker"], env=env, stdout=log, stderr=log
            )
        try:
            producer = KafkaProducer(bootstrap_servers=broker.bootstrap, acks="all")
            for item in held:
                event = ProductEvent(
                    id=f"cold-{item.product.product_id}",
                    type="product.created",
                    source="bench.cold_start",
                    time=datetime.now(UTC),
                    tenant=TENANT,
                    data=item.product,
                )
                key = item.product.product_id.encode()
                value = event.model_dump_json().encode()
                producer.send(topics.products, key=key, value=value)
            producer.flush()
            producer.close()
            started = time.perf_counter()
            served = _served(
                broker.bootstrap,
                topics.suggestions,
                topics.partitions,
                len(held),
                args.timeout,
                worker,
            )
            figures["worker_s"] = round(time.perf_counter() - started, 1)
        finally:
            stop_process(worker, timeout_s=30)
    reference = {i.product.product_id: i for i in held}
    n = max(1, len(served))
    published = [rouge_l(s.title, reference[s.product_id].reference_title or "") for s in served]
    inputs = [rouge_l(i.product.title, i.reference_title or "") for i in held]
    figures.update(
        {
            "suggestions": len(served),
            "holdout": len(held),
            "served_by_adapter": sum(s.model.adapter == f"tenant:{TENANT}" for s in served) / n,
            "prompt_versions": sorted({s.model.prompt_version for s in served}),
            "fallback_rate": sum(s.fallback_used for s in served) / n,
            "improved": sum(bool(s.improved) for s in served) / n,
            "published_rouge_l_title": sum(published) / n,
            "input_rouge_l_title": sum(inputs) / max(1, len(inputs)),
            "title_sources": {
                source: round(sum(s.title_source == source for s in served) / n, 3)
                for source in sorted({str(s.title_source) for s in served})
            },
            # The judge's faults: in the published titles, and in the adapter's own titles.
            "faults": {
                f"{kind} {check}": round(sum(failed(s, f"{kind}:{check}") for s in served) / n, 3)
                for kind in ("title", "model title")
                for check in ("type_kept", "new_words", "numbers_kept")
            },
        }
    )
    figures["ratio"] = figures["published_rouge_l_title"] / max(
        1e-9, figures["input_rouge_l_title"]
    )
    print(
        f"train command {figures['train_command_s']:.0f} s (training {figures['training_s']:.0f} s,"
        f" peak {figures['training_peak_rss_mb']} MB); gate: {metrics['verdict']}; worker served "
        f"{len(served)}/{len(held)}, {figures['served_by_adapter']:.0%} by the adapter, "
        f"fallbacks {figures['fallback_rate']:.0%}, title ROUGE-L "
        f"{figures['input_rouge_l_title']:.3f} -> {figures['published_rouge_l_title']:.3f}",
        flush=True,
    )
    report(figures, args.output)


def failed(suggestion: Suggestion, check: str) -> bool:
    return any(c.name == check and not c.passed for c in suggestion.checks)


if __name__ == "__main__":
    main()
