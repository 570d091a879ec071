//! What `analyze` and `testgen` share: choosing the model and call sets, solver options,
//! progress bars, JSON output.

use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;
use commuter_analyzer::{CallSet, select_model_call_sets};
use commuter_engine::{DynModel, ExploreOptions};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;

use crate::{Registry, UsageError};

/// The model analysed when none is named.
pub const DEFAULT_MODEL: &str = "posix";

#[derive(Args)]
pub struct SelectionArgs {
    /// The model (see `commuter models`).
    #[arg(short, long, default_value = DEFAULT_MODEL)]
    pub model: String,
    /// Number of calls per call set.
    #[arg(short = 'n', long = "ncomb", default_value_t = 2)]
    pub ncomb: usize,
    /// Which call sets: names, `*`, `!name`, `a/b` sets, `{..}` groups, comma-separated; `*`
    /// may stand for any call of a set (e.g. `open,stat`, `*,!sync`, `{open,link}/unlink`,
    /// `open/*`). A set keeps the order typed.
    #[arg(short, long)]
    pub functions: Option<String>,
    /// Worker threads (default: all cores).
    #[arg(short, long)]
    pub jobs: Option<usize>,
    /// Seconds one solver query may take before it counts as `unknown` (0: no limit).
    #[arg(long, default_value_t = 60)]
    pub solver_timeout: u64,
    /// Stop exploring a call set after this many paths (the report says so).
    #[arg(long)]
    pub max_paths: Option<usize>,
    /// Ask the solver at every branch instead of first consulting the path's saved model
    /// (slower; the benchmark's baseline).
    #[arg(long)]
    pub no_saved_models: bool,
    /// Do not decide which calls are idempotent on each commutative path (test generation
    /// about 1.7x faster; reports then label no conflict as idempotent).
    #[arg(long)]
    pub no_idempotence: bool,
}

/// A model and the call sets to run.
pub struct Selected<'r> {
    pub model: &'r dyn DynModel,
    pub sets: Vec<CallSet>,
    jobs: Option<usize>,
}

impl Selected<'_> {
    /// Run `f` on a worker pool of the requested size.
    pub fn on_workers<T: Send>(&self, f: impl FnOnce() -> T + Send) -> Result<T> {
        match self.jobs {
            None => Ok(f()),
            Some(n) => Ok(rayon::ThreadPoolBuilder::new()
                .num_threads(n)
                .build()
                .context("starting worker threads")?
                .install(f)),
        }
    }
}

impl SelectionArgs {
    /// Look up the model and call sets; bad input is a usage error.
    pub fn resolve<'r>(&self, registry: &'r Registry) -> Result<Selected<'r>> {
        let model = lookup_model(registry, &self.model)?;
        let sets = select_model_call_sets(model, self.functions.as_deref(), self.ncomb)
            .map_err(|e| UsageError(e.to_string()))?;
        if self.jobs == Some(0) {
            return Err(UsageError("--jobs must be at least 1".into()).into());
        }
        Ok(Selected {
            model,
            sets,
            jobs: self.jobs,
        })
    }

    pub fn explore_options(&self) -> ExploreOptions {
        ExploreOptions {
            solver_timeout: (self.solver_timeout > 0)
                .then(|| Duration::from_secs(self.solver_timeout)),
            max_paths: self.max_paths,
            use_saved_models: !self.no_saved_models,
            paths_done: None,
        }
    }
}

fn lookup_model<'r>(registry: &'r Registry, name: &str) -> Result<&'r dyn DynModel> {
    registry.find(name).ok_or_else(|| {
        let known: Vec<&str> = registry.models().iter().map(|m| m.name()).collect();
        UsageError(format!(
            "unknown model `{name}`; the built-in models are: {} (see `commuter models`)",
            known.join(", ")
        ))
        .into()
    })
}

