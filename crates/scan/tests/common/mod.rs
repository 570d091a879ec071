//! Shared by the tests that read the real kernels' debug images.

use std::path::{Path, PathBuf};

/// A supported kernel's debug vmlinux, as `scripts/setup` installs it (`default` or `6.1`);
/// its absence fails the test, since every supported kernel must be checked.
pub fn vmlinux(series: &str) -> PathBuf {
    let cache = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.cache/linux");
    let path = match series {
        "default" => cache.join("vmlinux"),
        other => cache.join(other).join("vmlinux"),
    };
    assert!(
        path.is_file(),
        "no {}: run ./scripts/setup (it installs every supported kernel with its symbols)",
        path.display()
    );
    path
}
