-- REPLACE (INSERT OR REPLACE) removes the row it conflicts with without
-- firing DELETE triggers (SQLite fires them only with recursive_triggers
-- on), so it could rewrite an entry past audit_entries_no_delete. Refuse any
-- insert over an existing seq before the conflict is resolved.
CREATE TRIGGER audit_entries_no_replace BEFORE INSERT ON audit_entries
WHEN EXISTS (SELECT 1 FROM audit_entries WHERE seq = NEW.seq)
BEGIN
    SELECT RAISE(ABORT, 'audit_entries is append-only: REPLACE refused');
END;
