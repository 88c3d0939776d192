//! What every client command shares: the control socket path, the connection to the daemon
//! behind a small trait (so that command logic runs against fakes in tests), the console the
//! output goes to, and how failures become one line on stderr and an exit status.

use std::ffi::OsStr;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::api::{Action, Client, ClientError, ErrorKind, RemoteError, DEFAULT_CONTROL};

/// The environment variable naming the control socket when `--control` is not given.
pub const CONTROL_ENV: &str = "VMKSTACK_CONTROL";

/// How long an ordinary call may wait for the daemon's answer.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// Exit status of a command: 0 success, 1 failure, 2 usage error (as clap and ESX use).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// The command did what was asked.
    Success,
    /// The command ran and failed (daemon unreachable, refused, no reply, ...).
    Failure,
    /// The command line is wrong.
    Usage,
}

impl Exit {
    /// The numeric status.
    pub fn code(self) -> u8 {
        match self {
            Exit::Success => 0,
            Exit::Failure => 1,
            Exit::Usage => 2,
        }
    }
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> ExitCode {
        ExitCode::from(e.code())
    }
}

/// Why a client command stopped. The text is printed on stderr as one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CliError {
    /// A usage error (exit status 2).
    Usage(String),
    /// A failure (exit status 1).
    Failed(String),
    /// A failure already reported on the console (exit status 1).
    Reported,
}

impl CliError {
    /// The exit status this error ends the command with.
    pub fn exit(&self) -> Exit {
        match self {
            CliError::Usage(_) => Exit::Usage,
            CliError::Failed(_) | CliError::Reported => Exit::Failure,
        }
    }

    /// A failure for a daemon call made by `program`: the daemon's own message verbatim (it is
    /// written for people, e.g. ESX's `Unable to set VMkernel gateway ...`), otherwise the
    /// client's error prefixed with `program`, saying what to do when no daemon answers.
    pub fn from_client(program: &str, e: &ClientError) -> CliError {
        CliError::Failed(client_message(program, e))
    }
}

/// The one-line message for a failed call (see [`CliError::from_client`]).
pub fn client_message(program: &str, e: &ClientError) -> String {
    match e {
        ClientError::Remote(r) => r.message.clone(),
        ClientError::Connect { path, source, .. }
            if matches!(
                source.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
            ) =>
        {
            format!(
                "{program}: cannot reach the vmkstack daemon at {path}: {source}; start it with \
                 `vmkstack daemon --config FILE --control {path}`, or name its socket with \
                 --control PATH or {CONTROL_ENV}"
            )
        }
        other => format!("{program}: {other}"),
    }
}

/// The control socket: `--control` when given, else `$VMKSTACK_CONTROL` when set and not
/// empty, else [`DEFAULT_CONTROL`].
pub fn control_path(explicit: Option<&Path>, env: Option<&OsStr>) -> PathBuf {
    explicit
        .map(Path::to_path_buf)
        .or_else(|| env.filter(|e| !e.is_empty()).map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from(DEFAULT_CONTROL))
}

/// The control socket from `--control` (if given) and the process environment.
pub fn control_path_from_env(explicit: Option<&Path>) -> PathBuf {
    control_path(explicit, std::env::var_os(CONTROL_ENV).as_deref())
}

/// A connection to the daemon: [`Client`] in real use, a fake in tests.
pub trait Control {
    /// Sends `action` and returns its result.
    fn call(&mut self, action: Action) -> Result<Value, ClientError>;

    /// Sets how long the following calls may wait for an answer.
    fn set_timeout(&mut self, timeout: Duration) -> Result<(), ClientError>;

    /// Makes the following calls act on netstack `name` (ESX `-N`); `None`: the default.
    fn set_netstack(&mut self, name: Option<String>) {
        let _ = name;
    }
}

impl Control for Client {
    fn call(&mut self, action: Action) -> Result<Value, ClientError> {
        Client::call(self, action)
    }

    fn set_timeout(&mut self, timeout: Duration) -> Result<(), ClientError> {
        Client::set_timeout(self, Some(timeout))
    }

    fn set_netstack(&mut self, name: Option<String>) {
        Client::set_netstack(self, name);
    }
}

/// Sends `action` and decodes its result as `T`.
pub fn call_as<T: DeserializeOwned>(
    ctl: &mut dyn Control,
    action: Action,
) -> Result<T, ClientError> {
    let v = ctl.call(action)?;
    serde_json::from_value(v).map_err(|e| ClientError::BadResponse(e.to_string()))
}

/// The daemon's error kind, when the daemon refused the call.
pub fn remote_kind(e: &ClientError) -> Option<ErrorKind> {
    e.remote().map(|r: &RemoteError| r.kind)
}

/// Connects to the daemon at `path`, with [`CALL_TIMEOUT`] for each answer.
pub fn connect(path: &Path) -> Result<Client, ClientError> {
    let mut client = Client::connect(path)?;
    Control::set_timeout(&mut client, CALL_TIMEOUT)?;
    Ok(client)
}

/// Where a command writes: its standard output and its standard error.
pub struct Console<'a> {
    /// Standard output: listings and results.
    pub out: &'a mut dyn Write,
    /// Standard error: one line per error.
    pub err: &'a mut dyn Write,
}

