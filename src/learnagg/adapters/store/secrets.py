"""Secrets the service generates once and keeps in its own database (`app_secret`)."""

from __future__ import annotations

import secrets

from sqlalchemy import select

from learnagg.adapters.store.store import Store
from learnagg.adapters.store.tables import app_secret


def get_or_create(store: Store, name: str, now: int) -> str:
    """The secret called ``name``; the first caller creates it (concurrent creators agree on one value)."""
    with store.read() as conn:
        value = conn.execute(select(app_secret.c.value).where(app_secret.c.name == name)).scalar_one_or_none()
    if value is not None:
        return value
    with store.write() as conn:
        conn.execute(
            store.dialect.upsert(app_secret),
            {"name": name, "value": secrets.token_urlsafe(48), "created_on": now},
        )
        return conn.execute(select(app_secret.c.value).where(app_secret.c.name == name)).scalar_one()
