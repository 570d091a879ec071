//! `commuter-harness`: runs commuter's tests (`tests.json`) against an implementation of a
//! model, as a static test runner binary that works natively and as the `/init` of a VM under
//! the tracer.
//!
//! # Writing a runner
//!
//! Implement [`Adapter`] for your implementation (build it from a test's `setup`, parse a
//! call, perform it, put its result in the model's terms) and link this crate:
//!
//! ```text
//! fn main() {
//!     commuter_harness::main::<MyAdapter>()
//! }
//! ```
//!
//! [`models`] has typed views of the built-in `kv` and `counter` models' JSON. Build the
//! binary static, for an explicit target (so build scripts stay dynamic), as `scripts/setup`
//! builds `impls/`:
//!
//! ```text
//! RUSTFLAGS="-C target-feature=+crt-static -C relocation-model=static" \
//!     cargo build --release --target x86_64-unknown-linux-gnu
//! ```
//!
//! # Command line
//!
//! `RUNNER [--test ID]... [--calls A/B]... [--cpus A,B] [--pin auto|require|off] [--init]
//! [--list] [TESTS_JSON]` (see [`cli::USAGE`]). `TESTS_JSON` is a `tests.json` as `commuter
//! testgen -m MODEL` writes it (schema `commuter.tests` version 1, read with the same types,
//! `commuter-tests-format`); its model must be the adapter's ([`Adapter::MODEL`]), every test must
//! have two calls. `--test` and `--calls` select tests; an id or call set the file lacks is an
//! error. Every call of the selected tests is parsed before the first test runs.
//!
//! # What a run does
//!
//! The coordinator (pinned to CPU 0) builds a fresh instance per run with [`Adapter::setup`];
//! call A runs on a thread pinned to CPU 1 (`--cpus`), then, once A has returned, call B on a
//! thread pinned to CPU 2, hand-offs by futex (idle threads sleep in the kernel, they do not
//! spin). Each test runs twice, each on a fresh instance: a warm-up run, unmarked and not
//! reported, then the traced run, marked exactly as the POSIX guest marks its tests
//! (`commuter-trace-format`'s 9-byte no-op markers): begin-test (argument: the test's index
//! among the selected tests) on CPU 0 before call A is released; begin-call and end-call
//! (argument: slot, 0 = A, 1 = B) on the call's CPU around [`Adapter::call`] alone; end-test
//! (the index) on CPU 0 after B has returned. The traced run's results are checked: each
//! call's result must equal what `tests.json` expects of it in every order (for a commutative
//! test that is one value; a model with internal choices may allow several, any of which
//! passes). An adapter whose model leaves values to the implementation (POSIX: times, new
//! fds) compares through [`Adapter::accepts`] instead.
//!
//! Pinning (`--pin`): `auto`, the default natively, pins when CPUs 1 and 2 are online and
//! otherwise runs the calls unpinned, with a warning on stderr and the reason in the start
//! line (so the binary runs on a 2-core host: the markers are real no-ops). `require`, the
//! default as `/init`, fails with exit 2 when the CPUs are missing. `off` never pins.
//!
//! # Output
//!
//! One line per event on stdout, `@@commuter-harness ` and a JSON object ([`HarnessLine`],
//! format version [`report::FORMAT_VERSION`]); warnings and error explanations go to stderr.
//!
//! ```text
//! @@commuter-harness {"event":"start","format":1,"model":"kv","implementation":"kv-mutex","tests":86,"cpus":[1,2]}
//! @@commuter-harness {"event":"test","index":0,"id":"insert_insert_0_0","outcome":"pass","calls":[{"slot":"a","call":"insert","ok":true,"actual":"none","expected":["none"],"cpu":1,"elapsed_ns":420},{"slot":"b","call":"insert","ok":true,"actual":"none","expected":["none"],"cpu":2,"elapsed_ns":380}]}
//! @@commuter-harness {"event":"test","index":5,"id":"get_len_1_0","outcome":"mismatch","calls":[{"slot":"a","call":"get","ok":false,"actual":"none","expected":[{"some":"Value0"}],"cpu":1,"elapsed_ns":90},...]}
//! @@commuter-harness {"event":"test","index":7,"id":"insert_get_2_0","outcome":"error","message":"traced run: setup: not supported by this implementation: ..."}
//! @@commuter-harness {"event":"done","tests":86,"passed":84,"mismatched":1,"errors":1}
//! @@commuter-harness {"event":"fatal","message":"..."}
//! ```
//!
//! Unpinned, the start line has `"cpus":null` and `"unpinned":"<why>"`. A run ends with `done`,
//! or with `fatal` (bad input or environment before the first test; a call that never
//! returned, after which nothing more is printed).
//!
//! # Exit codes
//!
//! [`cli::EXIT_PASS`] 0: every selected test passed. [`cli::EXIT_FAILED`] 1: some test
//! mismatched or could not run. [`cli::EXIT_USAGE`] 2: bad command line, input or environment,
//! no test ran. [`cli::EXIT_ABORTED`] 3: a call did not return within
//! [`runner::TIMEOUT_MS`]. As PID 1 there is no exit code (PID 1 must not exit): the
//! `done` or `fatal` line says how it went, then the machine powers off.
//!
//! # As `/init`
//!
//! When it finds itself PID 1 the runner mounts `proc` on `/proc` and `sysfs` on `/sys` (it
//! counts online CPUs through them), reads `/tests.json` unless a file is given, defaults to
//! `--pin require`, and powers off (`reboot(RB_POWER_OFF)`, after `sync`) when done, whatever
//! happened, like the POSIX guest. `--init` gives any process the same defaults (file and
//! pinning) but never mounts or powers off: as a root process on a host that would change the
//! host's mounts and power it off. It needs nothing else: no `/dev`, no
//! writable file system, no shell. Arguments reach it from the kernel command line after `--`
//! (`... -- --calls insert/len`). Its stdout is the console the kernel gives init, so the
//! initramfs needs `/dev/console` (character device 5:1) besides `/init` (this binary) and
//! `/tests.json`, as the POSIX guest's does. The kernel command line should isolate CPUs 1 and
//! 2 as for the guest (`isolcpus=`, `nohz_full=`, `rcu_nocbs=`); pinning to isolated CPUs
//! works although init's own affinity excludes them (the runner counts online CPUs, not its
//! affinity mask).

pub mod adapter;
pub mod cli;
pub mod input;
mod marker;
pub mod models;
pub mod report;
pub mod runner;
mod sys;

pub use adapter::{Adapter, AdapterError};
pub use commuter_tests_format::{TestCall, TestCase};
pub use report::{CallReport, HarnessLine, Outcome};

/// The whole runner: parses the command line, runs the tests, exits with the code the crate
/// documentation lists (or powers off, as PID 1).
pub fn main<A: Adapter + 'static>() -> ! {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut init = false;
    let code = cli::run::<A>(&args, &mut init);
    if init {
        sys::power_off()
    }
    std::process::exit(code)
}
