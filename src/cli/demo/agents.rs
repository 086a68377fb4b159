//! Simulated agents: one per simulated demo VM, reporting like `cloudgov-agent` does. Each has
//! its own agent token and posts [`IngestBatch`]es through the agent's own sender to the
//! daemon's real ingest endpoint, every agent interval: usage following the VM's profile,
//! capacity matching its allocation (as a VM sees it), and the interfaces and neighbours the
//! IP registry expects, one of them configured by DHCP.

use std::time::Duration;

use chrono::{DateTime, Utc};
use cloudgov_agent::config::AgentConfig;
use cloudgov_agent::send::Sender;
use cloudgov_agent::wire::{
    Address, AddressConfig, Capacity, Filesystem, HostIdentity, IngestBatch, Interface, Neighbour,
    Report,
};

use super::fleet::{Noise, Profile};
use crate::store::{Store, VmRow};

const GIB: f64 = 1024.0 * 1024.0 * 1024.0;
/// What a VM sees of its allocation: the kernel keeps some memory, ext4 reserves 5% for root.
const MEMORY_SEEN: f64 = 0.97;
const DISK_SEEN: f64 = 0.95;

/// One simulated agent.
struct SimAgent {
    profile: &'static Profile,
    vm: VmRow,
    sender: Sender,
    seq: u64,
}

impl SimAgent {
    fn report(&mut self, now: DateTime<Utc>, noise: &mut Noise) -> Report {
        self.seq += 1;
        let usage = self.profile.usage(now, now, noise);
        let disk_total = (self.vm.disk_gib * GIB * DISK_SEEN) as u64;
        let (config, config_source) = if self.profile.dhcp {
            (AddressConfig::Dhcp, "/var/lib/dhcp/dhclient.eth0.leases")
        } else {
            (AddressConfig::Static, "/etc/network/interfaces")
        };
        Report {
            seq: self.seq,
            collected_at: now,
            host: HostIdentity {
                hostname: self.profile.vm.to_owned(),
                machine_id: None,
                os: "Linux 12 Debian GNU/Linux".to_owned(),
                agent_version: concat!(env!("CARGO_PKG_VERSION"), "-simulated").to_owned(),
            },
            cpu_pct: usage.cpu,
            mem_pct: usage.mem,
            net_rx_bps: Some(usage.rx_bps as f64),
            net_tx_bps: Some(usage.tx_bps as f64),
            inbound_connections: None,
            filesystems: vec![Filesystem {
                mount_point: "/".to_owned(),
                fs_type: "ext4".to_owned(),
                device: "/dev/vda1".to_owned(),
                total_bytes: disk_total,
                used_bytes: (disk_total as f64 * usage.disk / 100.0) as u64,
            }],
            capacity: Capacity {
                vcpus: u32::try_from(self.vm.vcpus).unwrap_or(1).max(1),
                memory_bytes: (self.vm.memory_gib * GIB * MEMORY_SEEN) as u64,
                disk_bytes: disk_total,
            },
            interfaces: self
                .profile
                .ip
                .parse()
                .map(|ip| Interface {
                    name: "eth0".to_owned(),
                    mac: Some(self.profile.mac.to_owned()),
                    addresses: vec![Address {
                        ip,
                        prefix: 24,
                        config,
                        config_source: Some(config_source.to_owned()),
                    }],
                })
                .into_iter()
                .collect(),
            neighbours: self
                .profile
                .gateway
                .0
                .parse()
                .map(|ip| Neighbour {
                    ip,
                    mac: self.profile.gateway.1.to_owned(),
                    interface: "eth0".to_owned(),
                })
                .into_iter()
                .collect(),
        }
    }

    /// Sends one report; a failure is logged and the next interval tries again (as the agent
    /// would, minus its spool: a demo has no use for replaying missed minutes).
    async fn send(&mut self, noise: &mut Noise) -> bool {
        let batch = IngestBatch::new(vec![self.report(Utc::now(), noise)]);
        match self.sender.send(&batch).await {
            Ok(_) => true,
            Err(e) => {
                tracing::warn!(vm = %self.profile.vm, error = %e, "simulated agent report failed");
                false
            }
        }
    }
}

/// The running simulated agents; they stop when this is stopped.
pub struct Simulators {
    stop: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
    /// How many VMs report.
    pub vms: usize,
}

impl Simulators {
    /// Gives each simulated VM an agent token, sends every VM's first report (so the daemon
    /// knows every agent when this returns), then reports every `interval` until stopped.
    pub async fn start(store: &Store, base: &str, interval: Duration) -> anyhow::Result<Self> {
        let mut agents = Vec::new();
        for vm in store.vms().await? {
            let Some(profile) = super::fleet::profile(vm.id.as_str()) else {
                continue;
            };
            let token = crate::core::token::generate()
                .map_err(|e| anyhow::anyhow!("no randomness for an agent token: {e}"))?;
            store
                .add_agent_token(&vm.id, &crate::core::token::hash(&token))
                .await?;
            let sender = Sender::new(&AgentConfig::new(base, &token)?)?;
            agents.push(SimAgent {
                profile,
                vm,
                sender,
                seq: 0,
            });
        }
        let mut noise = Noise::default();
        let mut reported = 0;
        for agent in &mut agents {
            reported += usize::from(agent.send(&mut noise).await);
        }
        if reported < agents.len() {
            anyhow::bail!(
                "only {reported} of {} simulated agents could report to {base}",
                agents.len()
            );
        }
        let (stop, mut stopped) = tokio::sync::watch::channel(false);
        let vms = agents.len();
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            // The first tick completes at once: the first reports went out above.
            tick.tick().await;
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = stopped.changed() => return,
                }
                for agent in &mut agents {
                    agent.send(&mut noise).await;
                }
            }
        });
        Ok(Simulators { stop, task, vms })
    }

    /// Stops reporting and waits for a report in flight.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        if let Err(e) = self.task.await {
            tracing::warn!(error = %e, "simulated agents task failed");
        }
    }
}
