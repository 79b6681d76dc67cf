//! `bench serve`: one model behind a listener, for `bench run` or any outside client.
//!
//! The conversation on stdout, one JSON object per line:
//! - when ready: `{"listening":"127.0.0.1:PORT","model":..,"workload":..,"threads":..,
//!   "poller":..,"idle_timeout_s":..,"pid":..}` (`poller` null for a model that waits on none,
//!   `idle_timeout_s` null for no idle timeout; `proactor-uring` adds `"io_uring":{..}`, how
//!   its rings were set up);
//! - on SIGUSR1 (or a `counters` line on stdin with `--stdin-control`): `{"counters":{..}}`, the
//!   process's counters now (`bench run` asks at each edge of the measured window and
//!   subtracts);
//! - on SIGINT, SIGTERM, Ctrl-C, the end of `--duration` (or a `stop` line, or the end of
//!   stdin, with `--stdin-control`): the model is stopped, then
//!   `{"stopped":true,"counters":{..}}`.
//!
//! Signals are blocked in every thread and taken by one thread in `sigwait`, so no handler ever
//! interrupts a system call in the measured code. Windows has no SIGUSR1: there `bench run`
//! passes `--stdin-control` and talks to the server through its stdin.

use std::io::Write;
use std::net::SocketAddr;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::metrics::process::ProcessCounters;
use crate::models::{
    bind, Model, Poller, RunningServer, ServerConfig, UringListener, UringOptions, UringSetup,
};
use crate::protocol::{Cost, Protocol, Workload};
use crate::sys::Control;
use crate::units::CpuList;
use crate::{hooks, sys, Error};

#[derive(Clone, Debug)]
pub struct ServeOptions {
    pub model: &'static Model,
    pub workload: Workload,
    pub listen: SocketAddr,
    pub threads: Option<usize>,
    pub cpus: Option<CpuList>,
    pub work_us: u64,
    pub block_us: u64,
    /// `--poller` as given; a model that waits on no poller refuses it.
    pub poller: Option<Poller>,
    /// `--uring-*` as given; `uring_given` says whether any was (a model without
    /// `uring_options` refuses them).
    pub uring: UringOptions,
    pub uring_given: bool,
    pub message_size: Option<usize>,
    /// `--idle-timeout`; zero: never.
    pub idle_timeout: Duration,
    pub duration: Option<Duration>,
    /// Take `counters` / `stop` lines on stdin too (see the module's documentation).
    pub stdin_control: bool,
}

/// `bench serve`'s first line on stdout, when it is ready: printed by the server, read by
/// `bench run` (and by anyone driving `bench serve`), one JSON object.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReadyLine {
    /// The address it listens on (port 0 asked: the port it got).
    pub listening: SocketAddr,
    pub model: String,
    pub workload: Workload,
    /// The model's parallelism; null for a model without one (`blocking`).
    pub threads: Option<usize>,
    /// The readiness poller; null for a model that waits on none.
    pub poller: Option<String>,
    /// The CPUs it is pinned to; null when not pinned.
    pub cpus: Option<Vec<usize>>,
    /// The idle timeout in seconds; null for none.
    pub idle_timeout_s: Option<f64>,
    pub pid: u32,
    /// `proactor-uring`: how its rings were set up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub io_uring: Option<UringSetup>,
}

impl ServeOptions {
    /// The `bench serve` command line (without the executable) that gives these options, as
    /// `bench run` starts its servers: parsed by the command line, it gives them back.
    pub fn to_args(&self) -> Vec<String> {
        let mut args: Vec<String> = vec![
            "serve".into(),
            "--model".into(),
            self.model.name.into(),
            "--workload".into(),
            self.workload.name().into(),
            "--listen".into(),
            self.listen.to_string(),
        ];
        if let Some(cpus) = &self.cpus {
            args.extend(["--cpus".into(), cpus.to_string()]);
        }
        args.extend([
            "--work-us".into(),
            self.work_us.to_string(),
            "--block-us".into(),
            self.block_us.to_string(),
        ]);
        if let Some(size) = self.message_size {
            args.extend(["--message-size".into(), size.to_string()]);
        }
        if let Some(threads) = self.threads {
            args.extend(["--threads".into(), threads.to_string()]);
        }
        args.extend([
            "--idle-timeout".into(),
            humantime::format_duration(self.idle_timeout).to_string(),
        ]);
        if let Some(poller) = self.poller {
            args.extend(["--poller".into(), poller.name().into()]);
        }
        if self.uring_given {
            let uring = self.uring;
            if uring.sqpoll {
                args.push("--uring-sqpoll".into());
            }
            if uring.zc {
                args.push("--uring-zc".into());
            }
            // Given with nothing else, the default listener is said so that the options
            // still count as given.
            if uring.listener != UringListener::default() || !(uring.sqpoll || uring.zc) {
                args.extend(["--uring-listener".into(), uring.listener.name().into()]);
            }
        }
        if let Some(duration) = self.duration {
            args.extend([
                "--duration".into(),
                humantime::format_duration(duration).to_string(),
            ]);
        }
        if self.stdin_control {
            args.push("--stdin-control".into());
        }
        args
    }
}

