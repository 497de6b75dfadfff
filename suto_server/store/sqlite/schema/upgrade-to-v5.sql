-- SUTO server store, schema version 5: offline spells of enrolled
-- profiles, the offline time steps they reconnected with, and the
-- blacklist.  Only new tables, created as in v5.sql.

-- Version 5 adds offline detection and the blacklist.
-- A profile whose junk was due and did not come, since when.  The row goes
-- when a rotation commits (after a reconnection).
CREATE TABLE offline
(
 username TEXT NOT NULL PRIMARY KEY
  REFERENCES profiles (username) ON DELETE CASCADE,
 since REAL NOT NULL -- POSIX time the server marked it offline
);

-- The newest offline time step each profile reconnected with; a step no
-- newer than this one is never accepted again.
CREATE TABLE offline_steps
(
 username TEXT NOT NULL PRIMARY KEY
  REFERENCES profiles (username) ON DELETE CASCADE,
 step INTEGER NOT NULL CHECK (step >= 0)
);

-- Profiles refused for good, until an operator lifts the entry; lifting it
-- also removes the profile, so the device must enroll again.  An entry
-- does not reference its profile: it is lifted, never cascaded away.
CREATE TABLE blacklist
(
 username TEXT NOT NULL PRIMARY KEY,
 time REAL NOT NULL, -- POSIX time
 reason TEXT NOT NULL,
 source TEXT, -- the address of the offending connection
 alert TEXT NOT NULL -- the type of the alert it raised
);

CREATE INDEX profiles_by_last_seen ON profiles (last_seen);
