"""Every knob of the sandbox, in one mutable dataclass.

The app reads the config on every request, so a test (or the `/_sandbox/config` endpoint) can
change a field between two requests and the next one sees it.

Fault and latency knobs exist globally and per endpoint. An endpoint is named
`<system>.<name>` (see `ENDPOINTS`); a lookup tries the endpoint, then its system, then the
global value, so `config.endpoint_faults["snaplogic.person"] = Faults(http_5xx_rate=1.0)` breaks
one endpoint and `config.endpoint_faults["peoplesoft"] = ...` every PeopleSoft query.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from typing import Literal, TypeVar

from dataload.sandbox.drift import Drift
from dataload.sandbox.examples.config import ExamplesConfig

__all__ = [
    "ENDPOINTS",
    "Credentials",
    "DayRates",
    "Faults",
    "Latency",
    "SandboxConfig",
]

ENDPOINTS = (
    "peoplesoft.BU_TERM_QRY",
    "peoplesoft.BU_PARM_0216_QRY",
    "peoplesoft.BU_TERM_STD_FULL_TERM",
    "snaplogic.course",
    "snaplogic.person",
    "sap.employees",
    "vds.search",
    # The example domains' systems (sandbox/examples/).
    "frankfurter.rates",
    "frankfurter.currencies",
    "products.list",
    "jokes.random",
    "taxi.file",
    "sage.transactions",
    "sage.accounts",
)


@dataclass
class Credentials:
    """What the sandbox accepts. The defaults are documented in docs/sandbox.md."""

    peoplesoft_user: str = "sandbox"
    peoplesoft_password: str = "sandbox"
    snaplogic_course_key: str = "sandbox-course-key"
    snaplogic_person_key: str = "sandbox-person-key"
    sap_key: str = "sandbox-sap-key"
    vds_user: str = "sandbox"
    vds_password: str = "sandbox"


@dataclass
class Latency:
    """Time from a request's arrival to its answer: fixed `ms`, uniform in [ms, max_ms], or
    exponential (mean ms)."""

    ms: float = 0.0
    max_ms: float | None = None
    distribution: Literal["fixed", "uniform", "exponential"] = "fixed"

    @classmethod
    def parse(cls, text: str) -> Latency:
        """`50` (fixed), `10-200` (uniform), `~50` (exponential with mean 50), all in ms."""
        text = text.strip()
        try:
            if text.startswith("~"):
                return cls(ms=float(text[1:]), distribution="exponential")
            if "-" in text:
                low, high = (float(part) for part in text.split("-", 1))
                if high < low:
                    raise ValueError
                return cls(ms=low, max_ms=high, distribution="uniform")
            return cls(ms=float(text))
        except ValueError:
            raise ValueError(
                f"latency {text!r} is not one of: 50 (fixed ms), 10-200 (uniform ms), "
                "~50 (exponential, mean ms)"
            ) from None

    def sample_s(self, rng: random.Random) -> float:
        if self.distribution == "uniform":
            return rng.uniform(self.ms, self.max_ms if self.max_ms is not None else self.ms) / 1000
        if self.distribution == "exponential":
            return rng.expovariate(1 / self.ms) / 1000 if self.ms > 0 else 0.0
        return self.ms / 1000


@dataclass
class Faults:
    """Probability per request of each misbehaviour (drawn in this order, at most one)."""

    http_5xx_rate: float = 0.0  # 500, 502 or 503
    hang_rate: float = 0.0  # no answer for `SandboxConfig.hang_s`: the client times out
    malformed_json_rate: float = 0.0  # 200 with a truncated JSON body
    html_login_rate: float = 0.0  # 200 with an HTML single-sign-on page
    unauthorized_rate: float = 0.0  # 401 whatever the credentials
    error_body_rate: float = 0.0  # 200 whose JSON body is the system's error (status "fail")
    empty_rate: float = 0.0  # 200 with a well-formed answer that lists nothing

    KINDS = (
        "http_5xx",
        "hang",
        "malformed_json",
        "html_login",
        "unauthorized",
        "error_body",
        "empty",
    )

    def draw(self, rng: random.Random) -> str | None:
        """The fault to serve for one request, or None."""
        u = rng.random()
        for kind in self.KINDS:
            rate = getattr(self, f"{kind}_rate")
            if u < rate:
                return kind
            u -= rate
        return None


@dataclass
class DayRates:
    """Day-over-day rates: the probability, per entity and per day, of each event."""

    person_change: float = 0.02  # a nested field changes
    person_shuffle: float = 0.01  # arrays come back rotated, content unchanged
    person_leave: float = 0.002  # a present person disappears from every source
    person_return: float = 0.1  # a person who left comes back
    person_arrival: float = 0.002  # new people per day, as a fraction of `people`
    course_change: float = 0.05  # enrollment, room or instructor changes
    course_cancel: float = 0.005  # a course (all its sessions) disappears for good
    course_arrival: float = 0.005  # new courses per term per day, as a fraction of the term's


@dataclass
class SandboxConfig:
    seed: int = 42
    people: int = 2000  # people present on day 1
    day: int = 1
    start_date: date = date(2026, 5, 1)  # the calendar date of day 1
    cs_env: str = "test"  # the only csEnv SnapLogic accepts
    courses_per_term: int = 120  # courses in a regular term, all careers together
    credentials: Credentials = field(default_factory=Credentials)
    latency: Latency = field(default_factory=Latency)
    faults: Faults = field(default_factory=Faults)
    endpoint_latency: dict[str, Latency] = field(default_factory=dict)
    endpoint_faults: dict[str, Faults] = field(default_factory=dict)
    snaplogic_concurrency_limit: int = 10  # per SnapLogic task; beyond it: 429
    retry_after_s: int = 1
    hang_s: float = 600.0
    empty_object_rate: float = 0.01  # `{}` documents in person results
    # Per request and person, the chance that someone asked for and present is left out of the
    # person answer (drawn anew each request, so a retry may bring them).
    left_out_rate: float = 0.0
    # People whose document the person task sends with a `NaN` in it (a serializer bug): a JSON
    # parser refuses that document, never the others of the answer.
    unreadable_people: set[str] = field(default_factory=set)
    alias_rate: float = 0.2  # PeopleSoft rows whose fields carry the `A.` record alias
    vds_page_size: int = 200
    vds_base_dn: str = "ou=people,dc=bu,dc=edu"
    rates: DayRates = field(default_factory=DayRates)
    # Person documents renamed or retyped from a day on (sandbox/drift.py).
    drifts: list[Drift] = field(default_factory=list)
    examples: ExamplesConfig = field(default_factory=ExamplesConfig)

    def faults_for(self, endpoint: str) -> Faults:
        return _lookup(self.endpoint_faults, endpoint, self.faults)

    def latency_for(self, endpoint: str) -> Latency:
        return _lookup(self.endpoint_latency, endpoint, self.latency)

    def date_of(self, day: int) -> date:
        return self.start_date + timedelta(days=day - 1)

    def set_endpoint_fault(self, spec: str) -> None:
        """Apply `ENDPOINT:KIND=RATE`, e.g. `snaplogic.person:http_5xx=1` (a CLI option)."""
        endpoint, _, assignment = spec.partition(":")
        kind, _, rate = assignment.partition("=")
        systems = {name.split(".", 1)[0] for name in ENDPOINTS}
        if endpoint not in ENDPOINTS and endpoint not in systems:
            raise ValueError(f"unknown endpoint {endpoint!r}; one of {sorted(ENDPOINTS)}")
        if kind not in Faults.KINDS:
            raise ValueError(f"unknown fault {kind!r}; one of {list(Faults.KINDS)}")
        try:
            value = float(rate)
        except ValueError:
            raise ValueError(f"fault rate {rate!r} is not a number (0 to 1)") from None
        faults = self.endpoint_faults.setdefault(endpoint, replace(self.faults))
        setattr(faults, f"{kind}_rate", value)


T = TypeVar("T")


def _lookup(overrides: dict[str, T], endpoint: str, default: T) -> T:
    if endpoint in overrides:
        return overrides[endpoint]
    return overrides.get(endpoint.split(".", 1)[0], default)
