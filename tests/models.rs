//! The integration template: every model in `MODELS` built for this platform, driven
//! in-process with plain blocking clients, once per readiness poller it can use
//! (`Model::pollers`). A new model is covered by adding it to `MODELS`; nothing here names a
//! model (the models of the other platform are named once, in tests/common, and a test checks
//! that exactly those are unavailable here). Under Wine (scripts/test-windows.sh) this same
//! file tests the Windows models.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use iomodels::models::{Poller, RunningServer, UringListener, MODELS};
use iomodels::protocol::{Cost, Protocol, Workload};

mod common;
use common::*;

const TIMEOUT: Duration = Duration::from_secs(30);

/// The models left out of the template are exactly those of the other platform, and each says
/// so; every model of this platform is available (else its reason is the failure).
#[test]
fn only_the_other_platforms_models_are_left_out() {
    for model in MODELS {
        let availability = (model.availability)();
        if OTHER_PLATFORM_MODELS.contains(&model.name) {
            let why = availability.expect_err(model.name);
            assert!(
                why.contains("Windows only") || why.contains("Linux"),
                "{}: the reason does not name the platform it needs: {why}",
                model.name
            );
        } else if let Err(why) = availability {
            panic!("{} cannot run here: {why}", model.name);
        }
    }
}

/// Every poller `--poller` offers is served by some model, and so tested by this template
/// (Windows offers no poller choice).
#[cfg(unix)]
#[test]
fn the_template_covers_every_poller() {
    let tested: Vec<Poller> = variants().into_iter().map(|v| v.poller).collect();
    for poller in Poller::ALL {
        assert!(tested.contains(poller), "no model tested with {poller:?}");
    }
}

fn start(v: &Variant, cost: Cost, message: usize) -> (SocketAddr, Box<dyn RunningServer>) {
    let protocol = Protocol {
        workload: Workload::Echo,
        message_size: Some(message),
        cost,
    };
    start_server(v, protocol)
}

fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).expect("connect to the server");
    s.set_read_timeout(Some(TIMEOUT)).unwrap();
    s.set_write_timeout(Some(TIMEOUT)).unwrap();
    s
}

fn message(len: usize, salt: usize) -> Vec<u8> {
    (0..len)
        .map(|i| ((i * 31 + salt * 7) % 253) as u8)
        .collect()
}

/// Sends `msg` from a second thread while reading the echo here (a 1 MiB message does not fit
/// in the socket buffers, so writing it all before reading would deadlock).
fn echo(stream: &TcpStream, msg: &[u8]) -> Vec<u8> {
    let mut writer = stream.try_clone().unwrap();
    let out = msg.to_vec();
    let sender = std::thread::spawn(move || writer.write_all(&out));
    let mut back = vec![0u8; msg.len()];
    (&*stream)
        .read_exact(&mut back)
        .expect("read the whole echo");
    sender.join().unwrap().expect("write the whole message");
    back
}

#[test]
fn every_model_echoes_1_b_to_4_mib_exactly() {
    let _shared = shared_machine();
    for v in variants() {
        let name = &v.name;
        for len in [1, 64, 4096, 1 << 20, 4 << 20] {
            let (addr, server) = start(&v, Cost::default(), len);
            let stream = connect(addr);
            for round in 0..3 {
                let msg = message(len, round);
                assert!(
                    echo(&stream, &msg) == msg,
                    "{}: {len}-byte echo differs",
                    name
                );
            }
            drop(stream);
            server
                .stop()
                .unwrap_or_else(|e| panic!("{}: stop: {e}", name));
        }
    }
}

/// 1000 connections at once; 200 for select, whose descriptors (this process holds the
/// clients' too) must stay below FD_SETSIZE.
#[test]
fn every_model_serves_1000_connections_at_once() {
    let _alone = whole_machine();
    for v in variants() {
        let name = &v.name;
        let count = if v.poller == Poller::Select {
            200
        } else {
            1000
        };
        let (addr, server) = start(&v, Cost::default(), 64);
        let conns: Vec<TcpStream> = (0..count).map(|_| connect(addr)).collect();
        for (i, mut c) in conns.iter().enumerate() {
            c.write_all(&message(64, i)).unwrap();
        }
        // Read in connection order and close each when done, so a pool smaller than the
        // connections moves on to the queued ones.
        for (i, mut c) in conns.into_iter().enumerate() {
            let mut back = [0u8; 64];
            c.read_exact(&mut back)
                .unwrap_or_else(|e| panic!("{}: connection {i}: {e}", name));
            assert_eq!(back.to_vec(), message(64, i), "{}: connection {i}", name);
        }
        server.stop().unwrap();
    }
}

