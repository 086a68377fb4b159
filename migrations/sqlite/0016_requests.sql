-- Resource requests (资源申请; Pingdu art. 12, 8; Shandong art. 17): what a department asks
-- for, the center's decision, and the delivery of the approved VMs.
CREATE TABLE requests (
    id INTEGER PRIMARY KEY,
    department_id TEXT NOT NULL REFERENCES departments (id),
    project_id TEXT NOT NULL,             -- an existing project, or the new one's id
    project_name TEXT,                    -- the new project's name; NULL for an existing one
    purpose TEXT NOT NULL,
    expected_load TEXT NOT NULL,
    desired_on TEXT,
    submitted_on TEXT NOT NULL,
    submitted_at INTEGER NOT NULL,
    submitted_by TEXT NOT NULL,
    state TEXT NOT NULL,                  -- submitted | approved | rejected | delivered
    decided_on TEXT,
    decided_by TEXT,
    decision_reason TEXT,
    delivered_on TEXT
);
CREATE INDEX requests_department ON requests (department_id, id);

CREATE TABLE request_vms (
    request_id INTEGER NOT NULL REFERENCES requests (id),
    vm_id TEXT NOT NULL,
    position INTEGER NOT NULL,
    vcpus REAL NOT NULL,      -- as asked
    memory_gib REAL NOT NULL,
    disk_gib REAL NOT NULL,
    approved_vcpus REAL,      -- as approved (amended or as asked)
    approved_memory_gib REAL,
    approved_disk_gib REAL,
    PRIMARY KEY (request_id, vm_id)
);

-- A delivered VM names its request.
ALTER TABLE vms ADD COLUMN request_id INTEGER REFERENCES requests (id);
-- The center's answer is an obligation (request_answer) of the request.
ALTER TABLE deadlines ADD COLUMN request_id INTEGER REFERENCES requests (id);
CREATE UNIQUE INDEX deadlines_one_per_request ON deadlines (request_id) WHERE request_id IS NOT NULL;
-- The receipt and the decision e-mails of a request.
ALTER TABLE outbox ADD COLUMN request_id INTEGER REFERENCES requests (id);
