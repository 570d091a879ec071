//! `commuter emit-c` (and `testgen --emit-c`): a POSIX suite as portable C, written into a
//! directory as a whole (a temporary directory beside it, renamed into place).

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;
use commuter_emit_c::{CSuite, PROGRAM};
use commuter_testgen::{TestSuite, parse_suite};

use crate::UsageError;
use crate::output;

#[derive(Args)]
pub struct EmitCArgs {
    /// A POSIX-model `tests.json` (`commuter testgen -m posix`).
    tests: PathBuf,
    /// The directory to write the C suite to: created, or replaced if it holds a suite this
    /// command wrote.
    #[arg(short, long, value_name = "DIR")]
    output: PathBuf,
}

pub fn run(args: &EmitCArgs) -> Result<()> {
    let bytes = fs::read(&args.tests)
        .map_err(|e| UsageError(format!("cannot read `{}`: {e}", args.tests.display())))?;
    let suite = parse_suite(&args.tests.display().to_string(), &bytes)
        .map_err(|e| UsageError(e.to_string()))?;
    check_destination(&args.output)?;
    write(&suite, &args.output)
}

/// The first line of the Makefile an emitted suite has: how an earlier suite is recognised
/// (and only then replaced).
const MARK: &str = "# The commuter POSIX test suite as C";

/// Fails with a usage error, before any long work, if `dir` cannot take a suite.
pub fn check_destination(dir: &Path) -> Result<()> {
    match fs::read_dir(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(UsageError(format!(
            "cannot use `{}` for the C suite: {e}; choose another directory with --emit-c/-o",
            dir.display()
        ))
        .into()),
        Ok(mut entries) => {
            let empty = entries.next().is_none();
            let ours = fs::read_to_string(dir.join("Makefile")).is_ok_and(|m| m.starts_with(MARK));
            if empty || ours {
                Ok(())
            } else {
                Err(UsageError(format!(
                    "`{}` exists and is not a C suite commuter wrote: choose a new directory or remove it",
                    dir.display()
                ))
                .into())
            }
        }
    }
}

/// Writes the suite as C into `dir` and says what it wrote.
pub fn write(suite: &TestSuite, dir: &Path) -> Result<()> {
    let c = commuter_emit_c::emit(suite).map_err(|e| UsageError(e.to_string()))?;
    replace_dir(dir, &c)?;
    println!(
        "wrote {}: {} tests as C ({} not run natively), {} call sets; build and run with `make -C {} && {}/{PROGRAM}`",
        dir.display(),
        c.tests,
        c.not_run,
        c.call_sets,
        dir.display(),
        dir.display()
    );
    Ok(())
}

/// Writes every file into a temporary directory beside `dir`, then swaps it in: a reader sees
/// the old suite or the new one, never a mix.
fn replace_dir(dir: &Path, c: &CSuite) -> Result<()> {
    let beside = |kind| {
        output::beside(dir, kind)
            .ok_or_else(|| UsageError(format!("`{}` names no directory", dir.display())))
    };
    let (temp, old) = (beside("tmp")?, beside("old")?);
    let _ = fs::remove_dir_all(&temp);
    fs::create_dir_all(&temp).map_err(|e| {
        UsageError(format!(
            "cannot write the C suite beside `{}`: {e}; choose a writable directory",
            dir.display()
        ))
    })?;
    let written = (|| -> Result<()> {
        for f in &c.files {
            let path = temp.join(&f.name);
            let mut out =
                fs::File::create(&path).with_context(|| format!("writing {}", path.display()))?;
            out.write_all(f.contents.as_bytes())
                .and_then(|()| out.sync_all())
                .with_context(|| format!("writing {}", path.display()))?;
        }
        Ok(())
    })();
    if let Err(e) = written {
        let _ = fs::remove_dir_all(&temp);
        return Err(e);
    }
    if dir.exists() {
        fs::rename(dir, &old).with_context(|| format!("moving the old {} aside", dir.display()))?;
    }
    fs::rename(&temp, dir).with_context(|| format!("moving the suite into {}", dir.display()))?;
    if old.exists() {
        fs::remove_dir_all(&old).with_context(|| format!("removing {}", old.display()))?;
    }
    Ok(())
}
