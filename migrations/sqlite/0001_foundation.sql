-- Foundation schema: inventory, agent tokens, samples, findings, notices.
-- Timestamps are Unix seconds (INTEGER); calendar dates are 'YYYY-MM-DD' text (Asia/Shanghai).

CREATE TABLE departments (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    emails TEXT NOT NULL -- JSON array of addresses
);

CREATE TABLE projects (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    department_id TEXT NOT NULL REFERENCES departments (id),
    filed_on TEXT
);

CREATE TABLE center_settings (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE vms (
    key INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    project_id TEXT NOT NULL REFERENCES projects (id),
    vcpus INTEGER NOT NULL,
    memory_gib REAL NOT NULL,
    disk_gib REAL NOT NULL,
    delivered_on TEXT NOT NULL,
    deployed_on TEXT,
    deployed_source TEXT,
    released_on TEXT,
    updated_at INTEGER NOT NULL
);
CREATE INDEX vms_project ON vms (project_id);

-- Every allocation a VM has had, newest last: completion of an adjustment is read from here.
CREATE TABLE allocations (
    id INTEGER PRIMARY KEY,
    vm_key INTEGER NOT NULL REFERENCES vms (key),
    recorded_at INTEGER NOT NULL,
    vcpus INTEGER NOT NULL,
    memory_gib REAL NOT NULL,
    disk_gib REAL NOT NULL,
    source TEXT NOT NULL
);
CREATE INDEX allocations_vm ON allocations (vm_key, recorded_at);

-- Only the SHA-256 of a token is kept; the token itself is shown once when issued.
CREATE TABLE agent_tokens (
    token_hash TEXT PRIMARY KEY,
    vm_key INTEGER NOT NULL REFERENCES vms (key),
    created_at INTEGER NOT NULL,
    revoked_at INTEGER
);
CREATE INDEX agent_tokens_vm ON agent_tokens (vm_key);

-- What the VM's agent last said about itself.
CREATE TABLE agents (
    vm_key INTEGER PRIMARY KEY REFERENCES vms (key),
    hostname TEXT NOT NULL,
    machine_id TEXT,
    os TEXT NOT NULL,
    agent_version TEXT NOT NULL,
    last_seq INTEGER NOT NULL,
    last_collected_at INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL,
    vcpus INTEGER NOT NULL,
    memory_bytes INTEGER NOT NULL,
    disk_bytes INTEGER NOT NULL,
    filesystems TEXT NOT NULL, -- JSON
    interfaces TEXT NOT NULL   -- JSON
);

-- One row per VM and instant; (vm_key, ts) makes a replayed report a no-op.
CREATE TABLE samples (
    vm_key INTEGER NOT NULL,
    ts INTEGER NOT NULL,
    cpu_pct REAL NOT NULL,
    mem_pct REAL NOT NULL,
    disk_pct REAL,
    PRIMARY KEY (vm_key, ts)
) WITHOUT ROWID;

CREATE TABLE evaluations (
    id INTEGER PRIMARY KEY,
    at INTEGER NOT NULL,
    ran_at INTEGER NOT NULL,
    vms INTEGER NOT NULL,
    notices_opened INTEGER NOT NULL
);

-- The latest finding per VM and resource.
CREATE TABLE findings (
    vm_key INTEGER NOT NULL REFERENCES vms (key),
    resource TEXT NOT NULL,
    evaluation_id INTEGER NOT NULL REFERENCES evaluations (id),
    verdict TEXT NOT NULL,
    value REAL,
    threshold REAL,
    comparison TEXT,
    statistic TEXT NOT NULL,
    samples INTEGER NOT NULL,
    days_with_samples INTEGER NOT NULL,
    PRIMARY KEY (vm_key, resource)
);
CREATE INDEX findings_verdict ON findings (verdict);

CREATE TABLE notices (
    id INTEGER PRIMARY KEY,
    vm_key INTEGER NOT NULL REFERENCES vms (key),
    resource TEXT NOT NULL,
    direction TEXT NOT NULL,
    evaluation_id INTEGER NOT NULL REFERENCES evaluations (id),
    issued_at INTEGER NOT NULL,
    issued_on TEXT NOT NULL,
    value REAL NOT NULL,
    threshold REAL NOT NULL,
    comparison TEXT NOT NULL,
    statistic TEXT NOT NULL,
    allocation TEXT NOT NULL, -- JSON: the allocation when the notice was issued
    closed_at INTEGER,
    closed_reason TEXT
);
-- One unclosed notice per VM, resource and direction: re-evaluation never duplicates one.
CREATE UNIQUE INDEX notices_one_open ON notices (vm_key, resource, direction) WHERE closed_at IS NULL;
CREATE INDEX notices_vm ON notices (vm_key);
