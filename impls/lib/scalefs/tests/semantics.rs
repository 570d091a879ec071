//! The model's semantics, call by call, on both implementations (each test runs on
//! `ScaleFs` and `NaiveFs`), and the adapter's comparison of results.

use commuter_posix_format::errno::*;
use commuter_posix_format::signal::{SIGBUS, SIGSEGV};
use commuter_posix_format::{
    Backing as SB, Fd, FdTarget, Inode, Map, Name, Outcome, Pipe, PosixCall, PosixResult, Proc,
    Setup, Stat,
};
use scalefs::adapter::accepts;
use scalefs::{
    Backing, Mmap, NaiveFs, OpenFlags, PAGE, PAGE_BYTES, Posix, ScaleFs, Whence, data_value,
    page_of,
};

/// One file `__f0` (inode 0, pages [1, 2], two links: one hidden), fd 10 on it in process 0,
/// a pipe holding one page [7] with its read end at fd 11 and write end at fd 12 of process 0,
/// page 0 of process 1 a writable mapping of the file's page 1, page 1 anonymous read-only [3].
fn setup() -> Setup {
    Setup {
        inodes: vec![Inode {
            data: vec![1, 2],
            nlink: Some(2),
        }],
        names: vec![Name {
            name: "__f0".into(),
            inode: 0,
        }],
        pipes: vec![Pipe { data: vec![7] }],
        procs: vec![
            Proc {
                fds: vec![
                    Fd {
                        fd: 10,
                        target: FdTarget::File { inode: 0, off: 0 },
                    },
                    Fd {
                        fd: 11,
                        target: FdTarget::Pipe {
                            pipe: 0,
                            write: false,
                        },
                    },
                    Fd {
                        fd: 12,
                        target: FdTarget::Pipe {
                            pipe: 0,
                            write: true,
                        },
                    },
                ],
                maps: vec![],
            },
            Proc {
                fds: vec![],
                maps: vec![
                    Map {
                        page: 0,
                        backing: SB::File {
                            inode: 0,
                            off: PAGE,
                        },
                        writable: true,
                        populated: true,
                    },
                    Map {
                        page: 1,
                        backing: SB::Anon { data: 3 },
                        writable: false,
                        populated: true,
                    },
                ],
            },
        ],
    }
}

fn both(check: impl Fn(&dyn Fn() -> Box<dyn Api>)) {
    check(&|| Box::new(ScaleFs::from_setup(&setup()).expect("builds")));
    check(&|| Box::new(NaiveFs::from_setup(&setup()).expect("builds")));
}

/// The interface as an object, so one test body runs on both implementations.
trait Api {
    fn name(&self) -> &'static str;
    fn open(&self, p: usize, n: &str, f: OpenFlags) -> Result<i32, i32>;
    fn link(&self, a: &str, b: &str) -> Result<(), i32>;
    fn unlink(&self, a: &str) -> Result<(), i32>;
    fn rename(&self, a: &str, b: &str) -> Result<(), i32>;
    fn nlink(&self, a: &str) -> Result<u64, i32>;
    fn size(&self, p: usize, fd: i32) -> Result<Option<u64>, i32>;
    fn lseek(&self, p: usize, fd: i32, off: i64, w: Whence) -> Result<u64, i32>;
    fn close(&self, p: usize, fd: i32) -> Result<(), i32>;
    fn pipe(&self, p: usize) -> Result<(i32, i32), i32>;
    fn read(&self, p: usize, fd: i32) -> Result<Option<u8>, i32>;
    fn write(&self, p: usize, fd: i32, v: u8) -> Result<usize, i32>;
    fn pread(&self, p: usize, fd: i32, off: i64) -> Result<Option<u8>, i32>;
    fn pwrite(&self, p: usize, fd: i32, off: i64, v: u8) -> Result<usize, i32>;
    fn mmap(&self, p: usize, m: Mmap) -> Result<u64, i32>;
    fn munmap(&self, p: usize, page: u64) -> Result<(), i32>;
    fn mprotect(&self, p: usize, page: u64, w: bool) -> Result<(), i32>;
    fn memread(&self, p: usize, page: u64) -> Result<u8, i32>;
    fn memwrite(&self, p: usize, page: u64, v: u8) -> Result<(), i32>;
}