impl Console<'_> {
    /// Writes `text` as is to standard output. A closed pipe (`| head`) is not an error worth
    /// reporting, so write errors are ignored.
    pub fn print(&mut self, text: &str) {
        let _ = self.out.write_all(text.as_bytes());
        let _ = self.out.flush();
    }

    /// Writes `line` and a newline to standard output.
    pub fn println(&mut self, line: &str) {
        self.print(&format!("{line}\n"));
    }

    /// Writes `line` and a newline to standard error.
    pub fn eprintln(&mut self, line: &str) {
        let _ = writeln!(self.err, "{line}");
        let _ = self.err.flush();
    }

    /// Prints `value` as pretty JSON on standard output.
    pub fn json(&mut self, value: &Value) -> Result<(), CliError> {
        let text = serde_json::to_string_pretty(value)
            .map_err(|e| CliError::Failed(format!("vmkstack: cannot encode JSON: {e}")))?;
        self.println(&text);
        Ok(())
    }

    /// Reports the outcome of a command and turns it into its exit status: an error's text
    /// goes to standard error (usage errors too: they are not output).
    pub fn finish(&mut self, result: Result<(), CliError>) -> Exit {
        match result {
            Ok(()) => Exit::Success,
            Err(e) => {
                if let CliError::Usage(m) | CliError::Failed(m) = &e {
                    self.eprintln(m.trim_end());
                }
                e.exit()
            }
        }
    }
}

/// Runs `command` against the daemon at `path`: connects (a failure to connect is reported
/// like any failed call by `program`), then hands the connection over.
pub fn with_daemon(
    program: &str,
    path: &Path,
    command: impl FnOnce(&mut dyn Control) -> Result<(), CliError>,
) -> Result<(), CliError> {
    let mut client = connect(path).map_err(|e| CliError::from_client(program, &e))?;
    command(&mut client)
}

#[cfg(test)]
pub mod fake {
    //! A scripted daemon for unit tests: answers each call with the next canned response and
    //! records the actions it was sent.

    use std::collections::VecDeque;

    use super::*;

    /// Canned answers, in call order; records every action and timeout.
    #[derive(Default)]
    pub struct FakeDaemon {
        /// Answers still to give.
        pub answers: VecDeque<Result<Value, ClientError>>,
        /// Actions received.
        pub actions: Vec<Action>,
        /// Timeouts set.
        pub timeouts: Vec<Duration>,
    }

    impl FakeDaemon {
        /// A daemon that gives `answers` in order.
        pub fn new(answers: Vec<Result<Value, ClientError>>) -> FakeDaemon {
            FakeDaemon {
                answers: answers.into(),
                ..FakeDaemon::default()
            }
        }
    }

    /// A refusal of `kind` with `message`.
    pub fn refused(kind: ErrorKind, message: &str) -> Result<Value, ClientError> {
        Err(ClientError::Remote(RemoteError::new(kind, message)))
    }

    impl Control for FakeDaemon {
        fn call(&mut self, action: Action) -> Result<Value, ClientError> {
            self.actions.push(action);
            self.answers
                .pop_front()
                .unwrap_or_else(|| Err(ClientError::BadResponse("no answer scripted".into())))
        }

        fn set_timeout(&mut self, timeout: Duration) -> Result<(), ClientError> {
            self.timeouts.push(timeout);
            Ok(())
        }
    }

    /// Runs `f` with a console that captures stdout and stderr, and returns them with `f`'s
    /// result.
    pub fn capture<R>(f: impl FnOnce(&mut Console<'_>) -> R) -> (R, String, String) {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let r = {
            let mut console = Console {
                out: &mut out,
                err: &mut err,
            };
            f(&mut console)
        };
        (
            r,
            String::from_utf8_lossy(&out).into_owned(),
            String::from_utf8_lossy(&err).into_owned(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_control_path_precedence() {
        let env = OsStr::new("/tmp/env.sock");
        assert_eq!(
            control_path(Some(Path::new("/x.sock")), Some(env)),
            PathBuf::from("/x.sock")
        );
        assert_eq!(
            control_path(None, Some(env)),
            PathBuf::from("/tmp/env.sock")
        );
        assert_eq!(
            control_path(None, Some(OsStr::new(""))),
            PathBuf::from(DEFAULT_CONTROL)
        );
        assert_eq!(control_path(None, None), PathBuf::from(DEFAULT_CONTROL));
    }

    #[test]
    fn test_connect_message_says_start_the_daemon() {
        let e = Client::connect(Path::new("/nonexistent/x.sock"))
            .err()
            .unwrap();
        let m = client_message("vmkstack", &e);
        assert!(m.starts_with("vmkstack: cannot reach the vmkstack daemon at /nonexistent/x.sock"));
        assert!(m.contains("start it with `vmkstack daemon"), "{m}");
        assert!(!m.contains('\n'));
    }

    #[test]
    fn test_remote_message_is_verbatim() {
        let e = ClientError::Remote(RemoteError::new(ErrorKind::GatewayUnreachable, "Unable"));
        assert_eq!(client_message("esxcfg-route", &e), "Unable");
        assert_eq!(remote_kind(&e), Some(ErrorKind::GatewayUnreachable));
        assert_eq!(CliError::from_client("x", &e).exit(), Exit::Failure);
    }
}
