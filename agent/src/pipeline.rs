//! The long-running agent, in the style of Vector: a source (one collection every interval), a
//! bounded buffer ([`ReportQueue`], oldest dropped when full) and a sink ([`Sender`]: batches
//! oldest first, exponential backoff on transient failures).
//!
//! With a spool directory configured, the buffer is the on-disk [`Spool`] instead: every report
//! is appended and fsync'd before it counts as collected, batches are read from the spool, and
//! only an answer from the server (2xx, or a definitive 4xx rejection) removes them, so reports
//! outlive outages and restarts. If a write to the spool fails (disk full, read-only), that
//! report goes to the in-memory queue instead and is sent after the spool is empty.
//!
//! Everything runs as one `select!` loop in the caller's task, so the queue needs no lock and the
//! library works on current-thread and multi-thread runtimes alike. Collection runs on tokio's
//! blocking pool: it reads `/proc` and calls `statvfs`, which can hang on a dead mount, and that
//! must not stop sending. At most one collection runs at a time; ticks that find it still running
//! are skipped.

use std::future::Future;
use std::hash::{BuildHasher, Hasher};
use std::pin::Pin;
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio::time::{MissedTickBehavior, Sleep};

use crate::collect::{CollectError, Collector};
use crate::config::AgentConfig;
use crate::queue::{BatchEnd, ReportQueue};
use crate::ratelimit::LogLimiter;
use crate::send::{Disposition, SendError, Sender};
use crate::spool::{Spool, SpoolEnd};
use crate::wire::{IngestAck, IngestBatch, Report};

/// First retry delay; doubles per consecutive failure.
pub const BACKOFF_MIN: Duration = Duration::from_secs(1);
/// Retry delays never exceed this, not even when the server's `Retry-After` asks for more.
pub const BACKOFF_MAX: Duration = Duration::from_secs(300);
/// After shutdown is requested, queued reports get this long to be delivered.
pub const FINAL_FLUSH_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("cannot start collection: {0}")]
    Collector(#[from] CollectError),
    #[error("cannot set up sending: {0}")]
    Sender(#[from] SendError),
}

/// What a [`run`] did, for the caller to log or assert on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunSummary {
    /// Reports collected and queued.
    pub collected: u64,
    /// Reports the server accepted (including ones it already had).
    pub delivered: u64,
    /// Reports in batches the server rejected with a 4xx; they were dropped.
    pub rejected: u64,
    /// Reports evicted from the full queue or dropped from the full spool.
    pub dropped: u64,
    /// Reports still queued in memory at exit (lost).
    pub unsent: usize,
    /// Reports left in the on-disk spool at exit; they are sent after the next start.
    pub spooled: usize,
}

