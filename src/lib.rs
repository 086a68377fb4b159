//! cloudgov: governs government-cloud resources by the Pingdu Measures (see ARCHITECTURE.md).

pub mod access;
pub mod api;
pub mod calendar;
pub mod chart;
pub mod cli;
pub mod deadlines;
pub mod demo;
pub mod domain;
pub mod evaluation;
pub mod import;
pub mod inventory;
pub mod jobs;
pub mod load;
pub mod metrics;
pub mod network;
pub mod notify;
pub mod review;
pub mod rollup;
pub mod rules;
pub mod scheduler;
pub mod serve;
pub mod store;
pub mod telemetry;
pub mod tls;
pub mod token;
pub mod views;
