"""Digests: the proof that the trail is intact (SPEC.md, "Proof that the trail is intact").

For every batch it writes entries for, the producer writes one digest object: each entry's id,
trail table, key, time and the SHA-256 of the entry in its canonical form. ``config-audit
verify`` recomputes the hashes from the trail and compares.

The canonical form of an entry (what anyone can recompute, README "Proof that the trail is intact"):
the entry as DynamoDB returns it in attribute-value form (``aws dynamodb scan`` prints it so;
binary as base64), without the time index's attributes ``timeShard`` and ``timeOrder``, the members of each string,
number and binary set sorted (as text), object keys sorted, no whitespace, UTF-8, non-ASCII as
is: ``json.dumps(form, sort_keys=True, separators=(",", ":"), ensure_ascii=False)``.

A digest's object key is ``<trail>/YYYY/MM/DD/HH/<sha256 of its body>.json``, HH being the hour
(UTC) of its entries' ``modificationTime``: a window's digests are listed from its hours' prefixes
alone. A batch whose entries span hours writes one digest per hour it spans (almost always one).
The name is the body's own hash, so a redelivered batch writes the very same object again and a
digest overwritten with other content no longer matches its name.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from botocore.exceptions import ClientError

from chalicelib.audit.entries import Entry, id_of, item_key_of, time_of
from chalicelib.audit.repository import TIME_ORDER, TIME_SHARD
from chalicelib.aws_calls import AwsAdapter, ConfigurationError, RetryLater, error_code

# The attributes the time index adds to every stored entry (derived from the entry, stripped on
# read): not part of what the producer built, so not part of what it hashed.
TIME_INDEX_ATTRIBUTES = frozenset({TIME_SHARD, TIME_ORDER})
DIGEST_VERSION = 1
_SETS = {"SS", "NS", "BS"}


def canonical_form(entry: Mapping[str, Any]) -> bytes:
    """The bytes an entry's SHA-256 is taken of (the module's docstring states the form)."""
    form = {name: _value(value) for name, value in entry.items() if name not in TIME_INDEX_ATTRIBUTES}
    text = json.dumps(form, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return text.encode("utf-8", "surrogatepass")  # a lone surrogate DynamoDB stored still hashes


def entry_hash(entry: Mapping[str, Any]) -> str:
    """The SHA-256 (hex) of an entry's canonical form."""
    return hashlib.sha256(canonical_form(entry)).hexdigest()


def _value(value: Any) -> Any:
    """One attribute value as the AWS CLI prints it (binary as base64), set members sorted."""
    if not isinstance(value, dict) or len(value) != 1:
        return value  # not an attribute value: hashed as it is, so any change of it still shows
    ((tag, payload),) = value.items()
    if tag == "M" and isinstance(payload, dict):
        return {"M": {name: _value(member) for name, member in payload.items()}}
    if tag == "L" and isinstance(payload, list):
        return {"L": [_value(member) for member in payload]}
    if tag == "B":
        return {"B": _base64(payload)}
    if tag in _SETS and isinstance(payload, list):
        members = [_base64(member) for member in payload] if tag == "BS" else payload
        return {tag: sorted(members)}  # DynamoDB returns a set's members in no set order
    return {tag: payload}


def _base64(payload: Any) -> Any:
    """Binary as base64 text: boto3's client gives bytes; Lambda's events give the text already."""
    return base64.b64encode(bytes(payload)).decode() if isinstance(payload, bytes | bytearray) else payload


def hour_of(time: str) -> str:
    """``YYYY/MM/DD/HH`` of a ``YYYY-MM-DDTHH:MM:SS.mmmZ`` time: the hour part of a digest's key."""
    return f"{time[0:4]}/{time[5:7]}/{time[8:10]}/{time[11:13]}"


@dataclass(frozen=True, slots=True)
class DigestLine:
    """One entry as a digest lists it."""

    id: str
    trail: str
    item_key: str
    modification_time: str
    sha256: str

    def as_json(self) -> dict[str, str]:
        return {
            "id": self.id,
            "trailTable": self.trail,
            "itemKey": self.item_key,
            "modificationTime": self.modification_time,
            "sha256": self.sha256,
        }


def digest_line(entry: Entry, trail: str) -> DigestLine:
    """What a digest says of one entry written to ``trail``."""
    return DigestLine(id_of(entry), trail, item_key_of(entry), time_of(entry), entry_hash(entry))


@dataclass(frozen=True, slots=True)
class Digest:
    """One digest object: its key in the bucket and its body."""

    key: str
    body: bytes


def digests_of(lines: Iterable[DigestLine]) -> list[Digest]:
    """The digest objects of a batch's lines: one per trail and hour, each named by its body's hash.

    Deterministic (lines sorted by id, a line listed once), so a redelivered batch makes the same objects.
    """
    groups: dict[tuple[str, str], dict[str, DigestLine]] = {}
    for line in lines:
        groups.setdefault((line.trail, hour_of(line.modification_time)), {})[line.id] = line
    digests = []
    for (trail, hour), by_id in sorted(groups.items()):
        body = {
            "digestVersion": DIGEST_VERSION,
            "trailTable": trail,
            "entries": [by_id[id_].as_json() for id_ in sorted(by_id)],
        }
        raw = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode(
            "utf-8", "surrogatepass"
        )
        digests.append(Digest(f"{trail}/{hour}/{hashlib.sha256(raw).hexdigest()}.json", raw))
    return digests


class DigestWriter(Protocol):
    """The digest port: the producer writes a batch's digests through it before acknowledging."""

    enabled: bool

    def write(self, digests: Sequence[Digest]) -> None:
        """Write every digest; raise CallFailed (or ConfigurationError) when one is not written."""
        ...


class NoDigests:
    """DIGEST_BUCKET unset: no digest is written, and no entry is even hashed."""

    enabled = False

    def write(self, digests: Sequence[Digest]) -> None:
        return None


NO_DIGESTS = NoDigests()


class S3DigestWriter(AwsAdapter):
    """Digests as objects of the DIGEST_BUCKET bucket (Object Lock, compliance mode, retained by default)."""

    enabled = True

    def __init__(self, client: Any, bucket: str) -> None:
        super().__init__(client, f"digest bucket {bucket!r} (DIGEST_BUCKET)")
        self.bucket = bucket

    def write(self, digests: Sequence[Digest]) -> None:
        """One PutObject a digest; the first that fails raises (the batch is then not acknowledged)."""
        for digest in digests:
            try:
                # a checksum header: S3 refuses an upload to a bucket with default retention without one
                self._call(
                    "put_object",
                    Bucket=self.bucket,
                    Key=digest.key,
                    Body=digest.body,
                    ContentType="application/json",
                    ChecksumAlgorithm="SHA256",
                )
            except RetryLater as error:
                cause = error.__cause__
                if isinstance(cause, ClientError) and error_code(cause) == "NoSuchBucket":  # no retry brings it
                    raise ConfigurationError(f"{self._resource} does not exist: NoSuchBucket") from error
                raise
