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
    /// `None` where the platform keeps no load average (Windows).
    pub loadavg_at_start: Option<[f64; 3]>,
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
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
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
            .or_else(|| var("PROCESSOR_IDENTIFIER")) // Windows
            .unwrap_or_else(|| "unknown".into());
        let hostname = Some(read("/proc/sys/kernel/hostname").trim().to_string())
            .filter(|h| !h.is_empty())
            .or_else(|| var("COMPUTERNAME")) // Windows
            .unwrap_or_default();
        Env {
            kernel: sys::kernel_release(),
            os,
            cpu_model,
            // The machine's, not this process's: the harness pins itself to the client CPUs.
            cpus: sys::online_cpus(),
            rustc: env!("IOMODELS_RUSTC").into(),
            loadavg_at_start: sys::loadavg(),
            hostname,
        }
    }
}
