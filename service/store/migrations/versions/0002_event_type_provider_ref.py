"""event types remember the provider's own id (Cal.com id, Calendly URI)

Revision ID: 0002
Revises: 0001
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("event_types") as batch_op:
        batch_op.add_column(
            sa.Column("provider_ref", sa.String(length=1024), nullable=False, server_default="")
        )
        batch_op.create_index("ix_event_types_connection_ref", ["connection_id", "provider_ref"])


def downgrade() -> None:
    with op.batch_alter_table("event_types") as batch_op:
        batch_op.drop_index("ix_event_types_connection_ref")
        batch_op.drop_column("provider_ref")
