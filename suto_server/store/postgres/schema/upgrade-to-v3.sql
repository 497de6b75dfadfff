-- SUTO server store for PostgreSQL, schema version 3: an index of the
-- audit log by event type, as the SQLite store's schema v7 adds, so that
-- a page of the alerts (a few types among every authentication's record)
-- and the count of them read the records of those types only, instead of
-- walking the log by time until a page is full, or whole.
CREATE INDEX audit_by_event ON audit (event, time, id);