/// Runs `bench serve` to the end; returns the exit code.
pub fn serve(opts: &ServeOptions) -> anyhow::Result<i32> {
    sys::capture_control().context("cannot take the stop and counters signals")?;
    if hooks::fault(hooks::FAULT_EXIT_BEFORE_READY) {
        anyhow::bail!(Error::Environment(format!(
            "failing before the ready line because {}={} is set \
             (a test hook: unset it)",
            hooks::FAULT,
            hooks::FAULT_EXIT_BEFORE_READY
        )));
    }
    opts.model.ensure_available()?;
    let poller = opts.model.poller(opts.poller)?;
    if opts.uring_given && !opts.model.uring_options {
        anyhow::bail!(Error::Usage(format!(
            "the --uring-* options apply to proactor-uring only, not to `{}`: drop them",
            opts.model.name
        )));
    }
    if let Some(cpus) = &opts.cpus {
        sys::pin_process(cpus.cpus()).map_err(|e| {
            Error::Environment(format!("cannot pin the server to CPUs {cpus}: {e}"))
        })?;
    }
    let listener = bind(opts.listen, opts.model.reuse_port)?;
    let local = listener
        .local_addr()
        .context("cannot read the bound address")?;
    let config = server_config(opts, poller);
    let server = (opts.model.start)(listener, &config)
        .with_context(|| format!("cannot start the {} server", opts.model.name))?;
    let controls = controls(opts.stdin_control)?;
    let ready = ReadyLine {
        listening: local,
        model: opts.model.name.into(),
        workload: opts.workload,
        threads: opts.model.threads.effective(config.threads),
        poller: poller.map(|p| p.name().into()),
        cpus: opts.cpus.as_ref().map(|c| c.cpus().to_vec()),
        idle_timeout_s: config.idle_timeout().map(|t| t.as_secs_f64()),
        pid: std::process::id(),
        io_uring: server.io_uring(),
    };
    say(&serde_json::to_value(&ready)?)?;
    answer_until_stopped(server.as_ref(), &controls, opts.duration)?;
    let last = counters(server.as_ref())?;
    server
        .stop()
        .with_context(|| format!("the {} server did not stop cleanly", opts.model.name))?;
    say(&json!({ "stopped": true, "counters": last }))?;
    Ok(0)
}

/// The model's configuration: its protocol and handler cost, its threads (default: one per
/// server CPU), poller, CPUs, `--uring-*` options and idle timeout.
fn server_config(opts: &ServeOptions, poller: Option<Poller>) -> ServerConfig {
    let cpu_count = match &opts.cpus {
        Some(cpus) => cpus.len(),
        None => sys::allowed_cpus().map_or(1, |c| c.len()),
    };
    ServerConfig {
        protocol: Protocol {
            workload: opts.workload,
            message_size: opts.message_size,
            cost: Cost::new(opts.work_us, opts.block_us),
        },
        threads: opts.threads.unwrap_or(cpu_count).max(1),
        poller: poller.unwrap_or_default(),
        cpus: opts.cpus.as_ref().map(|c| c.cpus().to_vec()),
        uring: opts.uring,
        idle_timeout: Some(opts.idle_timeout),
    }
}

/// The control events, from the signals (and stdin's lines with `stdin_control`), each read
/// by a thread of its own.
fn controls(stdin_control: bool) -> anyhow::Result<mpsc::Receiver<Control>> {
    let (tx, rx) = mpsc::channel();
    if stdin_control {
        let tx = tx.clone();
        std::thread::Builder::new()
            .name("stdin-control".into())
            .spawn(move || read_control(std::io::stdin().lock(), &tx))
            .context("cannot start the stdin control thread")?;
    }
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            while let Ok(control) = sys::wait_control() {
                if tx.send(control).is_err() {
                    return;
                }
            }
        })
        .context("cannot start the signal thread")?;
    Ok(rx)
}

