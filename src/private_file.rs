//! Files readable by their owner only (0600), like the journal and its key
//! file: the IPM file holds full PANs (a presentment needs them), the
//! settlement reports merchants' accounts and amounts, an export or a
//! capture BINs, last fours and amounts (an unmasked capture, card data).
//! Used by clearing, captures and the CLI alike. Secrets are read back
//! only from files that are still their owner's only.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use zeroize::Zeroizing;

/// Creates (or truncates) `path` with mode 0600. The temporary files that
/// are renamed into place are made with it, so the final file never has
/// a wider mode, not even for a moment.
pub fn create_private(path: &Path) -> std::io::Result<File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let file = options.open(path)?;
    // The mode applies only when the file is new: a temporary file left by
    // an interrupted run is narrowed too.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(file)
}

/// Reads a secret (a key file) of at most `bytes_max` bytes, refusing it
/// when its group or others may read or write it: a key beside the data it
/// protects, readable by every account on the machine, protects nothing.
/// The mode is checked on the opened file, so the file checked is the file
/// read. The error names the mode and the fix, never the content.
pub fn read_private(path: &Path, bytes_max: u64) -> Result<Zeroizing<Vec<u8>>, String> {
    let file = File::open(path).map_err(|e| e.to_string())?;
    let meta = file.metadata().map_err(|e| e.to_string())?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(format!(
                "mode {mode:04o} lets other accounts at it; a key file must be its owner's only (chmod 600)"
            ));
        }
    }
    if meta.len() > bytes_max {
        return Err(format!(
            "{} bytes, more than the {bytes_max} allowed",
            meta.len()
        ));
    }
    read_to_limit(file, bytes_max)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("more than the {bytes_max} bytes allowed"))
}

/// Reads `file` to its end when it holds at most `bytes_max` bytes (`None`
/// when it holds more: a path such as `/dev/zero` is not read without
/// end), into a buffer wiped when dropped (it may hold a key).
pub fn read_to_limit(file: File, bytes_max: u64) -> std::io::Result<Option<Zeroizing<Vec<u8>>>> {
    let mut bytes = Zeroizing::new(Vec::new());
    file.take(bytes_max + 1).read_to_end(&mut bytes)?;
    Ok((bytes.len() as u64 <= bytes_max).then_some(bytes))
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_secret_is_read_only_from_a_file_that_is_its_owners_only() {
        let dir = crate::test_dir::TempDir::new("private");
        let path = dir.join("secret");
        std::fs::write(&path, b"k = 1\n").unwrap();
        for (mode, readable) in [
            (0o600, true),
            (0o400, true),
            (0o640, false),
            (0o604, false),
            (0o620, false),
        ] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            match read_private(&path, 64) {
                Ok(bytes) => assert!(readable && bytes.as_slice() == b"k = 1\n", "{mode:o}"),
                Err(e) => assert!(
                    !readable && e.contains(&format!("{mode:04o}")) && e.contains("chmod 600"),
                    "{mode:o}: {e}"
                ),
            }
        }
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let e = read_private(&path, 3).unwrap_err();
        assert!(e.contains("more than the 3"), "{e}");
        assert!(read_private(&dir.join("absent"), 64).is_err());
    }
}
