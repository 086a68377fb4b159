-- Samples at scale: `samples` becomes a table range-partitioned by `ts` (Unix seconds), one
-- partition per UTC calendar month named samples_yYYYYmMM, holding [first second of the month,
-- first second of the next month). Retention drops whole old partitions instead of deleting
-- rows one by one; the evaluation and the rollups read one VM's time range, which the primary
-- key (vm_key, ts) serves in each partition after pruning by ts.
--
-- The primary key stays (vm_key, ts) (it contains the partition key, as PostgreSQL requires), so
-- `INSERT ... ON CONFLICT DO NOTHING` still makes a replayed report a no-op.
-- A DEFAULT partition takes every sample outside the created months, so no sample is ever
-- refused; the daemon's partition upkeep (src/store/partitions.rs) creates the months ahead and
-- moves rows of months it creates out of the default partition.

ALTER TABLE samples RENAME TO samples_before_0008;
ALTER INDEX samples_pkey RENAME TO samples_before_0008_pkey;

CREATE TABLE samples (
    vm_key BIGINT NOT NULL,
    ts BIGINT NOT NULL,
    cpu_pct DOUBLE PRECISION NOT NULL,
    mem_pct DOUBLE PRECISION NOT NULL,
    disk_pct DOUBLE PRECISION,
    PRIMARY KEY (vm_key, ts)
) PARTITION BY RANGE (ts);

CREATE TABLE samples_default PARTITION OF samples DEFAULT;

-- Rows are appended roughly in time order, so a BRIN index on ts is tiny and lets retention find
-- the expired rows of the boundary partition (and of the default one) without reading it all.
CREATE INDEX samples_ts_brin ON samples USING brin (ts);

-- The months that existing rows need (years 1970..9999; anything else stays in the default
-- partition), plus the current month and two ahead.
DO $$
DECLARE
    month timestamp;
BEGIN
    FOR month IN
        SELECT DISTINCT date_trunc('month', to_timestamp(ts) AT TIME ZONE 'UTC')
        FROM samples_before_0008
        WHERE ts >= 0 AND ts < 253402300800
        UNION
        SELECT date_trunc('month', now() AT TIME ZONE 'UTC') + make_interval(months => n)
        FROM generate_series(0, 2) AS n
    LOOP
        EXECUTE format(
            'CREATE TABLE %I PARTITION OF samples FOR VALUES FROM (%s) TO (%s)',
            to_char(month, '"samples_y"YYYY"m"MM'),
            extract(epoch FROM month AT TIME ZONE 'UTC')::bigint,
            extract(epoch FROM (month + interval '1 month') AT TIME ZONE 'UTC')::bigint
        );
    END LOOP;
END $$;

INSERT INTO samples (vm_key, ts, cpu_pct, mem_pct, disk_pct)
SELECT vm_key, ts, cpu_pct, mem_pct, disk_pct FROM samples_before_0008;

DROP TABLE samples_before_0008;
