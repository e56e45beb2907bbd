//! The on-disk spool of one sink: append-only segment files of checksummed JSON lines, read back
//! in order from a persisted cursor.
//!
//! Layout under `{dir}/{sink}/`: `{id:020}.seg` segments and `cursor` (`{segment} {offset}`), the
//! first byte not yet accepted by the sink. A record is `{fnv1a64:016x} {json}\n`; a line whose
//! checksum does not match (a torn write after a crash) is skipped and counted as `corrupt`.
//! A new process never appends to an old segment, so a torn tail stays a single bad line.

use super::config::{FsyncPolicy, SpoolConfig};
use super::{AuditError, AuditEvent};
use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

/// Position in the spool: a segment id and a byte offset in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Cursor {
    pub segment: u64,
    pub offset: u64,
}

/// Events read from the head of the spool; pass `end` to [`Spool::commit`] once the sink has them.
#[derive(Debug)]
pub struct SpoolBatch {
    pub events: Vec<Arc<AuditEvent>>,
    pub end: Cursor,
    /// Lines skipped because their checksum or JSON was bad.
    pub corrupt: u64,
}

/// What an append did: how many events were stored and how many did not fit.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    pub stored: u64,
    pub full: u64,
}

/// One sink's spool. Not thread-safe by itself; the auditor keeps it behind a mutex.
#[derive(Debug)]
pub struct Spool {
    dir: PathBuf,
    cfg: SpoolConfig,
    /// Segment ids present on disk, oldest first, with their sizes.
    segments: VecDeque<(u64, u64)>,
    head: Cursor,
    /// The segment this process appends to (always the last in `segments`).
    active: Option<(u64, File)>,
    next_id: u64,
    unsynced_since: Option<Instant>,
}

impl Spool {
    /// Opens (creating if needed) the spool for `sink` and finds what earlier runs left.
    pub fn open(cfg: &SpoolConfig, sink: &str) -> Result<Self, AuditError> {
        let dir = cfg.dir.join(sink);
        fs::create_dir_all(&dir).map_err(|e| io_err(&dir, e))?;
        let mut ids = Vec::new();
        for entry in fs::read_dir(&dir).map_err(|e| io_err(&dir, e))? {
            let entry = entry.map_err(|e| io_err(&dir, e))?;
            let name = entry.file_name();
            let Some(id) = name
                .to_str()
                .and_then(|n| n.strip_suffix(".seg"))
                .and_then(|n| n.parse::<u64>().ok())
            else {
                continue;
            };
            let len = entry
                .metadata()
                .map_err(|e| io_err(&entry.path(), e))?
                .len();
            ids.push((id, len));
        }
        ids.sort_unstable();
        let head = read_cursor(&dir.join("cursor"))?.unwrap_or(Cursor {
            segment: ids.first().map_or(0, |s| s.0),
            offset: 0,
        });
        let mut segments = VecDeque::new();
        for (id, len) in ids {
            if id < head.segment {
                // Fully consumed before the last exit; the delete did not happen.
                let p = seg_path(&dir, id);
                fs::remove_file(&p).map_err(|e| io_err(&p, e))?;
            } else {
                segments.push_back((id, len));
            }
        }
        let next_id = segments
            .back()
            .map_or(head.segment, |s| s.0 + 1)
            .max(head.segment);
        let mut spool = Spool {
            dir,
            cfg: cfg.clone(),
            segments,
            head,
            active: None,
            next_id,
            unsynced_since: None,
        };
        if spool.segments.front().map(|s| s.0) != Some(spool.head.segment) {
            spool.head = Cursor {
                segment: spool.segments.front().map_or(spool.next_id, |s| s.0),
                offset: 0,
            };
        }
        Ok(spool)
    }

    /// Bytes appended and not yet committed.
    pub fn waiting_bytes(&self) -> u64 {
        let total: u64 = self.segments.iter().map(|s| s.1).sum();
        total.saturating_sub(self.head.offset)
    }

