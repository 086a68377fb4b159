//! Bounded on-disk spool of reports: what was collected survives an unreachable daemon, agent
//! restarts (including SIGKILL and power loss) and a torn last write.
//!
//! Layout of the spool directory:
//! - `NNNNNNNNNNNNNNNNNNNN.seg` (20-digit segment id): append-only segment files. Each record is
//!   `u32 LE length | u32 LE CRC32 (IEEE) of the payload | payload`, the payload being the JSON
//!   of one [`Report`]. Records are appended in collection order, segments in id order.
//! - `state`: `segment <id>\noffset <bytes>\ndropped <n>\n` — the acknowledgement cursor (every
//!   record in a segment before `<id>`, and every record of segment `<id>` starting before
//!   `<bytes>`, has been acknowledged) and the number of dropped reports not yet reported to the
//!   daemon. It is replaced atomically: `state.tmp` is written, fsync'd and renamed.
//!
//! Invariants:
//! 1. A report counts as spooled only after its record was written and fsync'd
//!    ([`Spool::append`]); a failed write is cut off again.
//! 2. On [`Spool::open`] every segment is scanned; the first record whose header is incomplete,
//!    whose length is implausible or whose CRC does not match ends the segment, and the file is
//!    truncated there (a torn write after a crash). Earlier records are untouched.
//! 3. Unacknowledged records are handed out oldest first ([`Spool::batch`]), across segments and
//!    restarts; taking a batch changes nothing on disk.
//! 4. Only [`Spool::complete`] (after the daemon's 2xx or a definitive rejection) removes records:
//!    it advances the persisted cursor, then deletes segments that lie wholly before it. A crash
//!    in between replays some acknowledged reports, which the daemon deduplicates by
//!    (VM, `collected_at`): at-least-once, never lost.
//! 5. The size on disk (sum of segment sizes) stays within `max_bytes` (plus at most one record
//!    larger than a segment): when an append exceeds it, whole oldest segments are dropped, and
//!    the number of unacknowledged reports in them is added to the persistent dropped counter
//!    (persisted before the files are deleted). Records that cannot be read back later (bit rot
//!    after open) are skipped and counted the same way.
//! 6. The dropped counter goes out as `dropped_reports` of a batch and is decreased by exactly
//!    that amount once the daemon acknowledged that batch; drops in the meantime are kept.
//!
//! One agent per spool directory: two processes appending to the same segments would interleave
//! records. (Not enforced with a lock file.)

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::wire::{IngestBatch, Report};

/// Bytes before each payload: length and CRC32.
pub const RECORD_HEADER_LEN: u64 = 8;
/// A report is a few KiB; a larger length field is corruption.
const MAX_RECORD_LEN: u32 = 16 * 1024 * 1024;
const SEGMENT_SUFFIX: &str = ".seg";
const STATE_FILE: &str = "state";
const STATE_TMP: &str = "state.tmp";
/// Segments are at most this big (or an eighth of the limit, if smaller), so dropping the oldest
/// one frees a bounded share of the spool.
const MAX_SEGMENT_BYTES: u64 = 4 * 1024 * 1024;
const MIN_SEGMENT_BYTES: u64 = 4 * 1024;

/// Marks the newest record of a batch and the dropped count it carried, to acknowledge both with
/// [`Spool::complete`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpoolEnd {
    last_id: u64,
    dropped_sent: u64,
}

#[derive(Debug)]
struct Record {
    /// In-memory id, strictly increasing from front to back.
    id: u64,
    segment: u64,
    /// Where the record's header starts in its segment.
    offset: u64,
    /// Header plus payload.
    len: u64,
}

#[derive(Debug)]
struct Segment {
    id: u64,
    bytes: u64,
}

#[derive(Debug, Default, PartialEq, Eq)]
struct State {
    segment: u64,
    offset: u64,
    dropped: u64,
}

#[derive(Debug)]
pub struct Spool {
    dir: PathBuf,
    max_bytes: u64,
    segment_max: u64,
    /// Oldest first; the last one is appended to.
    segments: VecDeque<Segment>,
    /// Append handle of the last segment. `None` after open and after a failed write: the next
    /// append starts a new segment rather than writing after a possibly damaged tail.
    active: Option<File>,
    /// Unacknowledged records, oldest first.
    records: VecDeque<Record>,
    next_record_id: u64,
    next_segment_id: u64,
    /// Dropped reports not yet acknowledged by the daemon (persisted).
    dropped: u64,
    /// Reports dropped since open, for the run summary.
    dropped_since_open: u64,
}

