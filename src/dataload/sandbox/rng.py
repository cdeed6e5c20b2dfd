"""Stateless randomness: every random fact is a hash of (seed, what, who, when).

Nothing per person or course is stored; any fact about entity `i` on day `d` is recomputed from
these hashes on demand, which is what keeps memory flat for 200,000 people.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from enum import IntEnum

__all__ = ["Tag", "event_days", "happens_on", "mix", "mix_from", "rng_for", "unit"]


class Tag(IntEnum):
    """One per kind of random fact, so that no two kinds of fact share a stream."""

    BUID = 1
    EMPLID = 2
    PRESENCE = 3
    ROLE = 4
    CAREER = 5
    SUMMER = 6
    DOCUMENT = 20
    PERSON_CHANGE = 21
    PERSON_SHUFFLE = 22
    PERSON_MUTATION = 23
    COURSE_ID = 40
    CATALOG = 41
    OFFERING = 42
    COURSE_CHANGE = 43
    COURSE_CANCEL = 44
    COURSE_MUTATION = 45
    ALIAS = 60
    EMPTY_OBJECT = 70


_MASK = (1 << 64) - 1
_TO_UNIT = 1.0 / (1 << 53)


def _splitmix(x: int) -> int:
    x = (x + 0x9E3779B97F4A7C15) & _MASK
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK
    return x ^ (x >> 31)


def mix(*parts: int) -> int:
    """A 64-bit hash of non-negative integers, stable across processes and platforms."""
    return mix_from(0x243F6A8885A308D3, *parts)


def mix_from(h: int, *parts: int) -> int:
    """Continue a hash: `mix_from(mix(a, b), c) == mix(a, b, c)`; saves rehashing prefixes."""
    for part in parts:
        h = _splitmix(h ^ (part & _MASK))
    return h


def unit(*parts: int) -> float:
    """A uniform float in [0, 1) derived from `parts`."""
    return (mix(*parts) >> 11) * _TO_UNIT


def rng_for(*parts: int) -> random.Random:
    """A private generator for one entity, for drawing many values in sequence."""
    return random.Random(mix(*parts))


def event_days(rate: float, after: int, until: int, *key: int) -> Iterator[int]:
    """Days in (after, until] on which an event happens, each day independently with `rate`.

    Gaps between events are geometric, so walking to day `until` costs about
    `rate * (until - after)` hashes rather than one per day.
    """
    if rate <= 0 or until <= after:
        return
    if rate >= 1:
        yield from range(after + 1, until + 1)
        return
    log_miss = math.log1p(-rate)
    stream = mix(*key)  # unit(*key, k) == the draw below, without rehashing the key
    day, k = after, 0
    while True:
        day += 1 + int(math.log1p(-((mix_from(stream, k) >> 11) * _TO_UNIT)) / log_miss)
        if day > until:
            return
        yield day
        k += 1


def happens_on(day: int, rate: float, after: int, *key: int) -> bool:
    """Whether the event stream `event_days(rate, after, ..., *key)` has an event on `day`."""
    last = None
    for last in event_days(rate, after, day, *key):  # noqa: B007 - the walk ends at `day`
        pass
    return last == day
