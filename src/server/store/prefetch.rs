//! Asks the kernel, at start, to read the database file into its cache when it fits easily.
//!
//! History reads copy pages in one at a time until the file is mapped in
//! ([`super::mapped_vfs`]), and a page the OS does not hold is then a small synchronous disk
//! read: after a reboot, the first read of a 100 M-point range took about 240 ms, reading
//! 20–57 MB page by page, against about 20 ms once the file was cached (BENCHMARKS.md,
//! "History at 2 000 columns").
//! `POSIX_FADV_WILLNEED` over each part of the file not yet cached lets the kernel read it in
//! large sequential requests in the background, while the server already serves.
//!
//! Only when the file is small beside the memory the kernel reports available: a store
//! larger than that would push other data out of the cache, or itself, to no gain.

use std::os::fd::{AsRawFd, BorrowedFd};

/// The share of available memory the file may take: a quarter leaves the cache room for
/// everything else this machine reads, the WAL and the file's own growth.
const MAX_SHARE_OF_AVAILABLE: u64 = 4;

/// Whether a file of `file_bytes` should be read ahead with `available_bytes` of memory
/// available.
fn worth_it(file_bytes: u64, available_bytes: u64) -> bool {
    file_bytes > 0 && file_bytes <= available_bytes / MAX_SHARE_OF_AVAILABLE
}

/// `MemAvailable` from a `/proc/meminfo` listing, in bytes.
fn mem_available(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kb.checked_mul(1024)
}

/// Runs [`start`], then [`super::mapped_vfs::populate`], on a thread of its own at the lowest
/// priority: submitting the reads of a large file can take a while, and serving need not
/// wait for them, nor share a core with them (walking even a cached file's windows costs
/// CPU).
pub fn in_background(file: std::path::PathBuf) {
    let _ = std::thread::Builder::new()
        .name("livechart-prefetch".into())
        .spawn(move || {
            lower_priority();
            // Through the read connections' descriptor: one opened and closed here would drop
            // the process's locks on the database (see `mapped_vfs`).
            let asked = super::mapped_vfs::with_descriptor(&file, start);
            match &asked {
                Some(Ok(asked)) => tracing::debug!(asked, "store file read ahead"),
                Some(Err(e)) => tracing::debug!("store file not read ahead: {e}"),
                None => tracing::debug!("store file not read ahead: no read connection maps it"),
            }
            // Only a file read ahead is mapped in whole: it fits as easily.
            match super::mapped_vfs::populate(&file, matches!(asked, Some(Ok(true)))) {
                Ok(bytes) => tracing::debug!(bytes, "store file mapped in"),
                Err(e) => tracing::debug!("store file not mapped in: {e}"),
            }
        });
}

#[cfg(target_os = "linux")]
fn lower_priority() {
    // SAFETY: setpriority reads no memory. (On Linux `PRIO_PROCESS` 0 is the calling thread.)
    unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, 19) };
}

#[cfg(not(target_os = "linux"))]
fn lower_priority() {}

/// Starts the kernel reading `file` into its cache when it fits easily; returns whether it
/// asked. Errors (no `/proc`, not Linux) only mean reads fetch their pages as they go.
pub fn start(file: BorrowedFd<'_>) -> std::io::Result<bool> {
    let available = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .as_deref()
        .and_then(mem_available)
        .unwrap_or(0);
    // SAFETY: `stat` is plain data, filled by `fstat` on a descriptor open for the call.
    let len = unsafe {
        let mut stat: libc::stat = std::mem::zeroed();
        if libc::fstat(file.as_raw_fd(), &mut stat) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        u64::try_from(stat.st_size).unwrap_or(0)
    };
    if !worth_it(len, available) {
        return Ok(false);
    }
    advise_will_need(file, len)?;
    Ok(true)
}

/// Bytes asked for per call: the kernel reads at most its readahead limit per request (8 MiB
/// here: one request over the whole 800 MB file brought in only its first 8 MiB).
const WINDOW: u64 = 8 << 20;

#[cfg(target_os = "linux")]
fn advise_will_need(file: BorrowedFd<'_>, len: u64) -> std::io::Result<()> {
    let fd = file.as_raw_fd();
    let mut at = 0u64;
    while at < len {
        let (Ok(offset), Ok(window)) = (libc::off_t::try_from(at), libc::off_t::try_from(WINDOW))
        else {
            break;
        };
        // A window whose first page is cached is taken as cached: asking again for a cached
        // file walked all its pages (12 ms of CPU for 800 MB), which slowed the first reads
        // after a start by a few ms.
        if !cached(fd, offset) {
            // SAFETY: posix_fadvise reads no memory; the descriptor is open for the call.
            let rc = unsafe { libc::posix_fadvise(fd, offset, window, libc::POSIX_FADV_WILLNEED) };
            if rc != 0 {
                return Err(std::io::Error::from_raw_os_error(rc));
            }
        }
        at += WINDOW;
    }
    Ok(())
}

