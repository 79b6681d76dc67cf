//! Reading a result file back ([`load`]) and writing files whole or not at all
//! ([`write_atomic`]): the result file, and the report's pages beside it.
//!
//! Every file the harness writes for a reader goes through [`write_atomic`]: a temporary file
//! in the same folder, synced, then renamed over the target, so a reader never sees half a
//! file and an interrupted write never destroys an earlier one.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::{ResultFile, SCHEMA_VERSION};
use crate::Error;

/// Reads a result file: unreadable, not JSON, written by a newer schema, or missing a field
/// this version needs are errors that say so (exit 2). Fields added after a file was written
/// take their defaults, and their gaps are labelled in the report.
pub fn load(path: &Path) -> anyhow::Result<ResultFile> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        Error::Usage(format!(
            "cannot read the result file {}: {e}",
            path.display()
        ))
    })?;
    let value: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
        Error::Usage(format!(
            "{} is not a result file: it is not JSON ({e})",
            path.display()
        ))
    })?;
    match value.get("schema_version").and_then(|v| v.as_u64()) {
        Some(v) if v > u64::from(SCHEMA_VERSION) => {
            return Err(Error::Usage(format!(
                "{} was written with result schema {v}; this bench reads schema \
                 {SCHEMA_VERSION} and older: use a newer bench",
                path.display()
            ))
            .into())
        }
        Some(_) => {}
        None => {
            return Err(Error::Usage(format!(
                "{} is not a result file: it has no schema_version",
                path.display()
            ))
            .into())
        }
    }
    serde_json::from_value(value).map_err(|e| {
        Error::Usage(format!(
            "{} cannot be read as a result file ({e}): was it written by another tool?",
            path.display()
        ))
        .into()
    })
}

/// Writes `bytes` to `path` whole or not at all: a temporary file beside it (its folder is
/// created if missing), synced, then renamed over it. The temporary file is removed when
/// anything fails.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = temp_beside(path)?;
    let write = || -> std::io::Result<()> {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    };
    write().inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

impl ResultFile {
    /// Fails now, before anything is measured, when `path` cannot be written: creates its
    /// folder and a temporary file beside it, then removes the file.
    pub fn check_writable(path: &Path) -> anyhow::Result<()> {
        let tmp = temp_beside(path).map_err(|e| cannot_write(path, &e.into()))?;
        std::fs::File::create(&tmp)
            .and_then(|_| std::fs::remove_file(&tmp))
            .map_err(|e| cannot_write(path, &e.into()))
    }

    /// Writes the file atomically ([`write_atomic`]), pretty-printed, with a final newline.
    pub fn write_atomic(&self, path: &Path) -> anyhow::Result<()> {
        let mut bytes =
            serde_json::to_vec_pretty(self).map_err(|e| cannot_write(path, &e.into()))?;
        bytes.push(b'\n');
        write_atomic(path, &bytes).map_err(|e| cannot_write(path, &e.into()))
    }
}

/// A temporary file name in `path`'s folder (created if missing), so the rename is atomic.
fn temp_beside(path: &Path) -> std::io::Result<PathBuf> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "result.json".into());
    Ok(dir.join(format!(".{name}.{}.tmp", std::process::id())))
}

fn cannot_write(path: &Path, e: &anyhow::Error) -> anyhow::Error {
    Error::Environment(format!(
        "cannot write the result file {}: {e:#} (pick another path with --out)",
        path.display()
    ))
    .into()
}
