"""Schema drift in the person documents: a field renamed, or sent as another type, from a day on.

What production does to a lake that stores whatever arrives: the person task renames
`personBasic.birthDate` to `dateOfBirth` one night, or starts sending a GPA as text. A drift
is applied to every document the person task answers from its day on (the truth of who is
present is not changed by it). A path is a service filter's path, walked through arrays:
`/studentInfo/studentSemester/studentSemesterInfo/currentGpa` changes it in every semester.

As an option (`dataload sandbox --drift`, `dataload demo --drift`):
`/personBasic/birthDate=dateOfBirth@2` renames from day 2, `/a/b:string@3` sends text from day 3
(types: string, number, boolean).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["DEMO_DRIFTS", "Drift", "apply_drifts"]

Kind = Literal["string", "number", "boolean"]
_SPEC = re.compile(
    r"^(?P<path>/[^=:@]+)(?:=(?P<rename>[^=:@/]+)|:(?P<kind>string|number|boolean))@(?P<day>\d+)$"
)


@dataclass(frozen=True)
class Drift:
    path: str  # a service filter's path, e.g. /personBasic/birthDate
    from_day: int
    rename: str | None = None  # the field's new name
    to_type: Kind | None = None  # the type it is sent as

    def __post_init__(self) -> None:
        if (self.rename is None) == (self.to_type is None):
            raise ValueError(f"drift of {self.path}: give either a new name or a new type")
        if not self.path.startswith("/") or "" in self.path[1:].split("/"):
            raise ValueError(f"drift path {self.path!r} must look like /personBasic/birthDate")

    @classmethod
    def parse(cls, spec: str) -> Drift:
        match = _SPEC.match(spec.strip())
        if match is None:
            raise ValueError(
                f"drift {spec!r} is not PATH=NEWNAME@DAY (/personBasic/birthDate=dateOfBirth@2) "
                "or PATH:TYPE@DAY (/personBasic/gender:number@2; string, number or boolean)"
            )
        return cls(match["path"], int(match["day"]), rename=match["rename"], to_type=match["kind"])

    def describe(self) -> str:
        what = f"renamed to {self.rename}" if self.rename else f"sent as {self.to_type}"
        return f"{self.path} {what} from day {self.from_day}"


#: The demo's drift (`dataload demo --drift`): the bioDemo and studentGPA services lose a field.
DEMO_DRIFTS = (
    Drift("/personBasic/birthDate", 2, rename="dateOfBirth"),
    Drift("/studentInfo/studentSemester/studentSemesterInfo/currentGpa", 2, to_type="string"),
)


def apply_drifts(document: dict[str, Any], drifts: tuple[Drift, ...] | list[Drift], day: int):
    """Change the document (in place) by every drift whose day has come."""
    for drift in drifts:
        if day >= drift.from_day:
            *parents, name = drift.path[1:].split("/")
            for holder in _holders(document, parents):
                if name in holder:
                    value = holder.pop(name)
                    if drift.rename:
                        holder[drift.rename] = value
                    else:
                        holder[name] = _as(value, drift.to_type)


def _holders(value: Any, segments: list[str]) -> list[dict[str, Any]]:
    """The objects at this path, through arrays."""
    found = [value]
    for segment in segments:
        deeper = []
        for item in _flat(found):
            if isinstance(item, dict) and segment in item:
                deeper.append(item[segment])
        found = deeper
    return [item for item in _flat(found) if isinstance(item, dict)]


def _flat(values: list[Any]) -> list[Any]:
    flat = []
    for value in values:
        flat.extend(_flat(value) if isinstance(value, list) else [value])
    return flat


def _as(value: Any, kind: Kind | None) -> Any:
    if value is None or isinstance(value, dict | list):
        return value
    if kind == "string":
        return str(value)
    if kind == "number":
        try:
            return float(value) if not isinstance(value, bool) else int(value)
        except (TypeError, ValueError):
            return len(str(value))
    return bool(value)
