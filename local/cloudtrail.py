"""The local stack's CloudTrail player lives in the operator's package (config_audit), so that an
installed config-audit plays it too, with no local/ beside it; its old home keeps its names."""

from __future__ import annotations

from config_audit.cloudtrail_player import CloudTrailPlayer, Deliver, identity_of, request_parameters

__all__ = ["CloudTrailPlayer", "Deliver", "identity_of", "request_parameters"]
