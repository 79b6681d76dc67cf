//! A client process: `bench load-part` (hidden), started by `split.rs` with its share of a run.
//!
//! It reads its [`PartConfig`](super::wire::PartConfig) from stdin, connects its segment's
//! connections with its own threads (the same code as an unsplit run or `bench load --segment`:
//! `run_segment`), says `ready`, waits for
//! the go time, runs the timeline the parent runs, keeps its connections open at the window's
//! close until the parent has read the server's counters (`release`), and writes its segment's
//! tally on stdout. The end of stdin (the parent is gone) or `cut` stops it at once; it also
//! dies with its parent's thread (PR_SET_PDEATHSIG, set by the parent before exec).

use std::io::{BufRead, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use anyhow::Context;

use super::segment::run_segment;
use super::wire::{Done, FromChild, ToChild};
use super::Edge;
use crate::{sys, Error};

/// `bench load-part`: runs one client process to the end; returns the exit code.
pub fn run_client_process() -> anyhow::Result<i32> {
    let stop = Arc::new(AtomicBool::new(false));
    let (tx, rx) = mpsc::channel::<ToChild>();
    {
        let stop = stop.clone();
        std::thread::Builder::new()
            .name("parent".into())
            .spawn(move || listen_to_parent(tx, &stop))
            .context("cannot start the thread that reads the parent's lines")?;
    }
    let config = match rx.recv() {
        Ok(ToChild::Config(config)) => config,
        _ => anyhow::bail!(Error::Usage(
            "bench load-part is started by bench load and bench run, which send it its \
             configuration on stdin: it is not meant to be run by hand"
                .into()
        )),
    };
    let load = config.load_config();
    let faulty =
        config.segment.index == 2 && crate::hooks::fault(crate::hooks::FAULT_CLIENT_PROCESS_EXIT);
    let stopped = || stop.load(Ordering::Acquire);
    let mut go = || {
        send(&FromChild::Ready);
        loop {
            match rx.recv() {
                Ok(ToChild::Go { start_mono_ns }) => {
                    let start = instant_at(start_mono_ns)?;
                    std::thread::sleep(start.saturating_duration_since(Instant::now()));
                    return Some(start);
                }
                Ok(ToChild::Cut) | Err(_) => return None,
                Ok(_) => {}
            }
        }
    };
    let mut on_edge = |edge: Edge| match edge {
        Edge::Tick(tick) => {
            send(&FromChild::Live {
                requests: tick.requests,
                errors: tick.errors,
            });
            if faulty && !tick.warming_up && tick.elapsed >= Duration::from_secs(1) {
                eprintln!(
                    "exiting one second into the window: {}={} is set",
                    crate::hooks::FAULT,
                    crate::hooks::FAULT_CLIENT_PROCESS_EXIT
                );
                std::process::exit(3);
            }
        }
        // Connections stay open until the parent has the server's closing counters.
        Edge::WindowEnd => loop {
            match rx.recv() {
                Ok(ToChild::Release | ToChild::Cut) | Err(_) => return,
                Ok(_) => {}
            }
        },
        Edge::WindowStart => {}
    };
    let ran = run_segment(&load, config.segment, &stopped, &mut go, &mut on_edge)?;
    send(&FromChild::Done(Box::new(Done {
        segment: ran.measured.record()?,
        client_syscalls: ran.client_syscalls,
    })));
    Ok(0)
}

/// Forwards the parent's lines; `cut`, a line that cannot be read, or the end of input (the
/// parent is gone) raise `stop`.
fn listen_to_parent(tx: mpsc::Sender<ToChild>, stop: &AtomicBool) {
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        match serde_json::from_str::<ToChild>(&line) {
            Ok(message) => {
                if matches!(message, ToChild::Cut) {
                    stop.store(true, Ordering::Release);
                }
                if tx.send(message).is_err() {
                    return;
                }
            }
            Err(e) => {
                eprintln!("error: a line from the parent is not understood ({e}): {line}");
                break;
            }
        }
    }
    stop.store(true, Ordering::Release);
}

/// Writes one line to the parent. A parent that is gone cannot be told; the end of stdin
/// stops this process then.
fn send(message: &FromChild) {
    let Ok(line) = serde_json::to_string(message) else {
        return;
    };
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}").and_then(|()| out.flush());
}

/// The `Instant` at `mono_ns` on CLOCK_MONOTONIC, the clock every process of the machine
/// shares (and `Instant`'s own on Linux); `None` when the clock cannot be read.
fn instant_at(mono_ns: u64) -> Option<Instant> {
    let (now, now_ns) = (Instant::now(), sys::monotonic_ns().ok()?);
    Some(if mono_ns >= now_ns {
        now + Duration::from_nanos(mono_ns - now_ns)
    } else {
        now.checked_sub(Duration::from_nanos(now_ns - mono_ns))?
    })
}
