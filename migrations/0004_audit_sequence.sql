-- The commit order of audit rows. occurred_at cannot order rows written in the same millisecond,
-- and the Workers clock advances only between I/O, so simultaneous rotations share a time.
-- Each insert takes max(seq) + 1 inside its D1 transaction, and D1 runs transactions one at a
-- time, so seq increases in commit order.
ALTER TABLE client_secret_events ADD COLUMN seq INTEGER;

-- Rows written before this migration keep their insertion order.
UPDATE client_secret_events SET seq = rowid;

CREATE UNIQUE INDEX client_secret_events_seq ON client_secret_events (seq);
