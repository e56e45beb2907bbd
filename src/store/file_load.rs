//! Every load of a policy file (start and reloads) runs on one long-lived thread.
//!
//! glibc's malloc gives threads their own arenas and keeps freed memory in the arena it came
//! from. Loaded on the main thread at start and on whichever runtime thread polled at each
//! reload, every policy left its freed pages resident in a different arena: with the seeded
//! 100,000-node file RSS grew over the first reloads to ~2.6× the start (benches/RESULTS.md).
//! On one thread a reload reuses the memory of the policy before last.

use super::file::Snapshot;
use super::StoreError;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::OnceLock;
use std::time::SystemTime;

/// A compiled policy and the file's modification time when it was read.
pub(super) type Loaded = Result<(Snapshot, Option<SystemTime>), StoreError>;

type Job = (PathBuf, mpsc::SyncSender<Loaded>);

/// The loader thread's queue; `None` when the thread could not be started.
static LOADER: OnceLock<Option<mpsc::Sender<Job>>> = OnceLock::new();

/// Loads `path` on the loader thread and waits for it; loads on the calling thread when the
/// loader is not there (it could not be started, or a load panicked on it).
pub(super) fn load(path: &Path) -> Loaded {
    let queue = LOADER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Job>();
        let spawned = std::thread::Builder::new()
            .name("policy-load".into())
            .spawn(move || {
                for (path, reply) in rx {
                    // The waiter may be gone (its task was cancelled): nothing to tell then.
                    let _ = reply.send(super::file::load(&path));
                }
            });
        spawned.ok().map(|_| tx)
    });
    let (reply, answer) = mpsc::sync_channel(1);
    match queue {
        Some(q) if q.send((path.to_owned(), reply)).is_ok() => match answer.recv() {
            Ok(loaded) => loaded,
            Err(_) => super::file::load(path),
        },
        _ => super::file::load(path),
    }
}
