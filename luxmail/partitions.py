"""Monthly range partitions for the big tables (PostgreSQL only; docs/architecture.md
"Partitioned tables").

``campaigns_message`` (by ``queued_at``) and ``reporting_event`` (by ``occurred_at``)
are declaratively partitioned by month on PostgreSQL: one partition per calendar month
(UTC) named ``<table>_pYYYYMM`` plus ``<table>_default`` for anything outside them, so
an insert is never refused. SQLite (``make run``) keeps plain tables; every function
here does nothing there.

* :func:`table_partition` (from a migration) converts a plain table in place: the new
  table is created partitioned, the rows are copied, the old table dropped, and its
  indexes, check and outgoing foreign-key constraints and triggers are recreated on the
  new one. PostgreSQL requires the partition key in every unique constraint, so the
  primary key becomes ``(id, key)`` and each unique constraint gets the key appended,
  under the same names; Django keeps ``id`` as its pk. No foreign key may point into a
  partitioned table: the models declare those ``db_constraint=False`` and the
  conversion refuses a table that still has one. :func:`table_unpartition` undoes it.
* :func:`partitions_ensure` (Celery beat, ``luxmail.partitions_ensure``) creates the
  current month and ``LUXMAIL_PARTITION_MONTHS_AHEAD`` months ahead. If rows for a new
  month already sit in the default partition they are moved into it first.
* :func:`partitions_list` / :func:`partition_drop` let the retention purge drop a whole
  month (``luxmail/retention.py``).

Table and column names come only from the registry and migrations, never from input.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime

from django.db import OperationalError, connection, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.utils import timezone

from luxmail import conf

logger = logging.getLogger(__name__)

# Creating, attaching and detaching a partition lock the whole table briefly; behind a
# long report query that lock would queue every send worker. Give up instead and retry
# on the next run.
_LOCK_TIMEOUT = "5s"

# Conversion creates monthly partitions back to this many months before now; older rows
# (there should be none outside tests) go to the default partition.
_MAX_MONTHS_BACK = 36


@dataclass(frozen=True)
class PartitionedTable:
    """A table partitioned by month on ``column`` (a timestamp with time zone).

    ``fillfactor`` (percent), when set, is given to every partition created: PostgreSQL
    takes storage parameters per leaf partition only, not on the partitioned table.
    """

    table: str
    column: str
    fillfactor: int | None = None

    def storage(self) -> str:
        """The ``WITH (…)`` clause of a new partition (empty without parameters)."""
        return f" WITH (fillfactor = {int(self.fillfactor)})" if self.fillfactor else ""


@dataclass(frozen=True)
class Partition:
    """One partition: a month ``[start, end)``, or the default one (``start`` None)."""

    name: str
    start: datetime | None
    end: datetime | None


_TABLES: dict[str, PartitionedTable] = {}


def register(table: PartitionedTable) -> None:
    """Add a table to the partition-ahead task; called from an app's ``ready()``."""
    _TABLES[table.table] = table


def registered() -> list[PartitionedTable]:
    return sorted(_TABLES.values(), key=lambda t: t.table)


def month_start(moment: datetime) -> datetime:
    """The first instant (UTC) of ``moment``'s month."""
    moment = moment.astimezone(UTC)
    return datetime(moment.year, moment.month, 1, tzinfo=UTC)


