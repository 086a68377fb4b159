//! The running daemon: the HTTP server and the scheduled jobs, started together and stopped
//! together (graceful shutdown lets in-flight requests finish).

pub mod kubernetes;
pub mod lease;
pub mod scheduler;
pub mod sources;

use anyhow::Context;
use std::net::SocketAddr;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::core::calendar::shanghai_day;
use crate::core::review::rules::ReviewRules;
use crate::daemon::scheduler::{CronExpr, run_on_schedule};
use crate::http::{AppState, router};
use crate::jobs::evaluation::evaluate;
use crate::jobs::{JobContext, TickSummary, check_deadlines};
use chrono::Datelike;
use std::sync::Arc;

/// When scheduled jobs run, and how the replica that runs them is elected; see
/// [`crate::daemon::scheduler`] for the syntax.
#[derive(Debug, Clone)]
pub struct Schedule {
    pub evaluate: CronExpr,
    pub deadlines: CronExpr,
    /// Folding new samples into their VM-days' aggregates and compacting completed days.
    pub fold: CronExpr,
    /// The annual review of the previous year, with its rules; `None`: no scheduled review.
    pub review: Option<(CronExpr, Arc<ReviewRules>)>,
    /// Periodic Kubernetes discovery (leader only); `None`: off.
    pub kubernetes: Option<kubernetes::DiscoveryJob>,
    /// Periodic Prometheus pull (leader only); `None`: off.
    pub prometheus: Option<sources::PrometheusJob>,
    /// Periodic SNMP polls of switches' ARP tables (leader only); `None`: off.
    pub snmp: Option<sources::SnmpJob>,
    pub elector: Elector,
}

/// How replicas elect the one that runs scheduled jobs and sends e-mail.
#[derive(Debug, Clone, Default)]
pub enum Elector {
    /// PostgreSQL advisory lock (SQLite: the one process leads).
    #[default]
    Database,
    /// A Kubernetes `coordination.k8s.io/v1` Lease.
    Lease(Arc<lease::LeaseElector>),
}

pub const DEFAULT_EVALUATE_CRON: &str = "0 5 * * * *";
pub const DEFAULT_DEADLINES_CRON: &str = "0 30 8 * * *";
/// Every five minutes: the fold's lag stays a few minutes (an evaluation between folds still
/// sees the newest samples: it reads what is not folded yet from the head).
pub const DEFAULT_FOLD_CRON: &str = "30 */5 * * * *";
/// 15 January, 06:00: the previous year is complete and its deadlines have settled.
pub const DEFAULT_REVIEW_CRON: &str = "0 0 6 15 1 *";

impl Default for Schedule {
    fn default() -> Self {
        // Both are constants checked by a unit test; a bad one is a build-time mistake.
        let parse = |s: &str| CronExpr::try_from(s).unwrap_or_else(|e| unreachable!("{e}"));
        Schedule {
            // Hourly, a few minutes past, so findings follow the data through the day.
            evaluate: parse(DEFAULT_EVALUATE_CRON),
            // Daily before office hours: deadlines, reminders, escalations, silent agents.
            deadlines: parse(DEFAULT_DEADLINES_CRON),
            fold: parse(DEFAULT_FOLD_CRON),
            review: None,
            kubernetes: None,
            prometheus: None,
            snmp: None,
            elector: Elector::Database,
        }
    }
}

pub struct Daemon {
    pub addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    server: JoinHandle<std::io::Result<()>>,
    /// The state the HTTP handlers share (counters included), for extra listeners.
    state: AppState,
}

impl Daemon {
    /// Binds `listen` (port 0 picks a free port; see [`Daemon::addr`]) and starts serving.
    pub async fn start(
        ctx: JobContext,
        listen: SocketAddr,
        schedule: Schedule,
    ) -> anyhow::Result<Daemon> {
        Daemon::start_with_tls(
            ctx,
            listen,
            schedule,
            None,
            crate::http::IngestLimits::default(),
        )
        .await
    }

