//! A blocking client of the control socket.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use thiserror::Error;

use crate::request::{Action, Request, PROTOCOL_VERSION};
use crate::response::{RemoteError, Response};

/// Default control socket path.
pub const DEFAULT_CONTROL: &str = "/run/vmkstack/vmkstack.sock";

/// Why a client call failed.
#[derive(Debug, Error)]
pub enum ClientError {
    /// The socket could not be reached.
    #[error("cannot reach the vmkstack daemon at {path}: {source}{hint}")]
    Connect {
        /// Socket path.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
        /// What to do about it.
        hint: &'static str,
    },
    /// The connection failed mid-call.
    #[error("control connection: {0}")]
    Io(#[from] std::io::Error),
    /// The daemon sent something that is not a response.
    #[error("bad response from the daemon: {0}")]
    BadResponse(String),
    /// The daemon refused the request.
    #[error("{0}")]
    Remote(RemoteError),
}

impl ClientError {
    /// The daemon's error, if it sent one.
    pub fn remote(&self) -> Option<&RemoteError> {
        match self {
            ClientError::Remote(e) => Some(e),
            _ => None,
        }
    }
}

/// A connection to the daemon.
pub struct Client {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
    /// The netstack the calls act on (`-N`); `None`: the default one.
    netstack: Option<String>,
}

impl Client {
    /// Connects to the control socket at `path`.
    pub fn connect(path: &Path) -> Result<Client, ClientError> {
        let stream = UnixStream::connect(path).map_err(|source| {
            let hint = match source.kind() {
                std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused => {
                    " (is `vmkstack daemon` running? --control or VMKSTACK_CONTROL pick the socket)"
                }
                std::io::ErrorKind::PermissionDenied => {
                    " (the socket is root-only unless the daemon's config sets control_group)"
                }
                _ => "",
            };
            ClientError::Connect {
                path: path.display().to_string(),
                source,
                hint,
            }
        })?;
        let writer = stream.try_clone()?;
        Ok(Client {
            reader: BufReader::new(stream),
            writer,
            netstack: None,
        })
    }

    /// Makes the following calls act on netstack `name` (ESX `-N`); `None`: the default one.
    pub fn set_netstack(&mut self, name: Option<String>) {
        self.netstack = name;
    }

    /// Sets how long a call may wait for its answer.
    pub fn set_timeout(&self, t: Option<Duration>) -> Result<(), ClientError> {
        self.writer.set_read_timeout(t)?;
        Ok(())
    }

    /// Sends `action` (a `capture`) and returns its result and the connection, from which
    /// the records that follow are read.
    pub fn stream(mut self, action: Action) -> Result<(Value, BufReader<UnixStream>), ClientError> {
        let v = self.call(action)?;
        Ok((v, self.reader))
    }

    /// Sends `action` and returns the result.
    pub fn call(&mut self, action: Action) -> Result<Value, ClientError> {
        let req = Request {
            v: PROTOCOL_VERSION,
            netstack: self.netstack.clone(),
            action,
        };
        let mut line =
            serde_json::to_string(&req).map_err(|e| ClientError::BadResponse(e.to_string()))?;
        line.push('\n');
        self.writer.write_all(line.as_bytes())?;
        let mut answer = String::new();
        if self.reader.read_line(&mut answer)? == 0 {
            return Err(ClientError::BadResponse(
                "the daemon closed the connection".into(),
            ));
        }
        let resp: Response = serde_json::from_str(answer.trim_end())
            .map_err(|e| ClientError::BadResponse(format!("{e}: {}", answer.trim_end())))?;
        match (resp.ok, resp.result, resp.error) {
            (true, r, _) => Ok(r.unwrap_or(Value::Null)),
            (false, _, Some(e)) => Err(ClientError::Remote(e)),
            (false, _, None) => Err(ClientError::BadResponse("error without a message".into())),
        }
    }

    /// Sends `action` and decodes the result as `T`.
    pub fn call_as<T: serde::de::DeserializeOwned>(
        &mut self,
        action: Action,
    ) -> Result<T, ClientError> {
        let v = self.call(action)?;
        serde_json::from_value(v).map_err(|e| ClientError::BadResponse(e.to_string()))
    }
}
