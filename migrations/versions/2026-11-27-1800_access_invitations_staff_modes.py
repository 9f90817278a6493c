"""access: keys taken along by their creator, idempotency per caller (encrypted), license sessions'
mode, invitations, staff and their actions

Idempotency keys stored before this revision were keyed per organization only and hold response
bodies in plain text (some with a secret shown once): they are deleted rather than kept in a form
that any caller of the organization could replay. They are a 24-hour cache; a retry of a request
made before the upgrade does the work again.

Revision ID: 3c1d7a9e5b20
Revises: f859f3328e8a
Create Date: 2026-11-27 18:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "3c1d7a9e5b20"
down_revision: str | None = "f859f3328e8a"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("api_keys", sa.Column("revoked_reason", sa.String(length=32), nullable=True))
    op.execute("UPDATE api_keys SET revoked_reason = 'revoked' WHERE revoked_at IS NOT NULL")
    # Keys whose creator is gone or no longer in the organization stop now, as they would have.
    op.execute(
        "UPDATE api_keys k SET revoked_at = now(), revoked_reason = 'creator_left' "
        "WHERE k.revoked_at IS NULL AND NOT EXISTS (SELECT 1 FROM memberships m "
        "WHERE m.user_id = k.created_by_id AND m.organization_id = k.organization_id)"
    )
    op.execute(
        "UPDATE api_keys k SET revoked_at = now(), revoked_reason = 'creator_deactivated' "
        "FROM users u WHERE k.revoked_at IS NULL AND u.id = k.created_by_id AND NOT u.is_active"
    )

    op.add_column("users", sa.Column("is_staff", sa.Boolean(), server_default="false", nullable=False))

    op.execute("DELETE FROM idempotency_keys")
    op.add_column("idempotency_keys", sa.Column("caller", sa.String(length=64), nullable=False))
    op.drop_constraint("pk_idempotency_keys", "idempotency_keys", type_="primary")
    op.create_primary_key("pk_idempotency_keys", "idempotency_keys", ["organization_id", "livemode", "caller", "key"])

    op.add_column("license_sessions", sa.Column("livemode", sa.Boolean(), server_default="true", nullable=False))
    op.execute(
        "UPDATE license_sessions s SET livemode = l.livemode FROM licenses l "
        "WHERE l.id = s.license_id AND s.livemode IS DISTINCT FROM l.livemode"
    )

    op.create_table(
        "invitations",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("invited_by_id", sa.Uuid(), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("accepted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("accepted_by_id", sa.Uuid(), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("role IN ('viewer', 'member', 'admin', 'owner')", name=op.f("ck_invitations_role_known")),
        sa.CheckConstraint("status IN ('pending', 'accepted', 'revoked')", name=op.f("ck_invitations_status_known")),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_invitations_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["invited_by_id"], ["users.id"], name=op.f("fk_invitations_invited_by_id_users"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["accepted_by_id"], ["users.id"], name=op.f("fk_invitations_accepted_by_id_users"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_invitations")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_invitations_token_hash")),
    )
    op.create_index(
        "ix_invitations_organization_id_created_at", "invitations", ["organization_id", "created_at"], unique=False
    )

    op.create_table(
        "staff_actions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("staff_user_id", sa.Uuid(), nullable=True),
        sa.Column("actor", sa.String(length=320), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=True),
        sa.Column("target_id", sa.String(length=64), nullable=True),
        sa.Column("details", postgresql.JSONB(astext_type=sa.Text()), server_default="{}", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["staff_user_id"], ["users.id"], name=op.f("fk_staff_actions_staff_user_id_users"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_staff_actions_organization_id_organizations"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_staff_actions")),
    )
    op.create_index("ix_staff_actions_created_at", "staff_actions", ["created_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_staff_actions_created_at", table_name="staff_actions")
    op.drop_table("staff_actions")
    op.drop_index("ix_invitations_organization_id_created_at", table_name="invitations")
    op.drop_table("invitations")
    op.drop_column("license_sessions", "livemode")
    op.execute("DELETE FROM idempotency_keys")
    op.drop_constraint("pk_idempotency_keys", "idempotency_keys", type_="primary")
    op.drop_column("idempotency_keys", "caller")
    op.create_primary_key("pk_idempotency_keys", "idempotency_keys", ["organization_id", "livemode", "key"])
    op.drop_column("users", "is_staff")
    op.drop_column("api_keys", "revoked_reason")