    /// As [`Daemon::start`], serving HTTPS when `tls` is given, with the given ingest limits.
    pub async fn start_with_tls(
        ctx: JobContext,
        listen: SocketAddr,
        schedule: Schedule,
        tls: Option<Arc<rustls::ServerConfig>>,
        limits: crate::http::IngestLimits,
    ) -> anyhow::Result<Daemon> {
        if let Some(warning) =
            crate::core::calendar::calendar_warning(&ctx.calendar, shanghai_day(chrono::Utc::now()))
        {
            tracing::warn!("{warning}");
        }
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("cannot listen on {listen}"))?;
        let addr = listener.local_addr()?;
        let (shutdown, shutdown_rx) = watch::channel(false);
        let (leader_tx, leader) = watch::channel(false);
        let leadership = match schedule.elector {
            Elector::Database => tokio::spawn(hold_leadership(
                ctx.store.clone(),
                leader_tx,
                shutdown_rx.clone(),
            )),
            Elector::Lease(elector) => tokio::spawn(kubernetes::hold_lease(
                elector,
                leader_tx,
                shutdown_rx.clone(),
            )),
        };
        let web = crate::http::WebSettings {
            https: tls.is_some(),
        };
        let state = AppState::new(ctx.clone(), leader.clone(), limits, web);
        let app = router(state.clone());
        let mut server_shutdown = shutdown_rx.clone();
        let stopped = async move {
            let _ = server_shutdown.wait_for(|stop| *stop).await;
        };
        let server = match tls {
            None => tokio::spawn(async move {
                axum::serve(listener, app)
                    .with_graceful_shutdown(stopped)
                    .await
            }),
            Some(config) => {
                let listener = crate::http::tls::TlsListener::new(listener, config);
                tokio::spawn(async move {
                    axum::serve(listener, app)
                        .with_graceful_shutdown(stopped)
                        .await
                })
            }
        };
        let evaluation_ctx = ctx.clone();
        let evaluation = tokio::spawn(run_on_schedule(
            "evaluate",
            schedule.evaluate,
            shutdown_rx.clone(),
            leader.clone(),
            move |at| {
                let ctx = evaluation_ctx.clone();
                async move {
                    evaluate(&ctx.store, &ctx.rules, at, true).await?;
                    Ok(())
                }
            },
        ));
        let sender = tokio::spawn(deliver_emails(
            ctx.clone(),
            shutdown_rx.clone(),
            leader.clone(),
        ));
        let fold_ctx = ctx.clone();
        let fold = tokio::spawn(run_on_schedule(
            "fold",
            schedule.fold,
            shutdown_rx.clone(),
            leader.clone(),
            move |at| {
                let ctx = fold_ctx.clone();
                async move {
                    let folded = crate::jobs::fold(&ctx, at).await?;
                    tracing::info!(
                        days = folded.days(),
                        compacted = folded.compacted,
                        "usage folded"
                    );
                    Ok(())
                }
            },
        ));
        let mut tasks = vec![leadership, sender, fold];
        if let Some(job) = schedule.kubernetes {
            tasks.push(tokio::spawn(kubernetes::run_discovery(
                job,
                ctx.store.clone(),
                shutdown_rx.clone(),
                leader.clone(),
            )));
        }
        if let Some(job) = schedule.prometheus {
            tasks.push(tokio::spawn(sources::run_prometheus(
                job,
                ctx.store.clone(),
                shutdown_rx.clone(),
                leader.clone(),
            )));
        }
        if let Some(job) = schedule.snmp {
            tasks.push(tokio::spawn(sources::run_snmp(
                job,
                ctx.store.clone(),
                shutdown_rx.clone(),
                leader.clone(),
            )));
        }
        if let Some((cron, rules)) = schedule.review {
            let review_ctx = ctx.clone();
            tasks.push(tokio::spawn(run_on_schedule(
                "review",
                cron,
                shutdown_rx.clone(),
                leader.clone(),
                move |at| {
                    let (ctx, rules) = (review_ctx.clone(), rules.clone());
                    async move {
                        let year = shanghai_day(at).year() - 1;
                        let reviews =
                            crate::jobs::review::run(&ctx, &rules, year, at, true, |_, _| {})
                                .await?;
                        tracing::info!(
                            year,
                            projects = reviews.len(),
                            "annual review stored and queued for e-mail"
                        );
                        Ok(())
                    }
                },
            )));
        }
        let deadlines = tokio::spawn(run_on_schedule(
            "daily",
            schedule.deadlines,
            shutdown_rx,
            leader,
            move |at| {
                let ctx = ctx.clone();
                async move {
                    check_deadlines(&ctx, at, &mut TickSummary::default()).await?;
                    crate::jobs::network_check(&ctx, at, true).await?;
                    crate::jobs::fold_and_expire(&ctx, at).await?;
                    Ok(())
                }
            },
        ));
        tracing::info!(%addr, "daemon listening");
        Ok(Daemon {
            addr,
            shutdown,
            tasks: {
                tasks.extend([evaluation, deadlines]);
                tasks
            },
            server,
            state,
        })
    }

    /// Serves `/metrics` without signing in on a second listener (for Prometheus on an
    /// internal network), stopped with the daemon. Returns the bound address.
    pub async fn start_metrics_listener(
        &mut self,
        listen: SocketAddr,
    ) -> anyhow::Result<SocketAddr> {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("cannot listen on {listen} for metrics"))?;
        let addr = listener.local_addr()?;
        let app = axum::Router::new()
            .route(
                "/metrics",
                axum::routing::get(
                    |axum::extract::State(state): axum::extract::State<AppState>| async move {
                        crate::http::metrics_text(&state).await
                    },
                ),
            )
            .with_state(self.state.clone());
        let mut stop = self.shutdown.subscribe();
        self.tasks.push(tokio::spawn(async move {
            let stopped = async move {
                let _ = stop.wait_for(|s| *s).await;
            };
            if let Err(e) = axum::serve(listener, app)
                .with_graceful_shutdown(stopped)
                .await
            {
                tracing::error!(error = %e, "metrics listener failed");
            }
        }));
        tracing::info!(%addr, "metrics listening");
        Ok(addr)
    }

    /// Stops accepting work, lets in-flight requests and jobs finish, and returns.
    pub async fn stop(self) -> anyhow::Result<()> {
        let _ = self.shutdown.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
        self.server.await.context("server task panicked")??;
        Ok(())
    }
}

