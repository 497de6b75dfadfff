-- SUTO server store, schema version 4: the audit log as a hash chain, and
-- the moves of enrolled profiles.
-- SQLite cannot add constrained columns to a table in place, so the v3
-- audit table is renamed, the v4 one created as in v4.sql and filled from
-- it, chained in id order (the order records were appended in), with no
-- locations.  audit_link(previous_hash, time, event, username, source,
-- reason, locations) is the chain's hash function, which the store
-- provides to this script (suto_server/store/chain.py).

ALTER TABLE audit RENAME TO audit_v3;
DROP INDEX audit_by_time;

-- Version 4 makes the audit log a hash chain: each record keeps the hash
-- of the record appended before it (32 zero bytes for the first) and its
-- own, SHA-256 over that previous hash and its fields (see
-- suto_server/store/chain.py).  Records are only ever appended, in id
-- order, which is the order of the chain.
CREATE TABLE audit
(
 id INTEGER PRIMARY KEY AUTOINCREMENT, -- never reused, so order is kept
 time REAL NOT NULL, -- POSIX time
 event TEXT NOT NULL, -- e.g. "enrollment_failed"
 username TEXT,
 source TEXT, -- the peer's address, if a peer was involved
 reason TEXT NOT NULL,
 locations TEXT NOT NULL, -- the places it concerns, one a line
 previous_hash BLOB NOT NULL
  CHECK (typeof(previous_hash) = 'blob' AND length(previous_hash) = 32),
 hash BLOB NOT NULL CHECK (typeof(hash) = 'blob' AND length(hash) = 32)
);

CREATE INDEX audit_by_time ON audit (time, id);

INSERT INTO audit
 (id, time, event, username, source, reason, locations, previous_hash, hash)
 WITH RECURSIVE chain (id, previous_hash, hash) AS (
  SELECT id, zeroblob(32),
   audit_link(zeroblob(32), time, event, username, source, reason, '')
  FROM audit_v3 WHERE id = (SELECT min(id) FROM audit_v3)
  UNION ALL
  SELECT next.id, chain.hash,
   audit_link(chain.hash, next.time, next.event, next.username, next.source,
    next.reason, '')
  FROM chain JOIN audit_v3 AS next
   ON next.id = (SELECT min(id) FROM audit_v3 WHERE id > chain.id)
 )
 SELECT old.id, old.time, old.event, old.username, old.source, old.reason,
  '', chain.previous_hash, chain.hash
 FROM audit_v3 AS old JOIN chain ON chain.id = old.id
 ORDER BY old.id;

DROP TABLE audit_v3;

-- The moves of enrolled profiles from one address to another, oldest
-- first.  Like the audit log they outlive the profile they concern.
CREATE TABLE moves
(
 id INTEGER PRIMARY KEY AUTOINCREMENT, -- never reused, so order is kept
 username TEXT NOT NULL,
 time REAL NOT NULL, -- POSIX time the move was accepted
 old_address TEXT NOT NULL,
 new_address TEXT NOT NULL,
 old_location_name TEXT, -- the named location of old_address, if any
 new_location_name TEXT -- the named location of new_address, if any
);

CREATE INDEX moves_by_user ON moves (username, id);
