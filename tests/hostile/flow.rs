//! The hostile clients that abuse the flow of bytes: resets mid-request and mid-response,
//! clients that never read, half-closes, an accept flood; and `serves`, the check after every
//! trial. `Ok` carries a line of what was seen, `Err` what went wrong.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use super::abuse::{ask, connect, noise, CLOSE_SLACK};
use super::good::{echo_message, responses};
use super::server::Server;
use super::{secs, HTTP_GET, IDLE_TIMEOUT};

/// Connections reset mid-response, each after a burst of at most 1 MiB.
pub const RESET_BURSTS: usize = 10;

/// Sets SO_LINGER 0 and closes: the peer gets a reset, not a FIN.
fn reset(s: TcpStream) {
    let _ = socket2::SockRef::from(&s).set_linger(Some(Duration::ZERO));
    drop(s);
}

/// Clients that reset their connection mid-request (half a request, then RST) and
/// mid-response (a burst of requests, then RST while the answers are being written). Every
/// connection must be released: the server's descriptors come back to where they were
/// (proactor-uring's connections are direct descriptors, which /proc does not list).
pub fn resets(server: &Server, http: bool) -> Result<String, String> {
    let addr = server.addr;
    let before = server.fds();
    let request = if http {
        HTTP_GET.to_vec()
    } else {
        echo_message(3)
    };
    let mut partial = Vec::new();
    for _ in 0..100 {
        let mut s = connect(addr)?;
        s.write_all(&request[..request.len() / 2])
            .map_err(|e| e.to_string())?;
        partial.push(s);
    }
    std::thread::sleep(Duration::from_millis(50));
    partial.into_iter().for_each(reset);
    // Mid-response: 600 KB of HTTP answers to 4,000 pipelined requests, or a 1 MiB echo.
    let burst = if http {
        HTTP_GET.repeat(4000)
    } else {
        noise(1 << 20, 13)
    };
    let mut bursting = Vec::new();
    for _ in 0..RESET_BURSTS {
        let mut s = connect(addr)?;
        s.set_nonblocking(true).map_err(|e| e.to_string())?;
        let mut sent = 0;
        let until = Instant::now() + Duration::from_millis(20);
        while sent < burst.len() && Instant::now() < until {
            match s.write(&burst[sent..]) {
                Ok(n) => sent += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    std::thread::sleep(Duration::from_millis(1))
                }
                Err(e) => return Err(format!("a burst before its reset failed: {e}")),
            }
        }
        bursting.push(s);
    }
    std::thread::sleep(Duration::from_millis(20));
    bursting.into_iter().for_each(reset);
    if server.fds() == 0 {
        return Ok("110 resets survived".into()); // /proc unreadable: nothing more to check
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let now = server.fds();
        // The well-behaved client may hold one more connection than when counted.
        if now <= before + 1 {
            return Ok(format!("110 resets survived, descriptors back to {now}"));
        }
        if Instant::now() > deadline {
            return Err(format!(
                "{now} descriptors open 5 s after 110 resets, {before} before: connections leak"
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Clients of the never-read abuse.
pub const NEVER_READERS: usize = 4;

/// Clients that send as fast as the server takes it and never read. The server must stop
/// reading from them (what they get in stays far below what an unbounded buffer would take),
/// and close them once they have completed no request for the idle timeout.
pub fn never_read(server: &Server, http: bool) -> Result<String, String> {
    let chunk = if http {
        HTTP_GET.repeat(1000)
    } else {
        noise(64 * 1024, 17)
    };
    let mut conns = Vec::new();
    for _ in 0..NEVER_READERS {
        let s = connect(server.addr)?;
        s.set_nonblocking(true).map_err(|e| e.to_string())?;
        conns.push((s, 0usize, None::<Instant>));
    }
    let started = Instant::now();
    let deadline = started + IDLE_TIMEOUT + CLOSE_SLACK + Duration::from_secs(2);
    while Instant::now() < deadline && conns.iter().any(|c| c.2.is_none()) {
        let mut blocked = true;
        for (s, sent, closed) in &mut conns {
            if closed.is_some() {
                continue;
            }
            // Whole requests, in order: a write may take part of the chunk.
            match s.write(&chunk[*sent % chunk.len()..]) {
                Ok(n) => {
                    *sent += n;
                    blocked = false;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(_) => *closed = Some(Instant::now()),
            }
        }
        if blocked {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    let most = conns.iter().map(|c| c.1).max().unwrap_or(0);
    // Socket buffers on both sides (a few MiB each way) plus the server's 4 MiB high-water
    // mark: a server that kept reading would take gigabytes in these seconds.
    if most > 64 << 20 {
        return Err(format!(
            "a client that never reads got {} MiB in: the server kept reading",
            most >> 20
        ));
    }
    if let Some(open) = conns.iter().position(|c| c.2.is_none()) {
        return Err(format!(
            "never-reading client {open} still open {} after it started (it completes no \
             request once the server stops reading: the idle timeout should close it)",
            secs(started.elapsed())
        ));
    }
    let last = conns.iter().filter_map(|c| c.2).max().unwrap_or(started);
    Ok(format!(
        "never-readers got at most {} KiB in, all closed within {}",
        most >> 10,
        secs(last - started)
    ))
}

/// Clients that send and then half-close (shut down their writing side) and read to EOF: every
/// answer must come, then the close. Plus clients that half-close having sent nothing.
pub fn half_close(server: &Server, http: bool) -> Result<String, String> {
    let addr = server.addr;
    for i in 0..10 {
        let mut s = connect(addr)?;
        s.set_read_timeout(Some(Duration::from_secs(10)))
            .map_err(|e| e.to_string())?;
        if http {
            s.write_all(&HTTP_GET.repeat(20))
                .and_then(|()| s.shutdown(Shutdown::Write))
                .map_err(|e| e.to_string())?;
            let mut all = Vec::new();
            s.read_to_end(&mut all)
                .map_err(|e| format!("half-close {i}: no close after the answers: {e}"))?;
            let answers = responses(&all).map_err(|e| format!("half-close {i}: {e}"))?;
            let good = answers
                .iter()
                .filter(|(status, body)| *status == 200 && body == b"Hello, World!")
                .count();
            if good != 20 || answers.len() != 20 {
                return Err(format!(
                    "half-close {i}: {good} good answers of {} for 20 requests",
                    answers.len()
                ));
            }
            continue;
        } else {
            let data = noise(256 * 1024, i);
            let mut w = s.try_clone().map_err(|e| e.to_string())?;
            let expected = data.clone();
            let writer = std::thread::spawn(move || {
                w.write_all(&data)
                    .and_then(|()| w.shutdown(Shutdown::Write))
            });
            let mut back = vec![0u8; expected.len()];
            let read = s.read_exact(&mut back);
            writer
                .join()
                .map_err(|_| "a writer panicked".to_string())?
                .map_err(|e| e.to_string())?;
            read.map_err(|e| format!("half-close {i}: the echo stopped: {e}"))?;
            if back != expected {
                return Err(format!("half-close {i}: the echo differs"));
            }
        }
        let mut rest = Vec::new();
        match s.read_to_end(&mut rest) {
            Ok(_) if rest.is_empty() => {}
            Ok(_) => {
                return Err(format!(
                    "half-close {i}: {} bytes after the answers",
                    rest.len()
                ))
            }
            Err(e) => return Err(format!("half-close {i}: no close after the answers: {e}")),
        }
    }
    for i in 0..10 {
        let mut s = connect(addr)?;
        s.set_read_timeout(Some(Duration::from_secs(5)))
            .map_err(|e| e.to_string())?;
        s.shutdown(Shutdown::Write).map_err(|e| e.to_string())?;
        let mut rest = Vec::new();
        s.read_to_end(&mut rest)
            .map_err(|e| format!("silent half-close {i}: not closed by the server: {e}"))?;
    }
    Ok("20 half-closed connections answered and closed".into())
}

/// Opens `n` connections at once against a server limited to few descriptors, holds them
/// for a second and a half while measuring the server's CPU time over the last second, then
/// lets them go. Returns the CPU share.
pub fn accept_flood(server: &Server, n: usize) -> Result<f64, String> {
    let mut flood = Vec::with_capacity(n);
    for _ in 0..n {
        flood.push(connect(server.addr)?);
    }
    std::thread::sleep(Duration::from_millis(500));
    let (t0, cpu0) = (Instant::now(), server.cpu_time());
    std::thread::sleep(Duration::from_secs(1));
    let (t1, cpu1) = (Instant::now(), server.cpu_time());
    drop(flood);
    Ok((cpu1 - cpu0).as_secs_f64() / (t1 - t0).as_secs_f64())
}

/// A fresh connection and one request, answered within `within`: the server still serves.
pub fn serves(addr: SocketAddr, http: bool, within: Duration) -> Result<(), String> {
    let deadline = Instant::now() + within;
    loop {
        let tried = connect(addr).and_then(|mut s| {
            s.set_read_timeout(Some(within))
                .map_err(|e| e.to_string())?;
            ask(&mut s, http, 99)
        });
        match tried {
            Ok(()) => return Ok(()),
            Err(e) if Instant::now() > deadline => {
                return Err(format!("a fresh connection is not served: {e}"))
            }
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}
