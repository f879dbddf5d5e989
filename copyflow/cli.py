"""The `copyflow` command line."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from copyflow.consumer.pool import PoolError
from copyflow.plugins.generators.smollm2 import ModelNotPrepared
from copyflow.plugins.transport.topics import BrokerUnavailable
from copyflow.schemas import Product, Settings, SettingsError, load_settings

if TYPE_CHECKING:
    from copyflow.consumer.pipeline import Pipeline
    from copyflow.consumer.pool import WorkerPool
    from copyflow.trainer.bootstrap import Bootstrap

log = logging.getLogger("copyflow")


def _cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    from copyflow.consumer.worker import run_worker

    # The wiring (and torch with it) is imported by these, while the worker joins its group.
    def pipeline() -> Pipeline:
        from copyflow.wiring import build_pipeline

        return build_pipeline(settings)

    def pool() -> WorkerPool:
        from copyflow.wiring import build_pool

        return build_pool(settings)

    run_worker(settings, pipeline, pool)
    return 0


def _cmd_generate(args: argparse.Namespace, settings: Settings) -> int:
    from copyflow.generate import generate_file
    from copyflow.wiring import build_generator, build_pipeline

    if not args.input.is_file():
        print(f"copyflow generate: {args.input}: no such file", file=sys.stderr)
        return 2
    pipeline = build_pipeline(settings, args.format)
    generator = build_generator(settings)
    batch = settings.model.batch_size
    if args.output is None:
        summary = generate_file(pipeline, generator, args.input, sys.stdout, args.tenant, batch)
    else:
        with args.output.open("w") as out:
            summary = generate_file(pipeline, generator, args.input, out, args.tenant, batch)
    for number, letter in summary.invalid:
        print(f"{args.input}:{number}: {letter.kind}: {letter.reason}", file=sys.stderr)
    for letter in summary.failed:
        print(f"generation failed: {letter.reason}", file=sys.stderr)
    print(
        f"{summary.lines} lines: {summary.suggestions} suggestions "
        f"({summary.fallbacks} fallbacks), {len(summary.invalid)} invalid lines, "
        f"{len(summary.failed)} failed generations",
        file=sys.stderr,
    )
    return 0 if summary.suggestions or not summary.lines else 1


def _cmd_eval(args: argparse.Namespace, settings: Settings) -> int:
    from copyflow.evaluation.data import DataError, load_items
    from copyflow.evaluation.report import headline_table, sources_table, write_report
    from copyflow.evaluation.run import evaluate
    from copyflow.plugins.channels import UnknownChannel, get_channel

    try:
        get_channel(args.channel)
    except UnknownChannel as exc:
        print(f"copyflow eval: --channel: {exc.args[0]}", file=sys.stderr)
        return 2
    if not args.input.is_file():
        print(f"copyflow eval: {args.input}: no such file", file=sys.stderr)
        return 2
    try:
        items = list(load_items(args.input, args.limit, messy_titles=args.messy))
    except DataError as exc:
        print(f"copyflow eval: {exc}", file=sys.stderr)
        return 2
    if not items:
        print(f"copyflow eval: {args.input}: no products", file=sys.stderr)
        return 2
    layouts = None
    accepted: list[tuple[Product, str]] = []
    if args.learn_layouts is not None:
        from itertools import islice

        from copyflow.plugins.layouts import learn_layouts

        if not args.learn_layouts.is_file():
            print(f"copyflow eval: {args.learn_layouts}: no such file", file=sys.stderr)
            return 2
        evaluated = {item.product.product_id for item in items}
        try:
            accepted = list(
                islice(
                    (
                        (item.product, item.reference_title)
                        for item in load_items(args.learn_layouts, messy_titles=args.messy)
                        if item.reference_title and item.product.product_id not in evaluated
                    ),
                    args.learn_limit,
                )
            )
        except DataError as exc:
            print(f"copyflow eval: --learn-layouts: {exc}", file=sys.stderr)
            return 2
        layouts, _ = learn_layouts(accepted, settings.trainer.layout_min_titles)
        print(
            f"layouts: {len(layouts.layouts)} learned from {len(accepted)} accepted titles "
            f"(version {layouts.version})",
            file=sys.stderr,
        )
    results = evaluate(settings, items, args.channel, args.systems, layouts)
    results["messy"] = args.messy
    if layouts is not None:
        results["layouts"] = {
            "version": layouts.version,
            "keys": len(layouts.layouts),
            "titles": len(accepted),
            "source": str(args.learn_layouts),
        }
    report = write_report(results, args.report, args.input)
    print(headline_table(results))
    if sources := sources_table(results):
        print(f"\n{sources}")
    print(f"report: {report}")
    return 0


def _systems(text: str) -> list[str]:
    """--systems: a comma-separated list of the evaluation's systems."""
    from copyflow.evaluation import SYSTEMS

    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in SYSTEMS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown system {', '.join(map(repr, unknown))}" if unknown else "no system named"
        )
    return list(dict.fromkeys(names))


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1: {value}")
    return value