impl<F: Posix> Api for F {
    fn name(&self) -> &'static str {
        F::NAME
    }
    fn open(&self, p: usize, n: &str, f: OpenFlags) -> Result<i32, i32> {
        Posix::open(self, p, n, f)
    }
    fn link(&self, a: &str, b: &str) -> Result<(), i32> {
        Posix::link(self, a, b)
    }
    fn unlink(&self, a: &str) -> Result<(), i32> {
        Posix::unlink(self, a)
    }
    fn rename(&self, a: &str, b: &str) -> Result<(), i32> {
        Posix::rename(self, a, b)
    }
    fn nlink(&self, a: &str) -> Result<u64, i32> {
        Posix::stat(self, a).map(|s| s.nlink)
    }
    fn size(&self, p: usize, fd: i32) -> Result<Option<u64>, i32> {
        Posix::fstat(self, p, fd).map(|s| s.map(|s| s.size))
    }
    fn lseek(&self, p: usize, fd: i32, off: i64, w: Whence) -> Result<u64, i32> {
        Posix::lseek(self, p, fd, off, w)
    }
    fn close(&self, p: usize, fd: i32) -> Result<(), i32> {
        Posix::close(self, p, fd)
    }
    fn pipe(&self, p: usize) -> Result<(i32, i32), i32> {
        Posix::pipe(self, p)
    }
    fn read(&self, p: usize, fd: i32) -> Result<Option<u8>, i32> {
        let mut b = [0; PAGE_BYTES];
        Posix::read(self, p, fd, &mut b).map(|n| if n == 0 { None } else { data_value(&b) })
    }
    fn write(&self, p: usize, fd: i32, v: u8) -> Result<usize, i32> {
        Posix::write(self, p, fd, &page_of(v))
    }
    fn pread(&self, p: usize, fd: i32, off: i64) -> Result<Option<u8>, i32> {
        let mut b = [0; PAGE_BYTES];
        Posix::pread(self, p, fd, off, &mut b).map(|n| if n == 0 { None } else { data_value(&b) })
    }
    fn pwrite(&self, p: usize, fd: i32, off: i64, v: u8) -> Result<usize, i32> {
        Posix::pwrite(self, p, fd, off, &page_of(v))
    }
    fn mmap(&self, p: usize, m: Mmap) -> Result<u64, i32> {
        Posix::mmap(self, p, m)
    }
    fn munmap(&self, p: usize, page: u64) -> Result<(), i32> {
        Posix::munmap(self, p, page)
    }
    fn mprotect(&self, p: usize, page: u64, w: bool) -> Result<(), i32> {
        Posix::mprotect(self, p, page, w)
    }
    fn memread(&self, p: usize, page: u64) -> Result<u8, i32> {
        let mut b = [0; PAGE_BYTES];
        Posix::memread(self, p, page, &mut b).map(|()| data_value(&b).unwrap_or(255))
    }
    fn memwrite(&self, p: usize, page: u64, v: u8) -> Result<(), i32> {
        Posix::memwrite(self, p, page, &page_of(v))
    }
}

const CREAT: OpenFlags = OpenFlags {
    creat: true,
    excl: false,
    trunc: false,
};
const P: i64 = PAGE as i64;

#[test]
fn open_takes_the_lowest_free_fd_and_honours_its_flags() {
    both(|fs| {
        let fs = fs();
        let n = fs.name();
        assert_eq!(fs.open(0, "__f0", OpenFlags::default()), Ok(0), "{n}");
        assert_eq!(fs.open(0, "__f1", CREAT), Ok(1), "{n}");
        assert_eq!(fs.open(1, "__f1", CREAT), Ok(0), "{n}: per-process tables");
        assert_eq!(fs.close(0, 0), Ok(()), "{n}");
        assert_eq!(
            fs.open(0, "__f0", OpenFlags::default()),
            Ok(0),
            "{n}: reused"
        );
        let excl = OpenFlags {
            excl: true,
            ..CREAT
        };
        assert_eq!(fs.open(0, "__f0", excl), Err(EEXIST), "{n}");
        assert_eq!(fs.open(0, "__f9", OpenFlags::default()), Err(ENOENT), "{n}");
        let trunc = OpenFlags {
            trunc: true,
            ..OpenFlags::default()
        };
        let fd = fs.open(0, "__f0", trunc).expect("opens");
        assert_eq!(fs.size(0, fd), Ok(Some(0)), "{n}: truncated");
        assert_eq!(fs.read(0, 10), Ok(None), "{n}: fd 10 is at the end now");
    })
}