def add_months(month: datetime, count: int) -> datetime:
    index = month.year * 12 + month.month - 1 + count
    return datetime(index // 12, index % 12 + 1, 1, tzinfo=UTC)


def partition_name(table: str, month: datetime) -> str:
    return f"{table}_p{month:%Y%m}"


def _quote(name: str) -> str:
    return connection.ops.quote_name(name)


def is_partitioned(table: str, using: BaseDatabaseWrapper | None = None) -> bool:
    db = using or connection
    if db.vendor != "postgresql":
        return False
    with db.cursor() as cursor:
        cursor.execute(
            "SELECT EXISTS (SELECT 1 FROM pg_partitioned_table p "
            "JOIN pg_class c ON c.oid = p.partrelid "
            "WHERE c.relname = %s AND c.relnamespace = current_schema()::regnamespace)",
            [table],
        )
        return bool(cursor.fetchone()[0])


_MONTH = re.compile(r"_p(\d{4})(\d{2})$")


def partitions_list(table: str) -> list[Partition]:
    """The partitions of ``table``, months in order, then the default one."""
    if not is_partitioned(table):
        return []
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = %s::regclass ORDER BY c.relname",
            [table],
        )
        names = [row[0] for row in cursor.fetchall()]
    months: list[Partition] = []
    default: list[Partition] = []
    for name in names:
        found = _MONTH.search(name)
        if found is None:
            default.append(Partition(name, None, None))
            continue
        start = datetime(int(found[1]), int(found[2]), 1, tzinfo=UTC)
        months.append(Partition(name, start, add_months(start, 1)))
    return months + default


def _default_name(table: str) -> str:
    return f"{table}_default"


def _month_create(cursor, spec: PartitionedTable, month: datetime) -> bool:
    """Create ``month``'s partition if missing; returns whether it was created."""
    name = partition_name(spec.table, month)
    cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [name])
    if cursor.fetchone()[0]:
        return False
    start, end = month, add_months(month, 1)
    table, column, default = _quote(spec.table), _quote(spec.column), _default_name(spec.table)
    bounds = "FOR VALUES FROM (%s) TO (%s)"
    cursor.execute(
        f"SELECT EXISTS (SELECT 1 FROM {_quote(default)} "  # noqa: S608 (registered names)
        f"WHERE {column} >= %s AND {column} < %s)",
        [start, end],
    )
    if not cursor.fetchone()[0]:
        cursor.execute(
            f"CREATE TABLE {_quote(name)} PARTITION OF {table} {bounds}{spec.storage()}",
            [start, end],
        )
        return True
    # Rows for this month already wait in the default partition (PostgreSQL would refuse
    # the new partition): move them into a table that then becomes the partition. Moves
    # between partitions fire no statement trigger, so the rollups do not count them twice.
    cursor.execute(
        f"CREATE TABLE {_quote(name)} (LIKE {table} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)"
        f"{spec.storage()}"
    )
    cursor.execute(
        f"WITH moved AS (DELETE FROM {_quote(default)} "  # noqa: S608 (registered names)
        f"WHERE {column} >= %s AND {column} < %s RETURNING *) "
        f"INSERT INTO {_quote(name)} SELECT * FROM moved",
        [start, end],
    )
    cursor.execute(f"ALTER TABLE {table} ATTACH PARTITION {_quote(name)} {bounds}", [start, end])
    return True


def partitions_ensure(*, now: datetime | None = None, months_ahead: int | None = None) -> list[str]:
    """Create the current month's partition and ``months_ahead`` more for every
    registered table (default ``LUXMAIL_PARTITION_MONTHS_AHEAD``).

    Idempotent; returns the names created. Does nothing on SQLite or for a table that
    is not partitioned (yet).
    """
    ahead = conf.partition_months_ahead() if months_ahead is None else months_ahead
    first = month_start(now or timezone.now())
    created: list[str] = []
    for spec in registered():
        if not is_partitioned(spec.table):
            continue
        for offset in range(ahead + 1):
            month = add_months(first, offset)
            try:
                with transaction.atomic(), connection.cursor() as cursor:
                    cursor.execute("SELECT set_config('lock_timeout', %s, true)", [_LOCK_TIMEOUT])
                    if _month_create(cursor, spec, month):
                        created.append(partition_name(spec.table, month))
            except OperationalError:
                logger.warning(
                    "partition %s: table busy, next run", partition_name(spec.table, month)
                )
    if created:
        logger.info("partitions created: %s", ", ".join(created))
    return created


def partition_drop(table: str, partition: Partition) -> None:
    """Detach and drop one month's partition (its rows go without per-row work), in the
    caller's transaction. Raises ``OperationalError`` when the table stays locked by
    others longer than a few seconds."""
    if partition.start is None:
        raise ValueError("the default partition is never dropped")
    with connection.cursor() as cursor:
        # Deferred foreign-key checks still queued in this transaction (rows unlinked just
        # before) would make PostgreSQL refuse the drop: run them now.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute("SELECT set_config('lock_timeout', %s, true)", [_LOCK_TIMEOUT])
        cursor.execute(f"ALTER TABLE {_quote(table)} DETACH PARTITION {_quote(partition.name)}")
        cursor.execute(f"DROP TABLE {_quote(partition.name)}")


