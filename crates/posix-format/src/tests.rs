use serde_json::{Value as Json, json};

use super::*;

fn every_call() -> Vec<PosixCall> {
    vec![
        PosixCall::Open {
            proc: 1,
            name: "__f0".into(),
            creat: true,
            excl: false,
            trunc: true,
            anyfd: false,
        },
        PosixCall::Link {
            old: "__f0".into(),
            new: "__f1".into(),
        },
        PosixCall::Unlink {
            name: "__f0".into(),
        },
        PosixCall::Rename {
            src: "__f0".into(),
            dst: "__f1".into(),
        },
        PosixCall::Stat {
            name: "__f0".into(),
        },
        PosixCall::Fstat { proc: 0, fd: 10 },
        PosixCall::Lseek {
            proc: 0,
            fd: 10,
            off: 4096,
            whence: Whence::None,
        },
        PosixCall::Close { proc: 1, fd: 11 },
        PosixCall::Pipe { proc: 0 },
        PosixCall::Read { proc: 0, fd: 10 },
        PosixCall::Write {
            proc: 0,
            fd: 10,
            data: 3,
        },
        PosixCall::Pread {
            proc: 0,
            fd: 10,
            off: 0,
        },
        PosixCall::Pwrite {
            proc: 1,
            fd: 12,
            off: 8192,
            data: 16,
        },
        PosixCall::Mmap {
            proc: 0,
            anon: true,
            writable: true,
            fixed: false,
            page: 0,
            fd: None,
            off: None,
        },
        PosixCall::Munmap { proc: 0, page: 2 },
        PosixCall::Mprotect {
            proc: 1,
            page: 1,
            writable: false,
        },
        PosixCall::Memread { proc: 0, page: 3 },
        PosixCall::Memwrite {
            proc: 0,
            page: 0,
            data: 0,
        },
        PosixCall::Sync,
        PosixCall::Fsync { proc: 0, fd: 10 },
        PosixCall::Reboot,
    ]
}

fn stat() -> Stat {
    Stat {
        inum: "Inum0".into(),
        size: 2,
        nlink: 1,
        atime: 0,
        mtime: 1,
        ctime: 1,
    }
}

fn every_result() -> Vec<PosixResult> {
    vec![
        PosixResult::Open(Outcome::Ok(10)),
        PosixResult::Link(Outcome::Err(errno::EEXIST)),
        PosixResult::Unlink(Outcome::Ok(())),
        PosixResult::Rename(Outcome::Err(errno::ENOENT)),
        PosixResult::Stat(Outcome::Ok(stat())),
        PosixResult::Fstat(Outcome::Ok(Maybe::None)),
        PosixResult::Lseek(Outcome::Ok(2)),
        PosixResult::Close(Outcome::Err(errno::EBADF)),
        PosixResult::Pipe(PipeFds {
            read: 10,
            write: 11,
        }),
        PosixResult::Read(Outcome::Ok(Maybe::Some(4))),
        PosixResult::Write(Outcome::Err(errno::EPIPE)),
        PosixResult::Pread(Outcome::Ok(Maybe::None)),
        PosixResult::Pwrite(Outcome::Ok(4096)),
        PosixResult::Mmap(Outcome::Ok("Va0".into())),
        PosixResult::Munmap(Outcome::Ok(())),
        PosixResult::Mprotect(Outcome::Err(errno::EACCES)),
        PosixResult::Memread(Outcome::Err(signal::SIGSEGV)),
        PosixResult::Memwrite(Outcome::Ok(())),
        PosixResult::Sync(()),
        PosixResult::Fsync(Outcome::Ok(())),
        PosixResult::Reboot(()),
    ]
}

#[test]
fn every_call_round_trips_through_its_tests_json_fields() {
    let calls = every_call();
    let names: Vec<&str> = calls.iter().map(PosixCall::name).collect();
    assert_eq!(names, CALLS, "one example per call, in the model's order");
    for call in calls {
        let args = call.args_json().expect("serialises");
        let back = PosixCall::from_parts(call.name(), &args).expect("parses back");
        assert_eq!(back, call);
    }
}

#[test]
fn every_result_round_trips_through_its_tests_json_field() {
    let results = every_result();
    let names: Vec<&str> = results.iter().map(PosixResult::name).collect();
    assert_eq!(names, CALLS, "one example per call, in the model's order");
    for result in results {
        let json = result.result_json().expect("serialises");
        let back = PosixResult::from_parts(result.name(), &json).expect("parses back");
        assert_eq!(back, result);
    }
}

/// The `tests.json` shape of a few calls, as the model wrote it before the schema was typed.
#[test]
fn the_json_shape_of_arguments_is_pinned() {
    let args = |c: &PosixCall| c.args_json().expect("serialises");
    let calls = every_call();
    assert_eq!(
        args(&calls[0]),
        json!({"proc": 1, "name": "__f0", "creat": true, "excl": false, "trunc": true, "anyfd": false})
    );
    assert_eq!(
        args(&calls[6]),
        json!({"proc": 0, "fd": 10, "off": 4096, "whence": "none"})
    );
    assert_eq!(
        args(&calls[13]),
        json!({"proc": 0, "anon": true, "writable": true, "fixed": false, "page": 0})
    );
    let file_mmap = PosixCall::Mmap {
        proc: 1,
        anon: false,
        writable: false,
        fixed: true,
        page: 2,
        fd: Some(10),
        off: Some(0),
    };
    assert_eq!(
        args(&file_mmap),
        json!({"proc": 1, "anon": false, "writable": false, "fixed": true, "page": 2, "fd": 10, "off": 0})
    );
    assert_eq!(args(&PosixCall::Sync), Json::Null);
}

