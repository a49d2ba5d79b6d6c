"""Keys of the group-aggregate cache (docs/api.md#group-aggregates): every key of group G starts with ``G:``."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping


def activity_agg_key(group_id: str, activity_id: str, activity_type: str, include_all_members: bool) -> str:
    """``<groupId>:<activityId>:<activityType>:activity-agg``, plus ``:all`` with ``includeAllMembers``."""
    key = f"{group_id}:{activity_id}:{activity_type}:activity-agg"
    return key + ":all" if include_all_members else key


def group_agg_key(group_id: str, request: Mapping[str, object]) -> str:
    """``<groupId>:group-agg:<MD5U(compact request JSON, keys sorted)>``."""
    text = json.dumps(request, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return f"{group_id}:group-agg:{hashlib.md5(text.encode()).hexdigest().upper()}"


def group_prefix(group_id: str) -> str:
    """The prefix shared by every cached result of a group."""
    return f"{group_id}:"
