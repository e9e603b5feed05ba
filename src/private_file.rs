//! Files readable by their owner only (0600), like the journal and its key
//! file: the IPM file holds full PANs (a presentment needs them), the
//! settlement reports merchants' accounts and amounts, an export or a
//! capture BINs, last fours and amounts (an unmasked capture, card data).
//! Used by clearing, captures and the CLI alike.

use std::fs::File;
use std::path::Path;

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
