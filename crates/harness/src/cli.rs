//! The runner's command line and its main loop.

use crate::adapter::Adapter;
use crate::input::{self, Selection};
use crate::report::{FORMAT_VERSION, HarnessLine, emit};
use crate::runner::{Placement, Runner, Totals};
use crate::sys;

/// Every test ran and every result matched.
pub const EXIT_PASS: i32 = 0;
/// Some test mismatched or could not run.
pub const EXIT_FAILED: i32 = 1;
/// Bad command line, input or environment: no test ran.
pub const EXIT_USAGE: i32 = 2;
/// A call did not return: the run stopped part way.
pub const EXIT_ABORTED: i32 = 3;

/// Where `--init` (or running as PID 1) reads the tests.
pub const INIT_TESTS: &str = "/tests.json";

/// Whether to pin the calls to their CPUs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PinMode {
    /// Pin when the machine has the CPUs, else run unpinned and say so (the default natively).
    Auto,
    /// Pin or fail (the default as `/init`: a traced run must be pinned).
    Require,
    /// Never pin.
    Off,
}

/// The parsed command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    pub file: Option<String>,
    pub init: bool,
    pub pin: Option<PinMode>,
    pub cpus: [u32; 2],
    pub selection: Selection,
    pub list: bool,
    pub help: bool,
}

pub const USAGE: &str = "\
usage: RUNNER [OPTIONS] [TESTS_JSON]

Runs the tests of a commuter tests.json (from `commuter testgen -m MODEL`) against this
implementation: per test, call A on CPU 1 then call B on CPU 2, a warm-up and a traced run,
one `@@commuter-harness {json}` line per test on stdout.

options:
  --test ID          run only test ID (repeatable)
  --calls A/B        run only call set A/B, e.g. insert/len (repeatable)
  --cpus A,B         the CPUs of call A and call B (default 1,2)
  --pin MODE         auto (default): pin when the CPUs exist, else run unpinned and say so;
                     require (default with --init): pin or fail; off: never pin
  --init             the defaults of /init: read /tests.json unless a file is given, --pin
                     require (implied as PID 1, which also mounts /proc and /sys and powers
                     off at the end; other processes never mount or power off)
  --list             print the selected test ids (id and call set per line) and exit
  -h, --help         this text

exit: 0 all passed, 1 a mismatch or a test error, 2 bad usage/input/environment (nothing ran),
3 a call never returned (run aborted)";

