"""How each simulated system says no: error bodies, auth checks and broken answers.

Each system has its own error dialect, as the real ones do; a client must recognise all of
them. The HTML login page is what a single-sign-on proxy serves when a session is missing.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from dataclasses import dataclass

import orjson
from starlette.requests import Request
from starlette.responses import Response

__all__ = [
    "PEOPLESOFT",
    "SAP",
    "SNAPLOGIC",
    "VDS",
    "System",
    "basic_credentials",
    "json_response",
    "matches",
]

LOGIN_PAGE = b"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Boston University | Login</title></head>
<body><div id="login"><h1>Boston University Login</h1>
<form method="post" action="/idp/profile/SAML2/Redirect/SSO?execution=e1s1">
<label for="j_username">BU login name</label><input id="j_username" name="j_username">
<label for="j_password">Password</label><input id="j_password" name="j_password" type="password">
<button type="submit" name="_eventId_proceed">Continue</button></form></div></body></html>
"""


def json_response(
    body: object, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    return Response(orjson.dumps(body), status, headers, media_type="application/json")


@dataclass(frozen=True)
class System:
    name: str
    malformed_body: bytes
    challenge: str | None  # WWW-Authenticate on 401

    def error(self, status: int, message: str, headers: dict[str, str] | None = None) -> Response:
        return json_response(self._error_body(status, message), status, headers)

    def _error_body(self, status: int, message: str) -> object:
        if self.name == "peoplesoft":
            return {"status": "fail", "data": {"error": {"code": status, "message": message}}}
        if self.name == "snaplogic":
            return {
                "http_status_code": status,
                "response_map": {"error_list": [{"message": message}]},
            }
        if self.name == "sap":
            return {"error": {"code": str(status), "message": message}}
        return {"httpStatus": status, "message": message}

    def error_in_success(self) -> Response:
        """HTTP 200 carrying an error body, as gateways do when the backend fails."""
        return json_response(self._error_body(500, f"{self.name} backend error"), 200)

    def empty(self, endpoint: str) -> Response:
        """HTTP 200 with a well-formed answer that lists nothing (a source gone quiet)."""
        if self.name == "peoplesoft":
            query = endpoint.partition(".")[2]
            rows = {"numrows": 0, "queryname": query, "rows": []}
            return json_response({"status": "success", "data": {"query": rows}}, 200)
        if self.name == "sap":
            return json_response({"ET_EMP_LIST": []}, 200)
        if self.name == "vds":
            return json_response({"httpStatus": 200, "totalResults": 0, "resources": []}, 200)
        return json_response([], 200)

    def unauthorized(self) -> Response:
        headers = {"WWW-Authenticate": self.challenge} if self.challenge else None
        return self.error(401, "Authentication failed: invalid credentials", headers)

    def server_error(self, status: int) -> Response:
        return self.error(status, f"{self.name} is temporarily unavailable ({status})")

    def too_many_requests(self, retry_after_s: int) -> Response:
        return self.error(
            429,
            "Too many concurrent requests for this task; retry later",
            {"Retry-After": str(retry_after_s)},
        )

    def malformed(self) -> Response:
        return Response(self.malformed_body, 200, media_type="application/json")

    def login_page(self) -> Response:
        return Response(LOGIN_PAGE, 200, media_type="text/html")

    def gateway_timeout(self) -> Response:
        return self.error(504, "upstream did not answer in time")


PEOPLESOFT = System(
    "peoplesoft",
    b'{"status": "success", "data": {"query": {"numrows": 2, "queryname": "BU_TERM_QRY", '
    b'"rows": [{"attr:rownumber": 1, "ACAD_CAREER": "UG',
    'Basic realm="PeopleSoft Integration Gateway"',
)
SNAPLOGIC = System("snaplogic", b'[{"personid": "U1234", "personBasic": {"name": {"first": "', None)
SAP = System("sap", b'{"ET_EMP_LIST": [{"BUID": "U12345678", "EMP_STATUS": "3 - Act', None)
VDS = System(
    "vds",
    b'{"httpStatus": 200, "totalResults": 2, "resources": [{"dn": "uid=U1',
    'Basic realm="RadiantOne"',
)


def basic_credentials(request: Request) -> tuple[str, str] | None:
    """(user, password) from an HTTP Basic Authorization header, or None."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        user, sep, password = base64.b64decode(token, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return (user, password) if sep else None


def matches(given: str | None, expected: str) -> bool:
    """Constant-time comparison that treats a missing value as wrong."""
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())