def _cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    from copyflow.demo import run_demo
    from copyflow.wiring import model_location

    print(f"model: {settings.model.name} ({model_location(settings)})")
    return run_demo(settings, args.catalog, args.timeout, args.output, args.format or "copyflow")


def _cmd_model_prepare(args: argparse.Namespace, settings: Settings) -> int:
    from copyflow.plugins.generators.smollm2 import prepare_default_model

    path = prepare_default_model(settings.model.cache_dir, force=args.force)
    print(path)
    return 0


def _cmd_train(args: argparse.Namespace, settings: Settings) -> int:
    from copyflow.trainer.examples import GLOBAL, Example, ExampleStore
    from copyflow.trainer.run import NotEnoughExamples, train_once
    from copyflow.wiring import build_pipeline, build_trainer_spec

    notes: dict[str, Any] = {}
    if args.examples is not None:
        if not args.examples.is_file():
            print(f"copyflow train: {args.examples}: no such file", file=sys.stderr)
            return 2
        examples = []
        for number, line in enumerate(args.examples.read_text().splitlines(), 1):
            if not line.strip():
                continue
            try:
                example = Example.model_validate_json(line)
            except ValueError as exc:
                print(f"{args.examples}:{number}: {exc}", file=sys.stderr)
                return 2
            # The file's examples join the scope trained here, whatever tenant they name.
            examples.append(example.model_copy(update={"tenant": args.tenant or GLOBAL}))
        added = ExampleStore(settings.trainer.store_dir).add(examples)
        print(f"{added} new examples stored", file=sys.stderr)
    if args.bootstrap is not None:
        made = _bootstrap(args.bootstrap, args.tenant or GLOBAL, args.limit)
        if made is None:
            return 2
        added = ExampleStore(settings.trainer.store_dir).add(made.examples)
        print(f"bootstrap: {made.summary()}; {added} new examples stored", file=sys.stderr)
        notes["bootstrap"] = made.summary()
    try:
        trained = train_once(
            build_trainer_spec(settings),
            settings.trainer,
            args.tenant,
            build_pipeline(settings).reviewer,
            notes=notes,
        )
    except NotEnoughExamples as exc:
        print(f"copyflow train: {exc}", file=sys.stderr)
        return 1
    outcome = f"released {trained.release.version}" if trained.release else "not released"
    print(f"{outcome}: {trained.verdict.reason}; report: {trained.report_dir / 'report.md'}")
    return _announce(settings, args.tenant) if trained.release else 0


def _bootstrap(path: Path, scope_name: str, limit: int | None) -> Bootstrap | None:
    """Bootstrap examples from a catalog file in the backfill's formats (None: unreadable)."""
    from itertools import islice

    from copyflow.backfill import read_catalog
    from copyflow.evaluation.data import DataError
    from copyflow.schemas import ProductEvent
    from copyflow.trainer.bootstrap import bootstrap_examples

    if not path.is_file():
        print(f"copyflow train: {path}: no such file", file=sys.stderr)
        return None
    try:
        lines = list(islice(read_catalog(path, scope_name), limit))
    except DataError as exc:
        print(f"copyflow train: {exc}", file=sys.stderr)
        return None
    bad = [line for line in lines if line.event is None]
    for line in bad[:5]:
        print(f"{path}:{line.number}: {line.error}", file=sys.stderr)
    products = [ProductEvent.model_validate_json(line.event).data for line in lines if line.event]
    made = bootstrap_examples(products, scope_name)
    if bad:
        made.excluded["unreadable line"] += len(bad)
    return made


def _cmd_trainer(args: argparse.Namespace, settings: Settings) -> int:
    import asyncio
    import signal

    from copyflow.trainer.service import Trainer
    from copyflow.wiring import build_pipeline, build_trainer_spec

    async def run() -> None:
        spec = build_trainer_spec(settings)
        trainer = Trainer(settings, spec, build_pipeline(settings).reviewer)
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, trainer.stopping.set)
        await trainer.run()

    asyncio.run(run())
    return 0


