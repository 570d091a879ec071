//! `commuter doctor`: boot a kernel once and say whether it can be used as a Linux target
//! (the checks are `commuter_targets::doctor`'s; this prints them).

use std::time::Duration;

use anyhow::{Result, bail};
use clap::Args;
use commuter_scan::Symbols;
use commuter_targets::doctor;

use crate::run::{KernelInputs, project_root};

#[derive(Args)]
pub struct DoctorArgs {
    #[command(flatten)]
    pub inputs: KernelInputs,
    /// Seconds the VM may run.
    #[arg(long, default_value_t = 300)]
    pub timeout: u64,
}

pub fn doctor(args: &DoctorArgs) -> Result<()> {
    let root = project_root();
    let cfg = args
        .inputs
        .config(&root, Duration::from_secs(args.timeout))?;
    let path = args.inputs.vmlinux_path(&root);
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
