"""The digest bucket (DIGEST_BUCKET) outside the templates: the local stack and the tests create it here.

    python -m infra.digest_bucket NAME [--retention-days 2557]   # for a `chalice deploy` stage

S3 Object Lock in compliance mode: every digest version is kept from deletion and overwriting for
the default retention, by everyone, the account's root user included, and the lock cannot be
loosened. The stack and Terraform create the same bucket (infra/cloudformation.py, infra/terraform.py).
"""

from __future__ import annotations

import argparse
from typing import Any

import boto3
from botocore.exceptions import ClientError

from chalicelib.settings import DEFAULT_DIGEST_RETENTION_DAYS


def ensure_digest_bucket(s3: Any, name: str, retention_days: int = DEFAULT_DIGEST_RETENTION_DAYS) -> bool:
    """Create the bucket with Object Lock (compliance mode, ``retention_days`` by default) where it
    is missing; True if it was created. Object Lock turns versioning on with it."""
    try:
        s3.head_bucket(Bucket=name)
        return False
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") not in ("404", "NoSuchBucket", "NotFound"):
            raise
    s3.create_bucket(Bucket=name, ObjectLockEnabledForBucket=True)  # only at creation can a bucket get it
    s3.put_object_lock_configuration(
        Bucket=name,
        ObjectLockConfiguration={
            "ObjectLockEnabled": "Enabled",
            "Rule": {"DefaultRetention": {"Mode": "COMPLIANCE", "Days": retention_days}},
        },
    )
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("name", help="the bucket's name (DIGEST_BUCKET)")
    parser.add_argument("--retention-days", type=int, default=DEFAULT_DIGEST_RETENTION_DAYS, help="default retention")
    args = parser.parse_args(argv)
    created = ensure_digest_bucket(boto3.client("s3"), args.name, args.retention_days)
    print(f"{args.name}: {'created' if created else 'exists already, left as it is'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
