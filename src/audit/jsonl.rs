//! JSON-lines sink: one event per line on stdout or in a file rotated by size
//! (`audit.jsonl` → `audit.jsonl.1` → … → `audit.jsonl.{keep}`, the oldest deleted).

use super::{AuditError, AuditEvent, AuditSink};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// Writes batches as JSON lines. File I/O runs on the blocking pool.
pub struct JsonlSink {
    name: String,
    target: Arc<Mutex<Target>>,
}

enum Target {
    Stdout,
    File(RotatingFile),
}

struct RotatingFile {
    path: PathBuf,
    max_bytes: u64,
    keep: u32,
    file: Option<File>,
    size: u64,
}

impl JsonlSink {
    /// Lines on standard output (for a log collector).
    pub fn stdout(name: String) -> Self {
        JsonlSink {
            name,
            target: Arc::new(Mutex::new(Target::Stdout)),
        }
    }

    /// Lines appended to `path`, rotated once it would pass `max_bytes`, keeping `keep` old files.
    pub fn file(
        name: String,
        path: PathBuf,
        max_bytes: u64,
        keep: u32,
    ) -> Result<Self, AuditError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| io_err(&name, e))?;
        }
        Ok(JsonlSink {
            name,
            target: Arc::new(Mutex::new(Target::File(RotatingFile {
                path,
                max_bytes,
                keep: keep.max(1),
                file: None,
                size: 0,
            }))),
        })
    }
}

#[async_trait::async_trait]
impl AuditSink for JsonlSink {
    fn name(&self) -> &str {
        &self.name
    }

    async fn write(&self, batch: &[Arc<AuditEvent>]) -> Result<(), AuditError> {
        // The whole batch in one buffer (`json_line` writes what serde_json would), with where
        // each line ends (rotation is decided line by line).
        let mut lines = Lines {
            buf: Vec::with_capacity(batch.len() * 1024),
            ends: Vec::with_capacity(batch.len()),
        };
        for ev in batch {
            super::json_line::write_line(ev, &mut lines.buf).map_err(AuditError::Encode)?;
            lines.ends.push(lines.buf.len());
        }
        let target = self.target.clone();
        let name = self.name.clone();
        let res = tokio::task::spawn_blocking(move || {
            let mut t = target.lock().unwrap_or_else(|p| p.into_inner());
            match &mut *t {
                Target::Stdout => {
                    let mut out = std::io::stdout().lock();
                    out.write_all(&lines.buf)?;
                    out.flush()
                }
                Target::File(f) => f.write_lines(&lines),
            }
        })
        .await;
        match res {
            Ok(r) => r.map_err(|e| io_err(&name, e)),
            Err(join) => Err(AuditError::SinkUnavailable {
                sink: name,
                source: Box::new(join),
            }),
        }
    }
}

/// A batch's JSON lines in one buffer; `ends[i]` is where line `i` ends.
struct Lines {
    buf: Vec<u8>,
    ends: Vec<usize>,
}

impl RotatingFile {
    /// Appends the lines, rotating before a line that would take the file past `max_bytes`;
    /// the lines between two rotations go out in one write (not one system call per line).
    fn write_lines(&mut self, lines: &Lines) -> std::io::Result<()> {
        let (mut run, mut prev) = (0, 0);
        for &end in &lines.ends {
            let len = (end - prev) as u64;
            if self.file.is_none() {
                self.open()?;
            }
            if self.size > 0 && self.size + len > self.max_bytes {
                self.append(&lines.buf[run..prev])?;
                run = prev;
                self.rotate()?;
            }
            self.size += len;
            prev = end;
        }
        self.append(&lines.buf[run..prev])?;
        if let Some(f) = self.file.as_mut() {
            f.flush()?;
        }
        Ok(())
    }

    fn append(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        match self.file.as_mut() {
            Some(f) if !bytes.is_empty() => f.write_all(bytes),
            _ => Ok(()),
        }
    }

    fn open(&mut self) -> std::io::Result<()> {
        let f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        self.size = f.metadata()?.len();
        self.file = Some(f);
        Ok(())
    }

    fn rotate(&mut self) -> std::io::Result<()> {
        self.file = None;
        let numbered = |n: u32| {
            let mut p = self.path.clone().into_os_string();
            p.push(format!(".{n}"));
            PathBuf::from(p)
        };
        match std::fs::remove_file(numbered(self.keep)) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        for n in (1..self.keep).rev() {
            match std::fs::rename(numbered(n), numbered(n + 1)) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        std::fs::rename(&self.path, numbered(1))?;
        self.open()
    }
}

fn io_err(sink: &str, e: std::io::Error) -> AuditError {
    AuditError::SinkUnavailable {
        sink: sink.to_owned(),
        source: Box::new(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn file_sink_rotates_by_size_and_keeps_n_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("audit.jsonl");
        let sink = JsonlSink::file("file".into(), path.clone(), 4096, 2).expect("sink");
        let ev = Arc::new(super::super::tests::sample_deny());
        for _ in 0..60 {
            sink.write(&[ev.clone(), ev.clone()]).await.expect("write");
        }
        let mut names: Vec<String> = std::fs::read_dir(dir.path())
            .expect("read_dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["audit.jsonl", "audit.jsonl.1", "audit.jsonl.2"]);
        for n in &names {
            let text = std::fs::read_to_string(dir.path().join(n)).expect("read");
            assert!(text.len() as u64 <= 4096, "{n} is {} bytes", text.len());
            for line in text.lines() {
                let back: AuditEvent = serde_json::from_str(line).expect("json line");
                assert_eq!(back, *ev);
            }
        }
    }

    #[tokio::test]
    async fn one_batch_rotates_between_its_lines_and_loses_none() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("audit.jsonl");
        let sink = JsonlSink::file("file".into(), path.clone(), 4096, 9).expect("sink");
        let ev = Arc::new(super::super::tests::sample_allow());
        let line = serde_json::to_vec(&*ev).expect("json").len() as u64 + 1;
        let batch = vec![ev.clone(); 20];
        sink.write(&batch).await.expect("write");
        let mut lines = 0;
        let mut files = 0;
        for entry in std::fs::read_dir(dir.path()).expect("read_dir") {
            let text = std::fs::read_to_string(entry.expect("entry").path()).expect("read");
            assert!(text.len() as u64 <= 4096, "{} bytes", text.len());
            assert_eq!(text.len() as u64 % line, 0, "whole lines only");
            for l in text.lines() {
                let back: AuditEvent = serde_json::from_str(l).expect("json line");
                assert_eq!(back, *ev);
                lines += 1;
            }
            files += 1;
        }
        assert_eq!(lines, 20);
        assert_eq!(files as u64, 20_u64.div_ceil(4096 / line));
    }
}