/// Parses the arguments (without the program name).
pub fn parse_args(args: &[String]) -> Result<Options, String> {
    let mut o = Options {
        file: None,
        init: false,
        pin: None,
        cpus: [1, 2],
        selection: Selection::default(),
        list: false,
        help: false,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = |name: &str| {
            it.next()
                .cloned()
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match a.as_str() {
            "--test" => o.selection.tests.push(value("--test")?),
            "--calls" => o.selection.call_sets.push(value("--calls")?),
            "--cpus" => o.cpus = parse_cpus(&value("--cpus")?)?,
            "--pin" => {
                o.pin = Some(match value("--pin")?.as_str() {
                    "auto" => PinMode::Auto,
                    "require" => PinMode::Require,
                    "off" => PinMode::Off,
                    other => {
                        return Err(format!("--pin {other:?}: expected auto, require or off"));
                    }
                })
            }
            "--init" => o.init = true,
            "--list" => o.list = true,
            "-h" | "--help" => o.help = true,
            // The kernel hands init its command line words after `--`; a leading `--` is noise.
            "--" => {}
            s if s.starts_with('-') => return Err(format!("unknown option {s:?}")),
            s if o.file.is_none() => o.file = Some(s.to_string()),
            s => return Err(format!("more than one tests file: {s:?}")),
        }
    }
    Ok(o)
}

fn parse_cpus(s: &str) -> Result<[u32; 2], String> {
    let bad = || format!("--cpus {s:?}: expected two different CPU numbers other than 0, e.g. 1,2");
    let (a, b) = s.split_once(',').ok_or_else(bad)?;
    let a: u32 = a.trim().parse().map_err(|_| bad())?;
    let b: u32 = b.trim().parse().map_err(|_| bad())?;
    if a == b || a == 0 || b == 0 {
        return Err(bad());
    }
    Ok([a, b])
}

/// Decides where the calls run.
pub fn placement(mode: PinMode, cpus: [u32; 2], online: usize) -> Result<Placement, String> {
    let have = cpus.iter().all(|c| (*c as usize) < online);
    let missing = || {
        format!(
            "{online} CPUs online, calls A and B need CPUs {} and {} (qemu -smp {})",
            cpus[0],
            cpus[1],
            cpus.iter().max().map_or(3, |m| m + 1)
        )
    };
    match mode {
        PinMode::Off => Ok(Placement::Unpinned),
        PinMode::Auto | PinMode::Require if have => Ok(Placement::Pinned(cpus)),
        PinMode::Auto => Ok(Placement::Unpinned),
        PinMode::Require => Err(format!("{}; or run with --pin auto or off", missing())),
    }
}

fn unpinned_reason(mode: PinMode, cpus: [u32; 2], online: usize) -> String {
    match mode {
        PinMode::Off => "--pin off".into(),
        _ => format!(
            "{online} CPUs online, calls A and B need CPUs {} and {}: the calls run unpinned",
            cpus[0], cpus[1]
        ),
    }
}

/// The words after ` -- ` on a kernel command line: the arguments meant for init.
pub fn init_args(cmdline: &str) -> Vec<String> {
    let mut words = cmdline.split_whitespace();
    if !words.any(|w| w == "--") {
        return Vec::new();
    }
    words.map(str::to_string).collect()
}

/// Runs the command line `args` for adapter `A`, printing its lines on stdout; returns the
/// exit code. `init` is set when the runner is PID 1 (the caller then powers off).
pub fn run<A: Adapter + 'static>(args: &[String], init: &mut bool) -> i32 {
    run_with::<A>(args, init, &mut emit)
}

/// [`run`], handing every line to `emit` (tests collect them).
pub fn run_with<A: Adapter + 'static>(
    args: &[String],
    init: &mut bool,
    emit: &mut dyn FnMut(&HarnessLine),
) -> i32 {
    // Mounting and powering off are for PID 1 alone: as any other root process they would
    // change the host's mounts and power the host off.
    let pid1 = sys::is_pid1();
    *init = pid1;
    if pid1 {
        for (source, target, fstype) in [("proc", "/proc", "proc"), ("sysfs", "/sys", "sysfs")] {
            if let Err(e) = sys::mount(source, target, fstype) {
                return fatal(
                    emit,
                    &format!("mount {fstype} on {target}: {e}"),
                    EXIT_USAGE,
                );
            }
        }
    }
    // As PID 1 the kernel also hands init every boot parameter it does not know (`nokaslr`
    // on some kernels): only what follows `--` on its command line is ours.
    let kernel_args = pid1
        .then(|| std::fs::read_to_string("/proc/cmdline").ok())
        .flatten();
    let args = match &kernel_args {
        Some(cmdline) => init_args(cmdline),
        None => args.to_vec(),
    };
    let o = match parse_args(&args) {
        Ok(o) => o,
        Err(e) => return fatal(emit, &format!("{e}\n\n{USAGE}"), EXIT_USAGE),
    };
    let init_defaults = o.init || pid1;
    if o.help {
        println!("{USAGE}");
        return EXIT_PASS;
    }
    let file = match (&o.file, init_defaults) {
        (Some(f), _) => f.clone(),
        (None, true) => INIT_TESTS.to_string(),
        (None, false) => {
            return fatal(emit, &format!("no tests file given\n\n{USAGE}"), EXIT_USAGE);
        }
    };
    let tests = match input::load::<A>(&file, &o.selection) {
        Ok(t) => t,
        Err(e) => return fatal(emit, &e.to_string(), EXIT_USAGE),
    };
    if o.list {
        for t in &tests {
            println!("{}\t{}", t.test.id, t.call_set);
        }
        return EXIT_PASS;
    }
    let mode = o.pin.unwrap_or(if *init {
        PinMode::Require
    } else {
        PinMode::Auto
    });
    let online = sys::online_cpus();
    let placement = match placement(mode, o.cpus, online) {
        Ok(p) => p,
        Err(e) => return fatal(emit, &e, EXIT_USAGE),
    };
    let unpinned =
        (placement == Placement::Unpinned).then(|| unpinned_reason(mode, o.cpus, online));
    if let Some(why) = &unpinned {
        eprintln!("warning: {why}");
    }
    emit(&HarnessLine::Start {
        format: FORMAT_VERSION,
        model: A::MODEL.to_string(),
        implementation: A::NAME.to_string(),
        tests: tests.len(),
        cpus: match placement {
            Placement::Pinned(c) => Some(c),
            Placement::Unpinned => None,
        },
        unpinned,
    });
    let mut runner = match Runner::<A>::start(placement) {
        Ok(r) => r,
        Err(e) => return fatal(emit, &e.0, EXIT_USAGE),
    };
    let mut totals = Totals::default();
    for (index, t) in tests.iter().enumerate() {
        match runner.run_test(index, t, &mut totals) {
            Ok(line) => emit(&line),
            Err(abort) => return fatal(emit, &abort.0, EXIT_ABORTED),
        }
    }
    emit(&HarnessLine::Done {
        tests: tests.len(),
        passed: totals.passed,
        mismatched: totals.mismatched,
        errors: totals.errors,
    });
    runner.stop();
    if totals.mismatched + totals.errors == 0 {
        EXIT_PASS
    } else {
        EXIT_FAILED
    }
}

