"""SCRAM-SHA-256 password verifiers, computed here so that a password never reaches the server.

`CREATE ROLE ... PASSWORD 'SCRAM-SHA-256$...'` stores a verifier as given; PostgreSQL checks a
login against it exactly as against one it computed (RFC 5802 and 7677; psql's `\\password`
does the same). The password is prepared as PostgreSQL prepares it (SASLprep, RFC 4013, where
it applies; the raw string otherwise), so that a password with non-ASCII characters logs in.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import stringprep
import unicodedata

__all__ = ["scram_sha256_verifier"]

_ITERATIONS = 4096  # PostgreSQL's default (scram_iterations)
_PROHIBITED = (
    stringprep.in_table_a1,  # unassigned code points
    stringprep.in_table_c12,
    stringprep.in_table_c21,
    stringprep.in_table_c22,
    stringprep.in_table_c3,
    stringprep.in_table_c4,
    stringprep.in_table_c5,
    stringprep.in_table_c6,
    stringprep.in_table_c7,
    stringprep.in_table_c8,
    stringprep.in_table_c9,
)


def _saslprep(password: str) -> str:
    """SASLprep as PostgreSQL applies it: ASCII as is; a string it refuses stays as it is."""
    if password.isascii():
        return password
    mapped = "".join(
        " " if stringprep.in_table_c12(c) else c for c in password if not stringprep.in_table_b1(c)
    )
    prepared = unicodedata.normalize("NFKC", mapped)
    if not prepared or any(test(c) for c in prepared for test in _PROHIBITED):
        return password
    if any(stringprep.in_table_d1(c) for c in prepared):
        right_to_left_only = not any(stringprep.in_table_d2(c) for c in prepared)
        ends = stringprep.in_table_d1(prepared[0]) and stringprep.in_table_d1(prepared[-1])
        if not (right_to_left_only and ends):
            return password
    return prepared


def scram_sha256_verifier(
    password: str, *, salt: bytes | None = None, iterations: int = _ITERATIONS
) -> str:
    """`SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>` for a password."""
    salt = salt if salt is not None else os.urandom(16)
    salted = hashlib.pbkdf2_hmac("sha256", _saslprep(password).encode(), salt, iterations)
    client_key = hmac.digest(salted, b"Client Key", "sha256")
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.digest(salted, b"Server Key", "sha256")

    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode()

    return f"SCRAM-SHA-256${iterations}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"
