//! Helpers the binary-level test files share.
#![allow(dead_code)] // each test file uses its own subset

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// `bench`, with every test hook of the environment removed.
pub fn bench() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_bench"));
    c.env_remove(iomodels::serve::FAULT_ENV)
        .env_remove(iomodels::models::URING_REFUSE_ENV)
        .env_remove(iomodels::models::URING_SETUP_ENV);
    c
}

pub fn run(args: &[&str]) -> Output {
    bench().args(args).output().expect("run bench")
}

/// stdout then stderr, as text.
pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Asserts the exit code and that the output contains each needle.
#[track_caller]
pub fn expect(o: &Output, code: i32, needles: &[&str]) {
    let all = text(o);
    assert_eq!(o.status.code(), Some(code), "exit code; output:\n{all}");
    for n in needles {
        assert!(all.contains(n), "output lacks `{n}`:\n{all}");
    }
}

/// The models built for another platform, unavailable here by design (`bench models` says
/// which platform they need). Every other model must run here: a test that finds one
/// unavailable fails with its reason.
#[cfg(unix)]
pub const OTHER_PLATFORM_MODELS: &[&str] = &["proactor-iocp"];
#[cfg(windows)]
pub const OTHER_PLATFORM_MODELS: &[&str] = &["reuseport", "proactor-uring", "proactor-emulated"];

/// The models of this platform, in `MODELS` order.
pub fn models_here() -> impl Iterator<Item = &'static iomodels::models::Model> {
    iomodels::models::MODELS
        .iter()
        .filter(|m| !OTHER_PLATFORM_MODELS.contains(&m.name))
}

/// schema/result.schema.json.
pub fn schema() -> serde_json::Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("schema/result.schema.json");
    let text = std::fs::read_to_string(&path).expect("cannot read schema/result.schema.json");
    serde_json::from_str(&text).expect("schema/result.schema.json is not JSON")
}

/// The ways `instance` breaks the result schema, one line each.
pub fn schema_errors(instance: &serde_json::Value) -> Vec<String> {
    let schema = schema();
    let validator = jsonschema::validator_for(&schema).expect("the schema itself is invalid");
    validator
        .iter_errors(instance)
        .map(|e| format!("{}: {e}", e.instance_path))
        .collect()
}

/// Limits the descriptors of a child to `n` (set between fork and exec).
#[cfg(unix)]
pub fn with_fd_limit(cmd: &mut Command, n: u64) {
    use std::os::unix::process::CommandExt;
    // SAFETY: setrlimit is async-signal-safe; the closure allocates nothing.
    unsafe {
        cmd.pre_exec(move || {
            let lim = libc::rlimit {
                rlim_cur: n,
                rlim_max: n,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// Connects `count` clients that each send one byte, and lets each leave once its byte came
/// back (freeing the server's descriptor for the ones still in the backlog); returns how many
/// were never answered within 20 s.
pub fn clients_left_unserved(addr: SocketAddr, count: usize) -> usize {
    let mut waiting: Vec<TcpStream> = (0..count)
        .map(|i| {
            let mut s = TcpStream::connect(addr).unwrap();
            s.write_all(&[i as u8]).unwrap();
            s.set_nonblocking(true).unwrap();
            s
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !waiting.is_empty() && Instant::now() < deadline {
        waiting.retain_mut(|s| {
            let mut b = [0u8; 1];
            !matches!(s.read(&mut b), Ok(1))
        });
        std::thread::sleep(Duration::from_millis(10));
    }
    waiting.len()
}
