//! `bench docs`: the documents' tables are generated from committed result files by `bench`
//! itself, and a table that differs from its data fails here (README.md and DESIGN.md are
//! checked as they are committed).

mod common;

use std::path::Path;

use common::{bench, expect, text};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The committed documents are what their data gives; the README quotes at least one table.
#[test]
fn the_documents_tables_are_their_data() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    assert!(
        readme.contains("<!-- bench table "),
        "the README's tables are generated: it has no `<!-- bench table FILE -->` block"
    );
    let o = bench()
        .current_dir(root())
        .args(["docs", "--check", "README.md", "DESIGN.md"])
        .output()
        .unwrap();
    expect(&o, 0, &[]);
}

/// A block is filled from its file; a table edited by hand is caught by --check; a result
/// from a `-dirty` build is refused; a block without its end line is an error naming the line.
#[test]
fn a_table_is_regenerated_and_checked() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        root().join("tests/fixtures/closed-loop.json"),
        dir.path().join("r.json"),
    )
    .unwrap();
    let doc = dir.path().join("doc.md");
    std::fs::write(
        &doc,
        "# Figures\n\n<!-- bench table r.json columns=\"req/s,CPU µs/req\" -->\nold\n\
         <!-- end bench table -->\n\nText after.\n",
    )
    .unwrap();
    expect(
        &bench()
            .arg("docs")
            .arg("--check")
            .arg(&doc)
            .output()
            .unwrap(),
        1,
        &["tables differ from their data", "doc.md"],
    );
    expect(&bench().arg("docs").arg(&doc).output().unwrap(), 0, &[]);
    let made = std::fs::read_to_string(&doc).unwrap();
    // blocking: 97,647 and 118,071 req/s, median 107.9k; the text around is kept.
    assert!(made.contains("| model | req/s | CPU µs/req |"), "{made}");
    assert!(made.contains("| blocking | 107.9k |"), "{made}");
    assert!(made.contains("medians of 2 interleaved repeats"), "{made}");
    assert!(made.starts_with("# Figures\n") && made.ends_with("Text after.\n"));
    expect(
        &bench()
            .arg("docs")
            .arg("--check")
            .arg(&doc)
            .output()
            .unwrap(),
        0,
        &[],
    );
    std::fs::write(&doc, made.replace("107.9k", "120.0k")).unwrap();
    expect(
        &bench()
            .arg("docs")
            .arg("--check")
            .arg(&doc)
            .output()
            .unwrap(),
        1,
        &["doc.md"],
    );

    let mut r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("r.json")).unwrap()).unwrap();
    r["tool"]["git_commit"] = "0123abc-dirty".into();
    std::fs::write(dir.path().join("r.json"), r.to_string()).unwrap();
    expect(
        &bench().arg("docs").arg(&doc).output().unwrap(),
        2,
        &["uncommitted changes", "0123abc-dirty"],
    );

    std::fs::write(&doc, "<!-- bench table r.json -->\nno end\n").unwrap();
    let o = bench().arg("docs").arg(&doc).output().unwrap();
    expect(&o, 2, &["line 1", "end bench table"]);
    assert!(!text(&o).contains("panicked"));
    // A block whose end line is missing before the next block: an error, and the prose between
    // them is not eaten (the file is left as it was).
    let both = "<!-- bench table r.json -->\nold\n## Section\nprose\n\
                <!-- bench table r.json -->\nold\n<!-- end bench table -->\n";
    std::fs::write(&doc, both).unwrap();
    let o = bench().arg("docs").arg(&doc).output().unwrap();
    expect(&o, 2, &["line 1", "before the next block"]);
    assert_eq!(std::fs::read_to_string(&doc).unwrap(), both);
}

/// A table of a sweep's file must pick its point: a median across points is no figure.
#[test]
fn a_table_across_sweep_points_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        root().join("tests/fixtures/sweep.json"),
        dir.path().join("s.json"),
    )
    .unwrap();
    let doc = dir.path().join("doc.md");
    std::fs::write(
        &doc,
        "<!-- bench table s.json -->\n<!-- end bench table -->\n",
    )
    .unwrap();
    expect(
        &bench().arg("docs").arg(&doc).output().unwrap(),
        2,
        &["sweep points", "point=\""],
    );
    std::fs::write(
        &doc,
        "<!-- bench table s.json point=\"connections=10\" -->\n<!-- end bench table -->\n",
    )
    .unwrap();
    expect(&bench().arg("docs").arg(&doc).output().unwrap(), 0, &[]);
    assert!(std::fs::read_to_string(&doc)
        .unwrap()
        .contains("at connections=10"));
}
