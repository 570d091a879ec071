//! `commuter trace` through the real binary on the stock kernel: a small static C program with
//! a known reference pattern (compiled here with `cc -static`), traced in one VM boot, its
//! trace files read back with the crate's reader. Needs `./scripts/setup`.

use std::path::Path;
use std::process::Command;

use commuter_reftrace::{Format, Record, read};
use commuter_trace_format::reftrace::{Backing, Kind};

mod common;
use common::{commuter, ok, temp_dir};

/// Writes page A of an anonymous mapping; writes one page of a new file (an FS write), reads it
/// twice with pread (two FS reads of one page-cache page), maps the file and reads the page
/// (a VM read of that same page); a second thread writes another anonymous page.
const PROGRAM: &str = r#"
#include <fcntl.h>
#include <pthread.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static char *anon;

static void *second(void *arg) {
    (void)arg;
    anon[4096] = 'B';
    return 0;
}

int main(void) {
    static char buf[4096];
    anon = mmap(0, 2 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (anon == MAP_FAILED) return 1;
    anon[0] = 'A';
    int fd = open("data", O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) return 2;
    memset(buf, 'x', sizeof buf);
    if (write(fd, buf, sizeof buf) != sizeof buf) return 3;
    if (pread(fd, buf, sizeof buf, 0) != sizeof buf) return 4;
    if (pread(fd, buf, sizeof buf, 0) != sizeof buf) return 5;
    volatile char *m = mmap(0, 4096, PROT_READ, MAP_SHARED, fd, 0);
    if (m == MAP_FAILED) return 6;
    if (m[100] != 'x') return 7;
    pthread_t t;
    if (pthread_create(&t, 0, second, 0) || pthread_join(t, 0)) return 8;
    return 0;
}
"#;

fn records(path: &Path, format: Format) -> Vec<Record> {
    let t = read(path).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(t.format, format, "{}", path.display());
    t.records
}

#[test]
fn a_known_reference_pattern_appears_in_every_format() {
    let dir = temp_dir("trace", "pattern");
    std::fs::write(dir.join("prog.c"), PROGRAM).expect("write source");
    let cc = Command::new("cc")
        .current_dir(&dir)
        .args(["-static", "-O1", "-pthread", "-o", "prog", "prog.c"])
        .output()
        .expect("cc runs (scripts/setup installs gcc)");
    assert!(cc.status.success(), "{cc:?}");
    let started = std::time::Instant::now();
    let stdout = ok(&commuter(&["trace", "-o", "out", "--", "./prog"], &dir));
    eprintln!("traced in {:.1} s", started.elapsed().as_secs_f64());
    assert!(stdout.contains("(exit code 0)"), "{stdout}");
    // Instrumentation was on before the workload began, every access had a task and a page.
    assert!(
        !stdout.contains("warning:") && !stdout.contains("note:"),
        "{stdout}"
    );
    let pid: u32 = stdout
        .split_once("workload pid ")
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no pid in {stdout}"));
    let out = dir.join("out");

    // The process: one file page written once, read twice by pread, then read through the
    // mapping, all with the same canonical page number.
    let proc = records(
        &out.join(format!("per-process/{pid}.gz")),
        Format::PerProcess,
    );
    let fs: Vec<&Record> = proc
        .iter()
        .filter(|r| matches!(r.kind, Kind::FsRead | Kind::FsWrite))
        .collect();
    assert_eq!(
        fs.iter().map(|r| r.kind).collect::<Vec<_>>(),
        [Kind::FsWrite, Kind::FsRead, Kind::FsRead],
        "{fs:?}"
    );
    let page = fs[0].page;
    assert!(
        fs.iter()
            .all(|r| r.page == page && r.backing == Some(Backing::File)),
        "{fs:?}"
    );
    assert!(
        fs.iter().all(|r| r.tid == Some(pid)),
        "the main thread's calls: {fs:?}"
    );
    let last_fs = proc
        .iter()
        .rposition(|r| r.kind == Kind::FsRead)
        .expect("FS read");
    assert!(
        proc[last_fs..]
            .iter()
            .any(|r| r.kind == Kind::VmRead && r.page == page && r.backing == Some(Backing::File)),
        "the mapped file page is read as the page the FS reads named"
    );
    // Anonymous writes by both threads; the program's own image is file pages.
    assert!(
        proc.iter()
            .any(|r| r.kind == Kind::VmWrite && r.backing == Some(Backing::Anon))
    );
    assert!(
        proc.iter()
            .any(|r| r.kind == Kind::VmRead && r.backing == Some(Backing::File))
    );
    let mut tids: Vec<u32> = proc.iter().filter_map(|r| r.tid).collect();
    tids.sort_unstable();
    tids.dedup();
    assert_eq!(
        tids.len(),
        2,
        "the main thread and the second one: {tids:?}"
    );
    assert_eq!(tids[0], pid, "the main thread's tid is the pid");
    let second = records(
        &out.join(format!("per-thread/{pid}/{}.gz", tids[1])),
        Format::PerThread,
    );
    assert!(
        second
            .iter()
            .any(|r| r.kind == Kind::VmWrite && r.backing == Some(Backing::Anon))
    );
    let main = records(
        &out.join(format!("per-thread/{pid}/{pid}.gz")),
        Format::PerThread,
    );
    assert_eq!(main.len() + second.len(), proc.len());

    // basic and basic-named hold every process's references, in one order.
    let basic = records(&out.join("basic.gz"), Format::Basic);
    let named = records(&out.join("basic-named.gz"), Format::BasicNamed);
    assert_eq!(basic.len(), named.len());
    assert!(
        basic
            .iter()
            .zip(&named)
            .all(|(b, n)| (b.kind, b.page) == (n.kind, n.page))
    );
    assert!(basic.len() >= proc.len());
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).expect("summary"))
            .expect("JSON");
    assert_eq!(summary["total"]["fs_write"], 1, "{summary}");

    // --show prints a file's records.
    let shown = ok(&commuter(
        &[
            "trace",
            "--show",
            &format!("out/per-process/{pid}.gz"),
            "--limit",
            "3",
        ],
        &dir,
    ));
    assert_eq!(shown.lines().count(), 4, "{shown}");
}

#[test]
fn a_dynamic_program_or_no_command_is_refused_before_any_vm_boots() {
    let dir = temp_dir("trace", "refused");
    let out = commuter(&["trace", "--", "/bin/true"], &dir);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cc -static"));
    let out = commuter(&["trace"], &dir);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("nothing to trace"));
    assert!(!dir.join("reftrace").exists());
    // An output directory that holds something else is left alone.
    std::fs::create_dir_all(dir.join("mine")).expect("mkdir");
    let out = commuter(&["trace", "-o", "mine", "--", "/bin/true"], &dir);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a reference trace directory"));
}