/// Collects every `config.interval()` and sends to the server until `shutdown` completes, then
/// tries for at most [`FINAL_FLUSH_TIMEOUT`] to deliver what is queued.
///
/// Fails only at start-up (no system information on this platform, HTTP client cannot be
/// built); collection and sending errors afterwards are logged at a limited rate and retried.
/// The returned future is `Send` if `shutdown` is.
pub async fn run(
    config: AgentConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<RunSummary, RunError> {
    let sender = Sender::new(&config)?;
    let collector = Collector::new()?;
    tracing::info!(
        server = %config.server(),
        interval_secs = config.interval().as_secs(),
        queue_capacity = config.queue_capacity(),
        batch_size = config.batch_size(),
        "agent started"
    );
    if config.server().scheme() == "http" && !is_loopback(config.server()) {
        tracing::warn!(
            server = %config.server(),
            "server URL is http: the token is sent unencrypted"
        );
    }
    let spool =
        config
            .spool_dir()
            .and_then(|dir| match Spool::open(dir, config.spool_max_bytes()) {
                Ok(spool) => {
                    tracing::info!(
                        dir = %dir.display(),
                        max_bytes = config.spool_max_bytes(),
                        spooled = spool.len(),
                        dropped_unreported = spool.dropped(),
                        "spool opened"
                    );
                    Some(spool)
                }
                Err(e) => {
                    tracing::error!(
                        dir = %dir.display(),
                        error = %e,
                        "cannot open the spool; keeping reports in memory only"
                    );
                    None
                }
            });
    let mut pipeline = Pipeline {
        queue: ReportQueue::new(config.queue_capacity()),
        spool,
        batch_size: config.batch_size(),
        sender,
        collector: Some(collector),
        next_seq: 1,
        backoff: Backoff::new(),
        limiter: LogLimiter::default(),
        summary: RunSummary::default(),
    };
    pipeline.run(config.interval(), shutdown).await;
    Ok(pipeline.finish())
}

type Collecting = JoinHandle<(Collector, Result<Report, CollectError>)>;
type Sent = (End, usize, Result<Option<IngestAck>, SendError>);

/// Which buffer a batch came from, and its mark there.
#[derive(Debug, Clone, Copy)]
enum End {
    Queue(BatchEnd),
    Spool(SpoolEnd),
}
type Sending = Pin<Box<dyn Future<Output = Sent> + Send>>;

struct Pipeline {
    /// Holds everything without a spool; with one, only reports the spool could not take.
    queue: ReportQueue,
    spool: Option<Spool>,
    batch_size: usize,
    sender: Sender,
    /// `None` while a collection runs on the blocking pool (it owns the collector then) or after
    /// that collection panicked (a new collector is made at the next tick).
    collector: Option<Collector>,
    /// Continues the sequence if the collector has to be replaced.
    next_seq: u64,
    backoff: Backoff,
    limiter: LogLimiter,
    summary: RunSummary,
}

impl Pipeline {
    async fn run(&mut self, interval: Duration, shutdown: impl Future<Output = ()>) {
        let mut shutdown = std::pin::pin!(shutdown);
        // The collector took its first CPU reading in `Collector::new`; starting the ticks once
        // sysinfo's minimum window has passed keeps the first collection from sleeping.
        let first_tick = tokio::time::Instant::now() + sysinfo::MINIMUM_CPU_UPDATE_INTERVAL;
        let mut ticker = tokio::time::interval_at(first_tick, interval);
        ticker.set_missed_tick_behavior(MissedTickBehavior::Skip);
        let mut collecting: Option<Collecting> = None;
        let mut sending: Option<Sending> = None;
        let mut retry_wait: Option<Pin<Box<Sleep>>> = None;

        loop {
            if sending.is_none() && retry_wait.is_none() {
                sending = self.start_send();
            }
            tokio::select! {
                biased;
                () = &mut shutdown => break,
                joined = maybe(&mut collecting) => {
                    collecting = None;
                    self.on_collected(joined);
                }
                (end, n, result) = maybe(&mut sending) => {
                    sending = None;
                    if let Some(delay) = self.on_sent(end, n, result) {
                        retry_wait = Some(Box::pin(tokio::time::sleep(delay)));
                    }
                }
                () = maybe(&mut retry_wait) => retry_wait = None,
                _ = ticker.tick() => {
                    if collecting.is_some() {
                        if let Some(suppressed) = self.limiter.allow("collect_busy") {
                            tracing::warn!(
                                kind = "collect_busy",
                                suppressed,
                                "previous collection still running (hung mount?); skipping this one"
                            );
                        }
                    } else {
                        collecting = self.start_collect();
                    }
                }
            }
        }
        // A running collection is abandoned: its report would arrive after the final flush.
        drop(collecting);
        self.final_flush(sending).await;
    }

    fn start_collect(&mut self) -> Option<Collecting> {
        let mut collector = match self.collector.take() {
            Some(c) => c,
            None => match Collector::new() {
                Ok(c) => c.with_next_seq(self.next_seq),
                Err(e) => {
                    if let Some(suppressed) = self.limiter.allow("collect_init") {
                        tracing::error!(
                            kind = "collect_init",
                            error = %e,
                            suppressed,
                            "cannot create collector"
                        );
                    }
                    return None;
                }
            },
        };
        Some(tokio::task::spawn_blocking(move || {
            let result = collector.collect();
            (collector, result)
        }))
    }

    fn on_collected(
        &mut self,
        joined: Result<(Collector, Result<Report, CollectError>), tokio::task::JoinError>,
    ) {
        let result = match joined {
            Ok((collector, result)) => {
                self.collector = Some(collector);
                result
            }
            Err(e) => {
                tracing::error!(
                    error = %e,
                    "collection task failed; a new collector will be created"
                );
                return;
            }
        };
        match result {
            Ok(report) => {
                self.next_seq = report.seq + 1;
                self.summary.collected += 1;
                tracing::debug!(
                    seq = report.seq,
                    cpu_pct = report.cpu_pct,
                    mem_pct = report.mem_pct,
                    "collected"
                );
                let report = match self.spool.as_mut().map(|s| s.append(&report)) {
                    None => report,
                    Some(Ok(())) => return,
                    Some(Err(e)) => {
                        if let Some(suppressed) = self.limiter.allow("spool_write") {
                            tracing::error!(
                                kind = "spool_write",
                                error = %e,
                                suppressed,
                                "cannot write the report to the spool; keeping it in memory"
                            );
                        }
                        report
                    }
                };
                if let Some(evicted) = self.queue.push(report)
                    && let Some(suppressed) = self.limiter.allow("queue_full")
                {
                    tracing::warn!(
                        kind = "queue_full",
                        evicted_seq = evicted.seq,
                        dropped_total = self.queue.dropped(),
                        capacity = self.queue.capacity(),
                        suppressed,
                        "queue full: dropped the oldest report"
                    );
                }
            }
            Err(e) => {
                if let Some(suppressed) = self.limiter.allow("collect") {
                    tracing::warn!(
                        kind = "collect",
                        error = %e,
                        suppressed,
                        "collection failed; no report this interval"
                    );
                }
            }
        }
    }

    /// The next batch: from the spool while it holds anything, else from the memory queue.
    fn next_batch(&mut self) -> Option<(IngestBatch, End)> {
        if let Some(spool) = self.spool.as_mut().filter(|s| !s.is_empty()) {
            match spool.batch(self.batch_size) {
                Ok(Some((batch, end))) => return Some((batch, End::Spool(end))),
                Ok(None) => {}
                Err(e) => {
                    if let Some(suppressed) = self.limiter.allow("spool_read") {
                        tracing::error!(
                            kind = "spool_read",
                            error = %e,
                            suppressed,
                            "cannot read from the spool"
                        );
                    }
                }
            }
        }
        let (batch, end) = self.queue.batch(self.batch_size)?;
        Some((batch, End::Queue(end)))
    }

    /// Removes a finished batch from the buffer it came from.
    fn complete(&mut self, end: End) -> usize {
        match (end, self.spool.as_mut()) {
            (End::Queue(end), _) => self.queue.complete(end),
            (End::Spool(end), Some(spool)) => spool.complete(end),
            (End::Spool(_), None) => 0,
        }
    }

    fn queued(&self) -> usize {
        self.queue.len() + self.spool.as_ref().map_or(0, Spool::len)
    }

    fn start_send(&mut self) -> Option<Sending> {
        let (batch, end) = self.next_batch()?;
        let sender = self.sender.clone();
        Some(Box::pin(async move {
            let n = batch.reports.len();
            let result = sender.send(&batch).await;
            (end, n, result)
        }))
    }

    /// Applies a send's outcome to the queue; returns the delay before the next attempt if the
    /// batch has to be retried.
    fn on_sent(
        &mut self,
        end: End,
        sent: usize,
        result: Result<Option<IngestAck>, SendError>,
    ) -> Option<Duration> {
        match result {
            Ok(ack) => {
                let removed = self.complete(end);
                self.summary.delivered += removed as u64;
                self.backoff.reset();
                match ack {
                    Some(ack) => {
                        tracing::debug!(
                            sent,
                            accepted = ack.accepted,
                            duplicates = ack.duplicates,
                            queued = self.queued(),
                            "batch delivered"
                        );
                        if ack.accepted + ack.duplicates != sent {
                            tracing::warn!(
                                sent,
                                accepted = ack.accepted,
                                duplicates = ack.duplicates,
                                "server acknowledged a different number of reports than sent"
                            );
                        }
                    }
                    None => {
                        if let Some(suppressed) = self.limiter.allow("bad_ack") {
                            tracing::warn!(
                                kind = "bad_ack",
                                sent,
                                suppressed,
                                "server accepted the batch but its answer is not an IngestAck"
                            );
                        }
                    }
                }
                None
            }
            Err(e) if e.disposition() == Disposition::Drop => {
                let removed = self.complete(end);
                self.summary.rejected += removed as u64;
                // The server is up and answering, so no backoff for the next batch.
                self.backoff.reset();
                if let Some(suppressed) = self.limiter.allow("rejected") {
                    tracing::error!(
                        kind = "rejected",
                        error = %e,
                        dropped = removed,
                        rejected_total = self.summary.rejected,
                        suppressed,
                        "server rejected the batch; dropping it"
                    );
                }
                None
            }
            Err(e) => {
                let server_asked = e.retry_after().unwrap_or_default().min(BACKOFF_MAX);
                let delay = self.backoff.next_delay().max(server_asked);
                if let Some(suppressed) = self.limiter.allow("send") {
                    tracing::warn!(
                        kind = "send",
                        error = %e,
                        retry_in_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                        queued = self.queued(),
                        suppressed,
                        "send failed; will retry"
                    );
                }
                Some(delay)
            }
        }
    }

    /// Waits for the send in flight, then sends queued batches without backoff until the queue
    /// is empty, a send fails transiently, or [`FINAL_FLUSH_TIMEOUT`] passes.
    async fn final_flush(&mut self, in_flight: Option<Sending>) {
        let flush = async {
            let mut next = in_flight.or_else(|| self.start_send());
            while let Some(sending) = next {
                let (end, n, result) = sending.await;
                if self.on_sent(end, n, result).is_some() {
                    return;
                }
                next = self.start_send();
            }
        };
        if tokio::time::timeout(FINAL_FLUSH_TIMEOUT, flush)
            .await
            .is_err()
        {
            tracing::warn!(
                timeout_secs = FINAL_FLUSH_TIMEOUT.as_secs(),
                "final flush timed out"
            );
        }
    }

    fn finish(mut self) -> RunSummary {
        self.summary.dropped =
            self.queue.dropped() + self.spool.as_ref().map_or(0, Spool::dropped_since_open);
        self.summary.unsent = self.queue.len();
        self.summary.spooled = self.spool.as_ref().map_or(0, Spool::len);
        let s = &self.summary;
        tracing::info!(
            collected = s.collected,
            delivered = s.delivered,
            rejected = s.rejected,
            dropped = s.dropped,
            unsent = s.unsent,
            spooled = s.spooled,
            "agent stopped"
        );
        self.summary
    }
}

/// Awaits the future if there is one, else never completes (a disabled `select!` branch that
/// needs no `unwrap`).
async fn maybe<F: Future + Unpin>(slot: &mut Option<F>) -> F::Output {
    match slot {
        Some(f) => f.await,
        None => std::future::pending().await,
    }
}

fn is_loopback(url: &reqwest::Url) -> bool {
    match url.host_str() {
        Some("localhost") => true,
        // IPv6 hosts come bracketed: "[::1]".
        Some(host) => host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback()),
        None => false,
    }
}

