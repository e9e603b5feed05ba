//! Tests' temporary directories (the unit tests' and, through
//! `tests/support`, the integration tests'): private (0700: they hold
//! journals with card data, TLS and journal keys) and removed when their
//! guard drops, unless the test is failing, when the directory is kept
//! (and named) to be looked into. Test support only: nothing else uses it.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// A test's own directory under the temporary directory, removed with
/// everything in it when dropped (but kept when the thread panics).
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    /// A new, empty directory named after `name` and this process. A name
    /// left by a failed run of an earlier process with the same id is
    /// skipped, not reused.
    pub fn new(name: &str) -> TempDir {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        loop {
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            let path = std::env::temp_dir()
                .join(format!("cardswitch-test-{name}-{}-{n}", std::process::id()));
            let mut builder = std::fs::DirBuilder::new();
            #[cfg(unix)]
            std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
            match builder.create(&path) {
                Ok(()) => return TempDir { path },
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => panic!("{}: {e}", path.display()),
            }
        }
    }
}

impl TempDir {
    /// Takes over a directory a child made under the temporary directory
    /// (the demo makes its own), to be removed the same way.
    pub fn adopt(path: impl Into<PathBuf>) -> TempDir {
        let path = path.into();
        let ours = path.parent() == Some(std::env::temp_dir().as_path())
            && path
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("cardswitch-"));
        assert!(
            ours,
            "not a cardswitch temporary directory: {}",
            path.display()
        );
        TempDir { path }
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "test failed: its directory is kept: {}",
                self.path.display()
            );
        } else {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

impl std::ops::Deref for TempDir {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.path
    }
}

impl AsRef<Path> for TempDir {
    fn as_ref(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::TempDir;

    #[test]
    fn private_while_held_and_gone_once_dropped() {
        let dir = TempDir::new("guard");
        let path = dir.to_path_buf();
        std::fs::write(dir.join("inner"), "x").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o700);
        }
        assert!(path.is_dir());
        drop(dir);
        assert!(!path.exists(), "{} left behind", path.display());
    }

    #[test]
    fn kept_when_the_test_fails() {
        let dir = TempDir::new("kept");
        let path = dir.to_path_buf();
        let failed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
            let _held = dir;
            panic!("a failing test (expected)");
        }));
        assert!(failed.is_err());
        assert!(path.is_dir(), "a failing test's directory is kept");
        std::fs::remove_dir_all(&path).unwrap();
    }
}
