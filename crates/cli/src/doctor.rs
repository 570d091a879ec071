//! `commuter doctor`: boot a kernel once and say whether it can be used as a Linux target
//! (the checks are `commuter_targets::doctor`'s; this prints them).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Args;
use commuter_scan::Symbols;
use commuter_targets::doctor;

use crate::assets::Assets;
use crate::run::KernelInputs;

#[derive(Args)]
pub struct DoctorArgs {
    #[command(flatten)]
    pub inputs: KernelInputs,
    /// Seconds the VM may run.
    #[arg(long, default_value_t = 300)]
    pub timeout: u64,
}

/// A fresh temporary directory, removed when dropped.
struct WorkDir(PathBuf);

impl WorkDir {
    fn new() -> Result<WorkDir> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let dir =
            std::env::temp_dir().join(format!("commuter-doctor-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("creating the work directory {}", dir.display()))?;
        Ok(WorkDir(dir))
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn doctor(args: &DoctorArgs) -> Result<()> {
    let assets = Assets::locate();
    let mut cfg = args
        .inputs
        .config(&assets, Duration::from_secs(args.timeout))?;
    // A directory of its own: doctors may run side by side, and nothing of theirs is kept.
    let work = WorkDir::new()?;
    cfg.work_dir = work.0.clone();
    let path = args.inputs.vmlinux_path(&assets);
    let symbols = Symbols::open(&path).map_err(|e| e.to_string());
    println!("kernel {}", cfg.kernel.display());
    let checks = doctor::examine(&cfg, symbols.as_ref().map_err(Clone::clone));
    let width = checks.iter().map(|c| c.name.len()).max().unwrap_or(0);
    for c in &checks {
        let mark = if c.ok { "ok  " } else { "FAIL" };
        println!("{mark} {:width$}  {}", c.name, c.detail);
    }
    let failed = checks.iter().filter(|c| !c.ok).count();
    if failed > 0 {
        bail!(
            "{failed} of {} checks failed: this kernel's results would not be the kernel's own",
            checks.len()
        );
    }
    println!(
        "this kernel can be used: commuter run --kernel {} --vmlinux {}",
        cfg.kernel.display(),
        path.display()
    );
    Ok(())
}
