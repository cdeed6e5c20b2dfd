"""Names, addresses and words drawn once with Faker, then picked from by index.

Faker costs a fraction of a millisecond per value; picking from a precomputed tuple costs
nanoseconds, which is how person documents are built thousands per second.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from functools import cache

from faker import Faker

__all__ = ["Pools", "pools"]

_lock = threading.Lock()


@dataclass(frozen=True)
class Pools:
    first_names_female: tuple[str, ...]
    first_names_male: tuple[str, ...]
    last_names: tuple[str, ...]
    streets: tuple[str, ...]
    secondary: tuple[str, ...]
    places: tuple[tuple[str, str, str], ...]  # (city, state abbreviation, ZIP code)
    email_domains: tuple[str, ...]
    job_titles: tuple[str, ...]
    companies: tuple[str, ...]
    words: tuple[str, ...]


def pools(seed: int) -> Pools:
    """The pools for a seed, built on first use (about 0.3 s) and kept for the process."""
    with _lock:
        return _build(seed)


@cache
def _build(seed: int) -> Pools:
    fake = Faker("en_US")
    fake.seed_instance(seed)

    def unique(make, count: int) -> tuple[str, ...]:
        seen: dict[str, None] = {}
        for _ in range(count * 3):
            seen.setdefault(make(), None)
            if len(seen) == count:
                break
        return tuple(seen)

    return Pools(
        first_names_female=unique(fake.first_name_female, 200),
        first_names_male=unique(fake.first_name_male, 200),
        last_names=unique(fake.last_name, 500),
        streets=unique(fake.street_address, 400),
        secondary=unique(fake.secondary_address, 50),
        places=tuple(
            (fake.city(), state, fake.postcode_in_state(state))
            for state in (fake.state_abbr(include_territories=False) for _ in range(200))
        ),
        email_domains=("gmail.com", "yahoo.com", "outlook.com", "icloud.com", "hotmail.com"),
        job_titles=unique(fake.job, 150),
        companies=unique(fake.company, 60),
        words=unique(fake.word, 300),
    )