/// Replies go out at once (TCP_NODELAY): a reply written in pieces must not wait for the
/// client's delayed ACK (40 ms on Linux) before its last segment leaves. With Nagle's
/// algorithm on, most of these round trips take over 40 ms; without it, well under a
/// millisecond each, so the bound below leaves room for any machine.
#[test]
fn every_model_sends_replies_without_waiting_for_acks() {
    let _alone = whole_machine();
    for v in variants() {
        let (addr, server) = start(&v, Cost::default(), 64 * 1024);
        let stream = connect(addr);
        let mut times = Vec::new();
        for round in 0..15 {
            let msg = message(64 * 1024, round);
            let began = Instant::now();
            assert!(echo(&stream, &msg) == msg, "{}: echo differs", v.name);
            times.push(began.elapsed());
        }
        times.sort();
        assert!(
            times[times.len() / 2] < Duration::from_millis(30),
            "{}: median 64 KiB round trip {:?}: replies wait for ACKs (is TCP_NODELAY set?)",
            v.name,
            times[times.len() / 2]
        );
        drop(stream);
        server.stop().unwrap();
    }
}

/// Many requests in flight on one connection (the client does not wait for each echo):
/// every one comes back whole and in order.
#[test]
fn every_model_keeps_pipelined_messages_in_order() {
    let _shared = shared_machine();
    for v in variants() {
        let name = &v.name;
        let (addr, server) = start(&v, Cost::default(), 512);
        let stream = connect(addr);
        let messages: Vec<Vec<u8>> = (0..400).map(|i| message(512, i)).collect();
        // Written in uneven pieces that cut across message boundaries.
        let all: Vec<u8> = messages.concat();
        let mut writer = stream.try_clone().unwrap();
        let sender = std::thread::spawn(move || {
            for piece in all.chunks(1500) {
                writer.write_all(piece)?;
            }
            Ok::<_, std::io::Error>(())
        });
        for (i, expected) in messages.iter().enumerate() {
            let mut back = vec![0u8; 512];
            (&stream)
                .read_exact(&mut back)
                .unwrap_or_else(|e| panic!("{}: message {i}: {e}", name));
            assert!(
                &back == expected,
                "{}: message {i} differs or is out of order",
                name
            );
        }
        sender.join().unwrap().expect("write every message");
        drop(stream);
        server.stop().unwrap();
    }
}

#[test]
fn a_client_leaving_mid_message_does_not_hurt_the_others() {
    let _shared = shared_machine();
    for v in variants() {
        let name = &v.name;
        let (addr, server) = start(&v, Cost::default(), 4096);
        let good = connect(addr);
        assert_eq!(echo(&good, &message(4096, 1)), message(4096, 1));
        // One leaves half-way through a request; one resets the connection (SO_LINGER 0);
        // one sends a large request and closes without reading the echo.
        let mut half = connect(addr);
        half.write_all(&message(4096, 2)[..1000]).unwrap();
        drop(half);
        let reset = socket2::Socket::from(connect(addr));
        reset.set_linger(Some(Duration::ZERO)).unwrap();
        (&reset).write_all(&message(100, 3)).unwrap();
        drop(reset);
        let mut rude = connect(addr);
        rude.write_all(&message(1 << 20, 4)).unwrap_or(());
        rude.shutdown(Shutdown::Both).unwrap_or(());
        drop(rude);
        for round in 0..20 {
            let msg = message(4096, round);
            assert!(
                echo(&good, &msg) == msg,
                "{}: echo after a rude client",
                name
            );
        }
        let fresh = connect(addr);
        assert_eq!(
            echo(&fresh, &message(4096, 9)),
            message(4096, 9),
            "{}",
            name
        );
        drop((good, fresh));
        server.stop().unwrap();
    }
}

#[test]
fn stop_closes_the_listener_and_every_connection() {
    let _shared = shared_machine();
    for v in variants() {
        let name = &v.name;
        let (addr, server) = start(&v, Cost::default(), 64);
        let mut open = connect(addr);
        assert_eq!(echo(&open, &message(64, 0)), message(64, 0));
        server.stop().unwrap();
        let mut buf = [0u8; 1];
        let read = open.read(&mut buf);
        assert!(
            matches!(read, Ok(0) | Err(_)),
            "{}: a connection stayed open after stop: {read:?}",
            name
        );
        assert!(
            TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_err(),
            "{}: the listener still accepts after stop",
            name
        );
    }
}

