//! A remote command's output: kept bounded, logged line by line, and
//! stripped of the markers the wrapper writes to stderr.

pub(crate) use crate::output::{Stream, Streams};

/// The wrapper's two markers, for one command.
pub(crate) struct Markers {
    /// `cutover-NONCE-pgid ` (then the pid, a newline).
    pgid: Vec<u8>,
    /// `\x01cutover-NONCE-exit ` (then the status, a newline): the
    /// control character makes holding back a possible start of it rare.
    exit: Vec<u8>,
}

impl Markers {
    pub(crate) fn new(nonce: &str) -> Markers {
        Markers {
            pgid: format!("cutover-{nonce}-pgid ").into_bytes(),
            exit: format!("\x01cutover-{nonce}-exit ").into_bytes(),
        }
    }
}

/// What [`StderrFilter::push`] found.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Found {
    /// The command's process group.
    pub(crate) pgid: Option<i32>,
    /// The command's exit status.
    pub(crate) exit: Option<i32>,
}

#[derive(Debug, PartialEq, Eq)]
enum Phase {
    /// Before the pgid line (a login script may write first).
    Head,
    /// The command's own output, watched for the exit marker.
    Body,
    /// After the exit marker, reading the status up to the newline.
    Status,
    /// After the status: whatever background processes still write.
    Tail,
}

/// How much unfinished head line is held back looking for the pgid marker.
const HEAD_LINE_LIMIT: usize = 4096;

/// Takes the markers out of the stderr stream, passing the rest on.
pub(crate) struct StderrFilter {
    markers: Markers,
    phase: Phase,
    /// Bytes held back: a partial head line, a possible start of the exit
    /// marker, or the digits of the status.
    held: Vec<u8>,
}

impl StderrFilter {
    pub(crate) fn new(markers: Markers) -> StderrFilter {
        StderrFilter {
            markers,
            phase: Phase::Head,
            held: Vec::new(),
        }
    }

    /// Feeds `bytes`; appends what is output to `out`.
    pub(crate) fn push(&mut self, bytes: &[u8], out: &mut Vec<u8>) -> Found {
        let mut found = Found::default();
        self.held.extend_from_slice(bytes);
        loop {
            match self.phase {
                Phase::Head => {
                    let Some(newline) = self.held.iter().position(|b| *b == b'\n') else {
                        if self.held.len() > HEAD_LINE_LIMIT {
                            out.append(&mut self.held);
                        }
                        return found;
                    };
                    let line: Vec<u8> = self.held.drain(..=newline).collect();
                    let pid = line
                        .strip_prefix(self.markers.pgid.as_slice())
                        .and_then(|rest| std::str::from_utf8(rest).ok())
                        .and_then(|rest| rest.trim_end().parse().ok());
                    match pid {
                        Some(pid) => {
                            found.pgid = Some(pid);
                            self.phase = Phase::Body;
                        }
                        None => out.extend_from_slice(&line),
                    }
                }
                Phase::Body => {
                    let marker = self.markers.exit.as_slice();
                    if let Some(at) = find(&self.held, marker) {
                        out.extend_from_slice(&self.held[..at]);
                        self.held.drain(..at + marker.len());
                        self.phase = Phase::Status;
                        continue;
                    }
                    // Keep back the longest end that may begin the marker.
                    let keep = (1..marker.len().min(self.held.len() + 1))
                        .rev()
                        .find(|n| self.held.ends_with(&marker[..*n]))
                        .unwrap_or(0);
                    let pass = self.held.len() - keep;
                    out.extend(self.held.drain(..pass));
                    return found;
                }
                Phase::Status => {
                    let Some(newline) = self.held.iter().position(|b| *b == b'\n') else {
                        return found;
                    };
                    let digits: Vec<u8> = self.held.drain(..=newline).collect();
                    found.exit = std::str::from_utf8(&digits)
                        .ok()
                        .and_then(|d| d.trim().parse().ok());
                    self.phase = Phase::Tail;
                }
                Phase::Tail => {
                    out.append(&mut self.held);
                    return found;
                }
            }
        }
    }

    /// At the end of the stream: whatever was held back is output.
    pub(crate) fn finish(&mut self, out: &mut Vec<u8>) {
        out.append(&mut self.held);
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::Capture;

    fn filter() -> StderrFilter {
        StderrFilter::new(Markers::new("n0nce"))
    }

    /// Feeds `input` in pieces of `chunk` bytes; returns output and findings.
    fn run(input: &[u8], chunk: usize) -> (Vec<u8>, Option<i32>, Option<i32>) {
        let mut f = filter();
        let mut out = Vec::new();
        let (mut pgid, mut exit) = (None, None);
        for piece in input.chunks(chunk) {
            let found = f.push(piece, &mut out);
            pgid = pgid.or(found.pgid);
            exit = exit.or(found.exit);
        }
        f.finish(&mut out);
        (out, pgid, exit)
    }

    #[test]
    fn markers_are_taken_out_in_any_chunking() {
        let input =
            b"motd from bashrc\ncutover-n0nce-pgid 4242\nerr 1\npartial\x01cutover-n0nce-exit 3\nlate\n";
        for chunk in [1, 2, 5, 7, 64, 1000] {
            let (out, pgid, exit) = run(input, chunk);
            assert_eq!(
                String::from_utf8_lossy(&out),
                "motd from bashrc\nerr 1\npartiallate\n",
                "chunk {chunk}"
            );
            assert_eq!(pgid, Some(4242));
            assert_eq!(exit, Some(3));
        }
    }

    #[test]
    fn output_like_a_marker_from_another_nonce_is_kept() {
        let input = b"cutover-n0nce-pgid 7\n\x01cutover-other-exit 1\n\x01cutover-n0nce-exi";
        let (out, pgid, exit) = run(input, 3);
        assert_eq!(pgid, Some(7));
        assert_eq!(exit, None);
        assert_eq!(
            String::from_utf8_lossy(&out),
            "\x01cutover-other-exit 1\n\x01cutover-n0nce-exi"
        );
    }

    #[test]
    fn a_long_head_line_is_not_held_for_ever() {
        let mut f = filter();
        let mut out = Vec::new();
        f.push(&vec![b'x'; HEAD_LINE_LIMIT + 1], &mut out);
        assert_eq!(out.len(), HEAD_LINE_LIMIT + 1);
    }

    #[test]
    fn capture_keeps_head_and_tail() {
        let mut capture = Capture::new(10);
        capture.push(b"0123456789abcdef");
        let (text, dropped) = capture.into_output();
        assert_eq!(dropped, 6);
        assert_eq!(text, "01234\n[... 6 bytes of output left out ...]\nbcdef");
    }
}
