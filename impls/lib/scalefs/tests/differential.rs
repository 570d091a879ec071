//! Property test: on random setups and random sequences of calls, the scalable implementation
//! returns what the naive one (the simple reference) returns, call after call, up to what the
//! model leaves to the implementation (times, the number of a created inode, the page of a
//! non-fixed mmap). fd numbers are compared exactly: both follow the lowest-fd rule.

use commuter_posix_format::{
    Backing as SB, Fd, FdTarget, Inode, Map, Name, Outcome, Pipe, PosixCall, PosixResult, Proc,
    Setup, Whence,
};
use proptest::prelude::*;
use scalefs::adapter::{normalize, perform};
use scalefs::{NaiveFs, PAGE, Posix, ScaleFs};

const NAMES: u8 = 4;
const PAGES: u32 = 3;

fn name() -> impl Strategy<Value = String> {
    (0..NAMES).prop_map(|i| format!("__f{i}"))
}

fn setup() -> impl Strategy<Value = Setup> {
    let inodes = prop::collection::vec((prop::collection::vec(0u8..4, 0..3), 0u64..2), 1..3);
    (
        inodes,
        prop::collection::vec(prop::collection::vec(1u8..4, 0..2), 0..2),
    )
        .prop_flat_map(|(inodes, pipes)| {
            let ni = inodes.len();
            let np = pipes.len();
            let names = prop::collection::btree_map(0..NAMES, 0..ni, 0..4);
            let fd = (0..ni, 0u64..3, 0..np.max(1), any::<bool>(), any::<bool>());
            let fds = prop::collection::vec(prop::collection::btree_map(10i32..14, fd, 0..4), 2);
            let map = (0..ni, 0u64..3, any::<bool>(), any::<bool>(), 0u8..3);
            let maps = prop::collection::vec(prop::collection::btree_map(0..PAGES, map, 0..3), 2);
            (Just(inodes), Just(pipes), names, fds, maps).prop_map(
                move |(inodes, pipes, names, fds, maps)| {
                    let names: Vec<Name> = names
                        .into_iter()
                        .map(|(n, inode)| Name {
                            name: format!("__f{n}"),
                            inode,
                        })
                        .collect();
                    let inodes = inodes
                        .iter()
                        .enumerate()
                        .map(|(i, (data, hidden))| Inode {
                            data: data.clone(),
                            nlink: Some(
                                names.iter().filter(|n| n.inode == i).count() as u64 + hidden,
                            ),
                        })
                        .collect();
                    let procs = fds
                        .into_iter()
                        .zip(maps)
                        .map(|(fds, maps)| Proc {
                            fds: fds
                                .into_iter()
                                .map(|(fd, (inode, off, pipe, is_pipe, write))| Fd {
                                    fd,
                                    target: if is_pipe && np > 0 {
                                        FdTarget::Pipe { pipe, write }
                                    } else {
                                        FdTarget::File {
                                            inode,
                                            off: off * PAGE,
                                        }
                                    },
                                })
                                .collect(),
                            maps: maps
                                .into_iter()
                                .map(|(page, (inode, off, anon, writable, data))| Map {
                                    page,
                                    backing: if anon {
                                        SB::Anon { data }
                                    } else {
                                        SB::File {
                                            inode,
                                            off: off * PAGE,
                                        }
                                    },
                                    writable,
                                    populated: true,
                                })
                                .collect(),
                        })
                        .collect();
                    Setup {
                        inodes,
                        names,
                        pipes: pipes.into_iter().map(|data| Pipe { data }).collect(),
                        procs,
                    }
                },
            )
        })
}