/// Explains on stderr, reports a fatal line, returns `code`.
fn fatal(emit: &mut dyn FnMut(&HarnessLine), message: &str, code: i32) -> i32 {
    eprintln!("error: {message}");
    let first = message.lines().next().unwrap_or_default();
    emit(&HarnessLine::Fatal {
        message: first.to_string(),
    });
    code
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn init_takes_only_what_follows_the_kernel_double_dash() {
        let cmdline = "console=ttyS0 quiet nokaslr isolcpus=1,2 -- --calls get/len\n";
        assert_eq!(init_args(cmdline), args(&["--calls", "get/len"]));
        assert!(init_args("console=ttyS0 nokaslr\n").is_empty());
    }

    #[test]
    fn command_lines() {
        let o = parse_args(&args(&[
            "--test", "x_0", "--calls", "get/len", "--cpus", "2,3", "--pin", "off", "t.json",
        ]))
        .expect("parses");
        assert_eq!(o.file.as_deref(), Some("t.json"));
        assert_eq!(o.selection.tests, ["x_0"]);
        assert_eq!(o.selection.call_sets, ["get/len"]);
        assert_eq!(o.cpus, [2, 3]);
        assert_eq!(o.pin, Some(PinMode::Off));
        // What the kernel hands init after `--` on its command line.
        let o = parse_args(&args(&["--", "--init"])).expect("parses");
        assert!(o.init && o.file.is_none());
        for bad in [
            &["--pin", "sometimes"][..],
            &["--cpus", "1,1"],
            &["--cpus", "0,1"],
            &["--cpus", "x"],
            &["--frob"],
            &["a.json", "b.json"],
            &["--test"],
        ] {
            assert!(parse_args(&args(bad)).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn pinning_falls_back_only_when_allowed() {
        assert_eq!(
            placement(PinMode::Auto, [1, 2], 3),
            Ok(Placement::Pinned([1, 2]))
        );
        assert_eq!(placement(PinMode::Auto, [1, 2], 2), Ok(Placement::Unpinned));
        assert_eq!(placement(PinMode::Off, [1, 2], 8), Ok(Placement::Unpinned));
        let e = placement(PinMode::Require, [1, 2], 2).expect_err("refused");
        assert!(e.contains("qemu -smp 3"), "{e}");
    }
}
