"""Look-ups in the literal registries (one dict per kind of unit) with a did-you-mean error."""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import TypeVar

V = TypeVar("V")


class UnknownNameError(KeyError):
    """A name that is not in a registry; the message lists close matches."""

    def __str__(self) -> str:  # KeyError would print the message with quotes around it
        return str(self.args[0])


def did_you_mean(name: str, choices) -> str:
    """' Did you mean 'x'?' for the closest choices, or '' when none is close."""
    close = difflib.get_close_matches(name, list(choices), n=3, cutoff=0.6)
    if not close:
        return ""
    return " Did you mean " + " or ".join(repr(c) for c in close) + "?"


def lookup(registry: Mapping[str, V], name: str, kind: str) -> V:
    """registry[name], or an UnknownNameError naming the kind, the close matches and how to list them all."""
    try:
        return registry[name]
    except KeyError:
        hint = did_you_mean(name, registry)
        known = ", ".join(sorted(registry)) if len(registry) <= 12 else f"{len(registry)} names"
        raise UnknownNameError(f"unknown {kind} {name!r}.{hint} Known: {known}.") from None
