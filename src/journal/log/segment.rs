//! Segment files: named by their first sequence number (20 digits, so
//! names sort as numbers), created 0600, preallocated so appends do not
//! grow the file (fewer metadata writes per sync), and made durable in
//! their directory before anything in them is acknowledged.

use std::fs::File;
use std::path::{Path, PathBuf};

use super::LogError;
use crate::private_file::create_private;

const SUFFIX: &str = ".log";
const DIGITS: usize = 20;

/// The file name of the segment whose first entry is `first_seq`.
pub fn name(first_seq: u64) -> String {
    format!("{first_seq:0DIGITS$}{SUFFIX}")
}

/// The first sequence number a segment file name stands for.
pub fn parse_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(SUFFIX)?;
    if digits.len() != DIGITS || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The segments in `dir`, by first sequence number; other files are
/// not the log's and are left alone.
pub fn list(dir: &Path) -> Result<Vec<(u64, PathBuf)>, LogError> {
    let mut out = Vec::new();
    let entries = std::fs::read_dir(dir).map_err(LogError::io("listing segments", dir))?;
    for entry in entries {
        let entry = entry.map_err(LogError::io("listing segments", dir))?;
        if let Some(seq) = entry.file_name().to_str().and_then(parse_name) {
            out.push((seq, entry.path()));
        }
    }
    out.sort_unstable();
    Ok(out)
}

/// Creates the segment starting at `first_seq` with `bytes` reserved,
/// and makes its name durable.
pub fn create(dir: &Path, first_seq: u64, bytes: u64) -> Result<File, LogError> {
    let path = dir.join(name(first_seq));
    let file = create_private(&path).map_err(LogError::io("creating a segment", &path))?;
    preallocate(&file, bytes).map_err(LogError::io("preallocating a segment", &path))?;
    file.sync_all()
        .map_err(LogError::io("syncing a new segment", &path))?;
    sync_dir(dir)?;
    Ok(file)
}

/// Opens an existing segment to append to it.
pub fn open_for_append(path: &Path) -> Result<File, LogError> {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(LogError::io("opening a segment", path))
}

/// Makes the directory's entries (a new or removed segment) durable.
pub fn sync_dir(dir: &Path) -> Result<(), LogError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(LogError::io("syncing the log directory", dir))
}

/// Reserves the blocks up front on Linux (so a later `fdatasync` need
/// not allocate); elsewhere the file is only sized.
fn preallocate(file: &File, bytes: u64) -> std::io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        let len = libc::off_t::try_from(bytes)
            .map_err(|_| std::io::Error::other("segment size out of range"))?;
        // SAFETY: a valid open descriptor and a non-negative length; the
        // call writes no memory of ours.
        #[allow(unsafe_code)]
        let rc = unsafe { libc::posix_fallocate(file.as_raw_fd(), 0, len) };
        match rc {
            0 => Ok(()),
            // Not supported by this filesystem: sizing is enough.
            libc::EOPNOTSUPP | libc::EINVAL => file.set_len(bytes),
            e => Err(std::io::Error::from_raw_os_error(e)),
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        file.set_len(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_sort_as_numbers_and_parse_back() {
        assert_eq!(name(1), "00000000000000000001.log");
        assert_eq!(parse_name(&name(u64::MAX)), Some(u64::MAX));
        assert!(name(9) < name(10));
        for bad in [
            "1.log",
            "0000000000000000000a.log",
            "00000000000000000001.tmp",
            "",
        ] {
            assert_eq!(parse_name(bad), None, "{bad}");
        }
    }
}
