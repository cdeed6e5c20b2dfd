"""Async clients for the source systems: PeopleSoft, SnapLogic, SAP and VDS.

Each client is an async context manager built with `from_settings(settings)`; records come out
as plain dicts; every failure is a `SourceError` (see `dataload.sources.errors`).
"""

from dataload.sources.auth import ApiKeyAuth
from dataload.sources.errors import (
    SourceAuthError,
    SourceError,
    SourceMalformedResponse,
    SourceRateLimited,
    SourceRefused,
    SourceResponseError,
    SourceServerError,
    SourceTransportError,
    SourceUnresolvable,
)
from dataload.sources.http import ClientStats, SourceClient, timeouts
from dataload.sources.peoplesoft import PeopleSoft
from dataload.sources.retry import RetryPolicy
from dataload.sources.sap import Sap
from dataload.sources.snaplogic import PersonBatch, SnapLogicCourses, SnapLogicPersons
from dataload.sources.vds import Vds

__all__ = [
    "ApiKeyAuth",
    "ClientStats",
    "PeopleSoft",
    "PersonBatch",
    "RetryPolicy",
    "Sap",
    "SnapLogicCourses",
    "SnapLogicPersons",
    "SourceAuthError",
    "SourceClient",
    "SourceError",
    "SourceMalformedResponse",
    "SourceRateLimited",
    "SourceRefused",
    "SourceResponseError",
    "SourceServerError",
    "SourceTransportError",
    "SourceUnresolvable",
    "Vds",
    "timeouts",
]
