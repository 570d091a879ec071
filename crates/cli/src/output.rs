//! Writing result files atomically: a temporary file beside the target, renamed into place, so
//! a reader never sees a half-written file and an interrupted run leaves the old file intact.
//! A target that exists and is not a regular file (`/dev/null`, a named pipe, `/dev/stdout`)
//! is written directly: renaming over it would replace the device or pipe with a file.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::UsageError;

/// A destination checked for writability before the (long) work that fills it.
pub struct AtomicOutput {
    target: PathBuf,
    /// The temporary file renamed into place; `None` writes the target directly.
    temp: Option<PathBuf>,
}

impl AtomicOutput {
    /// Fails with a usage error if the file cannot be created where asked.
    pub fn prepare(target: &Path) -> Result<Self> {
        let cannot = |e: std::io::Error| {
            UsageError(format!(
                "cannot write `{}`: {e}; choose a writable path with --output",
                target.display()
            ))
        };
        match fs::metadata(target) {
            Ok(m) if m.is_dir() => {
                return Err(UsageError(format!(
                    "output path `{}` is a directory; name a file in it",
                    target.display()
                ))
                .into());
            }
            // Not opened here: opening a named pipe waits for its reader.
            Ok(m) if !m.is_file() => {
                return Ok(AtomicOutput {
                    target: target.to_path_buf(),
                    temp: None,
                });
            }
            _ => {}
        }
        let temp = beside(target, "tmp").ok_or_else(|| {
            UsageError(format!("output path `{}` names no file", target.display()))
        })?;
        fs::File::create(&temp).map_err(cannot)?;
        Ok(AtomicOutput {
            target: target.to_path_buf(),
            temp: Some(temp),
        })
    }

    /// Write all of `bytes`, flush to disk, and move into place.
    pub fn commit(self, bytes: &[u8]) -> Result<()> {
        let Some(temp) = &self.temp else {
            let mut f = fs::OpenOptions::new()
                .write(true)
                .open(&self.target)
                .with_context(|| format!("writing {}", self.target.display()))?;
            return f
                .write_all(bytes)
                .with_context(|| format!("writing {}", self.target.display()));
        };
        let mut f =
            fs::File::create(temp).with_context(|| format!("writing {}", temp.display()))?;
        f.write_all(bytes)
            .and_then(|()| f.sync_all())
            .with_context(|| format!("writing {}", temp.display()))?;
        fs::rename(temp, &self.target)
            .with_context(|| format!("moving the result into {}", self.target.display()))?;
        Ok(())
    }
}

/// Refuses to write a reference trace to `out` unless it is absent or a previous trace (which
/// [`write_trace_dir`] replaces): checked before the VM runs.
pub fn check_trace_dir(out: &Path) -> Result<()> {
    if out.exists() && !out.join("summary.json").is_file() {
        return Err(UsageError(format!(
            "{} exists and is not a reference trace directory (no summary.json): choose another output directory",
            out.display()
        ))
        .into());
    }
    Ok(())
}

/// Writes a reference trace's files (relative path, content) as the directory `out`,
/// atomically: built in a hidden sibling, then renamed over `out` (a previous trace there is
/// replaced; any other existing path is refused).
pub fn write_trace_dir(files: &[(PathBuf, Vec<u8>)], out: &Path) -> Result<()> {
    check_trace_dir(out)?;
    let tmp = beside(out, "tmp").ok_or_else(|| {
        UsageError(format!(
            "output path `{}` names no directory",
            out.display()
        ))
    })?;
    let _ = fs::remove_dir_all(&tmp);
    for (rel, bytes) in files {
        let path = tmp.join(rel);
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        fs::write(&path, bytes).with_context(|| format!("writing {}", path.display()))?;
    }
    if out.exists() {
        fs::remove_dir_all(out).with_context(|| format!("replacing {}", out.display()))?;
    }
    fs::rename(&tmp, out).with_context(|| format!("moving the trace into {}", out.display()))
}

