"""A partition whose owner died is taken over even while the share still names a dead worker (docs/scale-out.md).

Workers die faster than their memberships expire: the even share may give a dead worker's partition to another
dead worker, again and again. A live worker adopts a partition nobody has held for a third of a lease, keeps it
for one lease, and gives it back to the share's owner. The workers here are `PartitionOwnership` objects on the
real store with one shared clock: a worker that stops calling `refresh` is a dead one.
"""

from __future__ import annotations

from sqlalchemy import select

from learnagg.adapters.bus.log import DatabaseLog
from learnagg.adapters.store.tables import consumer_offset
from learnagg.streams.ownership import PartitionOwnership

CONSUMER, TOPIC, LEASE_MS = "assessment-aggregator", "t", 3000


class Clock:
    def __init__(self) -> None:
        self.ms = 1_000_000

    def __call__(self) -> int:
        return self.ms


def worker(app, clock: Clock, name: str) -> PartitionOwnership:
    return PartitionOwnership(
        store=app.store,
        log_=app.log,
        consumer=CONSUMER,
        topic=TOPIC,
        owner=name,
        lease_seconds=LEASE_MS / 1000,
        now_ms=clock,
    )


def owners(app) -> dict[int, str | None]:
    c = consumer_offset.c
    with app.store.read() as conn:
        rows = conn.execute(select(c.partition, c.owner).where(c.consumer == CONSUMER, c.topic == TOPIC)).all()
    return dict(rows)


def test_a_dead_workers_partition_is_adopted_while_the_share_names_another_dead_worker(app) -> None:
    with app.store.write() as conn:
        DatabaseLog(app.store.dialect).store_default_partitions(conn, 2)
    clock = Clock()
    a, b, z = worker(app, clock, "w:a"), worker(app, clock, "w:b"), worker(app, clock, "w:z")
    a.refresh(force=True)
    b.refresh(force=True)
    a.refresh(force=True)  # a drops partition 1, which it took while alone
    b.refresh(force=True)
    assert owners(app) == {0: "w:a", 1: "w:b"}

    # b dies holding partition 1 (its lease and membership end at +3000). z joins at +1500 and dies before it
    # takes anything: until its membership ends at +4500 the members are a and z, and the share gives 1 to z.
    t0 = clock.ms
    clock.ms = t0 + 1500
    assert z.refresh(force=True) == []
    clock.ms = t0 + 3500
    assert a.refresh(force=True) == [0]  # partition 1 is z's share; b's lease ended less than a third ago
    clock.ms = t0 + 4100
    assert a.refresh(force=True) == [0, 1]  # a third of a lease after b's lease ended: adopted, z still a member
    assert owners(app)[1] == "w:a" and a.adopted == {1: t0 + 4100}

    # A live share owner gets its partition back once the adopter has kept it for one lease.
    y = worker(app, clock, "w:y")
    clock.ms = t0 + 4600  # z's membership has ended: the members are a and y, and partition 1 is y's share
    assert y.refresh(force=True) == []  # a keeps what it adopted
    assert a.refresh(force=True) == [0, 1]
    clock.ms = t0 + 7200
    assert a.refresh(force=True) == [0]  # kept for one lease, then given back
    assert y.refresh(force=True) == [1]
    assert owners(app) == {0: "w:a", 1: "w:y"} and not a.adopted


def test_a_partition_given_up_in_a_rebalance_goes_to_its_new_owner_not_to_an_adopter(app) -> None:
    with app.store.write() as conn:
        DatabaseLog(app.store.dialect).store_default_partitions(conn, 2)
    clock = Clock()
    a, b = worker(app, clock, "w:a"), worker(app, clock, "w:b")
    assert a.refresh(force=True) == [0, 1]
    b.refresh(force=True)  # b is a member now; partition 1 is still a's
    a.refresh(force=True)  # a gives partition 1 up
    clock.ms += LEASE_MS // 3 - 1
    assert a.refresh(force=True) == [0]  # given up less than a third of a lease ago: left to b
    assert b.refresh(force=True) == [1]
    assert owners(app) == {0: "w:a", 1: "w:b"}
