-- SUTO server store, schema version 6: what a reconnection's rotation
-- committed, so that a client that lost SUTO_ROTATE_DONE_ may reconnect
-- again in the same offline time step, and no reconnection message is
-- accepted twice (docs/PROTOCOL.md §10.2).

-- The key the newest rotation spending the step committed (NULL for a
-- step spent before version 6).
ALTER TABLE offline_steps ADD COLUMN key_id TEXT
 CHECK (key_id IS NULL OR length(key_id) = 32);

-- The attempt nonce of every reconnection whose rotation committed, in the
-- profile's spent step only: a commit forgets those of older steps.
CREATE TABLE reconnect_attempts
(
 username TEXT NOT NULL REFERENCES profiles (username) ON DELETE CASCADE,
 step INTEGER NOT NULL CHECK (step >= 0),
 nonce BLOB NOT NULL CHECK (length(nonce) = 16),
 PRIMARY KEY (username, nonce)
);
