//! Logs: the `tracing` events the libraries emit, shown when asked for.
//!
//! `RUST_LOG` (e.g. `RUST_LOG=debug`, `RUST_LOG=plan_steps=trace`) turns
//! them on, on stderr; `--log-file PATH` writes them to a file instead (at
//! `info` unless `RUST_LOG` says otherwise). Nothing is logged otherwise.
//!
//! Log lines never break the other outputs: `--json` goes to stdout, logs
//! to stderr or the file; on a terminal the live view is hidden while a log
//! line is written above it ([`set_live`]), so bars and logs never share a
//! line. Values of environment variables that hold secrets (names with
//! `SECRET`, `PASSWORD`, `TOKEN` or ending in `_KEY`) are replaced by
//! `<redacted>` in every log line.

use std::fs::OpenOptions;
use std::io::{self, Write};
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};

use indicatif::MultiProgress;
use tracing_subscriber::EnvFilter;

use crate::CliError;

/// The live view on the terminal, while one is shown.
fn live() -> &'static Mutex<Option<MultiProgress>> {
    static LIVE: OnceLock<Mutex<Option<MultiProgress>>> = OnceLock::new();
    LIVE.get_or_init(|| Mutex::new(None))
}

/// Registers the live view log lines must be written above (`None` once it
/// is gone).
pub fn set_live(bars: Option<MultiProgress>) {
    if let Ok(mut slot) = live().lock() {
        *slot = bars;
    }
}

/// Where log lines go.
#[derive(Clone)]
enum Sink {
    /// stderr, above the live view when there is one.
    Terminal,
    /// A file of the operator's.
    File(Arc<Mutex<std::fs::File>>),
}

/// One log line's writer: redacts, then writes the line whole.
struct LineWriter {
    sink: Sink,
    secrets: Arc<Vec<String>>,
}

impl Write for LineWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let text = redact(&String::from_utf8_lossy(buf), &self.secrets);
        match &self.sink {
            Sink::File(file) => {
                let mut file = file
                    .lock()
                    .map_err(|_| io::Error::other("the log file's lock is poisoned"))?;
                file.write_all(text.as_bytes())?;
            }
            Sink::Terminal => {
                // Clone the handle and let go of the slot before drawing: the
                // live view's own threads never wait on this lock.
                let bars = live().lock().ok().and_then(|slot| slot.clone());
                let write = || io::stderr().write_all(text.as_bytes());
                match bars {
                    Some(bars) if !bars.is_hidden() => bars.suspend(write)?,
                    _ => write()?,
                }
            }
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Values of the environment that must not appear in logs.
fn secrets_from_env() -> Vec<String> {
    plan_core::secret::secret_values(&[], [])
}

/// `text` with every secret replaced by `<redacted>`.
fn redact(text: &str, secrets: &[String]) -> String {
    plan_core::secret::redact(text, secrets)
}

/// Installs the subscriber `RUST_LOG` and `--log-file` ask for, if any.
pub fn init(log_file: Option<&Path>) -> Result<(), CliError> {
    let from_env = std::env::var_os(EnvFilter::DEFAULT_ENV).is_some();
    if !from_env && log_file.is_none() {
        return Ok(());
    }
    let filter = if from_env {
        EnvFilter::try_from_default_env()
            .map_err(|e| CliError::Usage(format!("RUST_LOG is not a valid log filter: {e}")))?
    } else {
        EnvFilter::new("info")
    };
    let sink = match log_file {
        Some(path) => {
            let mut options = OpenOptions::new();
            options.create(true).append(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            let file = options.open(path).map_err(CliError::io(format!(
                "cannot open the log file {}",
                path.display()
            )))?;
            Sink::File(Arc::new(Mutex::new(file)))
        }
        None => Sink::Terminal,
    };
    let ansi = matches!(sink, Sink::Terminal) && io::IsTerminal::is_terminal(&io::stderr());
    let secrets = Arc::new(secrets_from_env());
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(move || LineWriter {
            sink: sink.clone(),
            secrets: Arc::clone(&secrets),
        })
        .finish();
    tracing::subscriber::set_global_default(subscriber)
        .map_err(|e| CliError::Internal(format!("cannot install the logger: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_names_are_recognised() {
        for name in [
            "TSIG_SECRET",
            "db_password",
            "API_TOKEN",
            "CUTOVER_VAR_TSIG_KEY",
        ] {
            assert!(plan_core::secret::secret_name(name), "{name}");
        }
        for name in ["PATH", "HOME", "KEYBOARD", "CUTOVER_VAR_lab_dir"] {
            assert!(!plan_core::secret::secret_name(name), "{name}");
        }
    }

    #[test]
    fn every_secret_is_redacted_the_longest_first() {
        let secrets = vec!["hunter2-longer".to_owned(), "hunter2".to_owned()];
        assert_eq!(
            redact("a hunter2-longer b hunter2 c", &secrets),
            "a <redacted> b <redacted> c"
        );
    }
}
