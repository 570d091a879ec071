//! Writing result files atomically: a temporary file beside the target, renamed into place, so
//! a reader never sees a half-written file and an interrupted run leaves the old file intact.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::UsageError;

/// A destination checked for writability before the (long) work that fills it.
pub struct AtomicOutput {
    target: PathBuf,
    temp: PathBuf,
}

impl AtomicOutput {
    /// Fails with a usage error if the file cannot be created where asked.
    pub fn prepare(target: &Path) -> Result<Self> {
        let name = target.file_name().ok_or_else(|| {
            UsageError(format!("output path `{}` names no file", target.display()))
        })?;
        let dir = match target.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let temp = dir.join(format!(
            ".{}.tmp-{}",
            name.to_string_lossy(),
            std::process::id()
        ));
        fs::File::create(&temp).map_err(|e| {
            UsageError(format!(
                "cannot write `{}`: {e}; choose a writable path with --output",
                target.display()
            ))
        })?;
        Ok(AtomicOutput {
            target: target.to_path_buf(),
            temp,
        })
    }

    /// Write all of `bytes`, flush to disk, and move into place.
    pub fn commit(self, bytes: &[u8]) -> Result<()> {
        let mut f = fs::File::create(&self.temp)
            .with_context(|| format!("writing {}", self.temp.display()))?;
        f.write_all(bytes)
            .and_then(|()| f.sync_all())
            .with_context(|| format!("writing {}", self.temp.display()))?;
        fs::rename(&self.temp, &self.target)
            .with_context(|| format!("moving the result into {}", self.target.display()))?;
        Ok(())
    }
}

impl Drop for AtomicOutput {
    fn drop(&mut self) {
        // After a successful commit the temporary file is gone; otherwise remove it.
        let _ = fs::remove_file(&self.temp);
    }
}