impl Spool {
    /// Opens (creating if needed) the spool in `dir`, truncating torn or corrupt tails and
    /// deleting segments that were fully acknowledged before a crash.
    pub fn open(dir: &Path, max_bytes: u64) -> io::Result<Spool> {
        fs::create_dir_all(dir)?;
        match fs::remove_file(dir.join(STATE_TMP)) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let state = read_state(&dir.join(STATE_FILE))?;
        let mut ids = Vec::new();
        for entry in fs::read_dir(dir)? {
            let name = entry?.file_name();
            if let Some(id) = name.to_str().and_then(parse_segment_name) {
                ids.push(id);
            }
        }
        ids.sort_unstable();

        let mut spool = Spool {
            dir: dir.to_owned(),
            max_bytes,
            segment_max: (max_bytes / 8).clamp(MIN_SEGMENT_BYTES, MAX_SEGMENT_BYTES),
            segments: VecDeque::new(),
            active: None,
            records: VecDeque::new(),
            next_record_id: 0,
            next_segment_id: ids.last().copied().unwrap_or(0).max(state.segment) + 1,
            dropped: state.dropped,
            dropped_since_open: 0,
        };
        for id in ids {
            let path = spool.segment_path(id);
            if id < state.segment {
                fs::remove_file(&path)?;
                continue;
            }
            let acked_before = if id == state.segment { state.offset } else { 0 };
            let bytes = spool.scan_segment(id, &path, acked_before)?;
            spool.segments.push_back(Segment { id, bytes });
        }
        sync_dir(dir)?;
        Ok(spool)
    }

    /// Reads segment `id`, indexes its records at or after `acked_before` and truncates the file
    /// after the last intact record. Returns the intact size.
    fn scan_segment(&mut self, id: u64, path: &Path, acked_before: u64) -> io::Result<u64> {
        let data = fs::read(path)?;
        let mut offset = 0usize;
        while let Some(len) = intact_record_len(&data[offset..]) {
            if offset as u64 >= acked_before {
                self.records.push_back(Record {
                    id: self.next_record_id,
                    segment: id,
                    offset: offset as u64,
                    len: len as u64,
                });
                self.next_record_id += 1;
            }
            offset += len;
        }
        if offset < data.len() {
            tracing::warn!(
                segment = %path.display(),
                kept_bytes = offset,
                cut_bytes = data.len() - offset,
                "spool segment has a torn or corrupt tail; truncating it"
            );
            let file = OpenOptions::new().write(true).open(path)?;
            file.set_len(offset as u64)?;
            file.sync_all()?;
        }
        Ok(offset as u64)
    }

    /// Appends `report` as one record and fsyncs it; then drops oldest segments while the spool
    /// is over its size limit. On error nothing was added.
    pub fn append(&mut self, report: &Report) -> io::Result<()> {
        let payload = serde_json::to_vec(report).map_err(io::Error::other)?;
        let len = u32::try_from(payload.len())
            .ok()
            .filter(|l| *l <= MAX_RECORD_LEN)
            .ok_or_else(|| io::Error::other("report too large for the spool"))?;
        let mut record = Vec::with_capacity(payload.len() + RECORD_HEADER_LEN as usize);
        record.extend_from_slice(&len.to_le_bytes());
        record.extend_from_slice(&crc32(&payload).to_le_bytes());
        record.extend_from_slice(&payload);
        let record_len = record.len() as u64;

        let needs_new = self.active.is_none()
            || self
                .segments
                .back()
                .is_none_or(|s| s.bytes > 0 && s.bytes + record_len > self.segment_max);
        if needs_new {
            let id = self.next_segment_id;
            let file = OpenOptions::new()
                .create_new(true)
                .append(true)
                .open(self.segment_path(id))?;
            sync_dir(&self.dir)?;
            self.next_segment_id += 1;
            self.segments.push_back(Segment { id, bytes: 0 });
            self.active = Some(file);
        }
        let Some(segment) = self.segments.back_mut() else {
            return Err(io::Error::other("spool has no segment"));
        };
        let Some(file) = self.active.as_mut() else {
            return Err(io::Error::other("spool segment not open"));
        };
        if let Err(e) = file.write_all(&record).and_then(|()| file.sync_data()) {
            // Cut off whatever part of the record made it; `open` would do so anyway.
            let _ = file.set_len(segment.bytes);
            self.active = None;
            return Err(e);
        }
        self.records.push_back(Record {
            id: self.next_record_id,
            segment: segment.id,
            offset: segment.bytes,
            len: record_len,
        });
        self.next_record_id += 1;
        segment.bytes += record_len;
        // The report is spooled; failing to make room is logged, not returned.
        if let Err(e) = self.enforce_limit() {
            tracing::error!(error = %e, dir = %self.dir.display(), "cannot trim the spool");
        }
        Ok(())
    }

