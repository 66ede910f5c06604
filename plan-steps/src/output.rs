//! A command's output, local or remote: read from its two streams, kept
//! bounded (head and tail, with a count of what fell in between) and logged
//! line by line.

use std::collections::VecDeque;
use std::io;

use tokio::io::{AsyncRead, AsyncReadExt};

use crate::local::OUTPUT_TARGET;

/// A line longer than this is logged in pieces.
const LINE_LIMIT: usize = 8 * 1024;

/// Which stream bytes came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

/// The first and last bytes of the output, and how many fell in between
/// (for local and remote commands alike).
pub(crate) struct Capture {
    head: Vec<u8>,
    head_limit: usize,
    tail: VecDeque<u8>,
    tail_limit: usize,
    total: u64,
}

impl Capture {
    pub(crate) fn new(limit: usize) -> Self {
        let head_limit = limit / 2;
        Capture {
            head: Vec::new(),
            head_limit,
            tail: VecDeque::new(),
            tail_limit: limit - head_limit,
            total: 0,
        }
    }

    pub(crate) fn push(&mut self, bytes: &[u8]) {
        self.total += bytes.len() as u64;
        let room = self.head_limit - self.head.len();
        let (head, rest) = bytes.split_at(room.min(bytes.len()));
        self.head.extend_from_slice(head);
        let rest = &rest[rest.len().saturating_sub(self.tail_limit)..];
        let overflow = (self.tail.len() + rest.len()).saturating_sub(self.tail_limit);
        self.tail.drain(..overflow);
        self.tail.extend(rest);
    }

    fn dropped(&self) -> u64 {
        self.total - (self.head.len() + self.tail.len()) as u64
    }

    /// The text, with a note where bytes were left out, and their number.
    pub(crate) fn into_output(self) -> (String, u64) {
        let dropped = self.dropped();
        let Capture { head, tail, .. } = self;
        let tail = Vec::from(tail);
        if dropped == 0 {
            let mut all = head;
            all.extend_from_slice(&tail);
            return (String::from_utf8_lossy(&all).into_owned(), 0);
        }
        let mut text = String::from_utf8_lossy(&head).into_owned();
        if !text.ends_with('\n') {
            text.push('\n');
        }
        text.push_str(&format!("[... {dropped} bytes of output left out ...]\n"));
        text.push_str(&String::from_utf8_lossy(&tail));
        (text, dropped)
    }
}

/// Splits one stream into lines for the log.
pub(crate) struct Lines {
    /// Where the output comes from: a host name, or `local pid N`.
    source: String,
    stream: Stream,
    partial: Vec<u8>,
}

impl Lines {
    pub(crate) fn new(source: impl std::fmt::Display, stream: Stream) -> Self {
        Lines {
            source: source.to_string(),
            stream,
            partial: Vec::new(),
        }
    }

    pub(crate) fn push(&mut self, mut bytes: &[u8]) {
        while let Some(newline) = bytes.iter().position(|b| *b == b'\n') {
            if self.partial.is_empty() {
                self.emit(&bytes[..newline]);
            } else {
                self.partial.extend_from_slice(&bytes[..newline]);
                let line = std::mem::take(&mut self.partial);
                self.emit(&line);
            }
            bytes = &bytes[newline + 1..];
        }
        self.partial.extend_from_slice(bytes);
        while self.partial.len() >= LINE_LIMIT {
            let piece: Vec<u8> = self.partial.drain(..LINE_LIMIT).collect();
            self.emit(&piece);
        }
    }

    /// Where the output comes from.
    pub(crate) fn source(&self) -> &str {
        &self.source
    }

    /// Logs an unterminated last line.
    pub(crate) fn flush(&mut self) {
        if !self.partial.is_empty() {
            let line = std::mem::take(&mut self.partial);
            self.emit(&line);
        }
    }

    fn emit(&self, line: &[u8]) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        tracing::debug!(
            target: OUTPUT_TARGET,
            source = %self.source,
            stream = self.stream.name(),
            "{}",
            String::from_utf8_lossy(line)
        );
    }
}

/// A command's stdout and stderr, read as bytes arrive into one capture and
/// the log: what local and SSH commands share. What to do with a chunk (an
/// SSH command's stderr is filtered first) and with a read error is each
/// caller's.
pub(crate) struct Streams<O, E> {
    stdout: Option<O>,
    stderr: Option<E>,
    stdout_buf: Vec<u8>,
    stderr_buf: Vec<u8>,
    stdout_lines: Lines,
    stderr_lines: Lines,
    capture: Capture,
}