#[test]
fn work_and_block_are_charged_once_per_request_in_every_model() {
    let _alone = whole_machine();
    for v in variants() {
        let name = &v.name;
        for (cost, what) in [
            (Cost::new(2000, 0), "--work-us 2000"),
            (Cost::new(0, 2000), "--block-us 2000"),
        ] {
            let (addr, server) = start(&v, cost, 64);
            let stream = connect(addr);
            // Ten requests, each split over two writes. (That each is charged exactly once is
            // a unit test of the echo session; here: every model runs the shared handler.)
            let start = Instant::now();
            for round in 0..10 {
                let msg = message(64, round);
                let mut w = &stream;
                w.write_all(&msg[..10]).unwrap();
                std::thread::sleep(Duration::from_millis(1));
                assert_eq!(echo_rest(&stream, &msg, 10), msg);
            }
            let took = start.elapsed();
            // 10 x 2 ms of handler plus 10 x 1 ms of our own pauses.
            assert!(
                took >= Duration::from_millis(29),
                "{}: {what}: 10 requests took only {took:?}",
                name
            );
            // Generous for a loaded machine, yet under a charge per byte (64 x 10 x 2 ms = 1.28 s).
            assert!(
                took < Duration::from_millis(1000),
                "{}: {what}: 10 requests took {took:?}",
                name
            );
            drop(stream);
            server.stop().unwrap();
        }
    }
}

/// Sends the rest of `msg` (from `from`) and reads the whole echo.
fn echo_rest(stream: &TcpStream, msg: &[u8], from: usize) -> Vec<u8> {
    let mut w = stream;
    w.write_all(&msg[from..]).unwrap();
    let mut back = vec![0u8; msg.len()];
    (&*stream).read_exact(&mut back).unwrap();
    back
}

/// Regression: the reactor dropped the reply bytes it had not yet written when it read EOF.
#[test]
fn a_client_that_half_closes_gets_every_byte_back() {
    let _shared = shared_machine();
    for v in variants() {
        let name = &v.name;
        let (addr, server) = start(&v, Cost::default(), 64);
        let stream = connect(addr);
        let msg = message(8 << 20, 5);
        let mut writer = stream.try_clone().unwrap();
        let out = msg.clone();
        let sender = std::thread::spawn(move || {
            writer.write_all(&out)?;
            writer.shutdown(Shutdown::Write)
        });
        // Read slowly, so that the server still has reply bytes queued when it reads EOF.
        let mut back = Vec::with_capacity(msg.len());
        let mut chunk = vec![0u8; 256 * 1024];
        loop {
            let n = (&stream)
                .read(&mut chunk)
                .unwrap_or_else(|e| panic!("{}: reading to EOF: {e}", name));
            if n == 0 {
                break;
            }
            back.extend_from_slice(&chunk[..n]);
            std::thread::sleep(Duration::from_millis(2));
        }
        sender.join().unwrap().expect("send and half-close");
        assert_eq!(back.len(), msg.len(), "{}: bytes lost at EOF", name);
        assert!(back == msg, "{}: bytes differ", name);
        server.stop().unwrap();
    }
}

/// The models with several event loops spread connections over them (reuseport: by the
/// kernel's hash; multi-reactor: round-robin), and say so. One listener shared by several
/// io_uring rings promises no spread (the kernel wakes one waiting accept, the same one while
/// it keeps up): for it, only the counts are checked.
#[test]
fn models_with_several_loops_spread_connections_over_them() {
    let _shared = shared_machine();
    for v in variants() {
        let (addr, server) = start(&v, Cost::default(), 64);
        if server.connections_per_loop().is_none() {
            server.stop().unwrap();
            continue;
        }
        let conns: Vec<TcpStream> = (0..64).map(|_| connect(addr)).collect();
        for (i, c) in conns.iter().enumerate() {
            assert_eq!(echo(c, &message(64, i)), message(64, i), "{}", v.name);
        }
        let spread = server.connections_per_loop().unwrap_or_default();
        drop(conns);
        server.stop().unwrap();
        assert_eq!(
            spread.len(),
            4,
            "{}: one count per loop (--threads 4)",
            v.name
        );
        assert_eq!(spread.iter().sum::<u64>(), 64, "{}: {spread:?}", v.name);
        let busy = spread.iter().filter(|&&n| n > 0).count();
        assert!(
            busy >= 2 || v.uring.listener == UringListener::Shared,
            "{}: every connection on one loop: {spread:?}",
            v.name
        );
    }
}

