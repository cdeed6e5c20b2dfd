"""Prefect flows: term, course and person loads, their deployments, and running them now.

Retries live in one place. The source clients retry transient HTTP failures themselves
(connection errors, timeouts, 5xx, 429 with its Retry-After), with backoff, jitter and a retry
budget, and never retry auth errors or bad data. Prefect tasks therefore have `retries=0`: a
second layer would multiply the client's attempts (DATALOAD_SOURCE_MAX_ATTEMPTS per call)
exactly when a system is down. The lake writes each batch in one transaction; a database that fails mid-run
fails the run, which deletes nothing, and the next run reloads cheaply (unchanged records
are skipped).
"""

from dataload.flows.course import course_raw_flow
from dataload.flows.person import person_raw_flow
from dataload.flows.report import LoadReport
from dataload.flows.term import term_raw_flow

__all__ = ["FLOWS", "LoadReport", "course_raw_flow", "person_raw_flow", "term_raw_flow"]

#: The flows by the name `dataload run` knows them by, in the order they depend on each other.
FLOWS = {"term": term_raw_flow, "course": course_raw_flow, "person": person_raw_flow}
