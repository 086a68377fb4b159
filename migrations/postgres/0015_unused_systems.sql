-- Systems no longer used (Pingdu art. 13: 当系统不再使用时...释放资源; Jilin art. 12).
-- The `usage` finding (resource 'usage', verdict unused | in_use | insufficient_data) keeps
-- what it rests on as JSON; release advice is a notice of direction 'release' that keeps the
-- evidence it was issued on.
ALTER TABLE findings ADD COLUMN evidence TEXT;
ALTER TABLE notices ADD COLUMN evidence TEXT;

-- Staff decide a contest: 'upheld' (the advice stands) or 'withdrawn' (the notice closes).
ALTER TABLE notice_contests ADD COLUMN decision TEXT;
ALTER TABLE notice_contests ADD COLUMN decided_by TEXT;
ALTER TABLE notice_contests ADD COLUMN decided_at BIGINT;
ALTER TABLE notice_contests ADD COLUMN decision_reason TEXT;
CREATE INDEX notice_contests_undecided ON notice_contests (notice_id) WHERE decision IS NULL;

-- A withdrawn release advice is not raised again for its VM until the VM is seen in use.
CREATE TABLE release_withdrawals (
    vm_key BIGINT PRIMARY KEY REFERENCES vms (key),
    notice_id BIGINT NOT NULL REFERENCES notices (id),
    withdrawn_at BIGINT NOT NULL
);
