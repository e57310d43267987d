-- Least privilege for the ledger on PostgreSQL. Run as the owner of the schema's tables
-- (the role that ran the first `ledger serve`, or `ledger db upgrade`), once after the tables
-- exist and again after each `ledger db upgrade`:
--
--   psql "$OWNER_URL" -v schema=public -v app_role=ledger_app -f deploy/postgres/least_privilege.sql
--
-- The service then runs as app_role with LEDGER_CREATE_TABLES=false. It may append events,
-- their audit records and key claims, and read them, but never change or remove one; the
-- read models, outboxes and positions it keeps up to date are its to change. Rebuilding the
-- read models (`ledger projections rebuild`) creates tables: run it as the owner.
--
-- Whoever the role, a trigger refuses UPDATE, DELETE and TRUNCATE of events and audit
-- records: an owner who must really erase (a court order, say) drops the trigger first,
-- which is itself visible in the catalog and in the server's log.
\set ON_ERROR_STOP on

GRANT USAGE ON SCHEMA :"schema" TO :"app_role";

-- the log: append and read, nothing else
GRANT SELECT, INSERT ON :"schema".ledger_events, :"schema".ledger_events_audit, :"schema".ledger_events_keys,
    :"schema".ledger_snapshots TO :"app_role";
REVOKE DELETE, TRUNCATE ON :"schema".ledger_events, :"schema".ledger_events_audit,
    :"schema".ledger_events_keys FROM :"app_role";
-- An append takes LOCK TABLE ... IN EXCLUSIVE MODE on the events table (it is what keeps
-- positions gap-free in commit order), and PostgreSQL allows that lock only to a role with
-- UPDATE, DELETE or TRUNCATE on the table. UPDATE is granted for the lock alone: the
-- trigger below refuses every update.
GRANT UPDATE ON :"schema".ledger_events TO :"app_role";

-- the schema version the service checks at start
GRANT SELECT ON :"schema".ledger_schema TO :"app_role";

-- what the service keeps up to date
GRANT SELECT, INSERT, UPDATE, DELETE ON :"schema".ledger_events_outbox, :"schema".reminder_outbox,
    :"schema".source_positions, :"schema".rm_accounts, :"schema".rm_bills, :"schema".rm_events, :"schema".rm_holds,
    :"schema".rm_invoice_lines, :"schema".rm_invoices, :"schema".rm_payment_allocations, :"schema".rm_payments,
    :"schema".rm_tracking, :"schema".rm_transactions TO :"app_role";
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA :"schema" TO :"app_role";

CREATE OR REPLACE FUNCTION :"schema".ledger_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the ledger''s % is append-only: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END $$;

DROP TRIGGER IF EXISTS ledger_append_only ON :"schema".ledger_events;
CREATE TRIGGER ledger_append_only BEFORE UPDATE OR DELETE ON :"schema".ledger_events
    FOR EACH ROW EXECUTE FUNCTION :"schema".ledger_refuse_change();
DROP TRIGGER IF EXISTS ledger_append_only_truncate ON :"schema".ledger_events;
CREATE TRIGGER ledger_append_only_truncate BEFORE TRUNCATE ON :"schema".ledger_events
    FOR EACH STATEMENT EXECUTE FUNCTION :"schema".ledger_refuse_change();
DROP TRIGGER IF EXISTS ledger_append_only ON :"schema".ledger_events_audit;
CREATE TRIGGER ledger_append_only BEFORE UPDATE OR DELETE ON :"schema".ledger_events_audit
    FOR EACH ROW EXECUTE FUNCTION :"schema".ledger_refuse_change();
DROP TRIGGER IF EXISTS ledger_append_only_truncate ON :"schema".ledger_events_audit;
CREATE TRIGGER ledger_append_only_truncate BEFORE TRUNCATE ON :"schema".ledger_events_audit
    FOR EACH STATEMENT EXECUTE FUNCTION :"schema".ledger_refuse_change();
