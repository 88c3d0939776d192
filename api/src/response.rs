//! What comes back: one [`Response`] per request, with a result or a [`RemoteError`].

use serde::{Deserialize, Serialize};
use serde_json::Value;
use thiserror::Error;

use crate::request::PROTOCOL_VERSION;

/// Kinds of errors, stable for scripts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// Not JSON, or not a request.
    BadRequest,
    /// A protocol version this daemon does not speak.
    UnsupportedVersion,
    /// A line longer than [`MAX_LINE`](crate::MAX_LINE).
    TooLong,
    /// The caller may not change state.
    PermissionDenied,
    /// The daemon is overloaded; try again.
    Busy,
    /// A named vmknic, route or neighbour does not exist.
    NotFound,
    /// A value breaks a rule (the message names it).
    Invalid,
    /// A gateway on no vmknic subnet (ESX's message).
    GatewayUnreachable,
    /// No route to the destination.
    NoRoute,
    /// ARP got no answer.
    HostDown,
    /// The egress vmknic is enabled but its wire is down (the message says why).
    NetworkDown,
    /// Larger than the egress MTU with DF set.
    MessageTooLong,
    /// No answer in time.
    Timeout,
    /// The peer refused the connection.
    Refused,
    /// A source address that is no enabled vmknic's (netcat's "Cannot assign requested
    /// address").
    AddressNotAvailable,
    /// The change could not be saved or applied.
    Io,
}

/// An error as it travels.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Error)]
#[error("{message}")]
pub struct RemoteError {
    /// Its kind.
    pub kind: ErrorKind,
    /// A message for people.
    pub message: String,
}

impl RemoteError {
    /// An error of `kind` with `message`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> RemoteError {
        RemoteError {
            kind,
            message: message.into(),
        }
    }
}

/// One response line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Response {
    /// Protocol version.
    pub v: u32,
    /// Success.
    pub ok: bool,
    /// The result on success.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<Value>,
    /// The error on failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<RemoteError>,
}

impl Response {
    /// A success carrying `result`.
    pub fn ok(result: Value) -> Response {
        Response {
            v: PROTOCOL_VERSION,
            ok: true,
            result: Some(result),
            error: None,
        }
    }

    /// A failure.
    pub fn err(e: RemoteError) -> Response {
        Response {
            v: PROTOCOL_VERSION,
            ok: false,
            result: None,
            error: Some(e),
        }
    }

    /// The JSON line (with its newline).
    pub fn to_line(&self) -> String {
        let mut s = serde_json::to_string(self).unwrap_or_else(|_| {
            r#"{"v":1,"ok":false,"error":{"kind":"io","message":"cannot encode response"}}"#
                .to_string()
        });
        s.push('\n');
        s
    }
}