    /// True when nothing waits for replay.
    pub fn is_empty(&self) -> bool {
        self.waiting_bytes() == 0
    }

    /// Appends `events` in order; events past `max_bytes` are not stored (`full`).
    pub fn append(&mut self, events: &[Arc<AuditEvent>]) -> Result<Appended, AuditError> {
        let mut out = Appended::default();
        let mut buf = Vec::with_capacity(events.len() * 512);
        let mut waiting = self.waiting_bytes();
        for ev in events {
            let line = encode(ev)?;
            if waiting + buf.len() as u64 + line.len() as u64 > self.cfg.max_bytes {
                out.full += 1;
                continue;
            }
            let seg_len = self.segments.back().map_or(0, |s| s.1);
            if self.active.is_some()
                && seg_len + buf.len() as u64 + line.len() as u64 > self.cfg.segment_bytes
                && seg_len + (buf.len() as u64) > 0
            {
                waiting += buf.len() as u64;
                self.write_active(&buf)?;
                buf.clear();
                self.active = None;
            }
            buf.extend_from_slice(&line);
            out.stored += 1;
        }
        self.write_active(&buf)?;
        Ok(out)
    }

    fn write_active(&mut self, buf: &[u8]) -> Result<(), AuditError> {
        if buf.is_empty() {
            return Ok(());
        }
        if self.active.is_none() {
            let id = self.next_id;
            self.next_id += 1;
            let p = seg_path(&self.dir, id);
            let f = OpenOptions::new()
                .create_new(true)
                .append(true)
                .open(&p)
                .map_err(|e| io_err(&p, e))?;
            if self.segments.is_empty() {
                self.head = Cursor {
                    segment: id,
                    offset: 0,
                };
            }
            self.segments.push_back((id, 0));
            self.active = Some((id, f));
        }
        if let Some((id, f)) = self.active.as_mut() {
            f.write_all(buf)
                .map_err(|e| io_err(&seg_path(&self.dir, *id), e))?;
            if let Some(last) = self.segments.back_mut() {
                last.1 += buf.len() as u64;
            }
        }
        match self.cfg.fsync {
            FsyncPolicy::Always => self.sync()?,
            FsyncPolicy::Interval => {
                self.unsynced_since.get_or_insert_with(Instant::now);
                self.sync_if_due()?;
            }
            FsyncPolicy::Never => {}
        }
        Ok(())
    }

    /// With `fsync = "interval"`: syncs when the oldest unsynced append is old enough.
    pub fn sync_if_due(&mut self) -> Result<(), AuditError> {
        match self.unsynced_since {
            Some(t) if t.elapsed() >= self.cfg.fsync_interval => self.sync(),
            _ => Ok(()),
        }
    }

    /// Flushes appended data to disk now (shutdown, `fsync = "always"`).
    pub fn sync(&mut self) -> Result<(), AuditError> {
        if let Some((id, f)) = &self.active {
            f.sync_data()
                .map_err(|e| io_err(&seg_path(&self.dir, *id), e))?;
        }
        self.unsynced_since = None;
        Ok(())
    }

    /// Reads up to `max` events from the head, in append order, without consuming them.
    pub fn read(&self, max: usize) -> Result<SpoolBatch, AuditError> {
        let mut batch = SpoolBatch {
            events: Vec::new(),
            end: self.head,
            corrupt: 0,
        };
        for &(id, len) in &self.segments {
            if id < batch.end.segment {
                continue;
            }
            let start = if id == batch.end.segment {
                batch.end.offset
            } else {
                0
            };
            batch.end = Cursor {
                segment: id,
                offset: start,
            };
            if start >= len {
                continue;
            }
            let p = seg_path(&self.dir, id);
            let mut f = File::open(&p).map_err(|e| io_err(&p, e))?;
            f.seek(SeekFrom::Start(start)).map_err(|e| io_err(&p, e))?;
            let mut reader = BufReader::new(f.take(len - start));
            let mut line = Vec::new();
            while batch.events.len() < max {
                line.clear();
                let n = reader
                    .read_until(b'\n', &mut line)
                    .map_err(|e| io_err(&p, e))?;
                if n == 0 {
                    // Shorter than recorded (truncated behind our back): skip the missing tail
                    // rather than spin on it.
                    if batch.end.offset < len {
                        batch.end.offset = len;
                        batch.corrupt += 1;
                    }
                    break;
                }
                batch.end.offset += n as u64;
                match decode(&line) {
                    Some(ev) => batch.events.push(Arc::new(ev)),
                    None => batch.corrupt += 1,
                }
            }
            if batch.events.len() >= max {
                break;
            }
        }
        Ok(batch)
    }