    /// Counts reports lost before reaching the spool (e.g. a failed write) into the dropped
    /// counter reported to the daemon; persisted with the next state change.
    pub fn note_dropped(&mut self, n: u64) {
        self.dropped += n;
        self.dropped_since_open += n;
    }

    /// Drops whole oldest segments (never the one being appended to) while over the limit.
    fn enforce_limit(&mut self) -> io::Result<()> {
        let mut doomed = Vec::new();
        while self.total_bytes() > self.max_bytes && self.segments.len() > 1 {
            let Some(oldest) = self.segments.pop_front() else {
                break;
            };
            let mut lost = 0;
            while self.records.front().is_some_and(|r| r.segment == oldest.id) {
                self.records.pop_front();
                lost += 1;
            }
            self.dropped += lost;
            self.dropped_since_open += lost;
            doomed.push(oldest.id);
        }
        if doomed.is_empty() {
            return Ok(());
        }
        // The cursor moves past the doomed segments before they go (invariant 5).
        self.save_state()?;
        for id in doomed {
            fs::remove_file(self.segment_path(id))?;
        }
        sync_dir(&self.dir)
    }

    /// Up to `max` oldest unacknowledged reports, with the dropped counter as `dropped_reports`,
    /// and the mark to complete them with. Records that no longer read back intact are skipped
    /// and counted as dropped. `None` if nothing is spooled.
    pub fn batch(&mut self, max: usize) -> io::Result<Option<(IngestBatch, SpoolEnd)>> {
        let max = max.max(1);
        let mut reports = Vec::new();
        let mut last_id = None;
        let mut open: Option<(u64, File)> = None;
        let mut i = 0;
        while reports.len() < max && i < self.records.len() {
            let (id, segment, offset, len) = {
                let r = &self.records[i];
                (r.id, r.segment, r.offset, r.len)
            };
            if open.as_ref().is_none_or(|(s, _)| *s != segment) {
                open = Some((segment, File::open(self.segment_path(segment))?));
            }
            let Some((_, file)) = open.as_mut() else {
                break;
            };
            let mut buf = vec![0; usize::try_from(len).map_err(io::Error::other)?];
            file.seek(SeekFrom::Start(offset))?;
            let read = file.read_exact(&mut buf);
            let report = read
                .ok()
                .filter(|_| intact_record_len(&buf) == Some(buf.len()))
                .and_then(|_| {
                    serde_json::from_slice::<Report>(&buf[RECORD_HEADER_LEN as usize..]).ok()
                });
            match report {
                Some(report) => {
                    reports.push(report);
                    last_id = Some(id);
                    i += 1;
                }
                None => {
                    tracing::warn!(
                        segment,
                        offset,
                        "spooled report cannot be read back; dropping it"
                    );
                    self.records.remove(i);
                    self.dropped += 1;
                    self.dropped_since_open += 1;
                }
            }
        }
        let Some(last_id) = last_id else {
            return Ok(None);
        };
        let mut batch = IngestBatch::new(reports);
        batch.dropped_reports = self.dropped;
        Ok(Some((
            batch,
            SpoolEnd {
                last_id,
                dropped_sent: self.dropped,
            },
        )))
    }

