"""A partition whose lease was lost gets smaller batches, so a batch that outlasts its lease still commits in time."""

from __future__ import annotations

from learnagg.streams.ownership import MAX_HALVINGS, PartitionOwnership


def _ownership(app) -> PartitionOwnership:
    return PartitionOwnership(
        store=app.store, log_=app.log, consumer="assessment-aggregator", topic="t", owner="w:1", lease_seconds=1
    )


def test_each_lost_lease_halves_that_partitions_batches_down_to_one(app) -> None:
    ownership = _ownership(app)
    assert ownership.batch_limit(3, 500) == 500
    ownership.lost(3)
    assert ownership.batch_limit(3, 500) == 250
    assert ownership.batch_limit(4, 500) == 500  # other partitions keep their size
    for _ in range(MAX_HALVINGS + 5):
        ownership.lost(3)
    assert ownership.batch_limit(3, 500) == 1
