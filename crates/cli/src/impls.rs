//! `commuter impls`: the implementations the repository carries (`impls/`), one a line.

use anyhow::Result;
use clap::Args;
use commuter_targets::user::implementations;

use crate::UsageError;
use crate::run::project_root;

#[derive(Args)]
pub struct ImplsArgs {
    /// Only implementations of this model.
    #[arg(short, long)]
    pub model: Option<String>,
}

pub fn list(args: &ImplsArgs) -> Result<()> {
    let all = implementations(&project_root()).map_err(|e| UsageError(e.to_string()))?;
    let shown: Vec<_> = all
        .iter()
        .filter(|i| args.model.as_ref().is_none_or(|m| *m == i.model))
        .collect();
    if shown.is_empty() {
        let models: std::collections::BTreeSet<&str> =
            all.iter().map(|i| i.model.as_str()).collect();
        return Err(UsageError(format!(
            "no implementation of model `{}`; there are implementations of: {}",
            args.model.as_deref().unwrap_or("?"),
            models.into_iter().collect::<Vec<_>>().join(", ")
        ))
        .into());
    }
    let width = shown.iter().map(|i| i.name.len()).max().unwrap_or(0);
    for i in shown {
        println!("{:<width$}  {:<8} {}", i.name, i.model, i.description);
    }
    Ok(())
}
