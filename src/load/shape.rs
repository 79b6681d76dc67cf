//! The load's shape: what is sent, over how many connections, for how long and how fast.
//!
//! This is the one declaration of the load's shape. The load generator's configuration
//! ([`LoadConfig`](super::LoadConfig)), each client process's share of it
//! ([`PartConfig`](super::wire::PartConfig), flattened into its JSON line) and `bench run`'s
//! options (`RunOptions`) hold a `Shape` rather than copies of its fields; the result file's
//! scenario is written from one (`Scenario::of_shape`), in the file's own units (seconds).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::protocol::Workload;

/// What to drive and how hard, apart from where (the target) and with what (threads, CPUs,
/// processes).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Shape {
    pub workload: Workload,
    /// Connections (in a client process's share: its own).
    pub connections: usize,
    /// The measured window's length.
    pub duration: Duration,
    /// The warm-up before the window: requests run but are not recorded.
    pub warmup: Duration,
    /// Echo: bytes per request (HTTP: 0).
    pub payload: usize,
    /// Requests written on a connection before its answers are read.
    pub pipeline: usize,
    /// A batch unanswered for this long fails its connection (error kind `timeout`).
    pub timeout: Option<Duration>,
    /// Open loop: requests per second over every connection of the run, every client process
    /// included (`None`: closed loop).
    pub rate: Option<f64>,
    /// The time series' interval.
    pub interval: Duration,
}