# --- conversion (migrations) -------------------------------------------------------------


@dataclass
class _Shape:
    """What must be recreated on the rebuilt table, read from the catalog."""

    pk_name: str
    pk_columns: list[str]
    uniques: list[tuple[str, list[str]]]
    constraints: list[tuple[str, str]]  # check and outgoing foreign keys: (name, definition)
    indexes: list[str]
    triggers: list[str]


def _columns(cursor, table: str, attnums: list[int]) -> list[str]:
    cursor.execute(
        "SELECT attnum, attname FROM pg_attribute WHERE attrelid = %s::regclass", [table]
    )
    names = dict(cursor.fetchall())
    return [names[n] for n in attnums]


def _shape(cursor, table: str) -> _Shape:
    cursor.execute(
        "SELECT conrelid::regclass::text, conname FROM pg_constraint "
        "WHERE confrelid = %s::regclass AND contype = 'f' AND conparentid = 0",
        [table],
    )
    incoming = cursor.fetchall()
    if incoming:
        raise RuntimeError(
            f"{table} is referenced by foreign keys {incoming}: declare them "
            "db_constraint=False first (a partitioned table cannot be referenced by id)"
        )
    cursor.execute(
        "SELECT conname, contype, conkey::int[], pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE conrelid = %s::regclass AND conparentid = 0 ORDER BY conname",
        [table],
    )
    pk_name, pk_columns = "", []
    uniques: list[tuple[str, list[str]]] = []
    constraints: list[tuple[str, str]] = []
    for name, kind, keys, definition in cursor.fetchall():
        if kind == "p":
            pk_name, pk_columns = name, _columns(cursor, table, keys)
        elif kind == "u":
            uniques.append((name, _columns(cursor, table, keys)))
        elif kind in ("c", "f"):
            constraints.append((name, definition))
        else:
            raise RuntimeError(f"{table}: constraint {name} of kind {kind} is not handled")
    cursor.execute(
        "SELECT pg_get_indexdef(i.indexrelid), i.indisunique FROM pg_index i "
        "WHERE i.indrelid = %s::regclass AND NOT EXISTS "
        "(SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid) ORDER BY 1",
        [table],
    )
    indexes = []
    for definition, unique in cursor.fetchall():
        if unique:
            raise RuntimeError(f"{table}: unique index {definition!r} is not handled")
        indexes.append(definition.replace(" ON ONLY ", " ON "))
    cursor.execute(
        "SELECT pg_get_triggerdef(oid) FROM pg_trigger "
        "WHERE tgrelid = %s::regclass AND NOT tgisinternal ORDER BY tgname",
        [table],
    )
    triggers = [row[0] for row in cursor.fetchall()]
    return _Shape(pk_name, pk_columns, uniques, constraints, indexes, triggers)


