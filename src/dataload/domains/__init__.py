"""Domains as plugins: the declaration API and the registry of installed domains."""

from dataload.domains.registry import ENTRY_POINT_GROUP, DomainLoadError, all_domains, get_domain
from dataload.domains.spec import (
    DomainSpec,
    Guards,
    Key,
    Listing,
    NoParams,
    Records,
    Schedule,
    Source,
    parse_param_options,
)

__all__ = [
    "ENTRY_POINT_GROUP",
    "DomainLoadError",
    "DomainSpec",
    "Guards",
    "Key",
    "Listing",
    "NoParams",
    "Records",
    "Schedule",
    "Source",
    "all_domains",
    "get_domain",
    "parse_param_options",
]
