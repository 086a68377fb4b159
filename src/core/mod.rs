//! The pure core: domain types, the rules and their evaluation, the working-day calendar,
//! obligations, the network checks, usage aggregates, review scoring, the Kubernetes mapping, the Prometheus mapping, charts.
//!
//! Architecture Invariant: nothing here does IO or reads the clock. No sqlx, axum, reqwest,
//! lettre, kube or tokio; no `std::fs`; no `Utc::now`. Callers pass text, samples and the
//! instant, so every boundary is testable and `cloudgov tick --at T` replays exactly.

pub mod access;
pub mod arp_text;
pub mod calendar;
pub mod chart;
pub mod details;
pub mod domain;
pub mod import;
pub mod inventory;
pub mod kubernetes;
pub mod network;
pub mod obligations;
pub mod prometheus;
pub mod requests;
pub mod review;
pub mod rules;
pub mod samples;
pub mod spreadsheet;
pub mod svg;
pub mod token;
pub mod usage;