/// Exponential backoff, [`BACKOFF_MIN`] doubling to [`BACKOFF_MAX`], with "equal jitter": each
/// delay is drawn from [base/2, base], so agents that lost the server together do not all come
/// back in the same second.
#[derive(Debug)]
struct Backoff {
    base: Duration,
}

impl Backoff {
    fn new() -> Self {
        Self { base: BACKOFF_MIN }
    }

    fn reset(&mut self) {
        self.base = BACKOFF_MIN;
    }

    fn next_delay(&mut self) -> Duration {
        let base = self.base;
        self.base = (base * 2).min(BACKOFF_MAX);
        base / 2 + base.mul_f64(random_unit() / 2.0)
    }
}

/// A random number in [0, 1). std's `RandomState` is randomly keyed, which is plenty for jitter
/// and saves a dependency on `rand`.
fn random_unit() -> f64 {
    let bits = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    (bits >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_up_to_the_cap_and_resets() {
        let mut b = Backoff::new();
        let mut bases = Vec::new();
        for _ in 0..12 {
            let base = b.base;
            let d = b.next_delay();
            assert!(
                d >= base / 2 && d <= base,
                "{d:?} not within [{:?}, {base:?}]",
                base / 2
            );
            bases.push(base.as_secs());
        }
        assert_eq!(bases, [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300, 300]);
        b.reset();
        assert!(b.next_delay() <= BACKOFF_MIN);
    }

    #[test]
    fn jitter_varies() {
        let draws: std::collections::HashSet<u64> =
            (0..20).map(|_| random_unit().to_bits()).collect();
        assert!(draws.len() > 1);
        assert!(
            (0..1000)
                .map(|_| random_unit())
                .all(|x| (0.0..1.0).contains(&x))
        );
    }

    #[test]
    fn run_future_is_send() {
        fn assert_send<T: Send>(_: &T) {}
        let cfg = AgentConfig::new("http://127.0.0.1:9", "t").expect("valid");
        let fut = run(cfg, std::future::pending::<()>());
        assert_send(&fut);
    }

    #[test]
    fn loopback_detection() {
        for (u, expected) in [
            ("http://localhost:1/", true),
            ("http://127.0.0.1/", true),
            ("http://[::1]/", true),
            ("http://10.0.0.1/", false),
            ("http://gov.example/", false),
        ] {
            let url = reqwest::Url::parse(u).expect("url");
            assert_eq!(is_loopback(&url), expected, "{u}");
        }
    }
}
