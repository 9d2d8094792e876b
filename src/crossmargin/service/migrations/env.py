"""Alembic environment: runs migrations on the engine handed over by crossmargin.service.db."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context

from crossmargin.service.db import metadata

engine = context.config.attributes["connection_engine"]
with engine.connect() as connection:
    if connection.dialect.name == "postgresql":
        # one upgrader at a time across processes; released at commit
        connection.execute(sa.text("SELECT pg_advisory_xact_lock(727271)"))
    elif connection.dialect.name == "sqlite":
        connection.exec_driver_sql("BEGIN IMMEDIATE")  # take the write lock before reading
    context.configure(connection=connection, target_metadata=metadata)
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()
