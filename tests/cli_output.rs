//! What `bench` prints, as a user meets it: a reader that goes away ends it quietly, the line
//! that says why a run has no system-call counts (tracefs missing: the test hook
//! `IOMODELS_TRACEFS`), and error messages in one clean sentence.
//!
//! Unix only: the closed pipes are made with libc.
#![cfg(unix)]

use std::os::fd::{FromRawFd, OwnedFd};
use std::process::{Output, Stdio};

mod common;
use common::*;

/// A pipe whose read end is already closed: any write to it fails with EPIPE.
fn closed_pipe() -> Stdio {
    let mut fds = [0; 2];
    // Close-on-exec, so that no child a parallel test starts meanwhile holds the read end.
    // SAFETY: pipe2 writes two descriptors into the array it is given.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: both descriptors were just created and nothing else owns them.
    let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    drop(read);
    Stdio::from(write)
}

/// `bench models | head -1` panicked ("failed printing to stdout: Broken pipe", exit 101):
/// a stdout whose reader has gone ends the command quietly, with its own exit code.
#[test]
fn broken_pipe_on_stdout_is_not_a_crash() {
    for args in [&["models"][..], &["models", "--json"]] {
        let o = bench().args(args).stdout(closed_pipe()).output().unwrap();
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert_ne!(o.status.code(), Some(101), "{args:?}: {stderr}");
        assert_eq!(o.status.code(), Some(0), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert!(stderr.is_empty(), "{args:?}: {stderr}");
    }
}

/// `bench serve | head -1`: its ready and stopped lines meet a closed pipe. It serves on until
/// stopped, then ends as it would with its output read, with nothing on stderr.
#[test]
fn serve_with_its_reader_gone_stops_quietly() {
    let mut child = bench()
        .args(["serve", "--model", "reactor", "--listen", "127.0.0.1:0"])
        .stdout(closed_pipe())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert!(
        child.try_wait().unwrap().is_none(),
        "bench serve ended at its ready line"
    );
    // SAFETY: kill(2) with the child's own pid, which has not been waited for yet.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGTERM) }, 0);
    let o = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{stderr}");
    assert!(stderr.is_empty(), "{stderr}");
}

/// The same with stderr gone (`bench run ... 2>&1 | head -1`): the error's exit code, no panic.
#[test]
fn broken_pipe_on_stderr_is_not_a_crash() {
    let o = bench()
        .args(["run", "--model", "nosuch"])
        .stderr(closed_pipe())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{o:?}");
}

/// The error for `--uring-*` without proactor-uring had a run of spaces where a line
/// continuation was lost.
#[test]
fn uring_options_without_the_model_read_as_one_sentence() {
    let o = run(&["run", "--model", "reactor", "--uring-sqpoll"]);
    expect(&o, 2, &["this run has no proactor-uring: add --model"]);
    assert!(!text(&o).contains("   "), "{}", text(&o));
}

/// `bench run --model reactor`, short, with `IOMODELS_TRACEFS` set to `hook` and `extra`
/// options; the output and the result file.
#[cfg(target_os = "linux")]
fn run_with_tracefs(hook: &str, extra: &[&str]) -> (Output, Option<serde_json::Value>) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("result.json");
    // (A name without "tracefs": the tests look for that word in the printed output.)
    let o = bench()
        .env(iomodels::hooks::TRACEFS, hook)
        .args(["run", "--model", "reactor", "-c", "2", "-d", "300ms"])
        .args(["--warmup", "100ms", "--no-report", "--out"])
        .arg(&out)
        .args(extra)
        .output()
        .unwrap();
    let doc = out.is_file().then(|| valid_result(&out));
    (o, doc)
}

/// The cell of column `header` in the table's row of `model` (the columns are right-aligned:
/// a cell ends where its header ends).
#[cfg(target_os = "linux")]
fn cell(table: &str, header: &str, model: &str) -> Option<String> {
    let head: Vec<char> = table.lines().next()?.chars().collect();
    let at = table.lines().next()?.split(header).next()?.chars().count();
    let end = at + header.chars().count();
    assert!(end <= head.len());
    let row: Vec<char> = table
        .lines()
        .find(|l| l.starts_with(&format!("{model} ")))?
        .chars()
        .collect();
    let start = row[..end].iter().rposition(|c| *c == ' ')? + 1;
    Some(row[start..end].iter().collect())
}

/// tracefs missing and not mountable: one line says why there is no sys/req and the command
/// that fixes it, the table keeps its sys/req column with `-`, and the run succeeds (counts
/// were not asked for explicitly).
#[cfg(target_os = "linux")]
#[test]
fn missing_tracefs_is_said_in_one_line_and_the_table_keeps_sys_per_request() {
    let (o, doc) = run_with_tracefs("missing", &[]);
    expect(
        &o,
        0,
        &["no system call counts (sys/req): tracefs is not mounted at /sys/kernel/tracing"],
    );
    let all = text(&o);
    let fix = "sudo mount -t tracefs nodev /sys/kernel/tracing";
    let said: Vec<&str> = all.lines().filter(|l| l.contains(fix)).collect();
    assert_eq!(said.len(), 1, "{all}");
    assert!(said[0].starts_with("warning: "), "{all}");
    let table = String::from_utf8_lossy(&o.stdout);
    assert_eq!(
        cell(&table, "sys/req", "reactor").as_deref(),
        Some("-"),
        "{table}"
    );
    let run = &doc.expect("no result file")["runs"][0];
    assert!(run["syscalls"].is_null(), "{run}");
    let why = run["syscalls_unavailable"].as_str().unwrap();
    assert!(
        why.contains("tracefs is not mounted") && why.contains(fix),
        "{why}"
    );
}

/// Asked for explicitly, counts that cannot be had stop the run as before (exit 3), naming
/// the fix; with counting off, tracefs is not looked at.
#[cfg(target_os = "linux")]
#[test]
fn missing_tracefs_fails_an_explicit_accounting_and_is_ignored_without_it() {
    let (o, _) = run_with_tracefs("missing", &["--accounting", "separate"]);
    expect(
        &o,
        3,
        &[
            "--accounting separate was asked for",
            "sudo mount -t tracefs nodev /sys/kernel/tracing",
        ],
    );
    let (o, _) = run_with_tracefs("missing", &["--accounting", "off"]);
    expect(&o, 0, &[]);
    let all = text(&o);
    assert!(!all.contains("tracefs"), "{all}");
    assert!(!all.contains("sys/req"), "{all}");
}

/// tracefs missing but mountable (the hook makes the mount a no-op): `bench run` says in one
/// line that it mounted it.
#[cfg(target_os = "linux")]
#[test]
fn missing_tracefs_is_mounted_and_said_once() {
    let (o, _) = run_with_tracefs("mountable", &[]);
    expect(
        &o,
        0,
        &["note: mounted tracefs at /sys/kernel/tracing to count system calls"],
    );
    assert_eq!(
        text(&o).matches("mounted tracefs").count(),
        1,
        "{}",
        text(&o)
    );
}
