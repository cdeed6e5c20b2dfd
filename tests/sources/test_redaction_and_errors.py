"""Secrets never reach logs or messages: URL and header redaction, error messages, pickling."""

from __future__ import annotations

import pickle

import pytest

from dataload.sources.errors import SourceAuthError, SourceRateLimited
from dataload.sources.http import server_message
from dataload.sources.redaction import endpoint, redact_url, scrub


def test_redact_url_drops_user_info_and_masks_credential_parameters():
    url = "https://svc:hunter2@example.edu/task?bearer_token=abc123&term=2268&api_key=k9&cookie=c"
    redacted = redact_url(url)
    for secret in ("hunter2", "svc:", "abc123", "k9"):
        assert secret not in redacted
    assert "term=2268" in redacted
    assert redacted.startswith("https://example.edu/task?")


def test_endpoint_is_scheme_host_and_path_only():
    url = "https://u:p@example.edu:8443/ps/PSIGW/Q/JSON?prompt_fieldvalue=U123#frag"
    assert endpoint(url) == "https://example.edu:8443/ps/PSIGW/Q/JSON"


def test_error_message_names_system_endpoint_problem_and_what_to_check():
    error = SourceAuthError(
        source="SnapLogic person API",
        endpoint="http://host/snaplogic/person",
        problem="answered 401 Unauthorized",
        hint="check SNAPLOGIC_PERSON_KEY",
        status=401,
    )
    assert str(error) == (
        "SnapLogic person API at http://host/snaplogic/person answered 401 Unauthorized: "
        "check SNAPLOGIC_PERSON_KEY"
    )


def test_errors_survive_pickling_with_their_attributes():
    error = SourceRateLimited(
        source="S",
        endpoint="http://h/",
        problem="answered 429",
        hint="wait",
        status=429,
        attempts=3,
        retry_after=2.0,
    )
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is SourceRateLimited
    assert (copy.status, copy.attempts, copy.retry_after) == (429, 3, 2.0)
    assert str(copy) == str(error)


@pytest.mark.parametrize(
    "body",
    [
        {"message": "term must be a 4-digit STRM code"},
        {
            "status": "fail",
            "data": {"error": {"code": 400, "message": "term must be a 4-digit STRM code"}},
        },
        {
            "http_status_code": 400,
            "response_map": {"error_list": [{"message": "term must be a 4-digit STRM code"}]},
        },
        {"error": {"code": "400", "message": "term must be a 4-digit STRM code"}},
        {"error": "term must be a 4-digit STRM code"},
    ],
)
def test_server_messages_are_found_in_every_error_dialect(body):
    assert server_message(body) == "term must be a 4-digit STRM code"


@pytest.mark.parametrize("body", [{}, [], "text", {"error": {"code": 1}}, None])
def test_bodies_without_a_message_give_none(body):
    assert server_message(body) is None


def test_scrub_masks_known_secrets_only():
    assert scrub("bad key abc123 for abc", ["abc123", ""]) == "bad key REDACTED for abc"
