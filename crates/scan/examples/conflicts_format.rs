//! `conflicts.json` version 4 against version 5 on one real file, in one process: size, time to
//! write (serialise and write the file) and time to read (read the file, parse, and for version
//! 5 resolve the tables into the in-memory structure), the median of several rounds each.
//!
//! `cargo run --release -p commuter-scan --example conflicts_format -- CONFLICTS.json [ROUNDS]`
//! (`bench/conflicts-format` runs it). The input may be of any version read (3 to 5).

use std::path::Path;
use std::time::{Duration, Instant};

use commuter_scan::ConflictsFile;

fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(input) = args.first() else {
        return Err("usage: conflicts_format CONFLICTS.json [ROUNDS]".into());
    };
    let rounds: usize = match args.get(1) {
        Some(r) => r
            .parse()
            .map_err(|e| format!("ROUNDS `{r}`: {e}; give a count, e.g. 5"))?,
        None => 5,
    };
    let text = std::fs::read_to_string(input).map_err(|e| format!("cannot read `{input}`: {e}"))?;
    let file = ConflictsFile::from_json(&text).map_err(|e| format!("`{input}`: {e}"))?;
    drop(text);
    let dir = std::env::temp_dir().join(format!("conflicts-format-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let (v4_path, v5_path) = (dir.join("v4.json"), dir.join("v5.json"));
    // Version 4 as its writer wrote it: the in-memory structure, pretty-printed. The copy
    // that says version 4 is made once, here, so that the timed writes do the same work as
    // that writer did (serialise the structure), not a copy of the whole file.
    let v4 = ConflictsFile {
        version: 4,
        ..file.clone()
    };
    let write_v4 = || {
        let mut s = serde_json::to_string_pretty(&v4).expect("plain data");
        s.push('\n');
        s
    };
    let mut times = [const { Vec::<Duration>::new() }; 4];
    for _ in 0..rounds.max(1) {
        let t = Instant::now();
        write(&v4_path, &write_v4())?;
        times[0].push(t.elapsed());
        let t = Instant::now();
        write(&v5_path, &file.to_json())?;
        times[1].push(t.elapsed());
        let t = Instant::now();
        let a = read(&v4_path)?;
        times[2].push(t.elapsed());
        let t = Instant::now();
        let b = read(&v5_path)?;
        times[3].push(t.elapsed());
        if a != b || a != file {
            return Err("versions 4 and 5 did not read back the same data".into());
        }
    }
    let size = |p: &Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    let (s4, s5) = (size(&v4_path), size(&v5_path));
    let [w4, w5, r4, r5] = times.map(median);
    println!(
        "{input}: {} tests, {rounds} rounds (medians)",
        file.tests.len()
    );
    println!("             version 4     version 5   5/4");
    println!(
        "size      {:>10.1} MB {:>10.2} MB  {:.3}",
        mb(s4),
        mb(s5),
        s5 as f64 / s4 as f64
    );
    let row = |what: &str, a: Duration, b: Duration| {
        println!(
            "{what}  {:>10.3} s  {:>10.3} s   {:.3}",
            a.as_secs_f64(),
            b.as_secs_f64(),
            b.as_secs_f64() / a.as_secs_f64()
        );
    };
    row("write   ", w4, w5);
    row("read    ", r4, r5);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

fn write(path: &Path, text: &str) -> Result<(), String> {
    std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))
}

fn read(path: &Path) -> Result<ConflictsFile, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    ConflictsFile::from_json(&text).map_err(|e| format!("{}: {e}", path.display()))
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1e6
}