def _announce(settings: Settings, tenant: str | None) -> int:
    """Tell the workers what the scope serves now (they switch without a restart)."""
    import asyncio

    from aiokafka.errors import KafkaError

    from copyflow.trainer.registry import Registry
    from copyflow.trainer.service import announce

    event = Registry(settings.trainer.registry_dir).announcement(tenant)
    if event is None:
        print(f"copyflow: {tenant or 'global'}: nothing released to announce", file=sys.stderr)
        return 1
    try:
        asyncio.run(announce(settings.kafka, settings.topics.control, event))
    except (KafkaError, OSError) as exc:
        print(
            f"copyflow: the registry changed but the workers were not told: {exc}\n"
            f"  once the broker ({settings.kafka.bootstrap}) answers, run: "
            f"copyflow adapters announce{f' --tenant {tenant}' if tenant else ''}",
            file=sys.stderr,
        )
        return 1
    print(f"announced on {settings.topics.control}", file=sys.stderr)
    return 0


def _cmd_layouts(args: argparse.Namespace, settings: Settings) -> int:
    import asyncio

    from aiokafka.errors import KafkaError

    from copyflow.trainer.examples import ExampleStore
    from copyflow.trainer.layouts import LayoutLedger, describe, learn
    from copyflow.trainer.service import announce

    store = ExampleStore(settings.trainer.store_dir)
    event, report = learn(store, args.tenant, settings.trainer.layout_min_titles)
    print(describe(report))
    scope_name = args.tenant or "global"
    print(
        f"{scope_name}: {len(event.layouts)} learned layouts (version {event.version}) from "
        f"{event.titles} accepted titles"
    )
    ledger = LayoutLedger(settings.trainer.registry_dir)
    if args.dry_run or not ledger.is_news(event):
        if not args.dry_run:
            print(f"{scope_name}: the workers already use these layouts", file=sys.stderr)
        return 0
    try:
        asyncio.run(announce(settings.kafka, settings.topics.control, event))
    except (KafkaError, OSError) as exc:
        print(f"copyflow layouts: not announced: {exc}", file=sys.stderr)
        return 1
    ledger.record(event)
    print(f"announced on {settings.topics.control}", file=sys.stderr)
    return 0


def _cmd_adapters(args: argparse.Namespace, settings: Settings) -> int:
    from copyflow.trainer.registry import Registry, RegistryError

    registry = Registry(settings.trainer.registry_dir)
    try:
        if args.adapters_command == "list":
            print(registry.describe())
            return 0
        if args.adapters_command == "promote":
            release = registry.promote(args.tenant, args.version)
            print(f"{args.tenant or 'global'}: serving {release.version}")
        elif args.adapters_command == "rollback":
            current = registry.rollback(args.tenant)
            serving = current.version if current else "the base model"
            print(f"{args.tenant or 'global'}: serving {serving}")
    except RegistryError as exc:
        print(f"copyflow adapters: {exc}", file=sys.stderr)
        return 1
    return _announce(settings, args.tenant)


def _rate(text: str) -> float:
    try:
        rate = float(text.removesuffix("/s"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r}: a rate is events per second, as 50 or 50/s"
        ) from None
    if rate <= 0:
        raise argparse.ArgumentTypeError("a rate must be above 0")
    return rate


def _finished(summary: Any, extra: str = "") -> int:
    print(summary.line() + extra)
    if summary.interrupted:
        print("stopped before the end: run the same command again to resume", file=sys.stderr)
        return 130
    return 0


def _cmd_replay(args: argparse.Namespace, settings: Settings) -> int:
    import asyncio

    from aiokafka.errors import KafkaError

    from copyflow.consumer.replay import Bound, ReplayError
    from copyflow.operations import Request, replay

    try:
        start = Bound.parse(args.start)
        stop = Bound.parse(args.stop) if args.stop else None
        summary = asyncio.run(
            replay(
                settings,
                args.topic or settings.topics.products,
                start,
                stop,
                Request(args.rate, args.force, args.tenant, args.format),
                dry_run=args.dry_run,
                restart=args.restart,
            )
        )
    except ReplayError as exc:
        print(f"copyflow replay: {exc}", file=sys.stderr)
        return 2
    except KafkaError as exc:
        print(f"copyflow replay: Kafka: {exc}", file=sys.stderr)
        return 1
    return 0 if summary is None else _finished(summary)


