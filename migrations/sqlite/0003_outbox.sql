-- E-mail outbox: an e-mail job is written in the same transaction as what it announces
-- (new notices, a reminder, an escalation), and delivered later by the sender.

-- With `require_approval`, a notice waits for staff before it is e-mailed.
ALTER TABLE notices ADD COLUMN approved_at INTEGER;

CREATE TABLE outbox (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,                -- digest | reminder | escalation | network | review
    department_id TEXT REFERENCES departments (id), -- NULL: addressed to the center
    deadline_id INTEGER REFERENCES deadlines (id),
    state TEXT NOT NULL,               -- pending | sent | no_recipient
    attempts INTEGER NOT NULL,
    next_attempt_at INTEGER NOT NULL,
    last_error TEXT,
    created_at INTEGER NOT NULL,
    sent_at INTEGER,
    recipients TEXT,                   -- JSON, as sent
    message_id TEXT,                   -- fixed at the first attempt, reused by every retry
    claimed_until INTEGER                 -- a sender is delivering it until then
);
CREATE INDEX outbox_pending ON outbox (next_attempt_at) WHERE state = 'pending';

-- The notices a digest announces; a notice is announced by one digest only.
CREATE TABLE outbox_notices (
    outbox_id INTEGER NOT NULL REFERENCES outbox (id),
    notice_id INTEGER NOT NULL REFERENCES notices (id),
    PRIMARY KEY (outbox_id, notice_id)
);
CREATE UNIQUE INDEX outbox_notices_once ON outbox_notices (notice_id);
