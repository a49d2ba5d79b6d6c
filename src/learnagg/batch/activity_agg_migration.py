"""`learnagg migrate activity-agg`: build `activity_agg` for existing data from `user_enrolments` (docs/api.md)."""

from __future__ import annotations

from learnagg.app import App
from learnagg.services.activity_agg import RebuildSummary, rebuild


def migrate_activity_agg(app: App, *, dry_run: bool = False) -> RebuildSummary:
    """Recount every course batch into `activity_agg` in one write transaction.

    Idempotent (a second run writes nothing); rows of batches that neither exist nor have enrolments are removed.
    With ``dry_run`` nothing is written and the summary counts what would change.
    """
    with app.store.write() as conn:
        return rebuild(conn, app.store.dialect, app.clock(), dry_run=dry_run)