def _rebuild(db: BaseDatabaseWrapper, spec: PartitionedTable, *, partitioned: bool) -> None:
    table, column = spec.table, spec.column
    q = db.ops.quote_name
    old = f"{table}_unconverted"
    with db.cursor() as cursor:
        shape = _shape(cursor, table)
        # Privileges other roles hold (a read-only reporting role, say) are not copied
        # by LIKE: granted again below.
        cursor.execute(
            "SELECT grantee, privilege_type FROM information_schema.role_table_grants "
            "WHERE table_schema = current_schema() AND table_name = %s "
            "AND grantee <> current_user AND grantee <> 'PUBLIC'",
            [table],
        )
        grants = cursor.fetchall()
        cursor.execute(f"ALTER TABLE {q(table)} RENAME TO {q(old)}")
        clause = f" PARTITION BY RANGE ({q(column)})" if partitioned else spec.storage()
        cursor.execute(
            f"CREATE TABLE {q(table)} (LIKE {q(old)} INCLUDING DEFAULTS INCLUDING IDENTITY "
            f"INCLUDING GENERATED INCLUDING STORAGE INCLUDING COMMENTS){clause}"
        )
        if partitioned:
            cursor.execute(f"SELECT min({q(column)}) FROM {q(old)}")  # noqa: S608
            oldest = cursor.fetchone()[0]
            now = month_start(timezone.now())
            first = add_months(now, -_MAX_MONTHS_BACK)
            month = max(month_start(oldest), first) if oldest else now
            default = q(_default_name(table))
            cursor.execute(
                f"CREATE TABLE {default} PARTITION OF {q(table)} DEFAULT{spec.storage()}"
            )
            while month <= add_months(now, conf.partition_months_ahead()):
                _month_create(cursor, spec, month)
                month = add_months(month, 1)
        cursor.execute(f"INSERT INTO {q(table)} SELECT * FROM {q(old)}")  # noqa: S608
        cursor.execute(f"DROP TABLE {q(old)}")
        for grantee, privilege in grants:
            cursor.execute(f"GRANT {privilege} ON {q(table)} TO {q(grantee)}")
        if "id" in _column_names(cursor, table):
            cursor.execute(
                f"SELECT setval(pg_get_serial_sequence(%s, 'id'), "  # noqa: S608
                f"COALESCE((SELECT max(id) FROM {q(table)}), 0) + 1, false)",
                [table],
            )

        def keyed(columns: list[str]) -> list[str]:
            bare = [c for c in columns if c != column]
            return [*bare, column] if partitioned else bare

        cursor.execute(
            f"ALTER TABLE {q(table)} ADD CONSTRAINT {q(shape.pk_name)} "
            f"PRIMARY KEY ({', '.join(q(c) for c in keyed(shape.pk_columns))})"
        )
        for name, columns in shape.uniques:
            cursor.execute(
                f"ALTER TABLE {q(table)} ADD CONSTRAINT {q(name)} "
                f"UNIQUE ({', '.join(q(c) for c in keyed(columns))})"
            )
        for name, definition in shape.constraints:
            cursor.execute(f"ALTER TABLE {q(table)} ADD CONSTRAINT {q(name)} {definition}")
        for statement in shape.indexes + shape.triggers:
            cursor.execute(statement)
        cursor.execute(f"ANALYZE {q(table)}")


def _column_names(cursor, table: str) -> set[str]:
    cursor.execute(
        "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0 "
        "AND NOT attisdropped",
        [table],
    )
    return {row[0] for row in cursor.fetchall()}


def table_partition(db: BaseDatabaseWrapper, spec: PartitionedTable) -> None:
    """Convert ``spec.table`` to monthly partitions, keeping its rows (PostgreSQL only;
    idempotent). Runs inside the migration's transaction: a failure leaves it as it was."""
    if db.vendor == "postgresql" and not is_partitioned(spec.table, db):
        _rebuild(db, spec, partitioned=True)


def table_unpartition(db: BaseDatabaseWrapper, spec: PartitionedTable) -> None:
    """The reverse of :func:`table_partition`: one plain table with the same rows."""
    if db.vendor == "postgresql" and is_partitioned(spec.table, db):
        _rebuild(db, spec, partitioned=False)


def table_set_storage(db: BaseDatabaseWrapper, spec: PartitionedTable) -> None:
    """Give ``spec``'s storage parameters to every existing partition of its table (or
    to the table itself when it is not partitioned); PostgreSQL only. Pages already
    full keep their rows: the parameters apply to what is written from now on."""
    if db.vendor != "postgresql" or not spec.fillfactor:
        return
    q = db.ops.quote_name
    with db.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_partition_tree(%s::regclass) t "
            "JOIN pg_class c ON c.oid = t.relid WHERE t.isleaf ORDER BY c.relname",
            [spec.table],
        )
        names = [row[0] for row in cursor.fetchall()] or [spec.table]
        for name in names:
            cursor.execute(f"ALTER TABLE {q(name)} SET (fillfactor = {int(spec.fillfactor)})")
