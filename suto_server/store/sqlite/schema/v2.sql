-- SUTO server store, schema version 2.

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
 location_name TEXT -- the window's location name, if it had one
);

CREATE TABLE audit
(
 id INTEGER PRIMARY KEY AUTOINCREMENT, -- never reused, so order is kept
 time REAL NOT NULL, -- POSIX time
 event TEXT NOT NULL, -- e.g. "enrollment_failed"
 username TEXT,
 source TEXT, -- the peer's address, if a peer was involved
 reason TEXT NOT NULL
);

CREATE INDEX audit_by_time ON audit (time, id);
