-- Working-day deadlines (deployment, adjustment), their timelines, release requests, alerts.

ALTER TABLE vms ADD COLUMN release_requested_on TEXT;
ALTER TABLE vms ADD COLUMN release_reason TEXT;

CREATE TABLE deadlines (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,                       -- deployment | adjustment
    vm_key INTEGER NOT NULL REFERENCES vms (key),
    notice_id INTEGER REFERENCES notices (id),
    start_on TEXT NOT NULL,                   -- delivered (deployment) or issued (adjustment)
    working_days INTEGER NOT NULL,
    due_on TEXT NOT NULL,
    provisional INTEGER NOT NULL,             -- due date counted past the calendar data
    done_on TEXT,
    done_source TEXT,                         -- confirmed | inventory | inferred | agent | released
    created_at INTEGER NOT NULL
);
CREATE UNIQUE INDEX deadlines_one_deployment ON deadlines (vm_key) WHERE kind = 'deployment';
CREATE UNIQUE INDEX deadlines_one_per_notice ON deadlines (notice_id) WHERE notice_id IS NOT NULL;
CREATE INDEX deadlines_open ON deadlines (due_on) WHERE done_on IS NULL;

-- What happened to a deadline, in order. A reminder and an escalation happen once each: the
-- unique index makes a second one a no-op even when two jobs race.
CREATE TABLE deadline_events (
    id INTEGER PRIMARY KEY,
    deadline_id INTEGER NOT NULL REFERENCES deadlines (id),
    event TEXT NOT NULL,                      -- created | reminder | escalation | done
    at INTEGER NOT NULL,                      -- the job instant (tick --at)
    on_date TEXT NOT NULL,
    detail TEXT NOT NULL
);
CREATE UNIQUE INDEX deadline_events_once ON deadline_events (deadline_id, event);
CREATE INDEX deadline_events_deadline ON deadline_events (deadline_id, id);

-- VM-level findings that are not about one resource (silent agent, ...), one open per kind.
CREATE TABLE alerts (
    id INTEGER PRIMARY KEY,
    vm_key INTEGER NOT NULL REFERENCES vms (key),
    kind TEXT NOT NULL,
    raised_at INTEGER NOT NULL,
    raised_on TEXT NOT NULL,
    detail TEXT NOT NULL,
    cleared_at INTEGER
);
CREATE UNIQUE INDEX alerts_one_open ON alerts (vm_key, kind) WHERE cleared_at IS NULL;
