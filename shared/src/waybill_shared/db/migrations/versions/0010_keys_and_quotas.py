"""keys and quotas: named API keys per user; per-user quotas and the bytes a user stores

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05 05:20:00.000000

Every key moves from `users.api_key_hash` into `api_keys` (named "default"; the
admin's "configured", the key WAYBILL_ADMIN_API_KEY rotates). A user's
stored bytes (live uploads plus completed artifacts) are kept in `users.stored_bytes`
by triggers, so a quota check reads one number instead of summing a user's rows, and
whatever deletes or expires a file or an artifact (the gateway, the tracker's cleanup
and reconcile) gives the space back in the same transaction.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The bytes a row holds in storage: a live file its size; a completed task its
# artifact (or, for several files exported without a package, their total).
FILE_BYTES = "CASE WHEN {row}.deleted_at IS NULL THEN {row}.size ELSE 0 END"
TASK_BYTES = (
    "CASE WHEN {row}.status = 'completed' THEN coalesce({row}.artifact_size, "
    "({row}.result ->> 'output_size')::bigint, 0) ELSE 0 END"
)


def _counting_trigger(table: str, bytes_of: str) -> None:
    old, new = bytes_of.format(row="OLD"), bytes_of.format(row="NEW")
    op.execute(f"""
        CREATE FUNCTION count_stored_bytes_{table}() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP = 'INSERT' THEN
                UPDATE users SET stored_bytes = stored_bytes + ({new}) WHERE id = NEW.owner_id;
            ELSIF TG_OP = 'DELETE' THEN
                UPDATE users SET stored_bytes = stored_bytes - ({old}) WHERE id = OLD.owner_id;
            ELSE  -- an owner never changes
                UPDATE users SET stored_bytes = stored_bytes + ({new}) - ({old})
                WHERE id = NEW.owner_id;
            END IF;
            RETURN NULL;
        END $$""")
    # WHEN clauses: the function runs only for a row whose bytes change (a task's
    # claim, lease and progress updates never call it).
    function = f"EXECUTE FUNCTION count_stored_bytes_{table}()"
    op.execute(
        f"CREATE TRIGGER stored_bytes_insert AFTER INSERT ON {table} FOR EACH ROW "
        f"WHEN (({new}) <> 0) {function}"
    )
    op.execute(
        f"CREATE TRIGGER stored_bytes_update AFTER UPDATE ON {table} FOR EACH ROW "
        f"WHEN (({old}) <> ({new})) {function}"
    )
    op.execute(
        f"CREATE TRIGGER stored_bytes_delete AFTER DELETE ON {table} FOR EACH ROW "
        f"WHEN (({old}) <> 0) {function}"
    )


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key_hash"),
        sa.UniqueConstraint("user_id", "name", name="uq_api_keys_user_name"),
    )
    op.execute(
        "INSERT INTO api_keys (user_id, name, key_hash, prefix) "
        "SELECT id, CASE WHEN name = 'admin' THEN 'configured' ELSE 'default' END, "
        "api_key_hash, '' FROM users"
    )
    op.drop_column("users", "api_key_hash")

    op.add_column(
        "users", sa.Column("stored_bytes", sa.BigInteger(), server_default="0", nullable=False)
    )
    op.add_column("users", sa.Column("quota_stored_bytes", sa.BigInteger(), nullable=True))
    op.add_column("users", sa.Column("quota_running_exports", sa.Integer(), nullable=True))
    op.add_column("users", sa.Column("quota_files_per_export", sa.Integer(), nullable=True))
    _counting_trigger("files", FILE_BYTES)
    _counting_trigger("tasks", TASK_BYTES)
    op.execute(f"""
        UPDATE users u SET stored_bytes =
            coalesce((SELECT sum({FILE_BYTES.format(row="f")}) FROM files f
                      WHERE f.owner_id = u.id), 0)
          + coalesce((SELECT sum({TASK_BYTES.format(row="t")}) FROM tasks t
                      WHERE t.owner_id = u.id), 0)""")
    # The running-exports quota counts a user's unfinished tasks through this index,
    # never further than the quota.
    op.create_index(
        "ix_tasks_owner_unfinished",
        "tasks",
        ["owner_id", "kind"],
        postgresql_where=sa.text("status IN ('pending', 'running')"),
    )


def downgrade() -> None:
    op.drop_index("ix_tasks_owner_unfinished", table_name="tasks")
    for table in ("files", "tasks"):
        for event in ("insert", "update", "delete"):
            op.execute(f"DROP TRIGGER stored_bytes_{event} ON {table}")
        op.execute(f"DROP FUNCTION count_stored_bytes_{table}()")
    for column in ("quota_files_per_export", "quota_running_exports", "quota_stored_bytes"):
        op.drop_column("users", column)
    op.drop_column("users", "stored_bytes")
    op.add_column("users", sa.Column("api_key_hash", sa.String(length=64), nullable=True))
    # A user keeps its oldest key; one without keys gets a hash no key has.
    op.execute("""
        UPDATE users u SET api_key_hash = coalesce(
            (SELECT key_hash FROM api_keys k WHERE k.user_id = u.id ORDER BY k.id LIMIT 1),
            md5(random()::text) || md5(random()::text))""")
    op.alter_column("users", "api_key_hash", nullable=False)
    op.create_unique_constraint("users_api_key_hash_key", "users", ["api_key_hash"])
    op.drop_table("api_keys")
