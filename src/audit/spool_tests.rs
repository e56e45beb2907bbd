use super::*;
use crate::audit::tests::sample_deny;

fn cfg(dir: &Path, max_bytes: u64, segment_bytes: u64) -> SpoolConfig {
    SpoolConfig {
        dir: dir.to_path_buf(),
        max_bytes,
        segment_bytes,
        fsync: FsyncPolicy::Always,
        fsync_interval: std::time::Duration::from_secs(1),
    }
}

fn events(n: usize) -> Vec<Arc<AuditEvent>> {
    (0..n)
        .map(|_| {
            let mut e = sample_deny();
            e.event_id = uuid::Uuid::now_v7();
            Arc::new(e)
        })
        .collect()
}

fn ids(evs: &[Arc<AuditEvent>]) -> Vec<uuid::Uuid> {
    evs.iter().map(|e| e.event_id).collect()
}

fn segment_files(dir: &Path) -> usize {
    fs::read_dir(dir)
        .expect("dir")
        .filter(|e| {
            e.as_ref()
                .map(|e| e.file_name().to_string_lossy().ends_with(".seg"))
                .unwrap_or(false)
        })
        .count()
}

#[test]
fn spool_returns_events_in_append_order_across_segments() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut s = Spool::open(&cfg(dir.path(), 1 << 20, 4096), "pg").expect("open");
    let evs = events(40);
    for chunk in evs.chunks(7) {
        assert_eq!(s.append(chunk).expect("append").stored, chunk.len() as u64);
    }
    assert!(
        segment_files(&dir.path().join("pg")) > 1,
        "small segments rotate"
    );
    let mut got = Vec::new();
    while !s.is_empty() {
        let b = s.read(9).expect("read");
        assert_eq!(b.corrupt, 0);
        got.extend(ids(&b.events));
        s.commit(b.end).expect("commit");
    }
    assert_eq!(got, ids(&evs));
    assert_eq!(
        segment_files(&dir.path().join("pg")),
        0,
        "drained segments are deleted"
    );
}

#[test]
fn spool_resumes_from_its_persisted_cursor_after_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let c = cfg(dir.path(), 1 << 20, 4096);
    let evs = events(20);
    {
        let mut s = Spool::open(&c, "pg").expect("open");
        s.append(&evs).expect("append");
        let b = s.read(5).expect("read");
        s.commit(b.end).expect("commit");
        s.persist().expect("persist");
    }
    let mut s = Spool::open(&c, "pg").expect("reopen");
    let more = events(3);
    s.append(&more).expect("append after reopen");
    let b = s.read(100).expect("read");
    let mut want = ids(&evs[5..]);
    want.extend(ids(&more));
    assert_eq!(ids(&b.events), want);
}

#[test]
fn torn_or_altered_lines_are_skipped_and_counted_as_corrupt() {
    let dir = tempfile::tempdir().expect("tempdir");
    let c = cfg(dir.path(), 1 << 20, 1 << 20);
    let evs = events(3);
    {
        let mut s = Spool::open(&c, "pg").expect("open");
        s.append(&evs).expect("append");
    }
    let seg = fs::read_dir(dir.path().join("pg"))
        .expect("dir")
        .map(|e| e.expect("entry").path())
        .find(|p| p.extension().is_some_and(|x| x == "seg"))
        .expect("segment");
    let text = fs::read_to_string(&seg).expect("read");
    // Flip a character in the second record and tear the third one.
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    lines[1] = lines[1].replacen("deny", "allo", 1);
    let torn = &lines[2][..lines[2].len() / 2];
    let rewritten = format!("{}\n{}\n{}", lines[0], lines[1], torn);
    fs::write(&seg, rewritten).expect("write");
    let s = Spool::open(&c, "pg").expect("reopen");
    let b = s.read(10).expect("read");
    assert_eq!(ids(&b.events), ids(&evs[..1]));
    assert_eq!(b.corrupt, 2);
}

#[test]
fn appends_past_max_bytes_are_refused_and_reported() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut s = Spool::open(&cfg(dir.path(), 4096, 4096), "pg").expect("open");
    let a = s.append(&events(100)).expect("append");
    assert!(a.stored > 0 && a.full > 0);
    assert_eq!(a.stored + a.full, 100);
    assert!(s.waiting_bytes() <= 4096);
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(24))]

    /// Any interleaving of appends, partial reads and commits (with reopen) yields every event
    /// exactly once, in append order.
    #[test]
    fn interleaved_appends_reads_and_reopens_keep_order(
        ops in proptest::collection::vec((1usize..12, 1usize..10, proptest::bool::ANY), 1..12)
    ) {
        let dir = tempfile::tempdir().expect("tempdir");
        let c = SpoolConfig { fsync: FsyncPolicy::Never, ..cfg(dir.path(), 1 << 20, 4096) };
        let mut s = Spool::open(&c, "p").expect("open");
        let (mut sent, mut got) = (Vec::new(), Vec::new());
        for (append, read, reopen) in ops {
            let evs = events(append);
            sent.extend(ids(&evs));
            s.append(&evs).expect("append");
            let b = s.read(read).expect("read");
            got.extend(ids(&b.events));
            s.commit(b.end).expect("commit");
            if reopen {
                s.persist().expect("persist");
                s = Spool::open(&c, "p").expect("reopen");
            }
        }
        while !s.is_empty() {
            let b = s.read(7).expect("read");
            got.extend(ids(&b.events));
            s.commit(b.end).expect("commit");
        }
        proptest::prop_assert_eq!(got, sent);
    }
}

#[test]
fn a_segment_truncated_behind_the_spools_back_is_skipped_not_spun_on() {
    let dir = tempfile::tempdir().expect("tempdir");
    let c = cfg(dir.path(), 1 << 20, 1 << 20);
    let mut s = Spool::open(&c, "pg").expect("open");
    s.append(&events(3)).expect("append");
    let seg = fs::read_dir(dir.path().join("pg"))
        .expect("dir")
        .map(|e| e.expect("entry").path())
        .find(|p| p.extension().is_some_and(|x| x == "seg"))
        .expect("segment");
    fs::write(&seg, b"").expect("truncate");
    let b = s.read(10).expect("read");
    assert!(b.events.is_empty());
    assert_eq!(b.corrupt, 1);
    s.commit(b.end).expect("commit");
    assert!(s.is_empty());
}
