//! A program that embeds the command line with its own model (as `examples/custom_model.rs`).

use std::process::ExitCode;

use commuter_engine::{Call, Int, Model, Symbolic};

#[derive(Clone, Debug, Symbolic)]
struct Cell {
    v: Int,
}

struct CellModel;

impl Model for CellModel {
    type State = Cell;
    fn name(&self) -> &'static str {
        "cell"
    }
    fn description(&self) -> &'static str {
        "one integer: bump"
    }
    fn calls(&self) -> Vec<Call<Cell>> {
        vec![Call::new("bump", bump)]
    }
}

fn bump(s: &mut Cell, _: &()) -> Int {
    s.v = &s.v + 1;
    s.v.clone()
}

#[test]
fn a_user_model_runs_through_the_same_command_line() {
    let dir = std::env::temp_dir().join(format!("commuter-embed-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let out = dir.join("cell.json");
    let out_arg = out.to_string_lossy().into_owned();
    let code = commuter::run(
        vec![Box::new(CellModel)],
        [
            "commuter",
            "analyze",
            "-m",
            "cell",
            "--print-conds",
            "-o",
            &out_arg,
        ],
    );
    assert_eq!(code, ExitCode::SUCCESS);
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&out).expect("written")).expect("json");
    // bump returns the new value: the second bump sees the first, so they never commute.
    assert_eq!(json["call_sets"][0]["commutes"], "never");
    let code = commuter::run(
        vec![Box::new(CellModel)],
        ["commuter", "analyze", "-m", "nope"],
    );
    assert_eq!(code, ExitCode::from(2));
    let _ = std::fs::remove_dir_all(&dir);
}
