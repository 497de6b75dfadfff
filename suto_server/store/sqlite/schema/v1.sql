-- SUTO server store, schema version 1.

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
