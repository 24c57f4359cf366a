"""Pseudonymised identifiers and per-participant date shifting for every output.

Identifiers are replaced by a keyed hash (HMAC-SHA-256) of the original id with a secret salt:
without the salt the mapping cannot be recomputed from a list of candidate ids. The salt is
random per run unless the user gives one (to keep pseudonyms stable across runs); it is never
written to any output.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Sequence

import numpy as np

from reconsolidate.exceptions import InputError

__all__ = ["date_shift_days", "new_salt", "pseudonymise_ids"]

_PREFIX = "P"


def new_salt() -> bytes:
    """A fresh random 32-byte salt (per run)."""
    return secrets.token_bytes(32)


def _key(salt: bytes | str) -> bytes:
    if isinstance(salt, str):
        salt = salt.encode("utf-8")
    if not isinstance(salt, bytes | bytearray) or len(salt) < 8:
        raise InputError("pseudonymisation salt must be at least 8 bytes (or characters)")
    return bytes(salt)


def pseudonymise_ids(ids: Sequence[str] | np.ndarray, salt: bytes | str, *,
                     n_hex: int = 16) -> np.ndarray:
    """Keyed-hash pseudonyms ``"P" + 16 hex digits`` (64 bits) for each identifier.

    Parameters
    ----------
    ids
        Original identifiers (str).
    salt
        Secret key (>= 8 bytes). The same salt gives the same pseudonyms.
    n_hex
        Hex digits kept; lengthened automatically if two distinct ids would collide.

    Returns
    -------
    numpy.ndarray
        Object array of pseudonyms, one per id (equal ids -> equal pseudonyms).
    """
    key = _key(salt)
    digests = [hmac.new(key, str(i).encode("utf-8"), hashlib.sha256).hexdigest() for i in ids]
    uniq_ids = len(set(map(str, ids)))
    n = n_hex
    while n < 64:
        out = [_PREFIX + d[:n] for d in digests]
        if len(set(out)) == uniq_ids:
            return np.asarray(out, dtype=object)
        n += 4
    return np.asarray([_PREFIX + d for d in digests], dtype=object)


def date_shift_days(ids: Sequence[str] | np.ndarray, salt: bytes | str,
                    max_shift_days: int = 180) -> np.ndarray:
    """Per-participant date shift, integer days in ``[-max_shift_days, +max_shift_days]``.

    Derived from the same keyed hash as the pseudonym (domain-separated), so it is stable for a
    given salt and unrecoverable without it. Shifting every date of a participant by the same
    amount keeps intervals (study days, weekdays do change) intact, as abstcal's date masking.
    """
    if not (isinstance(max_shift_days, int) and max_shift_days >= 1):
        raise InputError(f"max_shift_days = {max_shift_days!r}: must be an integer >= 1")
    key = _key(salt)
    out = np.empty(len(ids), dtype=np.int64)
    span = 2 * max_shift_days + 1
    for k, i in enumerate(ids):
        h = hmac.new(key, b"date-shift\x00" + str(i).encode("utf-8"), hashlib.sha256).digest()
        out[k] = int.from_bytes(h[:8], "little") % span - max_shift_days
    return out
