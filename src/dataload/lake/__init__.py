"""The lake: PostgreSQL schemas, migrations, the fast write path, service filters, history."""

from dataload.lake.domains import Domain, UnknownDomain
from dataload.lake.load import BatchResult, Lake, LakeError, LoadRun, RunSummary, WriterBusy
from dataload.lake.migrate import MigrationError, migrate
from dataload.lake.setup import LakeSetup, init_lake

__all__ = [
    "BatchResult",
    "Domain",
    "Lake",
    "LakeError",
    "LakeSetup",
    "LoadRun",
    "MigrationError",
    "RunSummary",
    "UnknownDomain",
    "WriterBusy",
    "init_lake",
    "migrate",
]
