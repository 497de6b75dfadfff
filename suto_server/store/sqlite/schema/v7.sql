-- SUTO server store, schema version 7.

CREATE TABLE version
(
 version INTEGER NOT NULL -- contains one row
);

CREATE TABLE users
(
 username TEXT NOT NULL PRIMARY KEY,
 password_hash TEXT NOT NULL, -- crypt(3) style, e.g. "$6$salt$..."
 scheme TEXT NOT NULL, -- derived from password_hash, e.g. "sha512_crypt"
 created REAL NOT NULL, -- POSIX time
 updated REAL NOT NULL -- POSIX time the hash was last set
);

-- Version 2 adds enrollment.
-- Windows and profiles do not reference users: an enrolled profile is not
-- a password account, and either can exist without the other.  Nothing
-- else references a user either: the audit log outlives what it records.

CREATE TABLE windows
(
 username TEXT NOT NULL PRIMARY KEY,
 otp_hash TEXT NOT NULL, -- crypt(3) style hash of the one-time password
 networks TEXT NOT NULL, -- CIDR networks joined with ","
 location_name TEXT, -- the operator's name for the networks, if any
 opened_at REAL NOT NULL, -- POSIX time
 deadline REAL NOT NULL, -- POSIX time, absolute so a restart keeps it
 attempts INTEGER NOT NULL CHECK (attempts >= 0), -- failed so far
 max_attempts INTEGER NOT NULL CHECK (max_attempts >= 1),
 replace_profile INTEGER NOT NULL CHECK (replace_profile IN (0, 1))
);

CREATE TABLE profiles
(
 username TEXT NOT NULL PRIMARY KEY,
 fingerprint_hash BLOB NOT NULL CHECK (length(fingerprint_hash) = 32),
 key_sealed BLOB NOT NULL, -- sealed with the master key, never in clear
 key_id TEXT NOT NULL CHECK (length(key_id) = 32),
 generation INTEGER NOT NULL CHECK (generation >= 0),
 enrolled_at REAL NOT NULL, -- POSIX time
 location TEXT NOT NULL, -- the address the device enrolled from
 location_name TEXT, -- the window's location name, if it had one
 -- Version 3 adds key rotation: the key the current one replaced, kept
 -- until the device shows it holds the current one.
 previous_key_sealed BLOB, -- sealed with the master key, never in clear
 previous_key_id TEXT CHECK (length(previous_key_id) = 32),
 current_confirmed INTEGER NOT NULL CHECK (current_confirmed IN (0, 1)),
 rotated_at REAL, -- POSIX time of the last committed rotation
 last_seen REAL NOT NULL, -- POSIX time the device last used the profile
 last_address TEXT NOT NULL, -- the address it last used it from
 rotation_failures INTEGER NOT NULL CHECK (rotation_failures >= 0),
 CHECK ((previous_key_sealed IS NULL) = (previous_key_id IS NULL))
);

-- The ids of keys a profile held and gave up, newest last; the store keeps
-- the last 16 of each profile.  A key id found here is a copy of the
-- device's chain that fell behind.  They go with their profile.
CREATE TABLE retired_keys
(
 id INTEGER PRIMARY KEY AUTOINCREMENT, -- never reused, so order is kept
 username TEXT NOT NULL REFERENCES profiles (username) ON DELETE CASCADE,
 key_id TEXT NOT NULL CHECK (length(key_id) = 32),
 retired_at REAL NOT NULL -- POSIX time
);

CREATE INDEX retired_keys_by_user ON retired_keys (username, id);

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

-- Version 7: the records of some types, newest first, without walking
-- the whole log (a page of alerts, the console's count of them).
CREATE INDEX audit_by_event ON audit (event, time, id);

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
-- newer than this one is never accepted again (but see version 6).
-- Version 6 adds key_id: the key the newest rotation spending the step
-- committed (NULL for a step spent before version 6).
CREATE TABLE offline_steps
(
 username TEXT NOT NULL PRIMARY KEY
  REFERENCES profiles (username) ON DELETE CASCADE,
 step INTEGER NOT NULL CHECK (step >= 0), key_id TEXT
 CHECK (key_id IS NULL OR length(key_id) = 32)
);

-- Version 6: the attempt nonce of every reconnection whose rotation
-- committed, in the profile's spent step only (a commit forgets those of
-- older steps), so that a client that lost SUTO_ROTATE_DONE_ may reconnect
-- again in that step, and no reconnection message is accepted twice.
CREATE TABLE reconnect_attempts
(
 username TEXT NOT NULL REFERENCES profiles (username) ON DELETE CASCADE,
 step INTEGER NOT NULL CHECK (step >= 0),
 nonce BLOB NOT NULL CHECK (length(nonce) = 16),
 PRIMARY KEY (username, nonce)
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
