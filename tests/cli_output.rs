//! What `bench` prints, as a user meets it: a reader that goes away ends it quietly, and error
//! messages in one clean sentence.
//!
//! Unix only: the closed pipes are made with libc.
#![cfg(unix)]

use std::os::fd::{FromRawFd, OwnedFd};
use std::process::Stdio;

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
