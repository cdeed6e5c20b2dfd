"""Finding the domains: every `DomainSpec` named in the entry point group `dataload.domains`.

Any installed package adds domains by declaring, in its pyproject.toml,

    [project.entry-points."dataload.domains"]
    my_domain = "my_package.my_module:DOMAIN"

dataload's own domains are declared the same way, so there is one path for all of them.
"""

from __future__ import annotations

from importlib.metadata import EntryPoint, entry_points

from dataload.domains.spec import DomainSpec

__all__ = ["ENTRY_POINT_GROUP", "DomainLoadError", "all_domains", "get_domain"]

ENTRY_POINT_GROUP = "dataload.domains"


class DomainLoadError(RuntimeError):
    """An entry point of `dataload.domains` could not be loaded, or is not a domain."""


def _load(entry: EntryPoint) -> DomainSpec:
    where = f"entry point {entry.name} = {entry.value} (package {_package(entry)})"
    try:
        spec = entry.load()
    except Exception as exc:
        raise DomainLoadError(f"{where} failed to load: {type(exc).__name__}: {exc}") from exc
    if not isinstance(spec, DomainSpec):
        raise DomainLoadError(f"{where} is a {type(spec).__name__}, not a DomainSpec")
    if spec.name != entry.name:
        raise DomainLoadError(f"{where} declares the domain {spec.name!r}: name them alike")
    return spec


def _package(entry: EntryPoint) -> str:
    dist = getattr(entry, "dist", None)
    return dist.name if dist is not None else "unknown"


def all_domains() -> dict[str, DomainSpec]:
    """Every registered domain by name, read anew from the installed packages' metadata."""
    found: dict[str, DomainSpec] = {}
    for entry in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        if entry.name in found:
            raise DomainLoadError(_twice(entry.name))
        found[entry.name] = _load(entry)
    return found


def get_domain(name: str) -> DomainSpec:
    """One registered domain; only its own module is imported."""
    entries = entry_points(group=ENTRY_POINT_GROUP)
    matching = [entry for entry in entries if entry.name == name]
    if not matching:
        known = ", ".join(sorted({entry.name for entry in entries})) or "none"
        raise LookupError(f"no domain {name!r} is registered; registered: {known}")
    if len(matching) > 1:
        raise DomainLoadError(_twice(name))
    return _load(matching[0])


def _twice(name: str) -> str:
    return f"two packages register the domain {name!r} in {ENTRY_POINT_GROUP}; uninstall one"
