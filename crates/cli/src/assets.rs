//! Where commuter finds what it runs with besides itself: the tracer plugin, the static guest
//! `/init`, the kernel and the kernel's debug image.
//!
//! Two layouts, tried in this order:
//! 1. A checkout: `COMMUTER_HOME`, else the ancestor of the running binary that holds the
//!    workspace (`target/<profile>/commuter`), else the current directory if it is one. What
//!    `scripts/setup` builds and downloads: `target/tracer/…`, `target/guest/…`,
//!    `.cache/linux/vmlinuz` and `vmlinux`.
//! 2. An installation (`scripts/install`): the plugin and the guest in the data directory
//!    `$XDG_DATA_HOME/commuter` (default `~/.local/share/commuter`), the kernels in the cache
//!    directory `$XDG_CACHE_HOME/commuter/linux` (default `~/.cache/commuter/linux`), shared by
//!    every project of the user. libz3 is found by the binary itself (an rpath to
//!    `../lib/commuter`, see `.cargo/config.toml`).

use std::path::{Path, PathBuf};

/// The plugin's file name (as cargo builds it and the installation keeps it).
const PLUGIN: &str = "libcommuter_tracer.so";
/// The guest's file name.
const GUEST: &str = "commuter-guest";

/// Where the companions of this commuter are.
#[derive(Clone, Debug)]
pub enum Assets {
    /// A source checkout set up by `scripts/setup`.
    Checkout(PathBuf),
    /// An installation by `scripts/install`.
    Installed {
        /// `$XDG_DATA_HOME/commuter`: plugin and guest.
        data: PathBuf,
        /// `$XDG_CACHE_HOME/commuter`: `linux/vmlinuz`, `linux/vmlinux`.
        cache: PathBuf,
    },
}

impl Assets {
    /// The layout this process runs in (see the module's order).
    pub fn locate() -> Assets {
        if let Some(home) = std::env::var_os("COMMUTER_HOME") {
            return Assets::Checkout(PathBuf::from(home));
        }
        let exe = std::env::current_exe().ok();
        let checkout = exe
            .as_deref()
            .and_then(|exe| exe.ancestors().find(|d| is_checkout(d)))
            .map(Path::to_path_buf)
            .or_else(|| is_checkout(Path::new(".")).then(|| PathBuf::from(".")));
        match checkout {
            Some(root) => Assets::Checkout(root),
            None => Assets::Installed {
                data: xdg("XDG_DATA_HOME", ".local/share").join("commuter"),
                cache: xdg("XDG_CACHE_HOME", ".cache").join("commuter"),
            },
        }
    }

    /// The project checkout, if this is one (implementations are built from its `impls/`).
    pub fn checkout(&self) -> Option<&Path> {
        match self {
            Assets::Checkout(root) => Some(root),
            Assets::Installed { .. } => None,
        }
    }

    /// The tracer plugin.
    pub fn plugin(&self) -> PathBuf {
        match self {
            Assets::Checkout(root) => root.join("target/tracer/release").join(PLUGIN),
            Assets::Installed { data, .. } => data.join(PLUGIN),
        }
    }

    /// The static guest `/init`.
    pub fn guest(&self) -> PathBuf {
        match self {
            Assets::Checkout(root) => root
                .join("target/guest/x86_64-unknown-linux-gnu/release")
                .join(GUEST),
            Assets::Installed { data, .. } => data.join(GUEST),
        }
    }

    /// The default kernel image.
    pub fn kernel(&self) -> PathBuf {
        self.linux().join("vmlinuz")
    }

    /// The default kernel's debug image.
    pub fn vmlinux(&self) -> PathBuf {
        self.linux().join("vmlinux")
    }

    fn linux(&self) -> PathBuf {
        match self {
            Assets::Checkout(root) => root.join(".cache/linux"),
            Assets::Installed { cache, .. } => cache.join("linux"),
        }
    }

    /// How to get a missing file of this layout.
    pub fn fix(&self) -> String {
        match self {
            Assets::Checkout(root) => format!(
                "run ./scripts/setup in {} (it installs and builds everything)",
                root.display()
            ),
            Assets::Installed { .. } => "this commuter is not in a checkout, so it uses an \
                installation: run ./scripts/install from a checkout set up with ./scripts/setup, \
                or set COMMUTER_HOME to such a checkout"
                .into(),
        }
    }
}

fn is_checkout(dir: &Path) -> bool {
    dir.join("crates/guest/Cargo.toml").is_file()
}

/// An XDG base directory: the variable if set to an absolute path (the specification says to
/// ignore a relative one), else `$HOME/<default>`.
fn xdg(var: &str, default: &str) -> PathBuf {
    match std::env::var_os(var).map(PathBuf::from) {
        Some(dir) if dir.is_absolute() => dir,
        _ => std::env::var_os("HOME")
            .map_or_else(|| PathBuf::from("/"), PathBuf::from)
            .join(default),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn installed_layout_uses_data_and_cache_dirs() {
        let a = Assets::Installed {
            data: "/d/commuter".into(),
            cache: "/c/commuter".into(),
        };
        assert_eq!(a.plugin(), Path::new("/d/commuter/libcommuter_tracer.so"));
        assert_eq!(a.guest(), Path::new("/d/commuter/commuter-guest"));
        assert_eq!(a.kernel(), Path::new("/c/commuter/linux/vmlinuz"));
        assert_eq!(a.vmlinux(), Path::new("/c/commuter/linux/vmlinux"));
        assert!(a.checkout().is_none());
        assert!(a.fix().contains("scripts/install"));
    }

    #[test]
    fn checkout_layout_is_what_setup_builds() {
        let a = Assets::Checkout("/r".into());
        assert_eq!(
            a.plugin(),
            Path::new("/r/target/tracer/release/libcommuter_tracer.so")
        );
        assert_eq!(
            a.guest(),
            Path::new("/r/target/guest/x86_64-unknown-linux-gnu/release/commuter-guest")
        );
        assert_eq!(a.kernel(), Path::new("/r/.cache/linux/vmlinuz"));
        assert_eq!(a.checkout(), Some(Path::new("/r")));
    }
}
