//! Command output on stdout that ends quietly when the reader goes away: `portcullis routes
//! match … | head` closes the pipe early, and `println!` would panic on the broken pipe (Rust
//! ignores SIGPIPE, so the write fails with EPIPE). A closed stdout ends the process with
//! exit code 0 and nothing on stderr, as a reader that wanted no more expects.

use std::io::{ErrorKind, Write};

/// Writes `text` to stdout; exits 0 when stdout is a closed pipe. Other write errors are
/// reported on stderr and end the process with exit code 1.
pub(crate) fn emit(text: &str) {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => {}
        Err(e) if e.kind() == ErrorKind::BrokenPipe => std::process::exit(0),
        Err(e) => {
            eprintln!("portcullis: cannot write to stdout: {e}");
            std::process::exit(1);
        }
    }
}
