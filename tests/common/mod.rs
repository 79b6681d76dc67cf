//! Helpers the binary-level test files share.
#![allow(dead_code)] // each test file uses its own subset

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use iomodels::models::{Model, Poller, RunningServer, ServerConfig, UringListener, UringOptions};
use iomodels::protocol::Protocol;

pub mod segments;

/// `bench`, with every test hook of the environment removed.
pub fn bench() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_bench"));
    c.env_remove(iomodels::hooks::FAULT)
        .env_remove(iomodels::hooks::REFUSE_IO_URING)
        .env_remove(iomodels::hooks::URING_SETUP);
    #[cfg(target_os = "linux")]
    c.env_remove(iomodels::hooks::REFUSE_PERF)
        .env_remove(iomodels::hooks::TRACEFS);
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

/// The result file at `path`, parsed, asserted valid against the schema.
#[track_caller]
pub fn valid_result(path: &std::path::Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read the result {}: {e}", path.display()));
    let doc: serde_json::Value = serde_json::from_str(&text).expect("the result is not JSON");
    let errors = schema_errors(&doc);
    assert!(errors.is_empty(), "{}", errors.join("\n"));
    doc
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

/// The tests share this process and the machine's two CPUs. Two kinds run alone (write):
/// the one that opens 2000 descriptors (select watches descriptors below 1024 only), and the
/// ones with a time bound (a `--uring-sqpoll` server's kernel thread spins on a CPU while it
/// runs, and would eat their margin). The others run beside each other (read).
pub static MACHINE: std::sync::RwLock<()> = std::sync::RwLock::new(());

pub fn shared_machine() -> std::sync::RwLockReadGuard<'static, ()> {
    MACHINE.read().unwrap_or_else(|e| e.into_inner())
}

pub fn whole_machine() -> std::sync::RwLockWriteGuard<'static, ()> {
    MACHINE.write().unwrap_or_else(|e| e.into_inner())
}

/// One way to run a model: its name to report, the model, the poller, the io_uring options.
pub struct Variant {
    pub name: String,
    pub model: &'static Model,
    pub poller: Poller,
    pub uring: UringOptions,
}

/// Every model with its default poller, then again with each other poller it can use, and a
/// model that takes the `--uring-*` options once more with each of them.
pub fn variants() -> Vec<Variant> {
    let mut all = Vec::new();
    for model in models_here() {
        let mut pollers = model.pollers.iter().copied();
        let plain = |name: String, poller: Poller, uring: UringOptions| Variant {
            name,
            model,
            poller,
            uring,
        };
        all.push(plain(
            model.name.to_string(),
            pollers.next().unwrap_or_default(),
            UringOptions::default(),
        ));
        for poller in pollers {
            all.push(plain(
                format!("{} --poller {}", model.name, poller.name()),
                poller,
                UringOptions::default(),
            ));
        }
        if model.uring_options {
            let base = UringOptions::default();
            for (flag, uring) in [
                (
                    "--uring-sqpoll",
                    UringOptions {
                        sqpoll: true,
                        ..base
                    },
                ),
                ("--uring-zc", UringOptions { zc: true, ..base }),
                (
                    "--uring-listener shared",
                    UringOptions {
                        listener: UringListener::Shared,
                        ..base
                    },
                ),
            ] {
                all.push(plain(
                    format!("{} {flag}", model.name),
                    Poller::default(),
                    uring,
                ));
            }
        }
    }
    all
}

/// Starts variant `v` in this process on 127.0.0.1 (4 threads for models that take a count),
/// with no idle timeout.
pub fn start_server(v: &Variant, protocol: Protocol) -> (SocketAddr, Box<dyn RunningServer>) {
    start_server_idle(v, protocol, None)
}

/// [`start_server`] with an idle timeout.
pub fn start_server_idle(
    v: &Variant,
    protocol: Protocol,
    idle_timeout: Option<Duration>,
) -> (SocketAddr, Box<dyn RunningServer>) {
    let listener = iomodels::models::bind("127.0.0.1:0".parse().unwrap(), v.model.reuse_port)
        .expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().unwrap();
    let config = ServerConfig {
        protocol,
        threads: 4,
        poller: v.poller,
        cpus: None,
        uring: v.uring,
        idle_timeout,
    };
    let server = (v.model.start)(listener, &config)
        .unwrap_or_else(|e| panic!("{}: cannot start: {e}", v.name));
    (addr, server)
}

/// The children of `pid` now (every thread's, from /proc).
#[cfg(target_os = "linux")]
pub fn children(pid: u32) -> Vec<u32> {
    let mut found = Vec::new();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return found;
    };
    for task in tasks.flatten() {
        let list = std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
        found.extend(
            list.split_whitespace()
                .filter_map(|p| p.parse::<u32>().ok()),
        );
    }
    found
}

/// True while `pid` exists and is not a zombie.
#[cfg(target_os = "linux")]
pub fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            !s.rsplit(')')
                .next()
                .unwrap_or("")
                .trim_start()
                .starts_with('Z')
        })
        .unwrap_or(false)
}

/// A proptest configuration: `cases` per property unless `PROPTEST_CASES` is set (a quarter of
/// them in a debug build, as scripts/test.sh runs), failures kept in `regressions` (integration
/// tests have no lib.rs beside them for proptest's default place).
pub fn proptest_config(regressions: &'static str, cases: u32) -> proptest::test_runner::Config {
    use proptest::test_runner::{Config, FileFailurePersistence};
    // The default configuration reads PROPTEST_CASES; without it, ours.
    let mut config = Config {
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(regressions))),
        ..Config::default()
    };
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = if cfg!(debug_assertions) {
            cases / 4
        } else {
            cases
        };
    }
    config
}

/// Raises this process's soft descriptor limit to `n` (or to the hard limit, if lower), for a
/// test that holds many sockets itself.
#[cfg(unix)]
pub fn raise_fd_limit(n: u64) {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes the struct it is given.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 || lim.rlim_cur >= n {
        return;
    }
    lim.rlim_cur = n.min(lim.rlim_max);
    // SAFETY: setrlimit reads the struct it is given.
    unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) };
}