#[test]
fn links_count_and_a_file_outlives_its_names_while_open() {
    both(|fs| {
        let fs = fs();
        let n = fs.name();
        assert_eq!(fs.nlink("__f0"), Ok(2), "{n}: the hidden link counts");
        assert_eq!(fs.link("__f0", "__f1"), Ok(()), "{n}");
        assert_eq!(fs.link("__f0", "__f1"), Err(EEXIST), "{n}");
        assert_eq!(fs.link("__f5", "__f6"), Err(ENOENT), "{n}");
        assert_eq!(fs.nlink("__f1"), Ok(3), "{n}");
        assert_eq!(fs.unlink("__f0"), Ok(()), "{n}");
        assert_eq!(fs.unlink("__f0"), Err(ENOENT), "{n}");
        assert_eq!(fs.unlink("__f1"), Ok(()), "{n}");
        assert_eq!(fs.pread(0, 10, P), Ok(Some(2)), "{n}: open fd still reads");
        assert_eq!(fs.memread(1, 0), Ok(2), "{n}: mapping too");
    })
}

#[test]
fn rename_moves_and_replaces() {
    both(|fs| {
        let fs = fs();
        let n = fs.name();
        fs.open(0, "__f1", CREAT).expect("creates");
        assert_eq!(fs.rename("__f1", "__f1"), Ok(()), "{n}");
        assert_eq!(fs.rename("__f7", "__f1"), Err(ENOENT), "{n}");
        assert_eq!(
            fs.rename("__f0", "__f1"),
            Ok(()),
            "{n}: over an existing name"
        );
        assert_eq!(fs.nlink("__f0"), Err(ENOENT), "{n}");
        assert_eq!(
            fs.nlink("__f1"),
            Ok(2),
            "{n}: the moved inode keeps its links"
        );
        assert_eq!(
            fs.size(0, 0),
            Ok(Some(0)),
            "{n}: the replaced file is still open"
        );
    })
}

#[test]
fn offsets_reads_and_writes() {
    both(|fs| {
        let fs = fs();
        let n = fs.name();
        assert_eq!(fs.read(0, 10), Ok(Some(1)), "{n}");
        assert_eq!(fs.lseek(0, 10, 0, Whence::Cur), Ok(PAGE), "{n}");
        assert_eq!(fs.lseek(0, 10, 0, Whence::End), Ok(2 * PAGE), "{n}");
        assert_eq!(fs.lseek(0, 10, -3 * P, Whence::End), Err(EINVAL), "{n}");
        assert_eq!(fs.lseek(0, 10, 0, Whence::Invalid), Err(EINVAL), "{n}");
        assert_eq!(fs.lseek(0, 11, 0, Whence::Set), Err(ESPIPE), "{n}");
        assert_eq!(fs.lseek(0, 13, 0, Whence::Invalid), Err(EBADF), "{n}");
        assert_eq!(fs.write(0, 10, 5), Ok(PAGE_BYTES), "{n}: append");
        assert_eq!(fs.size(0, 10), Ok(Some(3 * PAGE)), "{n}");
        assert_eq!(fs.pwrite(0, 10, 0, 9), Ok(PAGE_BYTES), "{n}: overwrite");
        assert_eq!(fs.pread(0, 10, 0), Ok(Some(9)), "{n}");
        assert_eq!(fs.pread(0, 10, 3 * P), Ok(None), "{n}: end of file");
        assert_eq!(fs.pread(0, 10, -P), Err(EINVAL), "{n}");
        assert_eq!(fs.pwrite(0, 11, 0, 1), Err(ESPIPE), "{n}");
        assert_eq!(fs.size(0, 11), Ok(None), "{n}: fstat of a pipe");
    })
}

#[test]
fn pipes_buffer_pages_and_know_their_ends() {
    both(|fs| {
        let fs = fs();
        let n = fs.name();
        assert_eq!(fs.read(0, 12), Err(EBADF), "{n}: the write end");
        assert_eq!(fs.write(0, 11, 1), Err(EBADF), "{n}: the read end");
        assert_eq!(fs.read(0, 11), Ok(Some(7)), "{n}");
        assert_eq!(fs.read(0, 11), Err(EAGAIN), "{n}: empty, a writer is left");
        assert_eq!(fs.write(0, 12, 4), Ok(PAGE_BYTES), "{n}");
        assert_eq!(fs.close(0, 12), Ok(()), "{n}");
        assert_eq!(fs.read(0, 11), Ok(Some(4)), "{n}");
        assert_eq!(fs.read(0, 11), Ok(None), "{n}: no writer: end of file");
        let (r, w) = fs.pipe(1).expect("pipe");
        assert_eq!((r, w), (0, 1), "{n}: the two lowest fds");
        assert_eq!(fs.close(1, r), Ok(()), "{n}");
        assert_eq!(fs.write(1, w, 1), Err(EPIPE), "{n}: no reader");
    })
}

