"""Make the audit table append-only at the database level.

PostgreSQL: a trigger rejects every UPDATE, and every DELETE except the retention
purge (``audit.purge_expired``), which must set ``luxmail.audit_purge`` for its
transaction and may only remove rows older than six years.
SQLite (dev only): a trigger rejects UPDATE. DELETE stays possible there because the
test runner empties tables with DELETE between transactional tests.
"""

from django.db import migrations

PG_CREATE = """
CREATE OR REPLACE FUNCTION luxmail_audit_append_only() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE'
       AND coalesce(current_setting('luxmail.audit_purge', true), '') = 'on'
       AND OLD.created_at < now() - interval '2192 days' THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'audit events are append-only: % of event % refused', TG_OP, OLD.id
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
DROP TRIGGER IF EXISTS luxmail_audit_append_only ON luxmail_auditevent;
CREATE TRIGGER luxmail_audit_append_only
    BEFORE UPDATE OR DELETE ON luxmail_auditevent
    FOR EACH ROW EXECUTE FUNCTION luxmail_audit_append_only();
"""
PG_DROP = """
DROP TRIGGER IF EXISTS luxmail_audit_append_only ON luxmail_auditevent;
DROP FUNCTION IF EXISTS luxmail_audit_append_only();
"""
SQLITE_CREATE = """
CREATE TRIGGER IF NOT EXISTS luxmail_audit_no_update BEFORE UPDATE ON luxmail_auditevent
BEGIN SELECT RAISE(ABORT, 'audit events are append-only'); END;
"""
SQLITE_DROP = "DROP TRIGGER IF EXISTS luxmail_audit_no_update;"


def forwards(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(PG_CREATE, params=None)
    elif vendor == "sqlite":
        schema_editor.execute(SQLITE_CREATE)


def backwards(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(PG_DROP, params=None)
    elif vendor == "sqlite":
        schema_editor.execute(SQLITE_DROP)


class Migration(migrations.Migration):
    dependencies = [("luxmail", "0001_initial")]
    operations = [migrations.RunPython(forwards, backwards)]
