//! How the two files' experiments differ: what makes them incomparable (the workload), and
//! what is noted beside the verdict (a change under test may bring a slower handler: said, not
//! refused), another machine, another load, other threads, CPUs or model options.

use crate::result::ResultFile;

/// (What makes the files incomparable, the notes.)
pub fn differences(base: &ResultFile, cur: &ResultFile) -> (Vec<String>, Vec<String>) {
    let (bs, cs) = (&base.scenario, &cur.scenario);
    let mut differs = Vec::new();
    if bs.workload != cs.workload {
        differs.push(format!("workload {} vs {}", bs.workload, cs.workload));
    }
    let mut notes = Vec::new();
    if bs.duration_s != cs.duration_s || bs.warmup_s != cs.warmup_s {
        notes.push(format!(
            "the runs differ in length: {} s (+{} s warm-up) vs {} s (+{} s)",
            bs.duration_s, bs.warmup_s, cs.duration_s, cs.warmup_s
        ));
    }
    if bs.work_us != cs.work_us || bs.block_us != cs.block_us {
        notes.push(format!(
            "the handler's cost differs: work_us/block_us {}/{} vs {}/{}",
            bs.work_us, bs.block_us, cs.work_us, cs.block_us
        ));
    }
    let setup = [
        (
            "server threads (--threads)",
            show(&bs.server_threads),
            show(&cs.server_threads),
        ),
        (
            "server CPUs",
            format!("{:?}", bs.server_cpus),
            format!("{:?}", cs.server_cpus),
        ),
        (
            "client CPUs",
            format!("{:?}", bs.client_cpus),
            format!("{:?}", cs.client_cpus),
        ),
        (
            "client threads",
            bs.client_threads.to_string(),
            cs.client_threads.to_string(),
        ),
        (
            "io_uring options",
            json(&bs.uring_options),
            json(&cs.uring_options),
        ),
        (
            "idle timeout",
            show(&bs.idle_timeout_s),
            show(&cs.idle_timeout_s),
        ),
        (
            "system-call accounting",
            bs.accounting.clone(),
            cs.accounting.clone(),
        ),
    ];
    for (what, b, c) in setup {
        if b != c {
            notes.push(format!(
                "the setups differ: {what} {b} vs {c}: a difference in the figures may come \
                 from it"
            ));
        }
    }
    if base.env.cpu_model != cur.env.cpu_model || base.env.cpus != cur.env.cpus {
        notes.push(format!(
            "measured on different machines ({}, {} CPUs vs {}, {} CPUs): compare ratios \
             (--normalize-to MODEL)",
            base.env.cpu_model, base.env.cpus, cur.env.cpu_model, cur.env.cpus
        ));
    }
    if let (Some(lb), Some(lc)) = (base.env.loadavg_at_start, cur.env.loadavg_at_start) {
        let cpus = base.env.cpus.max(1) as f64;
        if (lb[0] - lc[0]).abs() / cpus > 1.0 {
            notes.push(format!(
                "the machine's load differed (load average {:.1} vs {:.1} on {} CPUs at the \
                 start): times move with it, and not alike for every model (thread-per-connection \
                 models take a larger share of a crowded CPU); compare runs taken under like load",
                lb[0], lc[0], base.env.cpus
            ));
        }
    }
    (differs, notes)
}

fn show<T: std::fmt::Display>(v: &Option<T>) -> String {
    v.as_ref().map_or("default".into(), |v| v.to_string())
}

fn json<T: serde::Serialize>(v: &Option<T>) -> String {
    v.as_ref()
        .and_then(|v| serde_json::to_string(v).ok())
        .unwrap_or_else(|| "default".into())
}