/// Prints the counters at each snapshot asked for, until a stop (or the end of `duration`).
fn answer_until_stopped(
    server: &dyn RunningServer,
    controls: &mpsc::Receiver<Control>,
    duration: Option<Duration>,
) -> anyhow::Result<()> {
    let deadline = duration.map(|d| Instant::now() + d);
    loop {
        let control = match deadline {
            Some(at) => match controls.recv_timeout(at.saturating_duration_since(Instant::now())) {
                Ok(control) => control,
                Err(_) => return Ok(()),
            },
            None => match controls.recv() {
                Ok(control) => control,
                Err(_) => return Ok(()),
            },
        };
        if control != Control::Snapshot {
            return Ok(());
        }
        say(&json!({ "counters": counters(server)? }))?;
    }
}

/// Turns stdin's lines into control events: `counters` asks for a snapshot; `stop`, the end of
/// input or a read error stop the server (the harness that held the pipe is gone). Other lines
/// are reported on stderr and ignored.
fn read_control(input: impl std::io::BufRead, tx: &mpsc::Sender<Control>) {
    for line in input.lines() {
        let control = match line.as_deref().map(str::trim) {
            Ok("counters") => Control::Snapshot,
            Ok("stop") | Err(_) => Control::Stop,
            Ok("") => continue,
            Ok(other) => {
                eprintln!("ignored `{other}` on stdin: the commands are `counters` and `stop`");
                continue;
            }
        };
        if tx.send(control).is_err() || control == Control::Stop {
            return;
        }
    }
    let _ = tx.send(Control::Stop);
}

/// The process's counters, and the model's spread of connections over its loops if it has
/// several.
fn counters(server: &dyn RunningServer) -> anyhow::Result<serde_json::Value> {
    let process = ProcessCounters::of_self().context("cannot read the server's own counters")?;
    let mut value = serde_json::to_value(process)?;
    if let Some(spread) = server.connections_per_loop() {
        value["connections_per_loop"] = json!(spread);
    }
    if let Some(setup) = server.io_uring() {
        value["io_uring"] = serde_json::to_value(setup)?;
    }
    Ok(value)
}

/// Prints one JSON line on stdout and flushes it (stdout is a pipe under `bench run`). A reader
/// that went away (`bench serve | head -1`) is not an error: the server serves on, quietly, as
/// with its output sent nowhere.
fn say(value: &serde_json::Value) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match writeln!(out, "{value}").and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        written => written.context("cannot write to stdout"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::UringListener;

    #[test]
    fn the_ready_line_is_read_back_as_written() {
        let plain = ReadyLine {
            listening: "127.0.0.1:40123".parse().unwrap(),
            model: "blocking".into(),
            workload: Workload::Http,
            threads: None,
            poller: None,
            cpus: None,
            idle_timeout_s: None,
            pid: 4242,
            io_uring: None,
        };
        let text = serde_json::to_string(&plain).unwrap();
        // The wire format other programs read: every key, null when absent, no io_uring.
        assert_eq!(
            text,
            r#"{"listening":"127.0.0.1:40123","model":"blocking","workload":"http","threads":null,"poller":null,"cpus":null,"idle_timeout_s":null,"pid":4242}"#
        );
        assert_eq!(serde_json::from_str::<ReadyLine>(&text).unwrap(), plain);
        let uring = ReadyLine {
            model: "proactor-uring".into(),
            workload: Workload::Echo,
            threads: Some(2),
            poller: Some("epoll".into()),
            cpus: Some(vec![0]),
            idle_timeout_s: Some(60.0),
            io_uring: Some(UringSetup {
                setup_flags: vec!["SINGLE_ISSUER".into(), "DEFER_TASKRUN".into()],
                refused: Vec::new(),
                sqpoll: false,
                send_zc: false,
                zc_min_bytes: 3072,
                listener: UringListener::PerThread,
                registered_files: true,
                buffers: 4096,
                buffer_bytes: 4096,
                recv: "multishot-capped".into(),
            }),
            ..plain
        };
        let text = serde_json::to_string(&uring).unwrap();
        assert_eq!(serde_json::from_str::<ReadyLine>(&text).unwrap(), uring);
    }
}
