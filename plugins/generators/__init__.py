"""Generators: turn a batch of (product, channel) requests into copy, one result per request."""

from copyflow.plugins.generators.base import GenerationRequest, GenerationResult, Generator
from copyflow.plugins.generators.parsing import ParsedCopy, ParseError, parse_copy
from copyflow.plugins.generators.prompts import PROMPTS, PromptTemplate, get_prompt

__all__ = [
    "PROMPTS",
    "GenerationRequest",
    "GenerationResult",
    "Generator",
    "ParseError",
    "ParsedCopy",
    "PromptTemplate",
    "get_prompt",
    "parse_copy",
]
