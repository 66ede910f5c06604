//! `cutover` in a real pseudo-terminal, as an operator runs it: what it
//! draws is read into a terminal emulator (the screen) and into a plain
//! transcript (every character it wrote, escape sequences left out); what
//! the operator types goes to the terminal's input, Ctrl-C included, which
//! the terminal turns into SIGINT for the foreground process group.
//!
//! Every wait is bounded and, when it runs out, fails the test with the
//! screen's last lines and the end of the transcript instead of hanging.
//!
//! ```no_run
//! use std::time::Duration;
//! use tests::pty::Pty;
//!
//! let mut pty = Pty::cutover(["run", "plan.ron"], std::path::Path::new("/tmp"));
//! pty.expect("Run 4 steps", Duration::from_secs(10));
//! pty.send_line("y");
//! assert_eq!(pty.wait_exit(Duration::from_secs(30)), 0);
//! ```

use std::ffi::OsStr;
use std::io::{Read, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use portable_pty::{native_pty_system, Child, CommandBuilder, PtySize};

/// Rows and columns of the test terminal: wide enough that a step's line
/// of the live view is not wrapped.
const ROWS: u16 = 40;
const COLS: u16 = 160;

/// How often a wait looks at what arrived.
const POLL: Duration = Duration::from_millis(20);

/// What the program wrote so far.
struct Output {
    screen: vt100::Parser,
    /// Everything written, escape sequences removed.
    transcript: String,
    /// Whether the program closed the terminal (exited).
    closed: bool,
    /// Escape-sequence state of the transcript filter.
    escape: Escape,
    /// The first bytes of a character the last read cut in two.
    pending: Vec<u8>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Escape {
    None,
    /// After ESC.
    Start,
    /// Inside `ESC [ ...` until its final byte.
    Csi,
    /// Inside `ESC ] ...` until BEL or ESC \.
    Osc,
}

impl Output {
    fn take(&mut self, bytes: &[u8]) {
        self.screen.process(bytes);
        // A character may be cut between two reads: keep its first bytes.
        self.pending.extend_from_slice(bytes);
        let valid = match std::str::from_utf8(&self.pending) {
            Ok(text) => text.len(),
            Err(e) if e.error_len().is_none() => e.valid_up_to(),
            Err(_) => self.pending.len(),
        };
        let text = String::from_utf8_lossy(&self.pending[..valid]).into_owned();
        self.pending.drain(..valid);
        for c in text.chars() {
            self.escape = match (self.escape, c) {
                (Escape::None, '\x1b') => Escape::Start,
                (Escape::None, '\r') => Escape::None,
                (Escape::None, _) => {
                    self.transcript.push(c);
                    Escape::None
                }
                (Escape::Start, '[') => Escape::Csi,
                (Escape::Start, ']') => Escape::Osc,
                (Escape::Start, _) => Escape::None,
                (Escape::Csi, '\x40'..='\x7e') => Escape::None,
                (Escape::Csi, _) => Escape::Csi,
                (Escape::Osc, '\x07') => Escape::None,
                (Escape::Osc, '\x1b') => Escape::Start,
                (Escape::Osc, _) => Escape::Osc,
            };
        }
    }
}

/// A program running in a pseudo-terminal of its own.
pub struct Pty {
    child: Box<dyn Child + Send + Sync>,
    input: Box<dyn Write + Send>,
    output: Arc<Mutex<Output>>,
    /// How far [`Pty::expect`] has read the transcript.
    seen: usize,
    exit: Option<u32>,
}

impl Pty {
    /// The `cutover` binary under test with `args`, in `dir`.
    pub fn cutover<I, S>(args: I, dir: &Path) -> Pty
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        Pty::cutover_with_env(args, dir, std::iter::empty::<(String, String)>())
    }

    /// The same, with these variables added to its environment.
    pub fn cutover_with_env<I, S, E, K, V>(args: I, dir: &Path, env: E) -> Pty
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
        E: IntoIterator<Item = (K, V)>,
        K: AsRef<OsStr>,
        V: AsRef<OsStr>,
    {
        let mut command = CommandBuilder::new(crate::cutover_bin());
        command.args(args);
        command.cwd(dir);
        // Logs only where a test asks for them.
        command.env_remove("RUST_LOG");
        for (key, value) in env {
            command.env(key, value);
        }
        Pty::spawn(command)
    }

    /// Starts `command` with the pseudo-terminal as its controlling
    /// terminal, standard input, output and error.
    pub fn spawn(mut command: CommandBuilder) -> Pty {
        command.env("TERM", "xterm-256color");
        let pair = native_pty_system()
            .openpty(PtySize {
                rows: ROWS,
                cols: COLS,
                pixel_width: 0,
                pixel_height: 0,
            })
            .expect("a pseudo-terminal can be opened");
        let child = pair
            .slave
            .spawn_command(command)
            .expect("the program starts in the pseudo-terminal");
        // The program holds the terminal now; the parent's copy of its end
        // would keep the terminal open after the program exits.
        drop(pair.slave);
        let mut reader = pair
            .master
            .try_clone_reader()
            .expect("the terminal's output can be read");
        let input = pair
            .master
            .take_writer()
            .expect("the terminal's input can be written");
        let output = Arc::new(Mutex::new(Output {
            screen: vt100::Parser::new(ROWS, COLS, 0),
            transcript: String::new(),
            closed: false,
            escape: Escape::None,
            pending: Vec::new(),
        }));
        let sink = Arc::clone(&output);
        // The master must stay open while the reader runs: it moves in here.
        let master = pair.master;
        thread::spawn(move || {
            let _master = master;
            let mut buf = [0u8; 4096];
            loop {
                match reader.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if let Ok(mut out) = sink.lock() {
                            out.take(&buf[..n]);
                        }
                    }
                }
            }
            if let Ok(mut out) = sink.lock() {
                out.closed = true;
            }
        });
        Pty {
            child,
            input,
            output,
            seen: 0,
            exit: None,
        }
    }

    /// The screen as the operator sees it now, one string per row.
    pub fn screen(&self) -> String {
        self.output
            .lock()
            .map(|o| o.screen.screen().contents())
            .unwrap_or_default()
    }

    /// The screen's rows as the operator sees them, each on its own (a
    /// line that filled its row and went on is two rows here).
    pub fn rows(&self) -> Vec<String> {
        self.output
            .lock()
            .map(|o| o.screen.screen().rows(0, COLS).collect())
            .unwrap_or_default()
    }

    /// Everything the program wrote, escape sequences left out.
    pub fn transcript(&self) -> String {
        self.output
            .lock()
            .map(|o| o.transcript.clone())
            .unwrap_or_default()
    }

    /// What a failed wait shows: the screen's last lines and the end of
    /// the transcript.
    fn seen_so_far(&self) -> String {
        let screen = self.screen();
        let rows: Vec<&str> = screen.lines().collect();
        let last = rows[rows.len().saturating_sub(15)..].join("\n");
        let transcript = self.transcript();
        let mut start = transcript.len().saturating_sub(2000);
        while !transcript.is_char_boundary(start) {
            start += 1;
        }
        format!(
            "--- the screen's last lines ---\n{last}\n--- the transcript's end ---\n{}\n---",
            &transcript[start..]
        )
    }

    /// Waits until `text` appears in the transcript after what earlier
    /// calls matched; returns the transcript up to and including it.
    /// Fails the test when it does not appear `within`, or the program
    /// exits first.
    pub fn expect(&mut self, text: &str, within: Duration) -> String {
        let started = Instant::now();
        loop {
            let (found, closed) = {
                let out = self.output.lock().expect("the reader thread never panics");
                let found = out.transcript[self.seen..].find(text).map(|at| {
                    let end = self.seen + at + text.len();
                    (end, out.transcript[self.seen..end].to_owned())
                });
                (found, out.closed)
            };
            if let Some((end, before)) = found {
                self.seen = end;
                return before;
            }
            if closed {
                panic!(
                    "waited for {text:?}, but the program exited first\n{}",
                    self.seen_so_far()
                );
            }
            if started.elapsed() > within {
                panic!(
                    "waited {within:?} for {text:?}, which never appeared\n{}",
                    self.seen_so_far()
                );
            }
            thread::sleep(POLL);
        }
    }

    /// Types `text` and Enter.
    pub fn send_line(&mut self, text: &str) {
        self.send(&format!("{text}\r"));
    }

    /// Types `text` as it is.
    pub fn send(&mut self, text: &str) {
        self.input
            .write_all(text.as_bytes())
            .and_then(|()| self.input.flush())
            .expect("the terminal takes input");
    }

    /// Presses Ctrl-C: the terminal sends SIGINT to the program.
    pub fn ctrl_c(&mut self) {
        self.send("\x03");
    }

    /// Waits for the program to exit and returns its exit code. Fails the
    /// test (after killing the program) when it is still running `within`.
    pub fn wait_exit(&mut self, within: Duration) -> u32 {
        if let Some(code) = self.exit {
            return code;
        }
        let started = Instant::now();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                // Let the reader take what was written last.
                let drained = Instant::now();
                while !self.output.lock().map(|o| o.closed).unwrap_or(true)
                    && drained.elapsed() < Duration::from_secs(2)
                {
                    thread::sleep(POLL);
                }
                let code = status.exit_code();
                self.exit = Some(code);
                return code;
            }
            if started.elapsed() > within {
                let _ = self.child.kill();
                panic!(
                    "the program was still running after {within:?} (killed now)\n{}",
                    self.seen_so_far()
                );
            }
            thread::sleep(POLL);
        }
    }

    /// The program's process id.
    pub fn pid(&self) -> Option<u32> {
        self.child.process_id()
    }
}

impl Drop for Pty {
    fn drop(&mut self) {
        // A test that failed midway leaves no program behind.
        if self.exit.is_none() {
            if let Ok(None) = self.child.try_wait() {
                let _ = self.child.kill();
                let _ = self.child.wait();
            }
        }
    }
}
