"""The synthetic university of one configuration: calendar, people and courses together."""

from __future__ import annotations

import threading
from datetime import date, timedelta
from functools import cached_property, lru_cache

from dataload.sandbox.calendar import CAREERS, Calendar, Term, active_ugrd_terms
from dataload.sandbox.config import DayRates, SandboxConfig
from dataload.sandbox.courses import CourseCatalog
from dataload.sandbox.persons import PersonFactory
from dataload.sandbox.pools import Pools, pools
from dataload.sandbox.population import Population

__all__ = ["University", "university_for"]


class University:
    def __init__(
        self, seed: int, people: int, first_day: date, courses_per_term: int, rates: DayRates
    ) -> None:
        self.seed = seed
        self.first_day = first_day
        self.rates = rates
        self.courses_per_term = courses_per_term
        self.calendar = Calendar(first_day)
        self.population = Population(seed, people, rates, self.calendar, first_day)

    @cached_property
    def pools(self) -> Pools:
        return pools(self.seed)

    @cached_property
    def persons(self) -> PersonFactory:
        rates = self.rates
        return PersonFactory(
            self.population, self.pools, rates.person_change, rates.person_shuffle, self.first_day
        )

    @cached_property
    def courses(self) -> CourseCatalog:
        return CourseCatalog(
            self.seed, self.courses_per_term, self.rates, self.pools, self.first_day
        )

    def date_of(self, day: int) -> date:
        return self.first_day + timedelta(days=day - 1)

    def term_rows(self, day: int) -> list[dict[str, object]]:
        """BU_TERM_QRY rows of `day` (a fresh list: callers may decorate it)."""
        return [dict(row) for row in self._term_rows(day)]

    @lru_cache(maxsize=8)  # noqa: B019 - one University per config, kept for the process
    def _term_rows(self, day: int) -> tuple[dict[str, object], ...]:
        return tuple(self.calendar.term_rows(self.date_of(day)))

    def active_ugrd_terms(self, day: int) -> list[str]:
        return active_ugrd_terms(list(self._term_rows(day)))

    def terms_with_code(self, strm: str, day: int) -> list[Term]:
        """The visible terms (one per career at most) with this STRM on `day`."""
        when = self.date_of(day)
        found = []
        for career in CAREERS:
            visible = self.calendar.terms(career)[: self.calendar.visible_count(career, when)]
            found.extend(term for term in visible if term.strm == strm)
        return found


def university_for(config: SandboxConfig) -> University:
    """The university of a config's data knobs, shared by every request with the same knobs."""
    return _university(
        config.seed, config.people, config.start_date, config.courses_per_term, config.rates
    )


_cache: dict[tuple, University] = {}
_cache_lock = threading.Lock()


def _university(
    seed: int, people: int, first_day: date, courses_per_term: int, rates: DayRates
) -> University:
    key = (seed, people, first_day, courses_per_term, *vars(rates).values())
    with _cache_lock:
        found = _cache.get(key)
        if found is None:
            if len(_cache) >= 8:
                _cache.pop(next(iter(_cache)))
            found = _cache[key] = University(seed, people, first_day, courses_per_term, rates)
        return found