/// Regression (issue 18: reactor-pool closed a well-behaved client's connection under a
/// request): the idle timeout counts the time a connection waits for its client, never the
/// time the server spends on its request. A request whose handler outlasts the timeout is
/// answered on an open connection. `reactor-pool` closed it while its job was on a worker
/// (no request had completed for the timeout), and `blocking` and `threadpool` shut it down
/// while their thread ran the handler.
#[test]
fn a_request_whose_handler_outlasts_the_idle_timeout_is_answered_not_closed() {
    const IDLE: Duration = Duration::from_millis(300);
    let _shared = shared_machine();
    let one = |v: &Variant| {
        let protocol = Protocol {
            workload: Workload::Echo,
            message_size: Some(8),
            cost: Cost::new(0, 3 * IDLE.as_micros() as u64),
        };
        let (addr, server) = start_server_idle(v, protocol, Some(IDLE));
        let conn = connect(addr);
        let msg = message(8, 4);
        (&conn).write_all(&msg).unwrap();
        let mut back = vec![0u8; 8];
        let read = (&conn).read_exact(&mut back);
        assert!(
            read.is_ok() && back == msg,
            "{}: a request handled for 3 idle timeouts was not answered: {read:?}",
            v.name
        );
        drop(conn);
        server.stop().unwrap();
    };
    each_variant(one);
}

/// Every model closes the connections that complete no request for its idle timeout (one
/// that sends nothing, one that sends half a message), not before, and keeps the one that
/// completes a request every 150 ms. tests/hostile/ times this more closely, against
/// `bench serve` on Linux; this in-process version also runs under Wine, for proactor-iocp.
#[test]
fn every_model_closes_connections_idle_past_the_timeout() {
    const IDLE: Duration = Duration::from_secs(1);
    let _shared = shared_machine();
    let one = |v: &Variant| {
        let name = &v.name;
        let protocol = Protocol {
            workload: Workload::Echo,
            message_size: Some(8),
            cost: Cost::default(),
        };
        let (addr, server) = start_server_idle(v, protocol, Some(IDLE));
        let started = Instant::now();
        let silent = connect(addr);
        let mut half = connect(addr);
        half.write_all(&message(8, 1)[..4]).unwrap();
        let mut four = [0u8; 4];
        half.read_exact(&mut four).expect("the half message's echo");
        let active = connect(addr);
        let mut checked_early = false;
        while started.elapsed() < IDLE * 5 / 2 {
            let msg = message(8, 2);
            assert_eq!(echo(&active, &msg), msg, "{name}: the active connection");
            if !checked_early && started.elapsed() >= IDLE / 2 {
                checked_early = true;
                // Half the timeout: nothing is closed yet (a read times out). Skipped when this
                // thread was held up past most of the timeout.
                silent
                    .set_read_timeout(Some(Duration::from_millis(10)))
                    .unwrap();
                let early = (&silent).read(&mut [0u8; 8]);
                if started.elapsed() < IDLE * 9 / 10 {
                    assert!(
                        early.is_err(),
                        "{name}: the silent connection was closed before the timeout ({early:?})"
                    );
                }
            }
            std::thread::sleep(Duration::from_millis(150));
        }
        for (what, s) in [("silent", &silent), ("half a message", &half)] {
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let closed = match (&*s).read(&mut [0u8; 16]) {
                Ok(n) => n == 0,
                Err(e) => !matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ),
            };
            assert!(
                closed,
                "{name}: the {what} connection is still open after {:?}",
                started.elapsed()
            );
        }
        let msg = message(8, 3);
        assert_eq!(
            echo(&active, &msg),
            msg,
            "{name}: the active connection, at the end"
        );
        drop((silent, half, active));
        server.stop().unwrap();
    };
    each_variant(one);
}

/// Runs `one` for every variant: all at once, or one at a time under Wine, where wineserver
/// serialises socket calls.
fn each_variant(one: impl Fn(&Variant) + Sync) {
    let variants = variants();
    if cfg!(windows) {
        variants.iter().for_each(one);
    } else {
        std::thread::scope(|s| {
            for v in &variants {
                s.spawn(|| one(v));
            }
        });
    }
}
