//! A writer for the "newc" cpio archives the Linux kernel unpacks as its initramfs.
//!
//! Format (see the kernel's `Documentation/driver-api/early-userspace/buffer-format.rst`): per
//! entry a 110-byte ASCII header (`070701` and 13 eight-digit hex fields), the NUL-terminated
//! name, padding to 4 bytes, the data, padding to 4 bytes; the archive ends with an entry named
//! `TRAILER!!!`.

/// File type bits of `st_mode`.
const S_IFDIR: u32 = 0o040_000;
const S_IFREG: u32 = 0o100_000;
const S_IFCHR: u32 = 0o020_000;

/// What cannot go into an archive.
#[derive(Debug, thiserror::Error)]
pub enum InitramfsError {
    /// A path that the format or the kernel cannot take.
    #[error("initramfs path {0:?} is invalid: use a relative path without NUL, `.` or `..`")]
    BadPath(String),
    /// A file larger than the format's 32-bit size field.
    #[error("initramfs file {path:?} has {len} bytes, more than the cpio format's 4 GiB limit")]
    TooLarge {
        /// The path.
        path: String,
        /// Its size.
        len: usize,
    },
}

/// An archive being built. Parent directories must be added before their entries.
#[derive(Debug, Default)]
pub struct Initramfs {
    buf: Vec<u8>,
    next_ino: u32,
}

impl Initramfs {
    /// An empty archive.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a directory.
    pub fn dir(&mut self, path: &str, perm: u32) -> Result<&mut Self, InitramfsError> {
        self.entry(path, S_IFDIR | perm, &[], (0, 0))
    }

    /// Adds a regular file.
    pub fn file(
        &mut self,
        path: &str,
        perm: u32,
        data: &[u8],
    ) -> Result<&mut Self, InitramfsError> {
        self.entry(path, S_IFREG | perm, data, (0, 0))
    }

    /// Adds a character device node.
    pub fn char_dev(
        &mut self,
        path: &str,
        perm: u32,
        major: u32,
        minor: u32,
    ) -> Result<&mut Self, InitramfsError> {
        self.entry(path, S_IFCHR | perm, &[], (major, minor))
    }

    /// Ends the archive and returns its bytes.
    pub fn finish(mut self) -> Vec<u8> {
        self.push_entry("TRAILER!!!", 0, &[], (0, 0), 0);
        // Block-align the archive, as cpio tools do; the kernel does not need it.
        let pad = (512 - self.buf.len() % 512) % 512;
        self.buf.resize(self.buf.len() + pad, 0);
        self.buf
    }

    fn entry(
        &mut self,
        path: &str,
        mode: u32,
        data: &[u8],
        rdev: (u32, u32),
    ) -> Result<&mut Self, InitramfsError> {
        check_path(path)?;
        if u32::try_from(data.len()).is_err() {
            return Err(InitramfsError::TooLarge {
                path: path.into(),
                len: data.len(),
            });
        }
        self.next_ino += 1;
        let ino = self.next_ino;
        self.push_entry(path, mode, data, rdev, ino);
        Ok(self)
    }

    fn push_entry(&mut self, name: &str, mode: u32, data: &[u8], rdev: (u32, u32), ino: u32) {
        let nlink = if mode & S_IFDIR != 0 { 2 } else { 1 };
        let fields = [
            ino,
            mode,
            0, // uid
            0, // gid
            nlink,
            0, // mtime
            data.len() as u32,
            0, // dev major
            0, // dev minor
            rdev.0,
            rdev.1,
            name.len() as u32 + 1,
            0, // check (unused by newc)
        ];
        self.buf.extend_from_slice(b"070701");
        for f in fields {
            self.buf.extend_from_slice(format!("{f:08X}").as_bytes());
        }
        self.buf.extend_from_slice(name.as_bytes());
        self.buf.push(0);
        self.pad4();
        self.buf.extend_from_slice(data);
        self.pad4();
    }

