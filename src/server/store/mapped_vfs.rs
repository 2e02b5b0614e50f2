//! The history readers' VFS: SQLite's own (`unix`) with the database file kept mapped from
//! one read transaction to the next.
//!
//! SQLite unmaps a connection's map whenever a read begins after another connection
//! committed, in case another process truncated the file and extended it again meanwhile.
//! A server commits several times a second, so every history read faulted its pages into a
//! fresh map, which cost more than copying them (`pread`), and reads copied: 2 000 pages of
//! 16 KiB through the kernel per read at 2 000 columns (BENCHMARKS.md, "History at 2 000
//! columns"). This store's file never shrinks (no `VACUUM`, no auto-vacuum, one server per
//! data directory; SQLite's own `ftruncate` calls keep or extend its size), so one map of
//! the file, shared by every read connection, stays valid for as long as any of them is
//! open. This VFS hands out pages from it and answers SQLite's "unmap" by measuring the file
//! again, so it hands out no page past the file's end as last measured (SQLite asks for none
//! past a snapshot's size). A page past the map's reserve, the file's last page (see
//! [`OVERREAD`]), a page [`populate`] has not reached yet, or any page when there is no map,
//! is read as before. [`populate`] maps the whole file in a second after start, when it fits
//! easily in memory, so that no read faults pages in one by one.
//!
//! An I/O error on a mapped page is a `SIGBUS`, not an error code: SQLite's own map has the
//! same risk.
//!
//! Only the main database file is mapped this way; the WAL, its index and temporary files
//! are the `unix` VFS's, untouched. Every file method but fetch, unfetch and close is the
//! `unix` VFS's own: its file object sits first in ours, this VFS's state after it.

use rusqlite::ffi;
use std::ffi::{c_char, c_int, c_void};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};

/// The name connections open with ([`register`] first).
pub const NAME: &str = "livechart-mapped";

/// Address space a map takes at least (twice the file when that is more): the file grows into
/// it under the same map, and a page past it is read instead. Address space, not memory (the
/// pages are the OS cache's); 64 GiB leaves room for two thousand maps in a process, and a
/// map that cannot be had only leaves reads copying pages.
const MIN_RESERVE: usize = 1 << 36;

/// SQLite may read a little past the end of a page it fetched (a damaged page): as the `unix`
/// VFS does, a page is handed out only with this much of the file after it.
const OVERREAD: usize = 256;

/// Bytes mapped in per `madvise` call: between calls [`populate`] pauses for reads and
/// stops when nobody else uses the map.
const POPULATE_STEP: usize = 1 << 20;

/// How long [`populate`] waits once a read went on while it worked, before looking again.
const POPULATE_PAUSE: std::time::Duration = std::time::Duration::from_millis(20);

/// How long [`populate`] lets a new store serve before it begins: populating beside the
/// first reads after a start slowed them by half even with the pauses.
const POPULATE_DELAY: std::time::Duration = std::time::Duration::from_secs(1);

/// Set by every fetch, cleared by [`populate`]: a read is going on. Populating beside a read
/// made it 2-4× slower (its allocations wait for the map's lock, which populating holds), so
/// populating pauses between steps while reads go on.
static READING: AtomicBool = AtomicBool::new(false);

/// One map of a database file, shared by every connection that reads it.
struct FileMap {
    /// Which file: device and inode, whatever path it was opened by.
    id: (u64, u64),
    /// The descriptor the map was made from, kept open as long as the map: closing any
    /// descriptor of a file drops every POSIX lock the process holds on it, SQLite's
    /// included, and another process (a `sqlite3` shell, a backup) could then take the
    /// database as unused and remove its WAL. It closes after the last read connection,
    /// when the store has closed the file (its writer goes first).
    fd: std::os::fd::OwnedFd,
    map: *mut u8,
    reserved: usize,
    /// Bytes of the file that pages may be handed out from: its size when last measured.
    known: AtomicUsize,
    /// Bytes from the start that [`populate`] mapped in (all, once it is done or will not
    /// run): pages past them are read, not faulted in one by one, until it gets there.
    populated: AtomicUsize,
}

// SAFETY: the map is read-only and lives as long as the value; `known` is atomic.
unsafe impl Send for FileMap {}
unsafe impl Sync for FileMap {}