#[test]
fn the_json_shape_of_results_is_pinned() {
    let result = |r: PosixResult| r.result_json().expect("serialises");
    assert_eq!(
        result(PosixResult::Open(Outcome::Ok(10))),
        json!({"ok": 10})
    );
    assert_eq!(
        result(PosixResult::Unlink(Outcome::Err(errno::ENOENT))),
        json!({"err": 2})
    );
    assert_eq!(
        result(PosixResult::Link(Outcome::Ok(()))),
        json!({"ok": null})
    );
    assert_eq!(
        result(PosixResult::Read(Outcome::Ok(Maybe::Some(4)))),
        json!({"ok": {"some": 4}})
    );
    assert_eq!(
        result(PosixResult::Fstat(Outcome::Ok(Maybe::None))),
        json!({"ok": "none"})
    );
    assert_eq!(
        result(PosixResult::Stat(Outcome::Ok(stat()))),
        json!({"ok": {"inum": "Inum0", "size": 2, "nlink": 1, "atime": 0, "mtime": 1, "ctime": 1}})
    );
    assert_eq!(
        result(PosixResult::Pipe(PipeFds {
            read: 10,
            write: 11
        })),
        json!({"read": 10, "write": 11})
    );
    assert_eq!(result(PosixResult::Sync(())), Json::Null);
}

#[test]
fn the_json_shape_of_a_setup_is_pinned() {
    let json = json!({
        "inodes": [{"data": [1, 0], "nlink": 2}, {"data": []}],
        "names": [{"name": "__f0", "inode": 0}],
        "pipes": [{"data": [2]}],
        "procs": [{"fds": [{"fd": 10, "file": {"inode": 0, "off": 4096}},
                           {"fd": 11, "pipe": {"pipe": 0, "write": true}}],
                   "maps": [{"page": 0, "writable": true, "anon": {"data": 3}},
                            {"page": 1, "writable": false, "file": {"inode": 1, "off": 0}},
                            {"page": 2, "writable": true, "anon": {"data": 0},
                             "populated": false}]},
                  {"fds": [], "maps": []}]
    });
    let setup = Setup::from_json(&json).expect("parses");
    assert_eq!(setup.inodes[0].nlink, Some(2));
    assert_eq!(setup.inodes[1].nlink, None);
    assert_eq!(
        setup.procs[0].fds[1].target,
        FdTarget::Pipe {
            pipe: 0,
            write: true
        }
    );
    assert_eq!(
        setup.procs[0].maps[1].backing,
        Backing::File { inode: 1, off: 0 }
    );
    let populated: Vec<bool> = setup.procs[0].maps.iter().map(|m| m.populated).collect();
    assert_eq!(populated, [true, true, false]);
    assert_eq!(setup.to_json().expect("serialises"), json);
}

#[test]
fn an_untouched_anonymous_page_holds_zeros() {
    let map = |data, populated| Map {
        page: 4,
        backing: Backing::Anon { data },
        writable: true,
        populated,
    };
    assert_eq!(map(3, true).check(), Ok(()));
    assert_eq!(map(0, false).check(), Ok(()));
    let e = map(3, false).check().unwrap_err();
    assert!(
        e.contains("page 4") && e.contains("\"populated\": true"),
        "{e}"
    );
}

#[test]
fn errors_name_the_call_and_what_is_wrong() {
    let e = PosixCall::from_parts("open", &json!({"name": "__f0"})).unwrap_err();
    assert!(e.to_string().starts_with("`open` arguments"), "{e}");
    assert!(e.to_string().contains("proc"), "{e}");
    let e = PosixCall::from_parts("chmod", &json!({})).unwrap_err();
    assert!(e.to_string().contains("chmod"), "{e}");
    let e = PosixResult::from_parts("read", &json!({"ok": {"some": 300}})).unwrap_err();
    assert!(e.to_string().starts_with("`read` result"), "{e}");
    assert!(Setup::from_json(&json!({"inodes": 3})).is_err());
}

#[test]
fn tables_name_their_numbers() {
    assert_eq!(errno_name(errno::ENOENT), "ENOENT");
    assert_eq!(errno_name(99), "E99");
    assert_eq!(signal_name(signal::SIGBUS), "SIGBUS");
    assert_eq!(signal_name(3), "SIG3");
}

#[test]
fn links_beyond_the_names_are_hidden_ones() {
    let inode = |nlink| Inode {
        data: vec![],
        nlink,
    };
    assert_eq!(inode(None).hidden_links(2), 0);
    assert_eq!(inode(Some(3)).hidden_links(1), 2);
    assert_eq!(inode(Some(0)).hidden_links(0), 0);
}