    fn pad4(&mut self) {
        let pad = (4 - self.buf.len() % 4) % 4;
        self.buf.resize(self.buf.len() + pad, 0);
    }
}

fn check_path(path: &str) -> Result<(), InitramfsError> {
    let bad = path.is_empty()
        || path.starts_with('/')
        || path.contains('\0')
        || path.len() >= 4096
        || path
            .split('/')
            .any(|c| c.is_empty() || c == "." || c == "..");
    if bad {
        Err(InitramfsError::BadPath(path.into()))
    } else {
        Ok(())
    }
}

/// A Linux target's initramfs: `/dev/console` (so the kernel gives `/init` a console), `/init`
/// and the given files in the root (the POSIX guest's `/plan.json`, a runner's `/tests.json`).
pub fn linux_initramfs(init: &[u8], files: &[(&str, &[u8])]) -> Result<Vec<u8>, InitramfsError> {
    let mut a = Initramfs::new();
    a.dir("dev", 0o755)?
        .char_dev("dev/console", 0o600, 5, 1)?
        .file("init", 0o755, init)?;
    for (name, content) in files {
        a.file(name, 0o644, content)?;
    }
    Ok(a.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One parsed entry: name, mode, rdev, data.
    type Entry = (String, u32, (u32, u32), Vec<u8>);

    fn field(h: &[u8], i: usize) -> u32 {
        let s = std::str::from_utf8(&h[6 + 8 * i..14 + 8 * i]).unwrap();
        u32::from_str_radix(s, 16).unwrap()
    }

    /// An independent reader following the format description, checking alignment as it goes.
    fn parse(mut b: &[u8]) -> Vec<Entry> {
        let mut out = Vec::new();
        let total = b.len();
        loop {
            assert_eq!(&b[..6], b"070701", "magic at offset {}", total - b.len());
            let (mode, size, namesize) = (field(b, 1), field(b, 6) as usize, field(b, 11) as usize);
            let rdev = (field(b, 9), field(b, 10));
            let name_end = 110 + namesize;
            assert_eq!(b[name_end - 1], 0, "name is NUL-terminated");
            let name = String::from_utf8(b[110..name_end - 1].to_vec()).unwrap();
            let data_start = name_end.div_ceil(4) * 4;
            let data = b[data_start..data_start + size].to_vec();
            b = &b[(data_start + size).div_ceil(4) * 4..];
            if name == "TRAILER!!!" {
                assert!(b.iter().all(|x| *x == 0));
                return out;
            }
            out.push((name, mode, rdev, data));
        }
    }

    #[test]
    fn linux_initramfs_has_console_init_and_plan() {
        let a = linux_initramfs(b"\x7fELF...", &[("plan.json", b"{\"version\":1}")]).unwrap();
        assert_eq!(a.len() % 512, 0);
        let entries = parse(&a);
        let names: Vec<&str> = entries.iter().map(|e| e.0.as_str()).collect();
        assert_eq!(names, ["dev", "dev/console", "init", "plan.json"]);
        assert_eq!((entries[1].1, entries[1].2), (S_IFCHR | 0o600, (5, 1)));
        assert_eq!(entries[2].1, S_IFREG | 0o755);
        assert_eq!(entries[2].3, b"\x7fELF...");
        assert_eq!(entries[3].3, b"{\"version\":1}");
    }

    #[test]
    fn odd_sizes_stay_aligned() {
        let mut a = Initramfs::new();
        for n in 0..9 {
            a.file(&"x".repeat(n + 1), 0o644, &vec![7u8; n]).unwrap();
        }
        let entries = parse(&a.finish());
        assert_eq!(entries.len(), 9);
        assert!(entries.iter().enumerate().all(|(n, e)| e.3 == vec![7u8; n]));
    }

    #[test]
    fn bad_paths_are_rejected() {
        let mut a = Initramfs::new();
        for p in ["", "/init", "a/../b", "a//b", "nul\0"] {
            assert!(
                matches!(a.file(p, 0o644, b""), Err(InitramfsError::BadPath(_))),
                "{p:?}"
            );
        }
    }
}
