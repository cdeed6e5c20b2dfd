"""Newcomers at a steady rate: `per_day` a day from day 2 on, fractions carried over."""

from __future__ import annotations

import math

__all__ = ["NEVER", "Arrivals"]

NEVER = 1 << 62


class Arrivals:
    def __init__(self, per_day: float) -> None:
        self.per_day = per_day

    def by(self, day: int) -> int:
        """How many newcomers have arrived by the end of `day`."""
        return math.floor((day - 1) * self.per_day) if day > 1 else 0

    def day_of(self, rank: int) -> int:
        """The day the `rank`-th newcomer (from 1) arrives."""
        if self.per_day <= 0:
            return NEVER
        day = max(2, 1 + math.ceil(rank / self.per_day))
        while day > 2 and self.by(day - 1) >= rank:  # float rounding, at most a step or two
            day -= 1
        while self.by(day) < rank:
            day += 1
        return day