impl<O: AsyncRead + Unpin, E: AsyncRead + Unpin> Streams<O, E> {
    /// Reads `stdout` and `stderr` of a command from `source` (logged with
    /// each line) in chunks of `chunk` bytes, keeping `limit` bytes.
    pub(crate) fn new(
        source: impl std::fmt::Display,
        stdout: Option<O>,
        stderr: Option<E>,
        chunk: usize,
        limit: usize,
    ) -> Self {
        let source = source.to_string();
        Streams {
            stdout,
            stderr,
            stdout_buf: vec![0; chunk],
            stderr_buf: vec![0; chunk],
            stdout_lines: Lines::new(&source, Stream::Stdout),
            stderr_lines: Lines::new(&source, Stream::Stderr),
            capture: Capture::new(limit),
        }
    }

    /// Whether both streams are at their end.
    pub(crate) fn finished(&self) -> bool {
        self.stdout.is_none() && self.stderr.is_none()
    }

    /// Reads one chunk from whichever stream has one; the bytes are then
    /// [`Streams::read_bytes`]. Cancel-safe: a read that has not completed
    /// has consumed nothing.
    pub(crate) async fn read(&mut self) -> (Stream, io::Result<usize>) {
        tokio::select! {
            r = read_some(self.stdout.as_mut(), &mut self.stdout_buf) => (Stream::Stdout, r),
            r = read_some(self.stderr.as_mut(), &mut self.stderr_buf) => (Stream::Stderr, r),
        }
    }

    /// The `n` bytes [`Streams::read`] just read from `stream`.
    pub(crate) fn read_bytes(&self, stream: Stream, n: usize) -> &[u8] {
        match stream {
            Stream::Stdout => &self.stdout_buf[..n],
            Stream::Stderr => &self.stderr_buf[..n],
        }
    }

    /// Keeps the `n` bytes just read from `stream` as its output.
    pub(crate) fn keep_read(&mut self, stream: Stream, n: usize) {
        let (buf, lines) = match stream {
            Stream::Stdout => (&self.stdout_buf, &mut self.stdout_lines),
            Stream::Stderr => (&self.stderr_buf, &mut self.stderr_lines),
        };
        self.capture.push(&buf[..n]);
        lines.push(&buf[..n]);
    }

    /// Keeps `bytes` as output of `stream`: in the capture and the log.
    pub(crate) fn keep(&mut self, stream: Stream, bytes: &[u8]) {
        self.capture.push(bytes);
        self.lines(stream).push(bytes);
    }

    /// Ends `stream`: its unterminated last line is logged, and it is read
    /// no more.
    pub(crate) fn close(&mut self, stream: Stream) {
        self.lines(stream).flush();
        match stream {
            Stream::Stdout => self.stdout = None,
            Stream::Stderr => self.stderr = None,
        }
    }

    /// Stops reading both streams at once, logging nothing more.
    pub(crate) fn abandon(&mut self) {
        self.stdout = None;
        self.stderr = None;
    }

    /// Where the output comes from, as logged.
    pub(crate) fn source(&self) -> &str {
        self.stdout_lines.source()
    }

    /// The text kept, with a note where bytes were left out, and their number.
    pub(crate) fn into_output(self) -> (String, u64) {
        self.capture.into_output()
    }

    fn lines(&mut self, stream: Stream) -> &mut Lines {
        match stream {
            Stream::Stdout => &mut self.stdout_lines,
            Stream::Stderr => &mut self.stderr_lines,
        }
    }
}

/// Reads from `stream`, or waits for ever when it has ended.
async fn read_some<R: AsyncRead + Unpin>(
    stream: Option<&mut R>,
    buf: &mut [u8],
) -> io::Result<usize> {
    match stream {
        Some(stream) => stream.read(buf).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capture_bounds_any_chunking() {
        let bytes: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
        for limit in [0, 1, 7, 100, 999, 1000, 5000] {
            for chunk in [1, 3, 64, 1000] {
                let mut capture = Capture::new(limit);
                for piece in bytes.chunks(chunk) {
                    capture.push(piece);
                }
                let kept = limit.min(1000);
                assert_eq!(capture.dropped(), (1000 - kept) as u64, "limit {limit}");
                let head_len = capture.head.len();
                assert_eq!(capture.head, bytes[..head_len]);
                let tail = Vec::from(capture.tail.clone());
                assert_eq!(
                    tail,
                    bytes[1000 - tail.len()..],
                    "limit {limit} chunk {chunk}"
                );
                assert_eq!(head_len + tail.len(), kept);
            }
        }
    }
}
