//! Bounded in-memory buffer of reports between collection and sending, with an explicit
//! when-full policy: drop the oldest report.
//!
//! Why drop the oldest: during a long outage the newest data is the most useful, and memory must
//! stay bounded on a VM that never reaches the server. At the default capacity (1440 reports at a
//! 60 s interval) the agent bridges one day of outage.
//!
//! Invariants:
//! 1. `len() <= capacity()` at all times, and `capacity() >= 1`.
//! 2. Entries are kept in push order, each with a queue-internal id that strictly increases
//!    from front (oldest) to back (newest); so "every entry up to id X" is always a prefix.
//! 3. [`ReportQueue::push`] on a full queue first evicts the front entry, so the newest report is
//!    always accepted; every eviction increments [`ReportQueue::dropped`] by exactly one.
//! 4. Taking a batch ([`ReportQueue::batch`]) copies up to `n` entries from the front and does
//!    not change the queue; a send may therefore fail without losing anything.
//! 5. Only [`ReportQueue::complete`] removes sent entries: exactly those still present whose id
//!    is at most the batch's last id. Entries evicted while the batch was in flight are not
//!    removed twice, and entries pushed after the batch was taken are never removed.
//! 6. Hence every pushed report leaves the queue exactly once: evicted (counted in `dropped`) or
//!    completed (delivered or rejected by the server, counted by the caller). An evicted report
//!    that was in flight may still have been delivered; `dropped` counts evictions, not losses.

use std::collections::VecDeque;

use crate::wire::{IngestBatch, Report};

/// Marks the newest entry of a batch, to acknowledge it later with [`ReportQueue::complete`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct BatchEnd(u64);

#[derive(Debug)]
pub struct ReportQueue {
    entries: VecDeque<(u64, Report)>,
    capacity: usize,
    next_id: u64,
    dropped: u64,
}

impl ReportQueue {
    /// A queue holding at most `capacity` reports; a capacity of 0 is raised to 1.
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        Self {
            // Grow on demand: a healthy agent holds one report at a time.
            entries: VecDeque::new(),
            capacity,
            next_id: 0,
            dropped: 0,
        }
    }

    /// Appends `report`; if the queue was full, evicts and returns the oldest report.
    pub fn push(&mut self, report: Report) -> Option<Report> {
        let evicted = if self.entries.len() >= self.capacity {
            self.dropped += 1;
            self.entries.pop_front().map(|(_, r)| r)
        } else {
            None
        };
        self.entries.push_back((self.next_id, report));
        self.next_id += 1;
        evicted
    }

    /// A copy of up to `max` oldest reports, oldest first, and the mark to complete them with.
    /// `None` if the queue is empty.
    pub fn batch(&self, max: usize) -> Option<(IngestBatch, BatchEnd)> {
        let n = max.max(1).min(self.entries.len());
        let (last_id, _) = self.entries.get(n.checked_sub(1)?)?;
        let reports = self
            .entries
            .iter()
            .take(n)
            .map(|(_, r)| r.clone())
            .collect();
        Some((IngestBatch::new(reports), BatchEnd(*last_id)))
    }

    /// Removes the entries of a finished batch (those up to `end` that are still queued) and
    /// returns how many were removed.
    pub fn complete(&mut self, end: BatchEnd) -> usize {
        let mut removed = 0;
        while self.entries.front().is_some_and(|(id, _)| *id <= end.0) {
            self.entries.pop_front();
            removed += 1;
        }
        removed
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Reports evicted because the queue was full, since creation.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{Capacity, HostIdentity};

    fn report(seq: u64) -> Report {
        Report {
            seq,
            collected_at: chrono::DateTime::from_timestamp(1_700_000_000 + seq as i64, 0)
                .expect("valid timestamp"),
            host: HostIdentity {
                hostname: "vm".into(),
                machine_id: None,
                os: "Linux".into(),
                agent_version: "0".into(),
            },
            cpu_pct: 1.0,
            mem_pct: 2.0,
            filesystems: vec![],
            capacity: Capacity {
                vcpus: 1,
                memory_bytes: 1,
                disk_bytes: 0,
            },
            interfaces: vec![],
            neighbours: vec![],
            net_rx_bps: None,
            net_tx_bps: None,
            inbound_connections: None,
        }
    }

    fn seqs(batch: &IngestBatch) -> Vec<u64> {
        batch.reports.iter().map(|r| r.seq).collect()
    }

    #[test]
    fn full_queue_drops_oldest_and_counts() {
        let mut q = ReportQueue::new(3);
        for s in 1..=3 {
            assert!(q.push(report(s)).is_none());
        }
        assert_eq!(q.dropped(), 0);
        assert_eq!(q.push(report(4)).map(|r| r.seq), Some(1));
        assert_eq!(q.push(report(5)).map(|r| r.seq), Some(2));
        assert_eq!(q.len(), 3);
        assert_eq!(q.dropped(), 2);
        let (b, _) = q.batch(10).expect("non-empty");
        assert_eq!(seqs(&b), [3, 4, 5]);
    }

    #[test]
    fn batches_are_oldest_first_and_bounded() {
        let mut q = ReportQueue::new(10);
        assert!(q.batch(5).is_none());
        for s in 1..=7 {
            q.push(report(s));
        }
        let (b, end) = q.batch(5).expect("non-empty");
        assert_eq!(seqs(&b), [1, 2, 3, 4, 5]);
        // Taking a batch does not remove anything (a send may fail).
        assert_eq!(q.len(), 7);
        assert_eq!(q.complete(end), 5);
        let (b, end) = q.batch(5).expect("non-empty");
        assert_eq!(seqs(&b), [6, 7]);
        assert_eq!(q.complete(end), 2);
        assert!(q.is_empty());
    }

    #[test]
    fn completion_after_evictions_removes_only_what_was_sent() {
        let mut q = ReportQueue::new(3);
        for s in 1..=3 {
            q.push(report(s));
        }
        let (b, end) = q.batch(2).expect("non-empty");
        assert_eq!(seqs(&b), [1, 2]);
        // While the batch is in flight, two new reports evict 1 and 2.
        q.push(report(4));
        q.push(report(5));
        assert_eq!(q.dropped(), 2);
        // Nothing of the batch is left; 3, 4 and 5 were never sent and must stay.
        assert_eq!(q.complete(end), 0);
        let (b, _) = q.batch(10).expect("non-empty");
        assert_eq!(seqs(&b), [3, 4, 5]);

        // Partial eviction: only the still-queued part of a batch is removed.
        let (_, end) = q.batch(2).expect("non-empty"); // 3, 4
        q.push(report(6)); // evicts 3
        assert_eq!(q.complete(end), 1); // removes 4
        let (b, _) = q.batch(10).expect("non-empty");
        assert_eq!(seqs(&b), [5, 6]);
    }

    #[test]
    fn zero_capacity_is_raised_to_one() {
        let mut q = ReportQueue::new(0);
        assert_eq!(q.capacity(), 1);
        q.push(report(1));
        assert_eq!(q.push(report(2)).map(|r| r.seq), Some(1));
        assert_eq!(q.len(), 1);
    }
}
