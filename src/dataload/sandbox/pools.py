"""Names, addresses and words drawn once with Faker, then picked from by index.

Faker costs a fraction of a millisecond per value; picking from a precomputed tuple costs
nanoseconds, which is how person documents are built thousands per second.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass
from functools import cache

from faker import Faker

from dataload.sandbox.vocabulary import DEPARTMENTS

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
    addresses: tuple[dict[str, str | None], ...]  # street to country, without type and date
    classes: tuple[dict[str, object], ...]  # class templates, without grade


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

    streets = unique(fake.street_address, 400)
    secondary = unique(fake.secondary_address, 50)
    places = tuple(
        (fake.city(), state, fake.postcode_in_state(state))
        for state in (fake.state_abbr(include_territories=False) for _ in range(200))
    )
    rng = random.Random(seed)
    addresses = tuple(
        {
            "street1": street,
            "street2": rng.choice(secondary) if rng.random() < 0.3 else None,
            "city": city,
            "state": state,
            "postalCode": zip_code,
            "country": "USA",
        }
        for street, (city, state, zip_code) in zip(
            streets, (rng.choice(places) for _ in streets), strict=False
        )
    )
    classes = tuple(
        {
            "courseId": 100000 + rng.randrange(800000),
            "sessionCode": "1",
            "subject": f"{school} {code}",
            "catalogNumber": str(rng.randrange(100, 800)),
            "units": 4,
        }
        for code, _, school in (rng.choice(DEPARTMENTS) for _ in range(600))
    )
    return Pools(
        first_names_female=unique(fake.first_name_female, 200),
        first_names_male=unique(fake.first_name_male, 200),
        last_names=unique(fake.last_name, 500),
        streets=streets,
        secondary=secondary,
        places=places,
        email_domains=("gmail.com", "yahoo.com", "outlook.com", "icloud.com", "hotmail.com"),
        job_titles=unique(fake.job, 150),
        companies=unique(fake.company, 60),
        words=unique(fake.word, 300),
        addresses=addresses,
        classes=classes,
    )
