-- SUTO server store, schema version 3: key rotation.
-- SQLite cannot add constrained columns to a table in place, so the v2
-- profiles table is renamed, the v3 one created as in v3.sql and filled
-- from it: every existing profile starts as a device that has just
-- enrolled (its key confirmed, last seen when and where it enrolled).
-- Nothing referenced profiles in v2, so the rename moves no reference.

ALTER TABLE profiles RENAME TO profiles_v2;

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

INSERT INTO profiles
 (username, fingerprint_hash, key_sealed, key_id, generation, enrolled_at,
  location, location_name, previous_key_sealed, previous_key_id,
  current_confirmed, rotated_at, last_seen, last_address, rotation_failures)
 SELECT username, fingerprint_hash, key_sealed, key_id, generation,
  enrolled_at, location, location_name, NULL, NULL, 1, NULL, enrolled_at,
  location, 0
 FROM profiles_v2;

DROP TABLE profiles_v2;
