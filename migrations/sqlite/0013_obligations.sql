-- One obligation model (see src/core/obligations.rs): a deadline is about a VM, a notice, a
-- project or (later) a request, so `vm_key` may be NULL; it carries its project and department
-- directly, for the project-level duties (art. 10 filing) and for scoping without joins.
-- SQLite cannot drop a NOT NULL, so the table is rebuilt (the documented twelve steps): the
-- store runs migrations with foreign keys off and checks them after (store::open_sqlite).
CREATE TABLE deadlines_new (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,                       -- an ObligationKind: deployment | adjustment | filing
    vm_key INTEGER REFERENCES vms (key),      -- the VM it concerns (a filing: the first deployed)
    notice_id INTEGER REFERENCES notices (id),
    project_id TEXT REFERENCES projects (id), -- NULL only where the duty has no project yet
    department_id TEXT NOT NULL REFERENCES departments (id),
    start_on TEXT NOT NULL,                   -- the day its clock starts (not counted)
    working_days INTEGER NOT NULL,
    due_on TEXT NOT NULL,
    provisional INTEGER NOT NULL,
    done_on TEXT,
    done_source TEXT,                         -- confirmed | inventory | inferred | agent | released | filed
    created_at INTEGER NOT NULL
);
INSERT INTO deadlines_new (id, kind, vm_key, notice_id, project_id, department_id, start_on,
    working_days, due_on, provisional, done_on, done_source, created_at)
SELECT d.id, d.kind, d.vm_key, d.notice_id, v.project_id, p.department_id, d.start_on,
    d.working_days, d.due_on, d.provisional, d.done_on, d.done_source, d.created_at
FROM deadlines d JOIN vms v ON v.key = d.vm_key JOIN projects p ON p.id = v.project_id;
DROP TABLE deadlines;
ALTER TABLE deadlines_new RENAME TO deadlines;
CREATE UNIQUE INDEX deadlines_one_deployment ON deadlines (vm_key) WHERE kind = 'deployment';
CREATE UNIQUE INDEX deadlines_one_per_notice ON deadlines (notice_id) WHERE notice_id IS NOT NULL;
CREATE UNIQUE INDEX deadlines_one_filing ON deadlines (project_id) WHERE kind = 'filing';
CREATE INDEX deadlines_open ON deadlines (due_on) WHERE done_on IS NULL;
CREATE INDEX deadlines_vm ON deadlines (vm_key);
CREATE INDEX deadlines_department ON deadlines (department_id);
-- The `not_filed` alert is now the filing obligation's escalation.
UPDATE alerts SET cleared_at = raised_at WHERE kind = 'not_filed' AND cleared_at IS NULL;