/// Whether the byte at `offset` is in the OS cache: a read that may not wait for the disk
/// (`RWF_NOWAIT`) succeeds only then.
#[cfg(target_os = "linux")]
fn cached(fd: libc::c_int, offset: libc::off_t) -> bool {
    let mut byte = 0u8;
    let iov = libc::iovec {
        iov_base: (&raw mut byte).cast(),
        iov_len: 1,
    };
    // SAFETY: the one iovec points at `byte`, which outlives the call.
    unsafe { libc::preadv2(fd, &iov, 1, offset, libc::RWF_NOWAIT) == 1 }
}

#[cfg(not(target_os = "linux"))]
fn advise_will_need(_file: BorrowedFd<'_>, _len: u64) -> std::io::Result<()> {
    Err(std::io::Error::new(
        std::io::ErrorKind::Unsupported,
        "reading ahead is only asked for on Linux",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_ahead_only_files_small_beside_available_memory() {
        const GIB: u64 = 1 << 30;
        assert!(worth_it(GIB, 16 * GIB));
        assert!(worth_it(4 * GIB, 16 * GIB));
        assert!(!worth_it(4 * GIB + 1, 16 * GIB));
        assert!(!worth_it(GIB, 0), "nothing known available: nothing read");
        assert!(!worth_it(0, 16 * GIB), "an empty file: nothing to read");
    }

    #[test]
    fn finds_available_memory_in_meminfo() {
        let meminfo = "MemTotal:       24683488 kB\nMemFree:        19545108 kB\n\
                       MemAvailable:   24211016 kB\nBuffers:           10520 kB\n";
        assert_eq!(mem_available(meminfo), Some(24_211_016 * 1024));
        assert_eq!(mem_available("MemTotal: 1 kB\n"), None);
    }

    /// How many of `file`'s pages the OS cache holds, asked without reading any (`mincore`
    /// on a map never touched; a read, even `RWF_NOWAIT`, may start reading ahead).
    #[cfg(target_os = "linux")]
    fn resident_pages(file: &std::fs::File) -> usize {
        use std::os::fd::AsRawFd;
        let len = file.metadata().unwrap().len() as usize;
        let page = page_size();
        let mut resident = vec![0u8; len.div_ceil(page)];
        // SAFETY: a fresh read-only shared map of the whole file, never dereferenced; mincore
        // writes one byte per page into `resident`, which has that many; unmapped after.
        unsafe {
            let map = libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ,
                libc::MAP_SHARED,
                file.as_raw_fd(),
                0,
            );
            assert_ne!(map, libc::MAP_FAILED);
            assert_eq!(libc::mincore(map, len, resident.as_mut_ptr()), 0);
            libc::munmap(map, len);
        }
        resident.iter().filter(|r| *r & 1 == 1).count()
    }

    #[cfg(target_os = "linux")]
    fn page_size() -> usize {
        // SAFETY: sysconf reads no memory.
        unsafe { libc::sysconf(libc::_SC_PAGESIZE) as usize }
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn brings_an_evicted_file_back_into_the_cache() {
        use std::os::fd::AsRawFd;
        let dir = std::env::temp_dir().join(format!("livechart-prefetch-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("f");
        let pages = 3 * WINDOW as usize / page_size();
        std::fs::write(&path, vec![1u8; 3 * WINDOW as usize]).unwrap();
        let file = std::fs::File::open(&path).unwrap();
        file.sync_all().unwrap();
        // Written back, so the kernel may drop the pages: they are then out of its cache.
        // SAFETY: posix_fadvise reads no memory.
        let rc = unsafe { libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
        assert_eq!(rc, 0);
        assert_eq!(resident_pages(&file), 0);
        use std::os::fd::AsFd;
        assert!(
            start(file.as_fd()).unwrap(),
            "24 MiB fits beside any machine's memory"
        );
        // The reads ahead are asynchronous: wait for all of them.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while resident_pages(&file) < pages {
            assert!(
                std::time::Instant::now() < deadline,
                "read ahead: {} of {pages} pages",
                resident_pages(&file)
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