/// How often the sender looks at the outbox; failed jobs wait for their own backoff.
pub const OUTBOX_POLL: std::time::Duration = std::time::Duration::from_secs(15);

/// The outbox sender: delivers due e-mails until shutdown. A job in flight at shutdown
/// finishes first (the loop only stops between runs).
/// How often a replica that does not lead tries to take over; a dead leader's jobs move within
/// about this long (PostgreSQL releases its lock when its connection closes).
pub const LEADER_POLL: std::time::Duration = std::time::Duration::from_secs(3);

/// Keeps trying to lead and publishes whether this replica does.
async fn hold_leadership(
    store: crate::store::Store,
    leader: watch::Sender<bool>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut held = None;
    loop {
        match held.as_mut() {
            None => match store.try_lead().await {
                Ok(Some(l)) => {
                    tracing::info!("this replica leads: scheduled jobs and e-mail run here");
                    held = Some(l);
                    let _ = leader.send(true);
                }
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, "cannot try for leadership"),
            },
            Some(l) => {
                if !l.still_held().await {
                    tracing::warn!("leadership lost: the database connection holding it failed");
                    held = None;
                    let _ = leader.send(false);
                }
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(LEADER_POLL) => {}
            _ = shutdown.changed() => return,
        }
    }
}

async fn deliver_emails(
    ctx: JobContext,
    mut shutdown: watch::Receiver<bool>,
    mut leader: watch::Receiver<bool>,
) {
    if !ctx.notifier.smtp_configured() {
        tracing::warn!("CLOUDGOV_SMTP_URL is not set: notices wait in the outbox");
    }
    loop {
        // Only the leader sends, so two replicas never deliver the same job.
        let result = if *leader.borrow() {
            let still_leading = leader.clone();
            Some(
                crate::jobs::notify::deliver_pending(&ctx, chrono::Utc::now(), false, &move || {
                    *still_leading.borrow()
                })
                .await,
            )
        } else {
            None
        };
        match result {
            None => {}
            Some(Ok(s)) if s.sent + s.failed + s.no_recipient > 0 => {
                tracing::info!(
                    sent = s.sent,
                    failed = s.failed,
                    no_recipient = s.no_recipient,
                    pending = s.pending,
                    "outbox run"
                )
            }
            Some(Ok(_)) => {}
            Some(Err(e)) => tracing::error!(error = %e, "outbox run failed"),
        }
        // A replica that becomes the leader sends what is pending at once.
        tokio::select! {
            _ = tokio::time::sleep(OUTBOX_POLL) => {}
            _ = leader.changed() => {}
            _ = shutdown.changed() => return,
        }
        if *shutdown.borrow() {
            return;
        }
    }
}

/// Resolves when the process is asked to stop (Ctrl-C or SIGTERM).
pub async fn termination_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn default_schedule_parses() {
        let s = super::Schedule::default();
        assert_eq!(s.evaluate.to_string(), super::DEFAULT_EVALUATE_CRON);
        assert_eq!(s.deadlines.to_string(), super::DEFAULT_DEADLINES_CRON);
        assert_eq!(s.fold.to_string(), super::DEFAULT_FOLD_CRON);
    }
}
