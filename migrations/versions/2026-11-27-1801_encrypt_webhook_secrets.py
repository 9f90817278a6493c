"""encrypt webhook signing secrets at rest

`secret` and `previous_secret` become `secret_encrypted` and `previous_secret_encrypted`: Fernet tokens
made with the newest of ENCRYPTION_KEYS (or the key derived from SECRET_KEY outside production), read
through `backplane.core.config.get_settings()` as the service reads them, so run this with the
service's own configuration. Downgrade decrypts them back (any key of the list decrypts).

Revision ID: 3c1e7a52d9b4
Revises: 3c1d7a9e5b20
Create Date: 2026-11-27 18:00:00.000000
"""

from collections.abc import Callable, Sequence

import sqlalchemy as sa
from alembic import op

from backplane.core.config import get_settings
from backplane.core.crypto import Encryptor

revision: str = "3c1e7a52d9b4"
down_revision: str | None = "3c1d7a9e5b20"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _encryptor() -> Encryptor:
    # Built only when there are rows to convert, so that a fresh database migrates without settings.
    return Encryptor(get_settings().encryption_key_ring)


def _convert(current: str, previous: str, change: Callable[[str], str]) -> None:
    """Rewrite both columns of every endpoint with `change`, row by row (locked)."""
    bind = op.get_bind()
    rows = bind.execute(
        sa.text(f"SELECT id, {current}, {previous} FROM webhook_endpoints ORDER BY id FOR UPDATE")
    ).all()
    update = sa.text(f"UPDATE webhook_endpoints SET {current} = :secret, {previous} = :previous WHERE id = :id")
    for endpoint_id, secret, previous_secret in rows:
        bind.execute(
            update,
            {
                "id": endpoint_id,
                "secret": change(secret),
                "previous": None if previous_secret is None else change(previous_secret),
            },
        )


def upgrade() -> None:
    op.alter_column(
        "webhook_endpoints",
        "secret",
        new_column_name="secret_encrypted",
        type_=sa.Text(),
        existing_type=sa.String(length=100),
        existing_nullable=False,
    )
    op.alter_column(
        "webhook_endpoints",
        "previous_secret",
        new_column_name="previous_secret_encrypted",
        type_=sa.Text(),
        existing_type=sa.String(length=100),
        existing_nullable=True,
    )
    if op.get_bind().execute(sa.text("SELECT EXISTS (SELECT 1 FROM webhook_endpoints)")).scalar():
        encryptor = _encryptor()
        _convert("secret_encrypted", "previous_secret_encrypted", encryptor.encrypt_text)


def downgrade() -> None:
    if op.get_bind().execute(sa.text("SELECT EXISTS (SELECT 1 FROM webhook_endpoints)")).scalar():
        encryptor = _encryptor()
        _convert("secret_encrypted", "previous_secret_encrypted", encryptor.decrypt_text)
    op.alter_column(
        "webhook_endpoints",
        "previous_secret_encrypted",
        new_column_name="previous_secret",
        type_=sa.String(length=100),
        existing_type=sa.Text(),
        existing_nullable=True,
    )
    op.alter_column(
        "webhook_endpoints",
        "secret_encrypted",
        new_column_name="secret",
        type_=sa.String(length=100),
        existing_type=sa.Text(),
        existing_nullable=False,
    )