    /// Removes the records of a finished batch (those up to `end` still spooled), settles the
    /// dropped count it carried, persists the cursor and deletes wholly acknowledged segments.
    /// Returns how many records were removed. Failing to persist is logged: those reports may
    /// then be sent again after a restart, which the daemon deduplicates.
    pub fn complete(&mut self, end: SpoolEnd) -> usize {
        let mut removed = 0;
        while self.records.front().is_some_and(|r| r.id <= end.last_id) {
            self.records.pop_front();
            removed += 1;
        }
        self.dropped = self.dropped.saturating_sub(end.dropped_sent);
        if let Err(e) = self.persist_completion() {
            tracing::error!(
                error = %e,
                dir = %self.dir.display(),
                "cannot persist the spool cursor; acknowledged reports may be sent again"
            );
        }
        removed
    }

    fn persist_completion(&mut self) -> io::Result<()> {
        self.save_state()?;
        let cursor = self.cursor().segment;
        let mut deleted = false;
        while self.segments.len() > 1 && self.segments.front().is_some_and(|s| s.id < cursor) {
            if let Some(s) = self.segments.pop_front() {
                fs::remove_file(self.segment_path(s.id))?;
                deleted = true;
            }
        }
        if deleted {
            sync_dir(&self.dir)?;
        }
        Ok(())
    }

    /// Unacknowledged reports on disk.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Dropped reports the daemon has not been told about yet (survives restarts).
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Reports dropped (spool full or unreadable) since this spool was opened.
    pub fn dropped_since_open(&self) -> u64 {
        self.dropped_since_open
    }

    /// Bytes of all segment files.
    pub fn total_bytes(&self) -> u64 {
        self.segments.iter().map(|s| s.bytes).sum()
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Position of the oldest unacknowledged record, or the end of the data.
    fn cursor(&self) -> State {
        let (segment, offset) = match (self.records.front(), self.segments.back()) {
            (Some(r), _) => (r.segment, r.offset),
            (None, Some(s)) => (s.id, s.bytes),
            (None, None) => (self.next_segment_id, 0),
        };
        State {
            segment,
            offset,
            dropped: self.dropped,
        }
    }

    fn save_state(&self) -> io::Result<()> {
        let s = self.cursor();
        let text = format!(
            "segment {}\noffset {}\ndropped {}\n",
            s.segment, s.offset, s.dropped
        );
        let tmp = self.dir.join(STATE_TMP);
        let mut file = File::create(&tmp)?;
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        fs::rename(&tmp, self.dir.join(STATE_FILE))?;
        sync_dir(&self.dir)
    }

    fn segment_path(&self, id: u64) -> PathBuf {
        self.dir.join(segment_name(id))
    }
}

fn segment_name(id: u64) -> String {
    format!("{id:020}{SEGMENT_SUFFIX}")
}

fn parse_segment_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(SEGMENT_SUFFIX)?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// A missing state file means a fresh spool; an unreadable one is logged and treated the same
/// (everything on disk is replayed; the daemon deduplicates).
fn read_state(path: &Path) -> io::Result<State> {
    let text = match fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(State::default()),
        Err(e) if e.kind() == io::ErrorKind::InvalidData => String::new(),
        Err(e) => return Err(e),
    };
    let mut fields = [None; 3];
    for line in text.lines() {
        let Some((key, value)) = line.split_once(' ') else {
            continue;
        };
        let slot = match key {
            "segment" => 0,
            "offset" => 1,
            "dropped" => 2,
            _ => continue,
        };
        fields[slot] = value.trim().parse::<u64>().ok();
    }
    match fields {
        [Some(segment), Some(offset), Some(dropped)] => Ok(State {
            segment,
            offset,
            dropped,
        }),
        _ => {
            tracing::warn!(
                path = %path.display(),
                "spool state file is unreadable; replaying the whole spool"
            );
            Ok(State::default())
        }
    }
}

/// Length (header plus payload) of the intact record at the start of `data`, if there is one.
fn intact_record_len(data: &[u8]) -> Option<usize> {
    let header = data.get(..RECORD_HEADER_LEN as usize)?;
    let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]);
    let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
    if len == 0 || len > MAX_RECORD_LEN {
        return None;
    }
    let end = RECORD_HEADER_LEN as usize + len as usize;
    let payload = data.get(RECORD_HEADER_LEN as usize..end)?;
    (crc32(payload) == crc).then_some(end)
}

/// Makes creations, renames and deletions in `dir` durable.
fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    File::open(dir)?.sync_all()?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

const CRC_TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
            k += 1;
        }
        table[i] = c;
        i += 1;
    }
    table
};