impl Drop for FileMap {
    fn drop(&mut self) {
        // SAFETY: the last reference is gone, so no page of the map is in use.
        unsafe { libc::munmap(self.map.cast(), self.reserved) };
    }
}

impl FileMap {
    /// Records the file's size measured now.
    fn measured(&self, size: usize) {
        self.known.store(size.min(self.reserved), Ordering::Release);
    }
}

/// The maps alive, at most one per file.
static MAPS: Mutex<Vec<Weak<FileMap>>> = Mutex::new(Vec::new());

/// The alive map of the file at `path`, found by device and inode (no descriptor of it is
/// opened, see [`FileMap::fd`]).
fn find(maps: &mut Vec<Weak<FileMap>>, path: &std::path::Path) -> Option<Arc<FileMap>> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(path).ok()?;
    let id = (meta.dev(), meta.ino());
    maps.retain(|m| m.strong_count() > 0);
    maps.iter().filter_map(Weak::upgrade).find(|m| m.id == id)
}

/// The map of the file at `path`, shared with every other user of the same file; made when
/// there is none.
fn map_of(path: &std::ffi::CStr) -> Option<Arc<FileMap>> {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    use std::os::unix::ffi::OsStrExt;
    let mut maps = MAPS.lock().unwrap_or_else(|e| e.into_inner());
    let path_buf = std::path::Path::new(std::ffi::OsStr::from_bytes(path.to_bytes()));
    if let Some(map) = find(&mut maps, path_buf) {
        return Some(map);
    }
    // SAFETY: `path` is NUL-terminated; a new descriptor is owned from here on.
    let fd = unsafe { libc::open(path.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
    if fd < 0 {
        return None;
    }
    // SAFETY: `fd` was just opened and nothing else owns it.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: `stat` is plain data, filled by `fstat` on an open descriptor; then a new
    // read-only shared map of it, touching nothing else.
    let made = unsafe {
        let mut stat: libc::stat = std::mem::zeroed();
        if libc::fstat(fd.as_raw_fd(), &mut stat) == 0 {
            usize::try_from(stat.st_size).ok().and_then(|size| {
                let reserved = size.saturating_mul(2).max(MIN_RESERVE);
                let map = libc::mmap(
                    std::ptr::null_mut(),
                    reserved,
                    libc::PROT_READ,
                    libc::MAP_SHARED,
                    fd.as_raw_fd(),
                    0,
                );
                (map != libc::MAP_FAILED).then_some((
                    (stat.st_dev, stat.st_ino),
                    map.cast::<u8>(),
                    size,
                    reserved,
                ))
            })
        } else {
            None
        }
    };
    let Some((id, map, size, reserved)) = made else {
        // Not closed, for the locks' sake (see `FileMap::fd`): one descriptor per failure,
        // and a connection asks once.
        std::mem::forget(fd);
        return None;
    };
    let map = Arc::new(FileMap {
        id,
        fd,
        map,
        reserved,
        known: AtomicUsize::new(size.min(reserved)),
        populated: AtomicUsize::new(0),
    });
    maps.push(Arc::downgrade(&map));
    Some(map)
}

/// Runs `f` with a descriptor of the file at `path` when a read connection has it mapped:
/// one opened and closed for the purpose would drop the process's locks on the file (see
/// [`FileMap::fd`]).
pub fn with_descriptor<T>(
    path: &std::path::Path,
    f: impl FnOnce(std::os::fd::BorrowedFd<'_>) -> T,
) -> Option<T> {
    use std::os::fd::AsFd;
    let map = find(&mut MAPS.lock().unwrap_or_else(|e| e.into_inner()), path)?;
    Some(f(map.fd.as_fd()))
}

/// Maps every page of `file` in (the OS reads those it does not hold) when `worth_it`, so
/// that no read pays a page fault per page the first time it meets it; returns the bytes
/// mapped. Until it gets to a page, reads copy that page, as they would without a map: a
/// first fault costs more than a copy. Not `worth_it` (a file too large beside memory), the
/// map is handed out as it is, faulting pages in as reads meet them (the kernel reads ahead
/// around a fault, not around a copy, which for a file not in the OS cache is faster). Each
/// page costs a page-table entry (2 MB for an 800 MB file), taken once per process. Run on a
/// background thread: it takes as long as reading the file.
pub fn populate(file: &std::path::Path, worth_it: bool) -> std::io::Result<usize> {
    // No read connection has the file mapped: nobody to populate for.
    let Some(map) = find(&mut MAPS.lock().unwrap_or_else(|e| e.into_inner()), file) else {
        return Ok(0);
    };
    if !worth_it {
        map.populated.store(usize::MAX, Ordering::Release);
        return Ok(0);
    }
    // The first reads after a start come right after it: they go first. Meanwhile the map is
    // not held here, so a store closed at once lets it go at once.
    let waiting = Arc::downgrade(&map);
    drop(map);
    std::thread::sleep(POPULATE_DELAY);
    // Gone: the readers closed, or closed and opened again (a new map of the same file).
    let again = || find(&mut MAPS.lock().unwrap_or_else(|e| e.into_inner()), file);
    let Some(map) = waiting.upgrade().or_else(again) else {
        return Ok(0);
    };
    match populate_map(&map) {
        // Stopped early (nobody else used the map): the pages past it are still read.
        Ok((done, false)) => Ok(done),
        Ok((done, true)) => {
            map.populated.store(usize::MAX, Ordering::Release);
            Ok(done)
        }
        // A kernel without `MADV_POPULATE_READ` (before 5.14): the map is handed out as it
        // is, each page faulted in the first time a read meets it, then kept.
        Err(e) => {
            map.populated.store(usize::MAX, Ordering::Release);
            Err(e)
        }
    }
}

#[cfg(target_os = "linux")]
/// Bytes populated, and whether that is the whole file.
fn populate_map(map: &Arc<FileMap>) -> std::io::Result<(usize, bool)> {
    let end = map.known.load(Ordering::Acquire);
    let mut at = 0;
    while at < end {
        // Every other user may have closed meanwhile: then nobody needs the pages.
        if Arc::strong_count(map) == 1 {
            break;
        }
        // Once per step at most: under reads without end, it still gets there, slowly.
        if READING.swap(false, Ordering::Relaxed) {
            std::thread::sleep(POPULATE_PAUSE);
        }
        let step = POPULATE_STEP.min(end - at);
        // SAFETY: `[at, at + step)` lies inside the map, which `map` keeps alive.
        let rc = unsafe { libc::madvise(map.map.add(at).cast(), step, libc::MADV_POPULATE_READ) };
        if rc != 0 {
            return Err(std::io::Error::last_os_error());
        }
        at += step;
        map.populated.fetch_max(at, Ordering::Release);
    }
    Ok((at, at >= end))
}

#[cfg(not(target_os = "linux"))]
fn populate_map(_map: &Arc<FileMap>) -> std::io::Result<(usize, bool)> {
    Err(std::io::Error::new(
        std::io::ErrorKind::Unsupported,
        "maps are populated only on Linux",
    ))
}

/// This VFS's state for one open file, after the `unix` VFS's file object.
#[repr(C)]
struct Mapped {
    /// The file's map (`Arc::into_raw`; null: none yet, or none possible).
    map: *const FileMap,
    /// The file's full path (SQLite keeps it valid until the file is closed).
    path: *const c_char,
    /// A map was asked for: one that failed is not asked for again at every page.
    tried: bool,
}

/// The `unix` VFS and where this VFS's state starts in a file object.
struct Registered {
    real: *mut ffi::sqlite3_vfs,
    offset: usize,
}

/// The `unix` VFS's methods for a main database file, and this VFS's copy of them.
struct Methods {
    real: *const ffi::sqlite3_io_methods,
    ours: ffi::sqlite3_io_methods,
}

// SAFETY: both hold pointers to SQLite's static VFS and method tables, never written after
// registration, and this module's copy, never written after it is made.
unsafe impl Send for Registered {}
unsafe impl Sync for Registered {}
unsafe impl Send for Methods {}
unsafe impl Sync for Methods {}

static REGISTERED: OnceLock<Option<Registered>> = OnceLock::new();
static METHODS: OnceLock<Methods> = OnceLock::new();

/// Registers the VFS (once; later calls do nothing). False when it could not be: callers
/// then open with the default VFS.
pub fn register() -> bool {
    REGISTERED
        .get_or_init(|| {
            // SAFETY: `sqlite3_vfs_find(null)` returns SQLite's default VFS, which lives for
            // the process. The copy is leaked, as SQLite requires of a registered VFS.
            unsafe {
                let real = ffi::sqlite3_vfs_find(std::ptr::null());
                if real.is_null() || (*real).xOpen.is_none() {
                    return None;
                }
                let offset = ((*real).szOsFile as usize).next_multiple_of(8);
                let mut ours: ffi::sqlite3_vfs = std::ptr::read(real);
                ours.szOsFile = (offset + std::mem::size_of::<Mapped>()) as c_int;
                ours.zName = c"livechart-mapped".as_ptr();
                ours.pNext = std::ptr::null_mut();
                ours.xOpen = Some(open);
                let ours = Box::leak(Box::new(ours));
                if ffi::sqlite3_vfs_register(ours, 0) != ffi::SQLITE_OK {
                    return None;
                }
                Some(Registered { real, offset })
            }
        })
        .is_some()
}

/// This VFS's state in `file`.
///
/// # Safety
/// `file` must be a file object this VFS allocated (SQLite allocates `szOsFile` bytes).
unsafe fn mapped(file: *mut ffi::sqlite3_file) -> *mut Mapped {
    let offset = REGISTERED
        .get()
        .and_then(Option::as_ref)
        .map_or(0, |r| r.offset);
    // SAFETY: the caller's file object is `offset + size_of::<Mapped>()` bytes long.
    unsafe { file.cast::<u8>().add(offset).cast::<Mapped>() }
}

unsafe extern "C" fn open(
    _vfs: *mut ffi::sqlite3_vfs,
    name: ffi::sqlite3_filename,
    file: *mut ffi::sqlite3_file,
    flags: c_int,
    out_flags: *mut c_int,
) -> c_int {
    let Some(Some(registered)) = REGISTERED.get() else {
        return ffi::SQLITE_ERROR;
    };
    // SAFETY: SQLite hands a zeroed file object of this VFS's size; the `unix` VFS opens its
    // own object at its start, as it would in one of its own size.
    unsafe {
        let real = registered.real;
        let Some(real_open) = (*real).xOpen else {
            return ffi::SQLITE_ERROR;
        };
        let rc = real_open(real, name, file, flags, out_flags);
        mapped(file).write(Mapped {
            map: std::ptr::null(),
            path: name,
            tried: false,
        });
        let methods = (*file).pMethods;
        if rc != ffi::SQLITE_OK
            || methods.is_null()
            || name.is_null()
            || flags & ffi::SQLITE_OPEN_MAIN_DB == 0
        {
            return rc;
        }
        let ours = METHODS.get_or_init(|| {
            let mut ours = std::ptr::read(methods);
            ours.xFetch = Some(fetch);
            ours.xUnfetch = Some(unfetch);
            ours.xClose = Some(close);
            Methods {
                real: methods,
                ours,
            }
        });
        // Another kind of file object (a locking style other than the first one seen) keeps
        // its own methods: it is read as SQLite reads it.
        if ours.real == methods && (*methods).iVersion >= 3 {
            (*file).pMethods = &ours.ours;
            // Now rather than at the first fetch: [`populate`], started after the readers
            // open, then finds the map they use.
            map(&mut *mapped(file));
        }
        rc
    }
}

/// The file's size, by the `unix` VFS's own method.
///
/// # Safety
/// `file` must be an open file object of this VFS.
unsafe fn file_size(file: *mut ffi::sqlite3_file) -> Option<usize> {
    let real = METHODS.get()?.real;
    let mut size: ffi::sqlite3_int64 = 0;
    // SAFETY: the `unix` VFS's object sits at the start of `file`.
    let rc = unsafe { ((*real).xFileSize?)(file, &mut size) };
    (rc == ffi::SQLITE_OK).then_some(usize::try_from(size).ok()?)
}

/// The file's map, made or found when the file opens (null when none could be had).
///
/// # Safety
/// `state` must be the state of an open file object of this VFS.
unsafe fn map(state: &mut Mapped) -> *const FileMap {
    if state.tried || state.path.is_null() {
        return state.map;
    }
    state.tried = true;
    // SAFETY: `path` is the NUL-terminated name SQLite opened the file by.
    let path = unsafe { std::ffi::CStr::from_ptr(state.path) };
    if let Some(map) = map_of(path) {
        state.map = Arc::into_raw(map);
    }
    state.map
}

unsafe extern "C" fn fetch(
    file: *mut ffi::sqlite3_file,
    offset: ffi::sqlite3_int64,
    amount: c_int,
    page: *mut *mut c_void,
) -> c_int {
    // SAFETY: SQLite calls with an open file object of this VFS and a place for the answer;
    // the map stays alive while the file holds it.
    unsafe {
        *page = std::ptr::null_mut();
        // Stored only when clear: no cache line bounces between reading threads.
        if !READING.load(Ordering::Relaxed) {
            READING.store(true, Ordering::Relaxed);
        }
        let Some(map) = map(&mut *mapped(file)).as_ref() else {
            return ffi::SQLITE_OK;
        };
        let (Ok(offset), Ok(amount)) = (usize::try_from(offset), usize::try_from(amount)) else {
            return ffi::SQLITE_OK;
        };
        let end = offset.saturating_add(amount).saturating_add(OVERREAD);
        if end > map.known.load(Ordering::Acquire) {
            // The file may have grown since it was measured (a checkpoint).
            if let Some(size) = file_size(file) {
                map.measured(size);
            }
        }
        if end <= map.known.load(Ordering::Acquire) && end <= map.populated.load(Ordering::Acquire)
        {
            *page = map.map.add(offset).cast();
            #[cfg(test)]
            tests::HANDED_OUT.fetch_add(1, Ordering::Relaxed);
        }
    }
    ffi::SQLITE_OK
}

unsafe extern "C" fn unfetch(
    file: *mut ffi::sqlite3_file,
    _offset: ffi::sqlite3_int64,
    page: *mut c_void,
) -> c_int {
    if !page.is_null() {
        // A page handed back: the map stays.
        return ffi::SQLITE_OK;
    }
    // SAFETY: with a null page SQLite asks to drop the whole map, when the file may have
    // changed size. It is measured again instead: no page past its end is handed out, even
    // had it shrunk.
    unsafe {
        let state = &mut *mapped(file);
        if let (Some(map), Some(size)) = (state.map.as_ref(), file_size(file)) {
            map.measured(size);
        }
        // The `unix` VFS's own map, had it made one (it does when a checkpoint at close
        // extends the file), goes as SQLite asks.
        match METHODS.get().and_then(|m| (*m.real).xUnfetch) {
            Some(real_unfetch) => real_unfetch(file, 0, std::ptr::null_mut()),
            None => ffi::SQLITE_OK,
        }
    }
}

unsafe extern "C" fn close(file: *mut ffi::sqlite3_file) -> c_int {
    // SAFETY: SQLite closes a file once, with nothing of its map in use.
    unsafe {
        let state = &mut *mapped(file);
        if !state.map.is_null() {
            drop(Arc::from_raw(state.map));
            state.map = std::ptr::null();
        }
        match METHODS.get().and_then(|m| (*m.real).xClose) {
            Some(real_close) => real_close(file),
            None => ffi::SQLITE_ERROR,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::{Connection, OpenFlags};

    /// Pages handed out from a map, by every test of the process.
    pub(super) static HANDED_OUT: AtomicUsize = AtomicUsize::new(0);

    fn writer(path: &std::path::Path) -> Connection {
        let conn = Connection::open(path).expect("opens");
        conn.execute_batch(
            "PRAGMA page_size = 16384; PRAGMA journal_mode = WAL;
             CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, data BLOB NOT NULL);",
        )
        .expect("schema");
        conn
    }

    fn reader(path: &std::path::Path) -> Connection {
        assert!(register(), "the VFS registers");
        let conn =
            Connection::open_with_flags_and_vfs(path, OpenFlags::SQLITE_OPEN_READ_WRITE, NAME)
                .expect("a reader opens");
        conn.pragma_update(None, "mmap_size", 1_i64 << 30)
            .expect("mmap on");
        conn
    }

    /// Row `id`'s contents in version `v`: every byte depends on both.
    fn blob(id: i64, v: i64) -> Vec<u8> {
        (0..12_000).map(|i| (id * 31 + v * 7 + i) as u8).collect()
    }

    /// What a reader sees: for each row, its id and the version its bytes match (-1: none).
    fn seen(conn: &Connection) -> Vec<(i64, i64)> {
        let mut q = conn
            .prepare("SELECT id, data FROM t ORDER BY id")
            .expect("query");
        q.query_map([], |r| {
            let id: i64 = r.get(0)?;
            let data: Vec<u8> = r.get(1)?;
            let v = (0..4).find(|&v| data == blob(id, v)).unwrap_or(-1);
            Ok((id, v))
        })
        .expect("rows")
        .collect::<Result<_, _>>()
        .expect("rows")
    }

    /// Whether this process holds a read lock on SQLite's shared-lock bytes of `path`, asked
    /// through a lock of another kind (an OFD lock conflicts with the process's own record
    /// locks). The probe's descriptor stays open: closing it would drop those locks.
    #[cfg(target_os = "linux")]
    fn shared_lock_held(path: &std::path::Path) -> bool {
        use std::os::fd::AsRawFd;
        let probe = std::fs::File::open(path).expect("probe opens");
        // SAFETY: `flock` is plain data, filled by the kernel for the open descriptor.
        let held = unsafe {
            let mut lock: libc::flock = std::mem::zeroed();
            lock.l_type = libc::F_WRLCK as libc::c_short;
            lock.l_whence = libc::SEEK_SET as libc::c_short;
            // SQLite's SHARED_FIRST and SHARED_SIZE: PENDING_BYTE (1 GiB) + 2, 510 bytes.
            lock.l_start = 0x4000_0002;
            lock.l_len = 510;
            assert_eq!(
                libc::fcntl(probe.as_raw_fd(), libc::F_OFD_GETLK, &mut lock),
                0
            );
            lock.l_type != libc::F_UNLCK as libc::c_short
        };
        std::mem::forget(probe);
        held
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn mapping_and_reading_ahead_keep_sqlites_locks_on_the_file() {
        let dir = std::env::temp_dir().join(format!("livechart-locks-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("db");
        let w = writer(&path);
        w.execute("INSERT INTO t (id, data) VALUES (0, ?1)", [blob(0, 0)])
            .expect("a row");
        // A connection in WAL mode holds a shared lock on the file while it is open.
        assert_eq!(seen(&w), vec![(0, 0)]);
        assert!(shared_lock_held(&path), "SQLite's lock, before");
        let r = reader(&path);
        assert_eq!(seen(&r), vec![(0, 0)]);
        assert!(
            with_descriptor(&path, |_| ()).is_some(),
            "the reader maps the file"
        );
        populate(&path, true).expect("populates");
        // Closing any descriptor of the file would have dropped every lock the process holds.
        assert!(shared_lock_held(&path), "SQLite's lock, after");
        drop((r, w));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn readers_see_every_commit_through_the_kept_map_as_the_file_grows_and_changes() {
        let dir = std::env::temp_dir().join(format!("livechart-mapped-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("db");
        let w = writer(&path);
        w.execute("INSERT INTO t (id, data) VALUES (0, ?1)", [blob(0, 0)])
            .expect("first row");
        w.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
            .expect("checkpoint");
        let readers = [reader(&path), reader(&path)];
        assert_eq!(seen(&readers[0]), vec![(0, 0)]);
        populate(&path, true).expect("populates");
        let before = HANDED_OUT.load(Ordering::Relaxed);
        let mut expected = vec![(0, 0)];
        // The file grows from one row to many times its size when first mapped; each round
        // also rewrites older rows and moves them into the file, so pages change under the map.
        for round in 1..=30i64 {
            for id in round * 10..round * 10 + 10 {
                w.execute(
                    "INSERT INTO t (id, data) VALUES (?1, ?2)",
                    (id, blob(id, 0)),
                )
                .expect("insert");
                expected.push((id, 0));
            }
            let old = (round * 7) % (round * 10);
            let version = round % 4;
            if let Some(row) = expected.iter_mut().find(|(id, _)| *id == old) {
                w.execute(
                    "UPDATE t SET data = ?2 WHERE id = ?1",
                    (old, blob(old, version)),
                )
                .expect("update");
                row.1 = version;
            }
            if round % 3 == 0 {
                w.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
                    .expect("checkpoint");
            }
            for r in &readers {
                assert_eq!(seen(r), expected, "round {round}");
            }
        }
        assert!(
            HANDED_OUT.load(Ordering::Relaxed) > before,
            "pages came from the map"
        );
        drop(readers);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