/// Progress of a long stage counted in `unit` (e.g. `call sets`, `tests`): a bar when stderr
/// is a terminal; otherwise (CI logs, `| tee`) a line on stderr every few seconds with done /
/// total, rate and time left, so a log is never silent for long. `COMMUTER_PROGRESS_SECS` sets
/// the interval (default 5).
pub fn progress_bar(len: u64, unit: &'static str) -> ProgressBar {
    progress_bar_with(len, unit, None)
}

/// A [`progress_bar`] of call sets that also counts the paths explored so far, those of the
/// idempotence explorations included (one call set can take an hour): the counter goes into
/// the explorations' options ([`ExploreOptions::paths_done`]).
pub fn call_set_progress(len: u64) -> (ProgressBar, Arc<AtomicU64>) {
    let paths = Arc::new(AtomicU64::new(0));
    (
        progress_bar_with(len, "call sets", Some(paths.clone())),
        paths,
    )
}

fn paths_explored(paths: &AtomicU64) -> String {
    format!("{} paths explored", paths.load(Ordering::Relaxed))
}

fn progress_bar_with(len: u64, unit: &'static str, paths: Option<Arc<AtomicU64>>) -> ProgressBar {
    if std::io::stderr().is_terminal() {
        let bar = ProgressBar::new(len);
        let template = match paths {
            Some(_) => {
                "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} call sets, {paths} {msg}"
            }
            None => "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} {msg}",
        };
        if let Ok(style) = ProgressStyle::with_template(template) {
            let style = match paths {
                Some(paths) => {
                    // Redrawn by the steady tick while the call set count stands still.
                    bar.enable_steady_tick(Duration::from_millis(500));
                    style.with_key(
                        "paths",
                        move |_: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                            let _ = w.write_str(&paths_explored(&paths));
                        },
                    )
                }
                None => style,
            };
            bar.set_style(style);
        }
        return bar;
    }
    let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::hidden());
    let interval = std::env::var("COMMUTER_PROGRESS_SECS")
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .filter(|s| *s > 0.0)
        .map_or(Duration::from_secs(5), Duration::from_secs_f64);
    let weak = bar.downgrade();
    // The logger holds a weak reference: it ends when the stage finishes or drops its bar.
    let _ = std::thread::Builder::new()
        .name("progress".into())
        .spawn(move || {
            let mut last = std::time::Instant::now();
            loop {
                std::thread::sleep(Duration::from_millis(100).min(interval));
                let Some(bar) = weak.upgrade() else { return };
                if bar.is_finished() {
                    return;
                }
                if last.elapsed() >= interval {
                    last = std::time::Instant::now();
                    eprintln!("{}", progress_line(&bar, unit, paths.as_deref()));
                }
            }
        });
    bar
}

/// `h:mm:ss`.
fn clock(secs: u64) -> String {
    format!("{}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60)
}

/// `progress: 45/171 call sets (26%) in 0:00:14, 3.2/s, 0:00:39 left, open/stat`.
fn progress_line(bar: &ProgressBar, unit: &str, paths: Option<&AtomicU64>) -> String {
    let (pos, len) = (bar.position(), bar.length().unwrap_or(0));
    let mut s = format!("progress: {pos}/{len} {unit}");
    if let Some(percent) = (pos * 100).checked_div(len) {
        s.push_str(&format!(" ({percent}%)"));
    }
    s.push_str(&format!(" in {}", clock(bar.elapsed().as_secs())));
    let rate = bar.per_sec();
    s.push_str(&format!(", {rate:.1}/s"));
    if rate > 0.0 && len >= pos {
        let left = ((len - pos) as f64 / rate).round() as u64;
        s.push_str(&format!(", {} left", clock(left)));
    }
    if let Some(paths) = paths {
        s.push_str(", ");
        s.push_str(&paths_explored(paths));
    }
    let msg = bar.message();
    if !msg.is_empty() {
        s.push_str(", ");
        s.push_str(&msg);
    }
    s
}

/// Pretty JSON with a final newline.
pub fn to_json(value: &impl Serialize) -> Result<Vec<u8>> {
    let mut json = serde_json::to_vec_pretty(value).context("serializing the result")?;
    json.push(b'\n');
    Ok(json)
}
