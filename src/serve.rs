//! The running daemon: the HTTP server and the scheduled jobs, started together and stopped
//! together (graceful shutdown lets in-flight requests finish).

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::api::{AppState, router};
use crate::evaluation::evaluate;
use crate::rules::RuleSet;
use crate::scheduler::{CronExpr, run_on_schedule};
use crate::store::Store;

/// When scheduled jobs run; see [`crate::scheduler`] for the syntax.
#[derive(Debug, Clone)]
pub struct Schedule {
    pub evaluate: CronExpr,
}

impl Default for Schedule {
    fn default() -> Self {
        Schedule {
            // Hourly, a few minutes past, so findings follow the data through the day.
            evaluate: CronExpr::try_from("0 5 * * * *").unwrap_or_else(|e| unreachable!("{e}")),
        }
    }
}

pub struct Daemon {
    pub addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    server: JoinHandle<std::io::Result<()>>,
}

impl Daemon {
    /// Binds `listen` (port 0 picks a free port; see [`Daemon::addr`]) and starts serving.
    pub async fn start(
        store: Store,
        rules: Arc<RuleSet>,
        listen: SocketAddr,
        schedule: Schedule,
    ) -> anyhow::Result<Daemon> {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("cannot listen on {listen}"))?;
        let addr = listener.local_addr()?;
        let (shutdown, shutdown_rx) = watch::channel(false);
        let app = router(AppState {
            store: store.clone(),
            rules: rules.clone(),
        });
        let mut server_shutdown = shutdown_rx.clone();
        let server = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = server_shutdown.wait_for(|stop| *stop).await;
                })
                .await
        });
        let evaluation = tokio::spawn(run_on_schedule(
            "evaluate",
            schedule.evaluate,
            shutdown_rx,
            move |at| {
                let (store, rules) = (store.clone(), rules.clone());
                async move {
                    evaluate(&store, &rules, at, true).await?;
                    Ok(())
                }
            },
        ));
        tracing::info!(%addr, "daemon listening");
        Ok(Daemon {
            addr,
            shutdown,
            tasks: vec![evaluation],
            server,
        })
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
