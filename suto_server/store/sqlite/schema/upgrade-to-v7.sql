-- SUTO server store, schema version 7: an index of the audit log by
-- event type, so that a page of the alerts (a few types among every
-- authentication's record) and the count of them read the records of
-- those types only, instead of walking the log by time until a page is
-- full, or whole.
CREATE INDEX audit_by_event ON audit (event, time, id);