/// The heat map and HTML report written beside a conflicts file: `heatmap.svg` and
/// `report.html` beside `conflicts.json` (what `check` writes), `X.heatmap.svg` and
/// `X.report.html` beside any other `X.json`, so that two runs in one directory (two kernels,
/// say) keep their own pictures.
pub fn pictures_beside(conflicts: &Path) -> (PathBuf, PathBuf) {
    let stem = conflicts
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .filter(|s| s != "conflicts");
    let name = |kind: &str| match &stem {
        Some(stem) => format!("{stem}.{kind}"),
        None => kind.to_string(),
    };
    (
        conflicts.with_file_name(name("heatmap.svg")),
        conflicts.with_file_name(name("report.html")),
    )
}

/// This process's hidden `kind` (`tmp`, `old`) of `target`: `.NAME.KIND-PID` in the target's
/// directory, so renaming it into place stays on one file system. `None` if `target` names
/// nothing (`/`, `..`).
pub fn beside(target: &Path, kind: &str) -> Option<PathBuf> {
    let name = target.file_name()?;
    let dir = match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    Some(dir.join(format!(
        ".{}.{kind}-{}",
        name.to_string_lossy(),
        std::process::id()
    )))
}

impl Drop for AtomicOutput {
    fn drop(&mut self) {
        // After a successful commit the temporary file is gone; otherwise remove it.
        if let Some(temp) = &self.temp {
            let _ = fs::remove_file(temp);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::FileTypeExt;

    #[test]
    fn a_named_pipe_is_written_through_not_replaced() {
        let dir = std::env::temp_dir().join(format!("commuter-output-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let fifo = dir.join("out.json");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success(), "mkfifo failed");
        let reader = {
            let fifo = fifo.clone();
            std::thread::spawn(move || fs::read(fifo).unwrap())
        };
        AtomicOutput::prepare(&fifo).unwrap().commit(b"{}").unwrap();
        assert_eq!(reader.join().unwrap(), b"{}");
        assert!(fs::metadata(&fifo).unwrap().file_type().is_fifo());
        let leftovers: Vec<_> = fs::read_dir(&dir).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "no temporary file beside the pipe");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn pictures_are_named_after_their_conflicts_file_unless_it_is_the_default() {
        let names = |p: &str| {
            let (svg, html) = pictures_beside(Path::new(p));
            (svg.display().to_string(), html.display().to_string())
        };
        assert_eq!(
            names("out/conflicts.json"),
            ("out/heatmap.svg".into(), "out/report.html".into())
        );
        assert_eq!(
            names("linux-6.1.json"),
            (
                "linux-6.1.heatmap.svg".into(),
                "linux-6.1.report.html".into()
            )
        );
    }

    #[test]
    fn a_trace_directory_is_written_atomically_and_replaces_only_a_trace() {
        use commuter_reftrace::{encode, read};
        use commuter_trace_format::reftrace::{Backing, Kind, Reference};
        let r = |pid, tid, page| Reference {
            kind: Kind::VmWrite,
            backing: Backing::Anon,
            pid,
            tid,
            page,
        };
        let refs = [r(60, 60, 0x1000), r(60, 61, 0x2000), r(70, 70, 0x3000)];
        let base = std::env::temp_dir().join(format!("commuter-trace-dir-{}", std::process::id()));
        let _ = fs::remove_dir_all(&base);
        let out = base.join("trace");
        let files = encode(&refs);
        write_trace_dir(&files, &out).unwrap();
        assert_eq!(
            read(&out.join("per-thread/70/70.gz"))
                .unwrap()
                .records
                .len(),
            1
        );
        // A second trace replaces the first.
        write_trace_dir(&encode(&refs[..1]), &out).unwrap();
        assert!(!out.join("per-process/70.gz").exists());
        // Anything else is left alone.
        let other = base.join("other");
        fs::create_dir_all(&other).unwrap();
        let err = write_trace_dir(&files, &other).unwrap_err().to_string();
        assert!(err.contains("is not a reference trace directory"), "{err}");
        let leftovers: Vec<_> = fs::read_dir(&base)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(leftovers.len(), 2, "{leftovers:?}");
        fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn a_directory_is_refused_with_the_fix() {
        let err = AtomicOutput::prepare(&std::env::temp_dir()).err().unwrap();
        assert!(
            err.to_string()
                .contains("is a directory; name a file in it")
        );
    }
}