    /// Marks everything before `end` as delivered: deletes finished segments, persists the cursor.
    pub fn commit(&mut self, end: Cursor) -> Result<(), AuditError> {
        self.head = end;
        while let Some(&(id, len)) = self.segments.front() {
            let finished = id < end.segment || (id == end.segment && end.offset >= len);
            let is_active = self.active.as_ref().map(|a| a.0) == Some(id);
            if !finished || (is_active && self.segments.len() > 1) {
                break;
            }
            if is_active {
                // Drained completely: start the next append in a fresh segment.
                self.active = None;
            }
            let p = seg_path(&self.dir, id);
            fs::remove_file(&p).map_err(|e| io_err(&p, e))?;
            self.segments.pop_front();
            let front = self.segments.front().map_or(self.next_id, |s| s.0);
            if front > self.head.segment || (front == self.head.segment && self.segments.is_empty())
            {
                self.head = Cursor {
                    segment: front,
                    offset: 0,
                };
            }
        }
        self.write_cursor()
    }

    fn write_cursor(&self) -> Result<(), AuditError> {
        let tmp = self.dir.join("cursor.tmp");
        let text = format!("{} {}\n", self.head.segment, self.head.offset);
        fs::write(&tmp, text).map_err(|e| io_err(&tmp, e))?;
        let dst = self.dir.join("cursor");
        fs::rename(&tmp, &dst).map_err(|e| io_err(&dst, e))
    }

    /// Syncs data and persists the cursor (graceful shutdown).
    pub fn persist(&mut self) -> Result<(), AuditError> {
        self.sync()?;
        self.write_cursor()
    }
}

fn seg_path(dir: &Path, id: u64) -> PathBuf {
    dir.join(format!("{id:020}.seg"))
}

fn io_err(path: &Path, source: std::io::Error) -> AuditError {
    AuditError::Spool {
        path: path.display().to_string(),
        source,
    }
}

fn read_cursor(path: &Path) -> Result<Option<Cursor>, AuditError> {
    let text = match fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err(path, e)),
    };
    let mut parts = text.split_whitespace().map(str::parse::<u64>);
    match (parts.next(), parts.next()) {
        (Some(Ok(segment)), Some(Ok(offset))) => Ok(Some(Cursor { segment, offset })),
        // An unreadable cursor replays from the oldest segment: duplicates, never loss.
        _ => Ok(None),
    }
}

/// FNV-1a 64: detects torn or flipped lines; not a security checksum.
fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

fn encode(ev: &AuditEvent) -> Result<Vec<u8>, AuditError> {
    let json = serde_json::to_vec(ev).map_err(AuditError::Encode)?;
    let mut line = Vec::with_capacity(json.len() + 18);
    line.extend_from_slice(format!("{:016x} ", fnv1a64(&json)).as_bytes());
    line.extend_from_slice(&json);
    line.push(b'\n');
    Ok(line)
}

fn decode(line: &[u8]) -> Option<AuditEvent> {
    let line = line.strip_suffix(b"\n")?;
    if line.len() < 17 || line[16] != b' ' {
        return None;
    }
    let sum = u64::from_str_radix(std::str::from_utf8(&line[..16]).ok()?, 16).ok()?;
    let json = &line[17..];
    if fnv1a64(json) != sum {
        return None;
    }
    serde_json::from_slice(json).ok()
}

#[cfg(test)]
#[path = "spool_tests.rs"]
mod tests;
