-- Daily rollups of samples, kept for years after the raw samples are gone: what the annual
-- review reads. Histograms are sparse "bucket:count" lists of 1-point buckets (0..=100), so
-- a year's p95 is exact to within one percentage point.

CREATE TABLE sample_days (
    vm_key BIGINT NOT NULL REFERENCES vms (key),
    day TEXT NOT NULL,                 -- Asia/Shanghai
    samples BIGINT NOT NULL,
    cpu_sum DOUBLE PRECISION NOT NULL,
    cpu_max DOUBLE PRECISION NOT NULL,
    cpu_p95 DOUBLE PRECISION NOT NULL,              -- the day's exact nearest-rank p95
    cpu_hist TEXT NOT NULL,
    mem_sum DOUBLE PRECISION NOT NULL,
    mem_max DOUBLE PRECISION NOT NULL,
    mem_hist TEXT NOT NULL,
    disk_samples BIGINT NOT NULL,
    disk_sum DOUBLE PRECISION NOT NULL,
    disk_max DOUBLE PRECISION NOT NULL,
    disk_last DOUBLE PRECISION,
    disk_hist TEXT NOT NULL,
    PRIMARY KEY (vm_key, day)
);
CREATE INDEX sample_days_day ON sample_days (day);
