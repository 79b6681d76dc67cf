//! A thousand clients that pipeline requests and never read the answers: what the server holds
//! for each of them, beyond the kernel's socket buffers (issue 18). A server that buffers
//! megabytes for each client that does not read is taken down by a thousand such clients; one
//! that stops reading from a connection whose answers are not being taken holds a bounded
//! amount (tokio's exhibit, which writes each reply before it reads again: about a read buffer
//! and a read's replies).

use std::io::{self, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use super::abuse::{connect, noise};
use super::server::Server;
use super::{Config, HTTP_GET};

/// What one never-reading connection may cost the server: its read buffer (or its share of
/// a loop's), the replies held back at the high-water mark (64 KiB), a session's unanswered
/// requests, and the bookkeeping of a connection (a thread's touched stack in `blocking`).
pub const PER_CONNECTION: u64 = 256 << 10;
/// How long the clients pipeline without reading.
const FLOOD: Duration = Duration::from_secs(2);

/// The well-behaved client's worst latency in this trial. A thousand clients pipelining as
/// fast as the server answers keep its CPU busy for the whole flood (their kernel buffers take
/// megabytes before any reply waits in the server), so the well-behaved request waits its turn
/// behind one turn of each: an event loop gives each connection one read and 32 KiB of replies
/// per turn (models/parts/mio_loop.rs, `CALLS_PER_TURN`), measured up to 0.58 s in a release build and
/// 1.71 s in the debug build the test command runs (HTTP, two trials sharing two CPUs). What
/// must not happen is starvation until the flood ends: the bound is the flood plus the usual
/// bound. `blocking`'s turn is the scheduler's: a thousand runnable threads, each given a
/// slice of about 1.5 ms (EEVDF's 0.75 ms base slice, scaled for 2 CPUs), measured 3.2 and
/// 4.0 s in the debug build (0.1-0.5 s in release): one slice per connection more.
pub fn well_behaved_latency(cfg: &Config, connections: usize) -> Duration {
    let turns = if cfg.model == "blocking" {
        Duration::from_micros(1500) * connections as u32
    } else {
        Duration::ZERO
    };
    FLOOD + super::LATENCY + turns
}

/// Opens `n` connections, pipelines requests on each as fast as the server takes them for
/// two seconds without reading an answer, and returns the server's peak resident memory
/// (VmHWM) minus its resident memory before the first connection, per connection, with the
/// bytes the clients got in.
pub fn never_readers(server: &Server, http: bool, n: usize) -> Result<(u64, u64), String> {
    let before = server.rss();
    if before == 0 {
        return Err("/proc/PID/status unreadable: cannot measure the server's memory".into());
    }
    let chunk = if http {
        HTTP_GET.repeat(1500)
    } else {
        noise(64 * 1024, 23)
    };
    let mut conns = Vec::with_capacity(n);
    for _ in 0..n {
        let s = connect(server.addr)?;
        s.set_nonblocking(true).map_err(|e| e.to_string())?;
        conns.push((s, 0usize));
    }
    let until = Instant::now() + FLOOD;
    while Instant::now() < until {
        let mut blocked = true;
        for (s, sent) in &mut conns {
            if pipeline(s, &chunk, sent)? {
                blocked = false;
            }
        }
        if blocked {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    // What was read when the clients stopped is handled by now.
    std::thread::sleep(Duration::from_millis(300));
    let peak = server.peak_rss();
    let sent: usize = conns.iter().map(|c| c.1).sum();
    drop(conns);
    Ok((peak.saturating_sub(before) / n as u64, sent as u64))
}

/// One write of the rest of `chunk` (whole requests in order); whether it took anything.
fn pipeline(s: &mut TcpStream, chunk: &[u8], sent: &mut usize) -> Result<bool, String> {
    match s.write(&chunk[*sent % chunk.len()..]) {
        Ok(n) => {
            *sent += n;
            Ok(n > 0)
        }
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(false),
        Err(e) => Err(format!("a never-reading client's write failed: {e}")),
    }
}