fn call() -> impl Strategy<Value = PosixCall> {
    let proc = 0usize..2;
    let fd = prop_oneof![0i32..4, 10i32..14];
    let off = (-1i64..4).prop_map(|p| p * PAGE as i64);
    let page = 0..PAGES;
    let data = 0u8..4;
    let whence = prop_oneof![
        Just(Whence::Set),
        Just(Whence::Cur),
        Just(Whence::End),
        Just(Whence::None)
    ];
    prop_oneof![
        (proc.clone(), name(), any::<[bool; 3]>()).prop_map(
            |(proc, name, [creat, excl, trunc])| {
                PosixCall::Open {
                    proc,
                    name,
                    creat,
                    excl,
                    trunc,
                    anyfd: false,
                }
            }
        ),
        (name(), name()).prop_map(|(old, new)| PosixCall::Link { old, new }),
        name().prop_map(|name| PosixCall::Unlink { name }),
        (name(), name()).prop_map(|(src, dst)| PosixCall::Rename { src, dst }),
        name().prop_map(|name| PosixCall::Stat { name }),
        (proc.clone(), fd.clone()).prop_map(|(proc, fd)| PosixCall::Fstat { proc, fd }),
        (proc.clone(), fd.clone(), off.clone(), whence).prop_map(|(proc, fd, off, whence)| {
            PosixCall::Lseek {
                proc,
                fd,
                off,
                whence,
            }
        }),
        (proc.clone(), fd.clone()).prop_map(|(proc, fd)| PosixCall::Close { proc, fd }),
        proc.clone().prop_map(|proc| PosixCall::Pipe { proc }),
        (proc.clone(), fd.clone()).prop_map(|(proc, fd)| PosixCall::Read { proc, fd }),
        (proc.clone(), fd.clone(), data.clone()).prop_map(|(proc, fd, data)| PosixCall::Write {
            proc,
            fd,
            data
        }),
        (proc.clone(), fd.clone(), off.clone()).prop_map(|(proc, fd, off)| PosixCall::Pread {
            proc,
            fd,
            off
        }),
        (proc.clone(), fd.clone(), off.clone(), data.clone()).prop_map(|(proc, fd, off, data)| {
            PosixCall::Pwrite {
                proc,
                fd,
                off,
                data,
            }
        }),
        (
            proc.clone(),
            any::<[bool; 3]>(),
            page.clone(),
            fd,
            off.prop_map(|o| o.max(0))
        )
            .prop_map(
                |(proc, [anon, writable, fixed], page, fd, off)| PosixCall::Mmap {
                    proc,
                    anon,
                    writable,
                    fixed,
                    page: if fixed { page } else { 0 },
                    fd: (!anon).then_some(fd),
                    off: (!anon).then_some(off),
                }
            ),
        (proc.clone(), page.clone()).prop_map(|(proc, page)| PosixCall::Munmap { proc, page }),
        (proc.clone(), page.clone(), any::<bool>()).prop_map(|(proc, page, writable)| {
            PosixCall::Mprotect {
                proc,
                page,
                writable,
            }
        }),
        (proc.clone(), page.clone()).prop_map(|(proc, page)| PosixCall::Memread { proc, page }),
        (proc, page, data).prop_map(|(proc, page, data)| PosixCall::Memwrite { proc, page, data }),
    ]
}

/// What the two implementations may differ in: a non-fixed mmap's page, besides what
/// `normalize` blanks.
fn comparable(call: &PosixCall, r: PosixResult, inodes: usize) -> PosixResult {
    match (call, r) {
        (PosixCall::Open { .. }, r @ PosixResult::Open(_)) | (PosixCall::Pipe { .. }, r) => r,
        (PosixCall::Mmap { fixed: false, .. }, PosixResult::Mmap(Outcome::Ok(_))) => {
            PosixResult::Mmap(Outcome::Ok("any".into()))
        }
        (_, r) => normalize(&r, inodes),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn scalable_and_naive_agree_on_every_call(setup in setup(), calls in prop::collection::vec(call(), 1..24)) {
        let scalable = ScaleFs::from_setup(&setup).expect("scalable builds");
        let naive = NaiveFs::from_setup(&setup).expect("naive builds");
        let n = setup.inodes.len();
        for (i, c) in calls.iter().enumerate() {
            let s = comparable(c, perform(&scalable, c).result(), n);
            let r = comparable(c, perform(&naive, c).result(), n);
            prop_assert_eq!(s, r, "call {} ({:?}) of {:?}", i, c, calls);
        }
    }
}
