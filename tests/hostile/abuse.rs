//! The hostile clients that hold connections open or send what must be refused: slowloris,
//! idle connections, garbage and oversized requests (flow.rs has those that abuse the flow of
//! bytes). Each runs one abuse against a server and checks what the server must do about it;
//! `Ok` carries a line of what was seen, `Err` what went wrong.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use super::good::{echo_message, exchange};
use super::server::Server;
use super::{secs, HTTP_GET, IDLE_TIMEOUT};

/// How late after its timeout a connection may be closed and still pass: two sweep intervals
/// (a quarter of the timeout, see models/parts/idle.rs), the observer's own polling, and a second
/// and a half for a machine that other builds keep busy.
pub const CLOSE_SLACK: Duration = Duration::from_millis(2000);

/// How often a slowloris connection gets its next byte.
const SLOW_PASS: Duration = Duration::from_millis(250);

/// The head of a request that never ends: each slowloris byte adds to its last header.
const SLOW_HEAD: &[u8] = b"GET /plaintext HTTP/1.1\r\nHost: hostile\r\nX-Slow: ";

pub(crate) fn connect(addr: SocketAddr) -> Result<TcpStream, String> {
    let s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .map_err(|e| format!("cannot connect: {e}"))?;
    s.set_nodelay(true).map_err(|e| e.to_string())?;
    Ok(s)
}

/// Whether the peer has closed `s` (EOF or reset), reading and dropping what arrived;
/// `s` is non-blocking.
fn peer_closed(s: &mut TcpStream) -> bool {
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return false,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return true,
        }
    }
}

/// Checks that a connection opened (or last active) at `since` was closed at `closed`, no
/// sooner than the idle timeout and not much later.
fn closed_in_time(what: &str, since: Instant, closed: Option<Instant>) -> Result<Duration, String> {
    let Some(closed) = closed else {
        return Err(format!("{what}: never closed by the server"));
    };
    let after = closed.saturating_duration_since(since);
    if after < IDLE_TIMEOUT {
        return Err(format!(
            "{what}: closed {} after it went idle, before the {} timeout",
            secs(after),
            secs(IDLE_TIMEOUT)
        ));
    }
    if after > IDLE_TIMEOUT + CLOSE_SLACK {
        return Err(format!(
            "{what}: closed only {} after it went idle",
            secs(after)
        ));
    }
    Ok(after)
}