#[test]
fn mappings_follow_the_model() {
    both(|fs| {
        let fs = fs();
        let n = fs.name();
        assert_eq!(fs.memread(1, 1), Ok(3), "{n}");
        assert_eq!(fs.memwrite(1, 1, 4), Err(SIGSEGV), "{n}: read-only");
        assert_eq!(fs.mprotect(1, 1, true), Ok(()), "{n}");
        assert_eq!(fs.memwrite(1, 1, 4), Ok(()), "{n}");
        assert_eq!(fs.memread(1, 1), Ok(4), "{n}");
        assert_eq!(fs.mprotect(1, 2, true), Err(ENOMEM), "{n}");
        assert_eq!(fs.memread(1, 2), Err(SIGSEGV), "{n}");
        assert_eq!(fs.memwrite(1, 0, 6), Ok(()), "{n}: a shared file page");
        assert_eq!(fs.pread(0, 10, P), Ok(Some(6)), "{n}");
        let anon = Mmap {
            backing: Backing::Anon,
            writable: true,
            fixed: Some(0),
        };
        assert_eq!(fs.mmap(1, anon), Ok(0), "{n}: MAP_FIXED replaces");
        assert_eq!(fs.memread(1, 0), Ok(0), "{n}: zero-filled");
        let file = |fd, off| Mmap {
            backing: Backing::File { fd, off },
            writable: false,
            fixed: None,
        };
        let page = fs.mmap(0, file(10, 3 * P)).expect("maps past the end");
        assert_eq!(fs.memread(0, page), Err(SIGBUS), "{n}");
        assert_eq!(
            fs.mmap(0, file(11, 0)),
            Err(ENODEV),
            "{n}: a pipe's read end"
        );
        assert_eq!(fs.mmap(0, file(12, 0)), Err(EACCES), "{n}: a write end");
        assert_eq!(fs.mmap(0, file(13, 0)), Err(EBADF), "{n}");
        assert_eq!(fs.munmap(0, page), Ok(()), "{n}");
        assert_eq!(fs.munmap(0, page), Ok(()), "{n}: unmapped already");
        assert_eq!(fs.memread(0, page), Err(SIGSEGV), "{n}");
    })
}

fn stat(inum: &str, nlink: i64, mtime: i64) -> PosixResult {
    PosixResult::Stat(Outcome::Ok(Stat {
        inum: inum.into(),
        size: 1,
        nlink,
        atime: 0,
        mtime,
        ctime: 0,
    }))
}

#[test]
fn results_are_compared_where_the_model_fixes_them() {
    let stat_call = PosixCall::Stat {
        name: "__f0".into(),
    };
    // Times are the implementation's clock; link counts and setup inodes are not.
    assert!(accepts(
        &stat_call,
        1,
        &stat("Inum0", 1, 1_700_000_000),
        &[stat("Inum0", 1, 3)]
    ));
    assert!(!accepts(
        &stat_call,
        1,
        &stat("Inum0", 2, 3),
        &[stat("Inum0", 1, 3)]
    ));
    assert!(!accepts(
        &stat_call,
        2,
        &stat("Inum0", 1, 3),
        &[stat("Inum1", 1, 3)]
    ));
    // A created inode may have any number that is no setup inode's.
    assert!(accepts(
        &stat_call,
        1,
        &stat("Inum9", 1, 3),
        &[stat("Inum1", 1, 3)]
    ));
    assert!(!accepts(
        &stat_call,
        1,
        &stat("Inum0", 1, 3),
        &[stat("Inum1", 1, 3)]
    ));
    // Errors and data are exact.
    let read = PosixCall::Pread {
        proc: 0,
        fd: 10,
        off: 0,
    };
    let got = |v| PosixResult::Pread(Outcome::Ok(commuter_posix_format::Maybe::Some(v)));
    assert!(accepts(&read, 0, &got(3), &[got(3)]));
    assert!(!accepts(&read, 0, &got(4), &[got(3)]));
    assert!(!accepts(
        &read,
        0,
        &PosixResult::Pread(Outcome::Err(EBADF)),
        &[got(3)]
    ));
    // A fixed mmap must return its page; a non-fixed one any page.
    let mmap = |fixed| PosixCall::Mmap {
        proc: 0,
        anon: true,
        writable: true,
        fixed,
        page: 2,
        fd: None,
        off: None,
    };
    let va = |s: &str| PosixResult::Mmap(Outcome::Ok(s.into()));
    assert!(accepts(&mmap(true), 0, &va("Va2"), &[va("Va0")]));
    assert!(!accepts(&mmap(true), 0, &va("Va3"), &[va("Va0")]));
    assert!(accepts(&mmap(false), 0, &va("Va320"), &[va("Va0")]));
    assert!(!accepts(
        &mmap(false),
        0,
        &PosixResult::Mmap(Outcome::Err(ENOMEM)),
        &[va("Va0")]
    ));
}
