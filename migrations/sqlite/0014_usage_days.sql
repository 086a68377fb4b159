-- One aggregate model for usage (issue: a data path that scales with VM-days).
--
-- Raw samples now live in two places: `samples` is the head (recent rows as they arrive), and
-- `sample_blocks` holds each VM's completed days compressed column by column (pco; see
-- src/core/usage/block.rs). `usage_days` holds each VM-day's aggregate (counts, exact sums,
-- extremes, latest, exact histograms at 0.01, hourly sums; src/core/usage/mod.rs): the
-- evaluation, the annual review and the dashboard's charts all read it. `usage_dirty` marks
-- the VM-days whose aggregate is not current, written in the samples' own transaction.

-- Network figures the agent reports: bytes per second received and sent, inbound connections.
ALTER TABLE samples ADD COLUMN net_rx_bps INTEGER;
ALTER TABLE samples ADD COLUMN net_tx_bps INTEGER;
ALTER TABLE samples ADD COLUMN inbound_connections INTEGER;

CREATE TABLE usage_days (
    vm_key INTEGER NOT NULL REFERENCES vms (key),
    day TEXT NOT NULL,                 -- Asia/Shanghai
    samples INTEGER NOT NULL,
    first_ts INTEGER NOT NULL,
    last_ts INTEGER NOT NULL,
    aggregate BLOB NOT NULL,
    PRIMARY KEY (vm_key, day)
);
CREATE INDEX usage_days_day ON usage_days (day);

CREATE TABLE sample_blocks (
    vm_key INTEGER NOT NULL REFERENCES vms (key),
    day TEXT NOT NULL,                 -- Asia/Shanghai
    samples INTEGER NOT NULL,
    block BLOB NOT NULL,
    PRIMARY KEY (vm_key, day)
);
CREATE INDEX sample_blocks_day ON sample_blocks (day);

-- `version` grows with every marking, so the fold clears only the mark it read; `min_ts` is the
-- earliest sample marked since (later than the aggregate's last: the new samples can be added
-- to it; earlier: the day is rebuilt); `marked_at` is when the day was first marked (the lag).
CREATE TABLE usage_dirty (
    vm_key INTEGER NOT NULL REFERENCES vms (key),
    day TEXT NOT NULL,
    min_ts INTEGER NOT NULL,
    marked_at INTEGER NOT NULL,
    version INTEGER NOT NULL,
    PRIMARY KEY (vm_key, day)
);

-- Every day with raw samples gets its aggregate (and, once the day is over, its block).
INSERT INTO usage_dirty (vm_key, day, min_ts, marked_at, version)
SELECT vm_key, date(ts + 28800, 'unixepoch'), MIN(ts), CAST(strftime('%s', 'now') AS INTEGER), 1
FROM samples GROUP BY vm_key, date(ts + 28800, 'unixepoch');

DROP TABLE rollup_dirty;
DROP TABLE sample_days;
