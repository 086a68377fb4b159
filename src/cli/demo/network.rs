//! The demo's network data (Pingdu art. 14): an IP registry and a switch ARP export, loaded
//! through the same parsers and store calls as `cloudgov import ip-registry` and
//! `cloudgov import arp`. Between them and the simulated agents' interfaces they give one
//! finding of every kind: an unregistered address, a MAC mismatch, an address conflict, a DHCP
//! address (a VM's), a suspected router both ways (one MAC for three addresses, a TP-Link OUI)
//! and a stale registration.

use chrono::{DateTime, Utc};

use crate::core::calendar::shanghai_day;
use crate::core::domain::ArrivalWindow;
use crate::core::import::{parse_arp, parse_ip_registry};
use crate::store::{RegistrySummary, SightingRow, Store};

pub const REGISTRY_FILE: &str = "deploy/demo/ip-registry.csv";
pub const REGISTRY: &str = include_str!("../../../deploy/demo/ip-registry.csv");
pub const ARP_FILE: &str = "deploy/demo/arp.csv";
/// A switch's ARP table export. Its times are those of the morning it was taken; the demo moves
/// them so that its last entry was seen five minutes ago, inside the checks' window.
pub const ARP: &str = include_str!("../../../deploy/demo/arp.csv");

/// Imports the registry and the ARP export as of `now`; returns the registry summary and the
/// ARP entries recorded.
pub async fn load(store: &Store, now: DateTime<Utc>) -> anyhow::Result<(RegistrySummary, usize)> {
    let departments = store.department_ids().await?;
    let registry = parse_ip_registry(
        REGISTRY_FILE,
        REGISTRY.as_bytes(),
        &departments,
        shanghai_day(now),
    )?;
    let summary = store
        .apply_ip_registry(
            &registry,
            &format!("import {REGISTRY_FILE}"),
            shanghai_day(now),
        )
        .await?;
    // The export is from a past morning: read with history allowed, then moved to now.
    let mut arp = parse_arp(ARP_FILE, ARP.as_bytes(), ArrivalWindow::with_history(now))?;
    if let Some(taken) = arp.iter().map(|r| r.seen_at).max() {
        let shift = now - chrono::TimeDelta::minutes(5) - taken;
        for row in &mut arp {
            row.seen_at += shift;
        }
    }
    let sightings: Vec<SightingRow> = arp.iter().map(SightingRow::from).collect();
    store.record_sightings(&sightings).await?;
    Ok((summary, arp.len()))
}
