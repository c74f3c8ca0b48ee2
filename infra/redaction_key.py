"""The redaction HMAC key: a SecureString parameter, created once and never overwritten.

    python -m infra.redaction_key /config-audit/prod/redaction-key [--kms-key-id KEY]

Provisioning, the local stack and the tests create it from here. Replacing the key changes
every digest from then on: entries written before keep the old digests, so a secret that did
not change would look changed once. Rotate it only on purpose, and say so in the change log.
"""

from __future__ import annotations

import argparse
import secrets
from typing import Any

import boto3
from botocore.exceptions import ClientError


def ensure_redaction_key(ssm: Any, name: str, kms_key_id: str | None = None) -> bool:
    """Create the parameter with 32 random bytes (hex) where it is missing; True if it was created."""
    try:
        ssm.get_parameter(Name=name)
        return False
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") != "ParameterNotFound":
            raise
    options = {"KeyId": kms_key_id} if kms_key_id else {}
    ssm.put_parameter(
        Name=name,
        Value=secrets.token_hex(32),
        Type="SecureString",
        Overwrite=False,
        Description="config-audit: HMAC key for redacted attributes; replacing it changes every digest",
        **options,
    )
    return True


def parameter_arn(partition: str, region: str, account: str, name: str) -> str:
    """The ARN of an SSM parameter (a name with a leading slash loses it in the ARN)."""
    return f"arn:{partition}:ssm:{region}:{account}:parameter/{name.lstrip('/')}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("name", help="the parameter's name, a path from / (REDACTION_KEY_PARAMETER)")
    parser.add_argument("--kms-key-id", help="a customer managed KMS key to encrypt it with (recommended)")
    args = parser.parse_args(argv)
    created = ensure_redaction_key(boto3.client("ssm"), args.name, args.kms_key_id)
    print(f"{args.name}: {'created' if created else 'exists already, left as it is'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