/// CRC-32/IEEE (as in zlib, gzip, PNG).
pub fn crc32(data: &[u8]) -> u32 {
    let mut c = !0u32;
    for &b in data {
        c = CRC_TABLE[((c ^ u32::from(b)) & 0xff) as usize] ^ (c >> 8);
    }
    !c
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
                // Pads a record to ~1 KiB, like a real report.
                agent_version: "0".repeat(800),
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

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "cloudgov-agent-spool-{}-{name}",
            std::process::id()
        ));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    fn seqs(batch: &IngestBatch) -> Vec<u64> {
        batch.reports.iter().map(|r| r.seq).collect()
    }

    fn all(spool: &mut Spool) -> Vec<u64> {
        spool
            .batch(usize::MAX)
            .expect("batch")
            .map(|(b, _)| seqs(&b))
            .unwrap_or_default()
    }

    fn segment_files(dir: &Path) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = fs::read_dir(dir)
            .expect("read dir")
            .map(|e| e.expect("entry").path())
            .filter(|p| p.extension().is_some_and(|e| e == "seg"))
            .collect();
        v.sort();
        v
    }

    #[test]
    fn crc32_check_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
    }

    #[test]
    fn records_survive_reopen_in_order_and_acks_persist() {
        let dir = temp_dir("reopen");
        let mut s = Spool::open(&dir, 1 << 20).expect("open");
        assert!(s.batch(10).expect("batch").is_none());
        for seq in 1..=5 {
            s.append(&report(seq)).expect("append");
        }
        drop(s);
        let mut s = Spool::open(&dir, 1 << 20).expect("reopen");
        assert_eq!(all(&mut s), [1, 2, 3, 4, 5]);
        let (b, end) = s.batch(2).expect("batch").expect("some");
        assert_eq!(seqs(&b), [1, 2]);
        // Taking a batch removes nothing.
        assert_eq!(s.len(), 5);
        assert_eq!(s.complete(end), 2);
        s.append(&report(6)).expect("append");
        drop(s);
        let mut s = Spool::open(&dir, 1 << 20).expect("reopen");
        assert_eq!(all(&mut s), [3, 4, 5, 6]);
        let (_, end) = s.batch(10).expect("batch").expect("some");
        assert_eq!(s.complete(end), 4);
        drop(s);
        let mut s = Spool::open(&dir, 1 << 20).expect("reopen");
        assert!(s.is_empty());
        // Appending after everything was acknowledged continues cleanly.
        s.append(&report(7)).expect("append");
        drop(s);
        let mut s = Spool::open(&dir, 1 << 20).expect("reopen");
        assert_eq!(all(&mut s), [7]);
        fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn torn_last_record_is_truncated_and_earlier_records_kept() {
        let dir = temp_dir("torn");
        let mut s = Spool::open(&dir, 1 << 20).expect("open");
        for seq in 1..=3 {
            s.append(&report(seq)).expect("append");
        }
        drop(s);
        let seg = segment_files(&dir).pop().expect("a segment");
        let full = fs::metadata(&seg).expect("meta").len();
        // Cut the last record in the middle of its payload.
        OpenOptions::new()
            .write(true)
            .open(&seg)
            .expect("open seg")
            .set_len(full - 100)
            .expect("truncate");
        let mut s = Spool::open(&dir, 1 << 20).expect("reopen");
        assert_eq!(all(&mut s), [1, 2]);
        assert!(fs::metadata(&seg).expect("meta").len() < full - 100);
        // New records follow the intact ones and survive the next open.
        s.append(&report(4)).expect("append");
        drop(s);
        let mut s = Spool::open(&dir, 1 << 20).expect("reopen");
        assert_eq!(all(&mut s), [1, 2, 4]);

        // A torn header (fewer than 8 bytes) is cut as well.
        drop(s);
        let mut f = OpenOptions::new().append(true).open(&seg).expect("open");
        f.write_all(&[42, 0, 0]).expect("write");
        drop(f);
        let mut s = Spool::open(&dir, 1 << 20).expect("reopen");
        assert_eq!(all(&mut s), [1, 2, 4]);
        fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn flipped_byte_in_last_record_is_detected_by_crc() {
        let dir = temp_dir("flip");
        let mut s = Spool::open(&dir, 1 << 20).expect("open");
        for seq in 1..=3 {
            s.append(&report(seq)).expect("append");
        }
        drop(s);
        let seg = segment_files(&dir).pop().expect("a segment");
        let mut data = fs::read(&seg).expect("read");
        let last = data.len() - 10;
        data[last] ^= 0x01;
        fs::write(&seg, &data).expect("write");
        let mut s = Spool::open(&dir, 1 << 20).expect("reopen");
        assert_eq!(all(&mut s), [1, 2]);
        fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn size_limit_drops_oldest_segments_and_counts_them_persistently() {
        let dir = temp_dir("limit");
        let max = 64 * 1024;
        let mut s = Spool::open(&dir, max).expect("open");
        for seq in 1..=200 {
            s.append(&report(seq)).expect("append");
            assert!(s.total_bytes() <= max, "{} > {max}", s.total_bytes());
        }
        let kept = all(&mut s);
        let dropped = s.dropped();
        assert!(dropped > 0);
        assert_eq!(dropped + kept.len() as u64, 200);
        // The newest are kept, in order, and exactly the oldest were dropped.
        assert_eq!(kept, (dropped + 1..=200).collect::<Vec<_>>());
        assert_eq!(s.dropped_since_open(), dropped);
        drop(s);

        let mut s = Spool::open(&dir, max).expect("reopen");
        assert_eq!(s.dropped(), dropped, "the counter survives a restart");
        assert_eq!(s.dropped_since_open(), 0);
        let (b, end) = s.batch(5).expect("batch").expect("some");
        assert_eq!(b.dropped_reports, dropped);
        // A drop while the batch is in flight is not lost when the batch is acknowledged.
        for seq in 201..=240 {
            s.append(&report(seq)).expect("append");
        }
        let more = s.dropped() - dropped;
        assert!(more > 0);
        s.complete(end);
        assert_eq!(s.dropped(), more);
        drop(s);
        let s = Spool::open(&dir, max).expect("reopen");
        assert_eq!(s.dropped(), more);
        fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn acknowledged_segments_are_deleted_and_order_holds_across_segments() {
        let dir = temp_dir("segments");
        let mut s = Spool::open(&dir, 1 << 20).expect("open"); // 128 KiB segments
        for seq in 1..=300 {
            s.append(&report(seq)).expect("append");
        }
        assert!(segment_files(&dir).len() > 2);
        drop(s);
        let mut s = Spool::open(&dir, 1 << 20).expect("reopen");
        assert_eq!(all(&mut s), (1..=300).collect::<Vec<_>>());
        let mut next = 1;
        while let Some((b, end)) = s.batch(70).expect("batch") {
            assert_eq!(b.reports[0].seq, next);
            next += b.reports.len() as u64;
            s.complete(end);
        }
        assert_eq!(next, 301);
        assert_eq!(
            segment_files(&dir).len(),
            1,
            "only the active segment stays"
        );
        drop(s);
        assert!(Spool::open(&dir, 1 << 20).expect("reopen").is_empty());
        fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn unreadable_state_file_replays_everything() {
        let dir = temp_dir("state");
        let mut s = Spool::open(&dir, 1 << 20).expect("open");
        for seq in 1..=3 {
            s.append(&report(seq)).expect("append");
        }
        let (_, end) = s.batch(2).expect("batch").expect("some");
        s.complete(end);
        drop(s);
        fs::write(dir.join(STATE_FILE), "garbage").expect("write");
        let mut s = Spool::open(&dir, 1 << 20).expect("reopen");
        assert_eq!(all(&mut s), [1, 2, 3]);
        fs::remove_dir_all(&dir).ok();
    }

    /// Not a benchmark, a guard: one fsync'd append per collection must stay cheap.
    #[test]
    fn append_with_fsync_is_cheap() {
        let dir = temp_dir("cost");
        let mut s = Spool::open(&dir, 1 << 20).expect("open");
        let start = std::time::Instant::now();
        for seq in 1..=50 {
            s.append(&report(seq)).expect("append");
        }
        let per_append = start.elapsed() / 50;
        eprintln!("spool append + fsync: {per_append:?} per report");
        assert!(per_append < std::time::Duration::from_millis(200));
        fs::remove_dir_all(&dir).ok();
    }
}
