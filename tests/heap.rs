//! `peer::heap::release_freed` hands freed heap memory back to the system:
//! a burst of small allocations freed behind one still in use (as a file
//! list's are, behind what the peer keeps) stays resident without it.
//! Its own test binary, so no other test allocates while RSS is read.
//! glibc only: elsewhere `release_freed` does nothing.
#![cfg(all(target_os = "linux", target_env = "gnu"))]

use lanspread_checker::checker::actions::resources::status_bytes;
use lanspread_checker::peer::heap::release_freed;

fn rss_kib() -> Result<u64, String> {
    let pid = i32::try_from(std::process::id()).map_err(|e| e.to_string())?;
    Ok(status_bytes(pid, "VmRSS").map_err(|e| e.to_string())? / 1024)
}

#[test]
fn freed_small_allocations_go_back_to_the_system() -> Result<(), String> {
    // On a thread of its own, as a list is built on a worker: its own arena.
    let measured = std::thread::spawn(|| -> Result<(u64, u64, u64), String> {
        let start = rss_kib()?;
        // ~80 MB of 64-byte blocks, like 1,000,000 short paths or digests.
        let burst: Vec<Vec<u8>> = (0..1_000_000u32).map(|i| vec![i as u8; 64]).collect();
        // Allocated after the burst, so the arena's top stays in use and
        // `free` alone cannot shrink it.
        let kept = vec![1u8; 64];
        drop(burst);
        let freed = rss_kib()?;
        release_freed();
        let released = rss_kib()?;
        drop(kept);
        Ok((start, freed, released))
    })
    .join()
    .map_err(|_| "the allocating thread panicked".to_string())??;
    let (start, freed, released) = measured;
    eprintln!(
        "RSS: {start} KiB at the start, {freed} KiB after the burst was freed, {released} KiB after release_freed"
    );
    assert!(
        freed >= start + 48 * 1024,
        "the freed burst was not resident to begin with ({start} → {freed} KiB): the test proves nothing here"
    );
    assert!(
        released + 40 * 1024 <= freed,
        "release_freed gave back {} KiB of ~80 MB freed",
        freed.saturating_sub(released)
    );
    Ok(())
}
