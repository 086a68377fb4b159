-- One aggregate model for usage (issue: a data path that scales with VM-days).
--
-- Raw samples now live in two places: `samples` is the head (recent rows as they arrive), and
-- `sample_blocks` holds each VM's completed days compressed column by column (pco; see
-- src/core/usage/block.rs). `usage_days` holds each VM-day's aggregate (counts, exact sums,
-- extremes, latest, exact histograms at 0.01, hourly sums; src/core/usage/mod.rs): the
-- evaluation, the annual review and the dashboard's charts all read it. `usage_dirty` marks
-- the VM-days whose aggregate is not current, written in the samples' own transaction.

-- Network figures the agent reports: bytes per second received and sent, inbound connections.
ALTER TABLE samples ADD COLUMN net_rx_bps BIGINT;
ALTER TABLE samples ADD COLUMN net_tx_bps BIGINT;
ALTER TABLE samples ADD COLUMN inbound_connections BIGINT;

CREATE TABLE usage_days (
    vm_key BIGINT NOT NULL REFERENCES vms (key),
    day TEXT NOT NULL,                 -- Asia/Shanghai
    samples BIGINT NOT NULL,
    first_ts BIGINT NOT NULL,
    last_ts BIGINT NOT NULL,
    aggregate BYTEA NOT NULL,
    PRIMARY KEY (vm_key, day)
);
CREATE INDEX usage_days_day ON usage_days (day);

CREATE TABLE sample_blocks (
    vm_key BIGINT NOT NULL REFERENCES vms (key),
    day TEXT NOT NULL,                 -- Asia/Shanghai
    samples BIGINT NOT NULL,
    block BYTEA NOT NULL,
    PRIMARY KEY (vm_key, day)
);
CREATE INDEX sample_blocks_day ON sample_blocks (day);
-- Blocks are compressed already: TOAST stores them out of line without trying pglz again.
ALTER TABLE sample_blocks ALTER COLUMN block SET STORAGE EXTERNAL;

-- `version` grows with every marking, so the fold clears only the mark it read; `min_ts` is the
-- earliest sample marked since (later than the aggregate's last: the new samples can be added
-- to it; earlier: the day is rebuilt); `marked_at` is when the day was first marked (the lag).
CREATE TABLE usage_dirty (
    vm_key BIGINT NOT NULL REFERENCES vms (key),
    day TEXT NOT NULL,
    min_ts BIGINT NOT NULL,
    marked_at BIGINT NOT NULL,
    version BIGINT NOT NULL,
    PRIMARY KEY (vm_key, day)
);

-- Every day with raw samples gets its aggregate (and, once the day is over, its block).
-- (The partitioned samples table has no foreign key: a row of no VM has no day to fold.)
INSERT INTO usage_dirty (vm_key, day, min_ts, marked_at, version)
SELECT vm_key, to_char(to_timestamp(ts) AT TIME ZONE 'Asia/Shanghai', 'YYYY-MM-DD'), MIN(ts),
       extract(epoch FROM now())::bigint, 1
FROM samples WHERE vm_key IN (SELECT key FROM vms) GROUP BY 1, 2;

DROP TABLE rollup_dirty;
DROP TABLE sample_days;
