//! Handing freed heap memory back to the system after a burst.
//!
//! A file list of 100,000 files is a few tens of MiB of short-lived
//! allocations. glibc keeps what is freed in the arena of the thread that
//! freed it, and the next burst often runs on another worker thread, in
//! another arena: a source's RSS grew by ~8 MiB with every receiver it
//! served a large list to (48 → 61 → 65 MiB over three), past the 64 MiB
//! bound, though its live heap never exceeded ~27 MiB.

/// Returns the free pages of every malloc arena to the system
/// (`malloc_trim(0)`). Milliseconds at most; call it after a burst, not
/// per allocation. A no-op where the C library is not glibc.
pub fn release_freed() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim takes no pointers; it only walks glibc's arenas,
    // under their own locks.
    unsafe {
        libc::malloc_trim(0);
    }
}
