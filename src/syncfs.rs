//! Making a whole file system durable at once.

use anyhow::{Context, Result};
use std::path::Path;

/// Writes every dirty page and inode of the file system that holds `dir`
/// to the disk (`syncfs`): one cache flush for all of it, where an `fsync`
/// per file pays one each.
pub fn sync_file_system(dir: &Path) -> Result<()> {
    use std::os::fd::AsRawFd;
    let handle = std::fs::File::open(dir).with_context(|| format!("opening {}", dir.display()))?;
    // SAFETY: syncfs on a descriptor we hold open; it takes no memory.
    if unsafe { libc::syncfs(handle.as_raw_fd()) } != 0 {
        return Err(std::io::Error::last_os_error())
            .with_context(|| format!("syncing the file system of {}", dir.display()));
    }
    Ok(())
}
