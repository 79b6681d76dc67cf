//! Helpers the binary-level test files share.
#![allow(dead_code)] // each test file uses its own subset

use std::process::{Command, Output};

/// `bench`, with every test hook of the environment removed.
pub fn bench() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_bench"));
    c.env_remove("IOMODELS_FAULT")
        .env_remove("IOMODELS_REFUSE_IO_URING")
        .env_remove("IOMODELS_URING_SETUP");
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
