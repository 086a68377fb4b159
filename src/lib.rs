//! cloudgov: governs government-cloud resources by the Pingdu Measures (see ARCHITECTURE.md).
//!
//! The layers import one way (a test checks it): [`core`] (pure) <- [`store`] <- [`jobs`] <-
//! [`http`] <- [`daemon`] <- [`cli`].

pub mod cli;
pub mod core;
pub mod daemon;
pub mod http;
pub mod jobs;
pub mod store;
pub mod telemetry;