/// `n` connections that each send a byte every quarter second and never finish a request (an
/// HTTP header that never ends; an echo message of 64 bytes would take 16 s). The idle timeout
/// must close every one, no sooner than the timeout after it opened.
pub fn slowloris(server: &Server, http: bool, n: usize) -> Result<String, String> {
    struct Slow {
        s: TcpStream,
        opened: Instant,
        closed: Option<Instant>,
    }
    let mut conns = Vec::with_capacity(n);
    for _ in 0..n {
        let opened = Instant::now();
        let mut s = connect(server.addr)?;
        if http {
            s.write_all(SLOW_HEAD).map_err(|e| e.to_string())?;
        }
        s.set_nonblocking(true).map_err(|e| e.to_string())?;
        conns.push(Slow {
            s,
            opened,
            closed: None,
        });
    }
    let deadline = Instant::now() + IDLE_TIMEOUT + CLOSE_SLACK + Duration::from_secs(1);
    let byte = [if http { b'a' } else { b'x' }];
    while Instant::now() < deadline && conns.iter().any(|c| c.closed.is_none()) {
        // One pass: a byte to each connection still open, spread over about 250 ms, and never
        // shorter: once most were closed, the passes over the few left ran back to back, an
        // echo connection got its 64 bytes (a whole request) within the trial, and the server
        // rightly kept it open (tokio, once in 20 runs: "never closed by the server").
        let pass = Instant::now();
        for (i, c) in conns.iter_mut().enumerate() {
            if c.closed.is_some() {
                continue;
            }
            if peer_closed(&mut c.s) {
                c.closed = Some(Instant::now());
                continue;
            }
            match c.s.write(&byte) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(_) => c.closed = Some(Instant::now()),
            }
            if i % 4 == 3 {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        std::thread::sleep(SLOW_PASS.saturating_sub(pass.elapsed()));
    }
    let mut range = (Duration::MAX, Duration::ZERO);
    for (i, c) in conns.iter().enumerate() {
        let after = closed_in_time(&format!("slowloris connection {i}"), c.opened, c.closed)?;
        range = (range.0.min(after), range.1.max(after));
    }
    Ok(format!(
        "{n} slowloris closed {}-{} after opening",
        secs(range.0),
        secs(range.1)
    ))
}

/// One request on `s` and its checked answer, as the well-behaved client makes it.
pub(crate) fn ask(s: &mut TcpStream, http: bool, seq: u64) -> Result<(), String> {
    exchange(s, if http { "http" } else { "echo" }, seq).map_err(|o| o.to_string())
}

/// Four kinds of quiet connection: one that sends nothing, one that completes a request and
/// then stays idle, one that sends a request every half second for one and a half timeouts
/// (and must stay open meanwhile), and one that sends half a request.
pub fn idle_connections(server: &Server, http: bool) -> Result<String, String> {
    let addr = server.addr;
    let active = std::thread::spawn(move || -> Result<Duration, String> {
        let mut s = connect(addr)?;
        s.set_read_timeout(Some(Duration::from_secs(10)))
            .map_err(|e| e.to_string())?;
        let until = Instant::now() + IDLE_TIMEOUT * 3 / 2;
        let mut seq = 0;
        let last_sent = loop {
            seq += 1;
            let sent = Instant::now();
            ask(&mut s, http, seq).map_err(|e| format!("the active connection: {e}"))?;
            if Instant::now() >= until {
                break sent;
            }
            std::thread::sleep(Duration::from_millis(500));
        };
        // Idle from now on: wait for the close.
        let mut buf = [0u8; 64];
        let closed = match s.read(&mut buf) {
            Ok(0) | Err(_) => Instant::now(),
            Ok(_) => return Err("the active connection got bytes it did not ask for".into()),
        };
        closed_in_time("the active connection, once idle", last_sent, Some(closed))
    });
    let silent_opened = Instant::now();
    let silent = connect(server.addr)?;
    let mut answered = connect(server.addr)?;
    answered
        .set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    let answered_sent = Instant::now();
    ask(&mut answered, http, 1)?;
    let half_opened = Instant::now();
    let mut half = connect(server.addr)?;
    let request = if http {
        HTTP_GET.to_vec()
    } else {
        echo_message(2)
    };
    half.write_all(&request[..request.len() / 2])
        .map_err(|e| e.to_string())?;
    let mut watched = [
        ("the silent connection", silent, silent_opened, None),
        (
            "the connection idle after one answer",
            answered,
            answered_sent,
            None,
        ),
        (
            "the connection with half a request",
            half,
            half_opened,
            None,
        ),
    ];
    for (_, s, _, _) in &watched {
        s.set_nonblocking(true).map_err(|e| e.to_string())?;
    }
    let deadline = Instant::now() + IDLE_TIMEOUT + CLOSE_SLACK + Duration::from_secs(1);
    while Instant::now() < deadline && watched.iter().any(|w| w.3.is_none()) {
        for (_, s, _, closed) in &mut watched {
            if closed.is_none() && peer_closed(s) {
                *closed = Some(Instant::now());
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let mut seen = Vec::new();
    for (what, _, since, closed) in &watched {
        seen.push(secs(closed_in_time(what, *since, *closed)?));
    }
    let active = active
        .join()
        .map_err(|_| "the active connection's thread panicked".to_string())??;
    Ok(format!(
        "idle connections closed {} after going idle; the active one stayed open, then {}",
        seen.join(", "),
        secs(active)
    ))
}

/// A simple generator of bytes that look like nothing.
pub(crate) fn noise(len: usize, mut seed: u64) -> Vec<u8> {
    (0..len)
        .map(|_| {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 33) as u8
        })
        .collect()
}

/// Sends `request` whole and reads to EOF: the status line must start with `status`.
fn refused_with(addr: SocketAddr, what: &str, request: &[u8], status: &str) -> Result<(), String> {
    let mut s = connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    s.write_all(request)
        .map_err(|e| format!("{what}: cannot send it: {e}"))?;
    let mut answer = Vec::new();
    match s.read_to_end(&mut answer) {
        Ok(_) => {}
        // A reset after the answer: the server closed with bytes unread.
        Err(e) if e.kind() == io::ErrorKind::ConnectionReset && !answer.is_empty() => {}
        Err(e) => return Err(format!("{what}: no answer and close: {e}")),
    }
    let text = String::from_utf8_lossy(&answer);
    if !text.starts_with(&format!("HTTP/1.1 {status}")) {
        return Err(format!(
            "{what}: answered {:?}, not {status}",
            text.lines().next()
        ));
    }
    Ok(())
}

/// Echo: sends `data` and checks that exactly it comes back (a writer thread, so that a large
/// message cannot deadlock on full socket buffers).
fn echoed(addr: SocketAddr, what: &str, data: Vec<u8>) -> Result<(), String> {
    let mut s = connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(20)))
        .map_err(|e| e.to_string())?;
    let mut w = s.try_clone().map_err(|e| e.to_string())?;
    let len = data.len();
    let expected = data.clone();
    let writer = std::thread::spawn(move || w.write_all(&data));
    let mut back = vec![0u8; len];
    let read = s.read_exact(&mut back);
    let written = writer
        .join()
        .map_err(|_| format!("{what}: the writer panicked"))?;
    written.map_err(|e| format!("{what}: cannot send: {e}"))?;
    read.map_err(|e| format!("{what}: the echo stopped: {e}"))?;
    if back != expected {
        let at = back.iter().zip(&expected).position(|(a, b)| a != b);
        return Err(format!("{what}: the echo differs from byte {at:?} on"));
    }
    Ok(())
}

/// HTTP: binary noise, a TLS handshake, a header line without a colon (400); too many headers,
/// a head over 8 KiB (431); a header that never ends, streamed (cut off: 431 or a reset, well
/// before it is all sent). Echo: binary noise comes back as it went, and so does a 32 MiB
/// message (the memory bound is the trial's).
pub fn garbage(server: &Server, http: bool) -> Result<String, String> {
    let addr = server.addr;
    if !http {
        echoed(addr, "64 KiB of noise", noise(64 * 1024, 7))?;
        echoed(addr, "a 32 MiB message", noise(32 << 20, 11))?;
        return Ok("noise and a 32 MiB message echoed intact".into());
    }
    let mut tls = vec![
        0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03,
    ];
    tls.extend(noise(500, 3));
    let mut many = b"GET /plaintext HTTP/1.1\r\nHost: hostile\r\n".to_vec();
    for i in 0..100 {
        many.extend(format!("X-{i}: v\r\n").bytes());
    }
    many.extend(b"\r\n");
    let mut big = b"GET /plaintext HTTP/1.1\r\nHost: hostile\r\nX-Big: ".to_vec();
    big.extend(std::iter::repeat(b'a').take(9 * 1024));
    big.extend(b"\r\n\r\n");
    for (what, request, status) in [
        ("binary noise", noise(2048, 5), "400"),
        ("a TLS handshake", tls, "400"),
        (
            "a header without a colon",
            b"GET /plaintext HTTP/1.1\r\nHost: hostile\r\nNo colon\r\n\r\n".to_vec(),
            "400",
        ),
        ("100 headers", many, "431"),
        ("a 9 KiB head", big, "431"),
    ] {
        refused_with(addr, what, &request, status)?;
    }
    // A header that never ends: the server answers 431 and closes once it passes 8 KiB, so
    // the writes soon fail; what they got in is the sockets' buffers, not the server's memory.
    let mut s = connect(addr)?;
    s.write_all(SLOW_HEAD).map_err(|e| e.to_string())?;
    s.set_nonblocking(true).map_err(|e| e.to_string())?;
    let chunk = vec![b'a'; 64 * 1024];
    let (mut sent, deadline) = (0usize, Instant::now() + Duration::from_secs(5));
    let cut = loop {
        if sent >= 64 << 20 || Instant::now() > deadline {
            break None;
        }
        match s.write(&chunk) {
            Ok(n) => sent += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                if peer_closed(&mut s) {
                    break Some("closed");
                }
                std::thread::sleep(Duration::from_millis(1));
            }
            Err(_) => break Some("reset"),
        }
    };
    if cut.is_none() {
        return Err(format!(
            "a never-ending header: still open after taking {} MiB",
            sent >> 20
        ));
    }
    Ok(format!(
        "garbage got 400/431; a never-ending header was cut off after {} KiB",
        sent >> 10
    ))
}
