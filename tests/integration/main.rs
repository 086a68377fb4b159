//! The one integration test binary: the real daemon on a free port, a real SQLite file (or a
//! real PostgreSQL with `CLOUDGOV_TEST_DB=postgres`), the real `cloudgov` and agent binaries.

mod accounts;
mod architecture;
mod browser;
mod cli;
mod dashboards;
mod deadlines;
mod demo;
mod durability;
mod email;
mod hardening;
mod helpers;
mod ingest;
mod kubernetes;
mod network;
mod outage;
mod partitions;
mod prometheus;
mod replicas;
mod requests;
mod review;
mod samples;
mod snmp;
mod tls;
mod unused;
mod validators;
mod web;
