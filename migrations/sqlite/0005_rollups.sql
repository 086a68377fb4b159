-- Daily rollups of samples, kept for years after the raw samples are gone: what the annual
-- review reads. Histograms are sparse "bucket:count" lists of 1-point buckets (0..=100), so
-- a year's p95 is exact to within one percentage point.

CREATE TABLE sample_days (
    vm_key INTEGER NOT NULL REFERENCES vms (key),
    day TEXT NOT NULL,                 -- Asia/Shanghai
    samples INTEGER NOT NULL,
    cpu_sum REAL NOT NULL,
    cpu_max REAL NOT NULL,
    cpu_p95 REAL NOT NULL,              -- the day's exact nearest-rank p95
    cpu_hist TEXT NOT NULL,
    mem_sum REAL NOT NULL,
    mem_max REAL NOT NULL,
    mem_hist TEXT NOT NULL,
    disk_samples INTEGER NOT NULL,
    disk_sum REAL NOT NULL,
    disk_max REAL NOT NULL,
    disk_last REAL,
    disk_hist TEXT NOT NULL,
    PRIMARY KEY (vm_key, day)
);
CREATE INDEX sample_days_day ON sample_days (day);

-- Days whose samples changed since they were rolled up (new reports, backfill, replays): written
-- in the same transaction as the samples, cleared by the rollup that read them. Retention keeps
-- a VM's raw samples while any of its days is still here, so no sample is lost unrolled.
CREATE TABLE rollup_dirty (
    vm_key INTEGER NOT NULL REFERENCES vms (key),
    day TEXT NOT NULL,
    marked_at INTEGER NOT NULL,
    PRIMARY KEY (vm_key, day)
);

-- Annual reviews (art. 10): the latest result per year and project, with everything it rests
-- on (JSON); e-mailed once to the department and the finance bureau.
CREATE TABLE reviews (
    id INTEGER PRIMARY KEY,
    year INTEGER NOT NULL,
    project_id TEXT NOT NULL REFERENCES projects (id),
    score REAL NOT NULL,
    grade TEXT NOT NULL,
    verdict TEXT NOT NULL,
    review TEXT NOT NULL,              -- JSON of the whole review
    reviewed_at INTEGER NOT NULL
);
CREATE UNIQUE INDEX reviews_year_project ON reviews (year, project_id);

CREATE TABLE outbox_reviews (
    outbox_id INTEGER NOT NULL REFERENCES outbox (id),
    review_id INTEGER NOT NULL REFERENCES reviews (id),
    PRIMARY KEY (outbox_id, review_id)
);
CREATE UNIQUE INDEX outbox_reviews_once ON outbox_reviews (review_id);
