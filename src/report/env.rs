//! The machine a result was measured on: enough to tell two results' machines apart and to see
//! whether the machine was busy.

use serde::{Deserialize, Serialize};

use crate::sys;

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Env {
    pub kernel: String,
    pub os: String,
    pub cpu_model: String,
    pub cpus: usize,
    pub rustc: String,
    pub loadavg_at_start: [f64; 3],
    pub hostname: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Tool {
    pub name: String,
    pub version: String,
    pub git_commit: String,
}

impl Tool {
    pub fn this() -> Tool {
        Tool {
            name: "iomodels".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            git_commit: env!("IOMODELS_GIT_COMMIT").into(),
        }
    }
}

impl Env {
    /// Reads the machine now.
    pub fn capture() -> Env {
        let read = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
        let os = read("/etc/os-release")
            .lines()
            .find_map(|l| l.strip_prefix("PRETTY_NAME="))
            .map(|v| v.trim_matches('"').to_string())
            .unwrap_or_else(|| std::env::consts::OS.to_string());
        let cpu_model = read("/proc/cpuinfo")
            .lines()
            .find_map(|l| l.strip_prefix("model name"))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_string())
            .unwrap_or_else(|| "unknown".into());
        Env {
            kernel: sys::kernel_release(),
            os,
            cpu_model,
            // The machine's, not this process's: the harness pins itself to the client CPUs.
            cpus: sys::online_cpus(),
            rustc: env!("IOMODELS_RUSTC").into(),
            loadavg_at_start: loadavg(),
            hostname: read("/proc/sys/kernel/hostname").trim().to_string(),
        }
    }
}

/// The 1, 5 and 15 minute load averages.
pub fn loadavg() -> [f64; 3] {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let mut it = text
        .split_whitespace()
        .map(|v| v.parse::<f64>().unwrap_or(0.0));
    [
        it.next().unwrap_or(0.0),
        it.next().unwrap_or(0.0),
        it.next().unwrap_or(0.0),
    ]
}
