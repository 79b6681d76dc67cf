//! What `bench` prints, as a user meets it: error messages in one clean sentence.

mod common;
use common::*;

/// The error for `--uring-*` without proactor-uring had a run of spaces where a line
/// continuation was lost.
#[test]
fn uring_options_without_the_model_read_as_one_sentence() {
    let o = run(&["run", "--model", "reactor", "--uring-sqpoll"]);
    expect(&o, 2, &["this run has no proactor-uring: add --model"]);
    assert!(!text(&o).contains("   "), "{}", text(&o));
}
