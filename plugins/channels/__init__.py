"""Channel rules: the built-ins and any registered by other packages through the entry-point
group ``copyflow.channels`` (each entry point names a ChannelRules instance)."""

from __future__ import annotations

from functools import cache
from importlib.metadata import entry_points

from copyflow.plugins.channels.base import ChannelRules, truncate_words
from copyflow.plugins.channels.builtin import BUILTIN_CHANNELS

__all__ = ["ChannelRules", "UnknownChannel", "channels", "get_channel", "truncate_words"]


class UnknownChannel(KeyError):
    pass


@cache
def channels() -> dict[str, ChannelRules]:
    found = dict(BUILTIN_CHANNELS)
    for entry in entry_points(group="copyflow.channels"):
        rules = entry.load()
        if not isinstance(rules, ChannelRules):
            raise TypeError(f"entry point {entry.value} is not a ChannelRules")
        found[rules.name] = rules
    return found


def get_channel(name: str) -> ChannelRules:
    try:
        return channels()[name]
    except KeyError:
        known = ", ".join(sorted(channels()))
        raise UnknownChannel(f"unknown channel {name!r}; known: {known}") from None
