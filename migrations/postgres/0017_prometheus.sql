-- Prometheus as a usage source: a VM may name its node_exporter target (the `instance` label)
-- or a full label selector; the pull remembers up to which instant it has read each VM.
ALTER TABLE vms ADD COLUMN prometheus_instance TEXT;
ALTER TABLE vms ADD COLUMN prometheus_selector TEXT;
ALTER TABLE vms ADD COLUMN prometheus_pulled_until BIGINT;
