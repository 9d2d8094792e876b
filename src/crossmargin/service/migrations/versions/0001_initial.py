"""Initial schema: state tables, the event ledger, API keys.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

NAME = 128
Float = sa.Float(precision=53)


def upgrade() -> None:
    op.create_table(
        "assets",
        sa.Column("symbol", sa.String(NAME), primary_key=True),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("params", sa.Text, nullable=False),
    )
    op.create_table(
        "markets",
        sa.Column("symbol", sa.String(NAME), primary_key=True),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("params", sa.Text, nullable=False),
    )
    op.create_table(
        "accounts",
        sa.Column("id", sa.String(NAME), primary_key=True),
        sa.Column("owner", sa.String(NAME), nullable=False),
        sa.Column("mode", sa.String(16), nullable=False),
        sa.Column("profile", sa.String(32), nullable=True),
    )
    op.create_index("ix_accounts_owner", "accounts", ["owner"])
    op.create_table(
        "balances",
        sa.Column("account_id", sa.String(NAME), primary_key=True),
        sa.Column("asset", sa.String(NAME), primary_key=True),
        sa.Column("qty", Float, nullable=False),
    )
    op.create_table(
        "positions",
        sa.Column("account_id", sa.String(NAME), primary_key=True),
        sa.Column("market", sa.String(NAME), primary_key=True),
        sa.Column("qty", Float, nullable=False),
        sa.Column("entry_price", Float, nullable=False),
        sa.Column("funding", Float, nullable=False),
        sa.Column("isolated_collateral", sa.Text, nullable=False),
    )
    op.create_table(
        "system",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("value", Float, nullable=False),
    )
    op.create_table(
        "settings",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )
    op.create_table(
        "prices",
        sa.Column("asset", sa.String(NAME), primary_key=True),
        sa.Column("price_usd", Float, nullable=False),
        sa.Column("updated_s", Float, nullable=False),
    )
    op.create_table(
        "events",
        sa.Column("seq", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
        sa.Column("key", sa.String(200), nullable=False, unique=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("account_id", sa.String(NAME), nullable=True),
        sa.Column("body_hash", sa.String(64), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("changes", sa.Text, nullable=False),
        sa.Column("result", sa.Text, nullable=False),
        sa.Column("created_s", Float, nullable=False),
    )
    op.create_index("ix_events_kind", "events", ["kind"])
    op.create_index("ix_events_account_id", "events", ["account_id"])
    op.create_table(
        "api_keys",
        sa.Column("key_hash", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(NAME), nullable=False, unique=True),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("owner", sa.String(NAME), nullable=True),
        sa.Column("created_s", Float, nullable=False),
    )


def downgrade() -> None:
    for name in (
        "api_keys",
        "events",
        "prices",
        "settings",
        "system",
        "positions",
        "balances",
        "accounts",
        "markets",
        "assets",
    ):
        op.drop_table(name)