def _cmd_backfill(args: argparse.Namespace, settings: Settings) -> int:
    import asyncio

    from copyflow.evaluation.data import DataError
    from copyflow.operations import Request, backfill

    if not args.file.is_file():
        print(f"copyflow backfill: {args.file}: no such file", file=sys.stderr)
        return 2
    try:
        summary, bad = asyncio.run(
            backfill(
                settings,
                args.file,
                args.tenant,
                Request(args.rate, args.force, None, args.format),
                args.restart,
            )
        )
    except DataError as exc:
        print(f"copyflow backfill: {exc}", file=sys.stderr)
        return 2
    code = _finished(summary, f", bad lines {len(bad)}")
    return code or (1 if bad else 0)


def _cmd_schemas_export(args: argparse.Namespace, settings: Settings) -> int:
    from copyflow.schemas.export import export_json_schemas

    for path in export_json_schemas(args.directory):
        print(path)
    return 0


Command = Callable[[argparse.Namespace, Settings], int]


def build_parser() -> argparse.ArgumentParser:
    from copyflow.demo import EXAMPLE_CATALOG

    parser = argparse.ArgumentParser(prog="copyflow", description=__doc__)
    parser.add_argument("--config", type=Path, help="TOML settings file (environment overrides it)")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    def command(
        name: str, func: Command, help: str, parent: argparse._SubParsersAction[Any] = sub
    ) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = parent.add_parser(name, help=help, description=help)
        p.set_defaults(func=func)
        return p

    command("worker", _cmd_worker, "run the stream processor (stop with SIGTERM or Ctrl-C)")

    gen = command("generate", _cmd_generate, "generate suggestions for a JSONL file, no Kafka")
    gen.add_argument(
        "--input",
        type=Path,
        required=True,
        help="JSONL of ProductEvents or bare Products; with --format, of that format's "
        "documents (a *.records.jsonl file: whole records, see README: Catalog formats)",
    )
    gen.add_argument("--output", type=Path, help="suggestions JSONL (default: standard output)")
    gen.add_argument("--tenant", default="default", help="tenant for bare Product lines")

    from copyflow.evaluation import SYSTEMS

    evaluation = command(
        "eval",
        _cmd_eval,
        "score copyflow against the original text, a naive prompt and a composed title",
    )
    evaluation.add_argument(
        "--input",
        type=Path,
        required=True,
        help="JSONL: fashion_styles, myntra, before/after pairs ({product, reference_title, "
        "reference_description}), ProductEvents or bare Products",
    )
    evaluation.add_argument("--channel", default="default", help="channel whose rules apply")
    evaluation.add_argument("--limit", type=_positive, help="first N products only")
    evaluation.add_argument(
        "--systems",
        type=_systems,
        default=list(SYSTEMS),
        metavar="NAME[,NAME...]",
        help=f"systems to score, of {', '.join(SYSTEMS)} (default: all; naive and copyflow "
        "each take a generation pass)",
    )
    evaluation.add_argument(
        "--messy",
        action="store_true",
        help="fashion_styles input only: give each product a messy title made from its real "
        "one (as bench/style.py does), and score against the real title",
    )
    evaluation.add_argument(
        "--learn-layouts",
        type=Path,
        metavar="FILE",
        help="learn title layouts from FILE's reference titles as a tenant's accepted titles "
        "(products that are also evaluated are left out), and use them",
    )
    evaluation.add_argument(
        "--learn-limit",
        type=_positive,
        default=1000,
        help="accepted titles to learn layouts from (default 1000)",
    )
    evaluation.add_argument(
        "--report", type=Path, required=True, help="folder for report.md, charts, metrics.json"
    )

    demo = command("demo", _cmd_demo, "run everything embedded on the example catalog")
    demo.add_argument("--catalog", type=Path, default=EXAMPLE_CATALOG)
    demo.add_argument("--timeout", type=float, default=1800.0, help="seconds to wait for results")
    demo.add_argument("--output", type=Path, help="also write the suggestions as JSONL here")

    model = sub.add_parser("model", help="manage the model").add_subparsers(
        dest="model_command", required=True
    )
    prep = command(
        "prepare",
        _cmd_model_prepare,
        "convert the default model (SmolLM2-135M-Instruct) once",
        model,
    )
    prep.add_argument("--force", action="store_true", help="convert again")

    train = command(
        "train", _cmd_train, "train a LoRA adapter on stored examples; release it if it is better"
    )
    train.add_argument("--tenant", help="train this tenant's adapter (default: the global one)")
    train.add_argument(
        "--examples", type=Path, help="JSONL of examples to store first (see README: Trainer)"
    )
    train.add_argument(
        "--bootstrap",
        type=Path,
        metavar="CATALOG",
        help="make examples from a catalog dump first (.jsonl or .csv, as backfill reads): "
        "its real titles as targets for degraded inputs (see README: Bootstrap)",
    )
    train.add_argument("--limit", type=_positive, help="--bootstrap: the first N products only")

    command(
        "trainer",
        _cmd_trainer,
        "ingest feedback and train each scope when due (stop with SIGTERM or Ctrl-C)",
    )

    replay = command(
        "replay",
        _cmd_replay,
        "process a window of a topic again, in a consumer group of its own",
    )
    replay.add_argument("--topic", help="default: topics.products")
    replay.add_argument(
        "--from",
        dest="start",
        required=True,
        help="a time (2026-11-01T10:00:00Z) or offsets (0=120,1=98)",
    )
    replay.add_argument("--to", dest="stop", help="a time or offsets, not included (default: now)")
    backfill = command(
        "backfill", _cmd_backfill, "make suggestions for a catalog dump (.jsonl or .csv)"
    )
    backfill.add_argument("--file", type=Path, required=True)
    backfill.add_argument("--tenant", default="default", help="for lines that are not events")
    for run in (replay, backfill):
        run.add_argument("--rate", type=_rate, help="at most this many events per second")
        run.add_argument(
            "--force", action="store_true", help="bypass the cache and the unchanged skip"
        )
        run.add_argument("--restart", action="store_true", help="start over instead of resuming")
    replay.add_argument("--tenant", help="only this tenant's events")
    replay.add_argument(
        "--dry-run", action="store_true", help="only count events per partition and tenant"
    )
    for reader in (gen, demo, replay, backfill):
        reader.add_argument(
            "--format",
            help="catalog format of the input (copyflow, cloudevents, debezium, shopify, "
            "commercetools, akeneo, or a registered one)"
            + ("; default: the topic's in formats.inputs" if reader is replay else "")
            + ("" if reader is replay else "; default: copyflow"),
        )

    adapters = sub.add_parser("adapters", help="released LoRA adapters").add_subparsers(
        dest="adapters_command", required=True
    )
    command("list", _cmd_adapters, "list releases; * marks what serves", adapters)
    promote = command("promote", _cmd_adapters, "serve a released version", adapters)
    promote.add_argument("version")
    rollback = command("rollback", _cmd_adapters, "serve the previously promoted version", adapters)
    announce = command(
        "announce", _cmd_adapters, "tell the workers again what a scope serves", adapters
    )
    for sub_parser in (promote, rollback, announce):
        sub_parser.add_argument("--tenant", help="the tenant's adapter (default: the global one)")

    layouts = sub.add_parser(
        "layouts", help="title layouts learned from accepted titles"
    ).add_subparsers(dest="layouts_command", required=True)
    learn = command(
        "learn",
        _cmd_layouts,
        "learn a scope's title layouts from its stored examples and announce them if changed",
        layouts,
    )
    learn.add_argument("--tenant", help="the tenant's layouts (default: the global ones)")
    learn.add_argument("--dry-run", action="store_true", help="only show what is learned")

    schemas = sub.add_parser("schemas", help="event contracts").add_subparsers(
        dest="schemas_command", required=True
    )
    export = command("export", _cmd_schemas_export, "write one JSON Schema per contract", schemas)
    export.add_argument("directory", type=Path)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not args.verbose:  # kafka-python logs every connection and offset reset at INFO
        logging.getLogger("kafka").setLevel(logging.WARNING)
    try:
        settings = load_settings(args.config)
        result: int = args.func(args, settings)
        return result
    except (SettingsError, ModelNotPrepared) as exc:
        print(f"copyflow: {exc}", file=sys.stderr)
        return 2
    except BrokerUnavailable as exc:
        print(f"copyflow: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("copyflow: interrupted", file=sys.stderr)
        return 130
    except PoolError as exc:
        print(
            f"copyflow: the generator processes could not start: {exc}\n"
            "  check model.name (COPYFLOW_MODEL__NAME) and pool.devices "
            "(COPYFLOW_POOL__DEVICES)",
            file=sys.stderr,
        )
        return 2
