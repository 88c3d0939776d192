//! Storage-probe codecs: iSCSI discovery (RFC 7143: Login, SendTargets Text, Logout), an iSCSI
//! normal session's reads ([`session`]: Login to a target, SCSI commands and what comes back)
//! and ONC RPC over TCP (RFC 5531 with record marking; portmapper GETPORT from RFC 1833; MOUNT
//! EXPORT from RFC 1813 appendix I).
//!
//! Pure functions over caller-owned buffers: the daemon's own TCP sockets carry the bytes, these
//! functions only build requests and decode replies. Decoders never panic on what a server
//! sends: every length is checked against the bytes that are there, and lists are capped at
//! [`MAX_ENTRIES`].
//!
//! The daemon uses them through `vmkstack_stack::storage` (a re-export of this crate) in its
//! storage probes; the decoders are fuzzed by the `storage` target of `stack/tests/fuzz.rs`.

use serde::Serialize;
use thiserror::Error;

pub mod session;

/// Most entries a decoder accepts in one list (targets, portals of a target, exports, groups of
/// an export).
pub const MAX_ENTRIES: usize = 1024;

/// Fails once a list holds [`MAX_ENTRIES`] entries (checked before adding one).
fn room(len: usize, what: &str) -> Result<(), String> {
    if len < MAX_ENTRIES {
        Ok(())
    } else {
        Err(format!("more than {MAX_ENTRIES} {what}"))
    }
}

// ---------------------------------------------------------------------------------------------
// iSCSI (RFC 7143)

/// Length of the iSCSI Basic Header Segment.
pub const BHS_LEN: usize = 48;
/// The MaxRecvDataSegmentLength [`login_request`] declares: no response may carry more.
pub const MAX_RECV_DATA_SEGMENT: usize = 65536;

/// Byte offsets in the Basic Header Segment (RFC 7143 11.2, 11.12, 11.13, 11.10, 11.11, 11.14).
mod bhs {
    pub const OPCODE: usize = 0;
    pub const FLAGS: usize = 1;
    pub const AHS_LEN: usize = 4;
    /// 24-bit DataSegmentLength.
    pub const DATA_LEN: usize = 5;
    pub const ISID: usize = 8;
    pub const TSIH: usize = 14;
    pub const ITT: usize = 16;
    /// Target Transfer Tag (Text).
    pub const TTT: usize = 20;
    /// CmdSN in requests, StatSN in responses.
    pub const CMD_SN: usize = 24;
    /// ExpStatSN in requests, ExpCmdSN in responses.
    pub const EXP_SN: usize = 28;
    pub const STATUS_CLASS: usize = 36;
    pub const STATUS_DETAIL: usize = 37;
}

const OP_LOGIN: u8 = 0x03;
const OP_TEXT: u8 = 0x04;
const OP_LOGOUT: u8 = 0x06;
const OP_LOGIN_RSP: u8 = 0x23;
const OP_TEXT_RSP: u8 = 0x24;
const OPCODE_MASK: u8 = 0x3f;
const IMMEDIATE: u8 = 0x40;
/// F (final) in Text and Logout, T (transit) in Login.
const FLAG_FINAL: u8 = 0x80;
/// Login CSG (bits 3-2) = 1 operational negotiation, NSG (bits 1-0) = 3 full feature phase.
const LOGIN_CSG_OP_NSG_FFP: u8 = (1 << 2) | 3;
const NSG_FULL_FEATURE: u8 = 3;
/// ISID: type 2 (random), qualifier 1.
const ISID: [u8; 6] = [0x80, 0x00, 0x00, 0x00, 0x00, 0x01];
/// "No task" Target Transfer Tag.
const RESERVED_TAG: u32 = 0xffff_ffff;
const ITT_TEXT: u32 = 1;
const ITT_LOGOUT: u32 = 2;

/// A target announced by SendTargets, with its portals (`198.18.100.20:3260,1`: address, port
/// and target portal group tag, as the target wrote them).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Target {
    /// iSCSI name (`iqn.…`, `eui.…`, `naa.…`).
    pub name: String,
    /// `TargetAddress` values; empty means "the portal this session uses" (RFC 7143 13.8).
    pub portals: Vec<String>,
}

/// A successful Login Response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginResponse {
    /// Status class (0 whenever [`parse_login_response`] returns `Ok`).
    pub status_class: u8,
    /// Status detail.
    pub status_detail: u8,
    /// Target session identifying handle.
    pub tsih: u16,
    /// StatSN: the next request's ExpStatSN is this plus one.
    pub stat_sn: u32,
    /// ExpCmdSN: the CmdSN of the next (immediate) request.
    pub exp_cmd_sn: u32,
    /// T bit set and NSG = full feature phase: the login is complete. When false the target
    /// wants another operational negotiation round, which these codecs do not offer.
    pub full_feature: bool,
    /// The key=value pairs of the data segment, in order.
    pub keys: Vec<(String, String)>,
}

/// Why an iSCSI PDU could not be used.
#[derive(Error, Debug, Clone, PartialEq, Eq)]
pub enum IscsiError {
    /// Fewer bytes than the header announces.
    #[error("truncated iSCSI PDU")]
    Truncated,
    /// Another opcode than expected (0x3f is a Reject, 0x26 a Logout Response, …).
    #[error("unexpected iSCSI opcode {0:#04x}")]
    UnexpectedOpcode(u8),
    /// The target refused the login.
    #[error("login rejected (status {class:#04x}/{detail:#04x}): {reason}")]
    Rejected {
        /// Status class: 1 redirection, 2 initiator error, 3 target error.
        class: u8,
        /// Status detail.
        detail: u8,
        /// What the status means (RFC 7143 11.13.5).
        reason: String,
    },
    /// The PDU breaks the protocol, or uses what these codecs do not support.
    #[error("malformed iSCSI PDU: {0}")]
    Malformed(String),
}

/// Returns a Basic Header Segment with the opcode, flags and data segment length set, followed
/// by `data` padded to 4 bytes.
fn iscsi_pdu(opcode: u8, flags: u8, data: &[u8]) -> Vec<u8> {
    let mut pdu = vec![0; BHS_LEN];
    pdu[bhs::OPCODE] = opcode;
    pdu[bhs::FLAGS] = flags;
    // 24-bit length: our data segments are a few hundred bytes.
    let len = (data.len().min(0x00ff_ffff) as u32).to_be_bytes();
    pdu[bhs::DATA_LEN..bhs::DATA_LEN + 3].copy_from_slice(&len[1..]);
    pdu.extend_from_slice(data);
    pdu.resize(pdu.len().next_multiple_of(4), 0);
    pdu
}

fn put_u32(buf: &mut [u8], at: usize, value: u32) {
    buf[at..at + 4].copy_from_slice(&value.to_be_bytes());
}

/// Reads a big-endian u32 inside the BHS (`at + 4 <= BHS_LEN`, checked by the callers).
fn bhs_u32(pdu: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([pdu[at], pdu[at + 1], pdu[at + 2], pdu[at + 3]])
}

/// Builds the Login Request that opens a discovery session: immediate, T=1, CSG=1
/// (operational) to NSG=3 (full feature), skipping security negotiation (targets without
/// discovery authentication allow it), TSIH 0, ITT 0, CID 0, CmdSN 1, ExpStatSN 0.
///
/// `AuthMethod` is deliberately not sent: it is a security-stage key (RFC 7143 13.1, 6.2) and
/// Linux LIO fails a login that offers it in the operational stage; tgtd ignores it there. The
/// caller passes a valid iSCSI name (no NUL, at most 223 bytes).
pub fn login_request(initiator: &str) -> Vec<u8> {
    let data = format!(
        "InitiatorName={initiator}\0SessionType=Discovery\0HeaderDigest=None\0\
         DataDigest=None\0MaxRecvDataSegmentLength={MAX_RECV_DATA_SEGMENT}\0"
    );
    let mut pdu = iscsi_pdu(
        OP_LOGIN | IMMEDIATE,
        FLAG_FINAL | LOGIN_CSG_OP_NSG_FFP,
        data.as_bytes(),
    );
    pdu[bhs::ISID..bhs::ISID + 6].copy_from_slice(&ISID);
    put_u32(&mut pdu, bhs::CMD_SN, 1);
    pdu
}

/// Builds the immediate Text Request `SendTargets=All` (F=1, ITT 1, TTT 0xffffffff).
///
/// `cmd_sn` should be the login response's ExpCmdSN (immediate requests do not advance it),
/// `exp_stat_sn` its StatSN + 1.
pub fn sendtargets_request(cmd_sn: u32, exp_stat_sn: u32) -> Vec<u8> {
    let mut pdu = iscsi_pdu(OP_TEXT | IMMEDIATE, FLAG_FINAL, b"SendTargets=All\0");
    put_u32(&mut pdu, bhs::ITT, ITT_TEXT);
    put_u32(&mut pdu, bhs::TTT, RESERVED_TAG);
    put_u32(&mut pdu, bhs::CMD_SN, cmd_sn);
    put_u32(&mut pdu, bhs::EXP_SN, exp_stat_sn);
    pdu
}

/// Builds the immediate Logout Request, reason 0 (close the session), ITT 2.
pub fn logout_request(cmd_sn: u32, exp_stat_sn: u32) -> Vec<u8> {
    let mut pdu = iscsi_pdu(OP_LOGOUT | IMMEDIATE, FLAG_FINAL, &[]);
    put_u32(&mut pdu, bhs::ITT, ITT_LOGOUT);
    put_u32(&mut pdu, bhs::CMD_SN, cmd_sn);
    put_u32(&mut pdu, bhs::EXP_SN, exp_stat_sn);
    pdu
}

/// Offset and length of the data segment of a PDU whose BHS is `header` (48 bytes or more).
fn data_segment(header: &[u8]) -> (usize, usize) {
    let at = bhs::DATA_LEN;
    let len = u32::from_be_bytes([0, header[at], header[at + 1], header[at + 2]]);
    let start = BHS_LEN + usize::from(header[bhs::AHS_LEN]) * 4;
    (start, usize::try_from(len).unwrap_or(usize::MAX))
}

/// Total length of the PDU at the start of `buf` (BHS + AHS + data segment padded to 4; no
/// digests, since the login asks for none), or `None` while fewer than 48 bytes are there.
pub fn pdu_len(buf: &[u8]) -> Option<usize> {
    let (start, len) = data_segment(buf.get(..BHS_LEN)?);
    // At most 48 + 1020 + 16 MiB: no overflow.
    Some(start + len.next_multiple_of(4))
}

/// Checks the opcode and length of `pdu`; returns its data segment.
fn pdu_data(pdu: &[u8], opcode: u8) -> Result<&[u8], IscsiError> {
    let total = pdu_len(pdu).ok_or(IscsiError::Truncated)?;
    let got = pdu[bhs::OPCODE] & OPCODE_MASK;
    if got != opcode {
        return Err(IscsiError::UnexpectedOpcode(got));
    }
    if pdu.len() < total {
        return Err(IscsiError::Truncated);
    }
    let (start, len) = data_segment(pdu);
    pdu.get(start..start + len).ok_or(IscsiError::Truncated)
}

/// Splits a data segment into its NUL-terminated `key=value` pairs.
fn parse_keys(data: &[u8]) -> Result<Vec<(String, String)>, IscsiError> {
    data.split(|&b| b == 0)
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let text = std::str::from_utf8(pair)
                .map_err(|_| IscsiError::Malformed("key=value pair is not UTF-8".into()))?;
            let (key, value) = text
                .split_once('=')
                .ok_or_else(|| IscsiError::Malformed(format!("no '=' in {text:?}")))?;
            Ok((key.to_owned(), value.to_owned()))
        })
        .collect()
}

/// What a Login Response status means (RFC 7143 11.13.5).
fn login_status_reason(class: u8, detail: u8) -> &'static str {
    match (class, detail) {
        (1, 1) => "target moved temporarily",
        (1, 2) => "target moved permanently",
        (1, _) => "redirection",
        (2, 0) => "initiator error",
        (2, 1) => "authentication failed",
        (2, 2) => "authorization failure",
        (2, 3) => "target not found",
        (2, 4) => "target removed",
        (2, 5) => "unsupported iSCSI version",
        (2, 6) => "too many connections",
        (2, 7) => "missing parameter",
        (2, 8) => "cannot include connection in session",
        (2, 9) => "session type not supported",
        (2, 10) => "session does not exist",
        (2, 11) => "invalid request during login",
        (2, _) => "initiator error (unknown detail)",
        (3, 0) => "target error",
        (3, 1) => "service unavailable",
        (3, 2) => "out of resources",
        (3, _) => "target error (unknown detail)",
        _ => "unknown status class",
    }
}

/// Parses a Login Response (opcode 0x23). A non-zero status class is an
/// [`IscsiError::Rejected`] whose reason reads like "authentication failed" (with the new
/// address for a redirection).
pub fn parse_login_response(pdu: &[u8]) -> Result<LoginResponse, IscsiError> {
    let data = pdu_data(pdu, OP_LOGIN_RSP)?;
    let keys = parse_keys(data);
    let (class, detail) = (pdu[bhs::STATUS_CLASS], pdu[bhs::STATUS_DETAIL]);
    if class != 0 {
        let mut reason = login_status_reason(class, detail).to_owned();
        let address = keys
            .iter()
            .flatten()
            .find(|(key, _)| key == "TargetAddress");
        if let Some((_, address)) = address {
            reason = format!("{reason} to {address}");
        }
        return Err(IscsiError::Rejected {
            class,
            detail,
            reason,
        });
    }
    let flags = pdu[bhs::FLAGS];
    Ok(LoginResponse {
        status_class: class,
        status_detail: detail,
        tsih: u16::from_be_bytes([pdu[bhs::TSIH], pdu[bhs::TSIH + 1]]),
        stat_sn: bhs_u32(pdu, bhs::CMD_SN),
        exp_cmd_sn: bhs_u32(pdu, bhs::EXP_SN),
        full_feature: flags & FLAG_FINAL != 0 && flags & 0x03 == NSG_FULL_FEATURE,
        keys: keys?,
    })
}

/// Parses a final Text Response (opcode 0x24) to SendTargets: each `TargetName` with the
/// `TargetAddress` pairs that follow it; other keys are ignored.
///
/// A response larger than one PDU (F bit clear: the target wants another Text Request with its
/// Target Transfer Tag) is reported as [`IscsiError::Malformed`]: with the 64 KiB
/// MaxRecvDataSegmentLength of [`login_request`] that takes hundreds of targets.
pub fn parse_text_response(pdu: &[u8]) -> Result<Vec<Target>, IscsiError> {
    let data = pdu_data(pdu, OP_TEXT_RSP)?;
    if pdu[bhs::FLAGS] & FLAG_FINAL == 0 {
        return Err(IscsiError::Malformed(
            "SendTargets response continues in another PDU (F bit clear); not supported".into(),
        ));
    }
    let mut targets: Vec<Target> = Vec::new();
    for (key, value) in parse_keys(data)? {
        match key.as_str() {
            "TargetName" => {
                room(targets.len(), "targets").map_err(IscsiError::Malformed)?;
                let portals = Vec::new();
                targets.push(Target {
                    name: value,
                    portals,
                });
            }
            "TargetAddress" => {
                let target = targets.last_mut().ok_or_else(|| {
                    IscsiError::Malformed("TargetAddress before any TargetName".into())
                })?;
                room(target.portals.len(), "portals").map_err(IscsiError::Malformed)?;
                target.portals.push(value);
            }
            _ => {}
        }
    }
    Ok(targets)
}

// ---------------------------------------------------------------------------------------------
// ONC RPC over TCP (RFC 5531)

/// Portmapper program number (RFC 1833); version 2 answers GETPORT.
pub const PORTMAP: u32 = 100_000;
/// MOUNT program number (RFC 1813); version 3 (or 1) answers EXPORT.
pub const MOUNT: u32 = 100_005;
/// NFS program number.
pub const NFS: u32 = 100_003;
/// The portmapper's well-known port.
pub const PORTMAP_PORT: u16 = 111;
/// PMAPPROC_GETPORT.
pub const PMAPPROC_GETPORT: u32 = 3;
/// MOUNTPROC3_EXPORT.
pub const MOUNTPROC3_EXPORT: u32 = 5;

const LAST_FRAGMENT: u32 = 0x8000_0000;
const MSG_CALL: u32 = 0;
const MSG_REPLY: u32 = 1;
const RPC_VERSION: u32 = 2;
const IPPROTO_TCP: u32 = 6;
/// Longest opaque_auth body (RFC 5531 8.2).
const MAX_AUTH_BYTES: usize = 400;
/// MNTPATHLEN and MNTNAMLEN (RFC 1813 5.1).
const MNT_PATH_LEN: usize = 1024;
const MNT_NAME_LEN: usize = 255;

/// An export of a MOUNT server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Export {
    /// Exported directory (non-UTF-8 bytes replaced by U+FFFD).
    pub path: String,
    /// Hosts, networks or netgroups allowed to mount it (empty: everyone).
    pub groups: Vec<String>,
}

/// Why an RPC reply is not a usable result.
#[derive(Error, Debug, Clone, PartialEq, Eq)]
pub enum RpcError {
    /// Fewer bytes than a field or length announces.
    #[error("truncated RPC message")]
    Truncated,
    /// The reply answers another call.
    #[error("RPC reply xid {got:#010x} does not match the call's {want:#010x}")]
    XidMismatch {
        /// The call's xid.
        want: u32,
        /// The reply's xid.
        got: u32,
    },
    /// The message is a CALL.
    #[error("RPC message is not a reply")]
    NotReply,
    /// MSG_DENIED: RPC version mismatch or authentication error, described.
    #[error("RPC call denied: {0}")]
    Denied(String),
    /// The server does not run the program.
    #[error("RPC program unavailable")]
    ProgUnavail,
    /// The server runs the program, in other versions.
    #[error("RPC program version unsupported (server has versions {low} to {high})")]
    ProgMismatch {
        /// Lowest version supported.
        low: u32,
        /// Highest version supported.
        high: u32,
    },
    /// The program has no such procedure.
    #[error("RPC procedure unavailable")]
    ProcUnavail,
    /// The server could not decode the arguments.
    #[error("RPC server could not decode the arguments")]
    GarbageArgs,
    /// The server failed (e.g. out of memory).
    #[error("RPC server system error")]
    SystemErr,
    /// A field holds an impossible value.
    #[error("malformed RPC message: {0}")]
    Malformed(String),
}

/// Builds a CALL (RPC version 2, AUTH_NONE credentials and verifier) of `proc_` in version
/// `vers` of `prog`, in one last-fragment record. `args` is already XDR-encoded; it is
/// zero-padded to 4 bytes if needed.
pub fn rpc_call(xid: u32, prog: u32, vers: u32, proc_: u32, args: &[u8]) -> Vec<u8> {
    let mut record = Vec::with_capacity(44 + args.len() + 3);
    record.extend_from_slice(&[0; 4]);
    for word in [xid, MSG_CALL, RPC_VERSION, prog, vers, proc_, 0, 0, 0, 0] {
        record.extend_from_slice(&word.to_be_bytes());
    }
    record.extend_from_slice(args);
    record.resize(record.len().next_multiple_of(4), 0);
    let len = u32::try_from(record.len() - 4).unwrap_or(u32::MAX) & !LAST_FRAGMENT;
    put_u32(&mut record, 0, LAST_FRAGMENT | len);
    record
}

/// Splits the fragment at the start of `buf`: (last fragment, fragment bytes, the rest).
fn fragment(buf: &[u8]) -> Option<(bool, &[u8], &[u8])> {
    let (mark, rest) = buf.split_first_chunk::<4>()?;
    let mark = u32::from_be_bytes(*mark);
    let len = usize::try_from(mark & !LAST_FRAGMENT).ok()?;
    let body = rest.get(..len)?;
    Some((mark & LAST_FRAGMENT != 0, body, rest.get(len..)?))
}

/// Length of the complete record (all its fragments with their 4-byte marks) at the start of
/// `buf`, or `None` until the last fragment has fully arrived.
pub fn record_len(buf: &[u8]) -> Option<usize> {
    let mut rest = buf;
    loop {
        let (last, _, after) = fragment(rest)?;
        rest = after;
        if last {
            return Some(buf.len() - rest.len());
        }
    }
}

/// The message carried by the record at the start of `record`, fragments joined.
fn reassemble(record: &[u8]) -> Result<Vec<u8>, RpcError> {
    let mut message = Vec::new();
    let mut rest = record;
    loop {
        let (last, body, after) = fragment(rest).ok_or(RpcError::Truncated)?;
        message.extend_from_slice(body);
        if last {
            return Ok(message);
        }
        rest = after;
    }
}

/// A cursor over XDR data (RFC 4506).
struct Xdr<'a> {
    buf: &'a [u8],
}

impl<'a> Xdr<'a> {
    fn u32(&mut self) -> Result<u32, RpcError> {
        let (word, rest) = self
            .buf
            .split_first_chunk::<4>()
            .ok_or(RpcError::Truncated)?;
        self.buf = rest;
        Ok(u32::from_be_bytes(*word))
    }

    /// A boolean, also the "value follows" marker of optional data and linked lists.
    fn bool(&mut self) -> Result<bool, RpcError> {
        match self.u32()? {
            0 => Ok(false),
            1 => Ok(true),
            n => Err(RpcError::Malformed(format!("boolean {n}"))),
        }
    }

    /// Variable-length opaque data of at most `max` bytes, padding skipped.
    fn opaque(&mut self, max: usize, what: &str) -> Result<&'a [u8], RpcError> {
        let len = usize::try_from(self.u32()?).unwrap_or(usize::MAX);
        if len > max {
            return Err(RpcError::Malformed(format!(
                "{what} of {len} bytes (limit {max})"
            )));
        }
        let data = self.buf.get(..len).ok_or(RpcError::Truncated)?;
        self.buf = self
            .buf
            .get(len.next_multiple_of(4)..)
            .ok_or(RpcError::Truncated)?;
        Ok(data)
    }

    fn string(&mut self, max: usize, what: &str) -> Result<String, RpcError> {
        Ok(String::from_utf8_lossy(self.opaque(max, what)?).into_owned())
    }
}

/// Describes an auth_stat (RFC 5531 9).
fn auth_stat_reason(stat: u32) -> String {
    let text = match stat {
        0 => "AUTH_OK",
        1 => "AUTH_BADCRED (bad credential)",
        2 => "AUTH_REJECTEDCRED (client must begin a new session)",
        3 => "AUTH_BADVERF (bad verifier)",
        4 => "AUTH_REJECTEDVERF (verifier expired or replayed)",
        5 => "AUTH_TOOWEAK (rejected for security reasons)",
        6 => "AUTH_INVALIDRESP (bogus response verifier)",
        7 => "AUTH_FAILED (reason unknown)",
        13 => "RPCSEC_GSS_CREDPROBLEM",
        14 => "RPCSEC_GSS_CTXPROBLEM",
        n => return format!("authentication error, auth_stat {n}"),
    };
    format!("authentication error, {text}")
}

/// Parses the REPLY to call `xid` in `record` (a whole record with its fragment marks, as
/// delimited by [`record_len`]) and returns the procedure's XDR result, which follows the
/// verifier and accept_stat SUCCESS.
pub fn parse_reply(record: &[u8], xid: u32) -> Result<Vec<u8>, RpcError> {
    let message = reassemble(record)?;
    let mut xdr = Xdr { buf: &message };
    let got = xdr.u32()?;
    if got != xid {
        return Err(RpcError::XidMismatch { want: xid, got });
    }
    if xdr.u32()? != MSG_REPLY {
        return Err(RpcError::NotReply);
    }
    match xdr.u32()? {
        // MSG_ACCEPTED: verifier, accept_stat.
        0 => {
            let _flavor = xdr.u32()?;
            xdr.opaque(MAX_AUTH_BYTES, "verifier")?;
            match xdr.u32()? {
                0 => Ok(xdr.buf.to_vec()),
                1 => Err(RpcError::ProgUnavail),
                2 => Err(RpcError::ProgMismatch {
                    low: xdr.u32()?,
                    high: xdr.u32()?,
                }),
                3 => Err(RpcError::ProcUnavail),
                4 => Err(RpcError::GarbageArgs),
                5 => Err(RpcError::SystemErr),
                n => Err(RpcError::Malformed(format!("accept_stat {n}"))),
            }
        }
        // MSG_DENIED: reject_stat.
        1 => match xdr.u32()? {
            0 => {
                let (low, high) = (xdr.u32()?, xdr.u32()?);
                Err(RpcError::Denied(format!(
                    "RPC version mismatch (server has versions {low} to {high}, not 2)"
                )))
            }
            1 => Err(RpcError::Denied(auth_stat_reason(xdr.u32()?))),
            n => Err(RpcError::Malformed(format!("reject_stat {n}"))),
        },
        n => Err(RpcError::Malformed(format!("reply_stat {n}"))),
    }
}

/// PMAPPROC_GETPORT arguments: the TCP port of version `vers` of `prog`.
pub fn getport_args(prog: u32, vers: u32) -> Vec<u8> {
    [prog, vers, IPPROTO_TCP, 0]
        .iter()
        .flat_map(|word| word.to_be_bytes())
        .collect()
}

/// Decodes a PMAPPROC_GETPORT result. Port 0 (the program and version are not registered for
/// TCP) is [`RpcError::ProgUnavail`].
pub fn parse_getport(body: &[u8]) -> Result<u16, RpcError> {
    let port = Xdr { buf: body }.u32()?;
    match port {
        0 => Err(RpcError::ProgUnavail),
        _ => u16::try_from(port).map_err(|_| RpcError::Malformed(format!("port {port}"))),
    }
}

/// Decodes a MOUNTPROC3_EXPORT result: the linked list of exportnode { dirpath, groups (a
/// linked list of names), next }.
pub fn parse_exports(body: &[u8]) -> Result<Vec<Export>, RpcError> {
    let mut xdr = Xdr { buf: body };
    let mut exports = Vec::new();
    while xdr.bool()? {
        room(exports.len(), "exports").map_err(RpcError::Malformed)?;
        let path = xdr.string(MNT_PATH_LEN, "export path")?;
        let mut groups = Vec::new();
        while xdr.bool()? {
            room(groups.len(), "groups").map_err(RpcError::Malformed)?;
            groups.push(xdr.string(MNT_NAME_LEN, "group name")?);
        }
        exports.push(Export { path, groups });
    }
    Ok(exports)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bytes from hex digits; whitespace separates 32-bit words for the reader.
    fn hex(text: &str) -> Vec<u8> {
        let digits: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
        let digit = |d: u8| char::from(d).to_digit(16).unwrap() as u8;
        digits
            .chunks(2)
            .map(|p| digit(p[0]) << 4 | digit(p[1]))
            .collect()
    }

    /// Login Response as tgtd answers a discovery login: T=1 CSG=1 NSG=3, 142 data bytes, ISID
    /// echoed, TSIH 1, ITT 0, StatSN 0x12345678, ExpCmdSN 1, MaxCmdSN 2, status 0/0.
    fn login_response() -> Vec<u8> {
        let bhs = "23870000 0000008e 80000000 00010001 00000000 00000000 \
                   12345678 00000001 00000002 00000000 00000000 00000000";
        let data = b"TargetPortalGroupTag=1\0HeaderDigest=None\0DataDigest=None\0\
            DefaultTime2Wait=2\0DefaultTime2Retain=0\0IFMarker=No\0OFMarker=No\0\
            ErrorRecoveryLevel=0\0\0\0";
        [hex(bhs), data.to_vec()].concat()
    }

    /// Login Response "target moved temporarily" (1/1) to another portal; T=0.
    fn login_redirect() -> Vec<u8> {
        let bhs = "23000000 00000023 80000000 00010000 00000000 00000000 \
                   12345678 00000001 00000002 01010000 00000000 00000000";
        [hex(bhs), b"TargetAddress=198.18.100.21:3260,1\0\0".to_vec()].concat()
    }

    /// SendTargets=All Text Response like tgtd's: F=1, 203 data bytes, LUN 0, ITT 1,
    /// TTT 0xffffffff, StatSN 0x12345679, ExpCmdSN 1, MaxCmdSN 2; two targets, the first on two
    /// portals.
    fn text_response() -> Vec<u8> {
        let bhs = "24800000 000000cb 00000000 00000000 00000001 ffffffff \
                   12345679 00000001 00000002 00000000 00000000 00000000";
        let data = b"TargetName=iqn.2001-04.com.example:storage.disk1\0\
            TargetAddress=198.18.100.20:3260,1\0TargetAddress=198.19.100.20:3260,2\0\
            TargetName=iqn.2001-04.com.example:storage.disk2\0\
            TargetAddress=198.18.100.20:3260,1\0\0";
        [hex(bhs), data.to_vec()].concat()
    }

    const XID: u32 = 0x5641_4b01;

    /// GETPORT reply: last fragment of 28 bytes; xid, REPLY, MSG_ACCEPTED, AUTH_NONE verifier,
    /// SUCCESS, port 20048.
    fn getport_reply() -> Vec<u8> {
        hex("8000001c 56414b01 00000001 00000000 00000000 00000000 00000000 00004e50")
    }

    /// MOUNT EXPORT reply (132 bytes): /srv/nfs/vmfs to 198.18.0.0/15 and esx01, /export/iso
    /// to *.
    fn exports_reply() -> Vec<u8> {
        [
            hex("80000084 56414b01 00000001 00000000 00000000 00000000 00000000"),
            hex("00000001 0000000d"),
            b"/srv/nfs/vmfs\0\0\0".to_vec(),
            hex("00000001 0000000d"),
            b"198.18.0.0/15\0\0\0".to_vec(),
            hex("00000001 00000005"),
            b"esx01\0\0\0".to_vec(),
            hex("00000000 00000001 0000000b"),
            b"/export/iso\0".to_vec(),
            hex("00000001 00000001"),
            b"*\0\0\0".to_vec(),
            hex("00000000 00000000"),
        ]
        .concat()
    }

    /// A one-fragment reply to `XID` whose words after REPLY are `words`.
    fn reply(words: &[u32]) -> Vec<u8> {
        let len = 8 + 4 * words.len() as u32;
        [LAST_FRAGMENT | len, XID, MSG_REPLY]
            .iter()
            .chain(words)
            .flat_map(|word| word.to_be_bytes())
            .collect()
    }

    #[test]
    fn test_emit_login_request() {
        let pdu = login_request("iqn.1998-01.com.vmware:esx01-4c4c4544");
        let bhs = "43870000 0000008b 80000000 00010000 00000000 00000000 \
                   00000001 00000000 00000000 00000000 00000000 00000000";
        assert_eq!(pdu[..BHS_LEN], hex(bhs));
        let data = b"InitiatorName=iqn.1998-01.com.vmware:esx01-4c4c4544\0\
            SessionType=Discovery\0HeaderDigest=None\0DataDigest=None\0\
            MaxRecvDataSegmentLength=65536\0\0";
        assert_eq!(pdu[BHS_LEN..], data[..]);
        assert_eq!(pdu_len(&pdu), Some(pdu.len()));
    }

    #[test]
    fn test_emit_sendtargets_and_logout() {
        let bhs = "44800000 00000010 00000000 00000000 00000001 ffffffff \
                   00000001 12345679 00000000 00000000 00000000 00000000";
        let expected = [hex(bhs), b"SendTargets=All\0".to_vec()].concat();
        assert_eq!(sendtargets_request(1, 0x1234_5679), expected);
        let bhs = "46800000 00000000 00000000 00000000 00000002 00000000 \
                   00000001 1234567a 00000000 00000000 00000000 00000000";
        assert_eq!(logout_request(1, 0x1234_567a), hex(bhs));
    }

    #[test]
    fn test_pdu_len() {
        let pdu = text_response();
        assert_eq!(pdu_len(&pdu[..47]), None);
        assert_eq!(pdu_len(&pdu[..48]), Some(48 + 204));
        assert_eq!(pdu_len(&pdu), Some(pdu.len()));
        let mut ahs = pdu[..48].to_vec();
        ahs[4] = 2;
        assert_eq!(pdu_len(&ahs), Some(48 + 8 + 204));
        assert_eq!(pdu_len(&login_response()), Some(login_response().len()));
        assert_eq!(pdu_len(&login_redirect()), Some(login_redirect().len()));
    }

    #[test]
    fn test_parse_login_response() {
        let rsp = parse_login_response(&login_response()).unwrap();
        assert_eq!((rsp.status_class, rsp.status_detail, rsp.tsih), (0, 0, 1));
        assert_eq!(
            (rsp.stat_sn, rsp.exp_cmd_sn, rsp.full_feature),
            (0x1234_5678, 1, true)
        );
        assert_eq!(rsp.keys.len(), 8);
        assert_eq!(rsp.keys[0], ("TargetPortalGroupTag".into(), "1".into()));
        assert_eq!(rsp.keys[7], ("ErrorRecoveryLevel".into(), "0".into()));
        let mut stay = login_response();
        stay[1] = 0x05; // T=0, CSG=1, NSG=1
        assert!(!parse_login_response(&stay).unwrap().full_feature);
    }

    #[test]
    fn test_parse_login_rejected() {
        let mut pdu = login_redirect()[..BHS_LEN].to_vec();
        pdu[7] = 0;
        for (class, detail, reason) in [
            (2, 1, "authentication failed"),
            (2, 2, "authorization failure"),
            (2, 3, "target not found"),
            (3, 0, "target error"),
        ] {
            (pdu[36], pdu[37]) = (class, detail);
            let reason = reason.to_owned();
            let err = IscsiError::Rejected {
                class,
                detail,
                reason,
            };
            assert_eq!(parse_login_response(&pdu), Err(err));
        }
        let err = parse_login_response(&login_redirect()).unwrap_err();
        let text = "login rejected (status 0x01/0x01): target moved temporarily to \
                    198.18.100.21:3260,1";
        assert_eq!(err.to_string(), text);
    }

    #[test]
    fn test_parse_text_response() {
        let targets = parse_text_response(&text_response()).unwrap();
        let disk1 = Target {
            name: "iqn.2001-04.com.example:storage.disk1".into(),
            portals: vec!["198.18.100.20:3260,1".into(), "198.19.100.20:3260,2".into()],
        };
        let disk2 = Target {
            name: "iqn.2001-04.com.example:storage.disk2".into(),
            portals: vec!["198.18.100.20:3260,1".into()],
        };
        assert_eq!(targets, [disk1, disk2]);
    }

    #[test]
    fn test_parse_text_response_errors() {
        let pdu = text_response();
        let mut continued = pdu.clone();
        continued[1] = 0x40; // C=1, F=0
        assert!(matches!(
            parse_text_response(&continued),
            Err(IscsiError::Malformed(_))
        ));
        assert_eq!(parse_text_response(&pdu[..100]), Err(IscsiError::Truncated));
        let login = login_response();
        assert_eq!(
            parse_text_response(&login),
            Err(IscsiError::UnexpectedOpcode(0x23))
        );
        assert_eq!(
            parse_login_response(&pdu),
            Err(IscsiError::UnexpectedOpcode(0x24))
        );
        let mut orphan = pdu[..48].to_vec();
        orphan[7] = 0x23;
        orphan.extend_from_slice(b"TargetAddress=198.18.100.20:3260,1\0\0");
        assert!(matches!(
            parse_text_response(&orphan),
            Err(IscsiError::Malformed(_))
        ));
    }

    #[test]
    fn test_emit_rpc_call() {
        let call = rpc_call(XID, PORTMAP, 2, PMAPPROC_GETPORT, &getport_args(MOUNT, 3));
        let expected = "80000038 56414b01 00000000 00000002 000186a0 00000002 00000003 \
                        00000000 00000000 00000000 00000000 000186a5 00000003 00000006 00000000";
        assert_eq!(call, hex(expected));
        assert_eq!(rpc_call(1, NFS, 3, 0, &[0xaa]).len(), 48);
    }

    #[test]
    fn test_record_len() {
        let one = getport_reply();
        assert_eq!(record_len(&one), Some(32));
        assert_eq!(record_len(&one[..31]), None);
        assert_eq!(record_len(&one[..3]), None);
        assert_eq!(record_len(&[one.clone(), one.clone()].concat()), Some(32));
        // The same reply in two fragments: 16 bytes, then the last 12.
        let split = [
            hex("00000010"),
            one[4..20].to_vec(),
            hex("8000000c"),
            one[20..].to_vec(),
        ];
        let split = split.concat();
        assert_eq!(record_len(&split[..24]), None);
        assert_eq!(record_len(&split), Some(36));
        assert_eq!(parse_getport(&parse_reply(&split, XID).unwrap()), Ok(20048));
    }

    #[test]
    fn test_parse_getport() {
        let body = parse_reply(&getport_reply(), XID).unwrap();
        assert_eq!(body, [0, 0, 0x4e, 0x50]);
        assert_eq!(parse_getport(&body), Ok(20048));
        assert_eq!(parse_getport(&[0; 4]), Err(RpcError::ProgUnavail));
        assert!(matches!(
            parse_getport(&[0, 1, 0, 0]),
            Err(RpcError::Malformed(_))
        ));
        assert_eq!(parse_getport(&[0; 3]), Err(RpcError::Truncated));
    }

    #[test]
    fn test_parse_exports() {
        let body = parse_reply(&exports_reply(), XID).unwrap();
        let vmfs = Export {
            path: "/srv/nfs/vmfs".into(),
            groups: vec!["198.18.0.0/15".into(), "esx01".into()],
        };
        let iso = Export {
            path: "/export/iso".into(),
            groups: vec!["*".into()],
        };
        assert_eq!(parse_exports(&body), Ok(vec![vmfs, iso]));
        assert_eq!(parse_exports(&[0; 4]), Ok(vec![]));
        // A path of 4 GiB, one running past the end, a bad boolean, 1025 exports.
        let huge = hex("00000001 ffffffff");
        assert!(matches!(parse_exports(&huge), Err(RpcError::Malformed(_))));
        let short = hex("00000001 00000009 2f000000");
        assert_eq!(parse_exports(&short), Err(RpcError::Truncated));
        assert!(matches!(
            parse_exports(&hex("00000002")),
            Err(RpcError::Malformed(_))
        ));
        let many = hex(&"00000001 00000000 00000000 ".repeat(1025));
        let err = RpcError::Malformed("more than 1024 exports".into());
        assert_eq!(parse_exports(&many), Err(err));
    }

    #[test]
    fn test_parse_reply_errors() {
        let err = RpcError::XidMismatch { want: 7, got: XID };
        assert_eq!(parse_reply(&getport_reply(), 7), Err(err));
        let call = rpc_call(XID, MOUNT, 3, MOUNTPROC3_EXPORT, &[]);
        assert_eq!(parse_reply(&call, XID), Err(RpcError::NotReply));
        for (words, err) in [
            (&[0, 0, 0, 1][..], RpcError::ProgUnavail),
            (
                &[0, 0, 0, 2, 3, 3],
                RpcError::ProgMismatch { low: 3, high: 3 },
            ),
            (&[0, 0, 0, 3], RpcError::ProcUnavail),
            (&[0, 0, 0, 4], RpcError::GarbageArgs),
            (&[0, 0, 0, 5], RpcError::SystemErr),
            (&[0, 0, 0, 6], RpcError::Malformed("accept_stat 6".into())),
            (&[0, 0, 0], RpcError::Truncated),
        ] {
            assert_eq!(parse_reply(&reply(words), XID), Err(err));
        }
        let err = parse_reply(&reply(&[1, 0, 2, 2]), XID).unwrap_err();
        let text = "RPC call denied: RPC version mismatch (server has versions 2 to 2, not 2)";
        assert_eq!(err.to_string(), text);
        let err = parse_reply(&reply(&[1, 1, 5]), XID).unwrap_err();
        let text = "RPC call denied: authentication error, AUTH_TOOWEAK (rejected for security \
                    reasons)";
        assert_eq!(err.to_string(), text);
        // A verifier with a body is skipped.
        let body = parse_reply(&reply(&[0, 2, 4, 0xdead_beef, 0, 9]), XID).unwrap();
        assert_eq!(body, [0, 0, 0, 9]);
    }

    /// Every decoder on every prefix, and on every single-byte corruption, of every fixture:
    /// none may panic.
    #[test]
    fn test_truncated_and_corrupted_inputs() {
        let fixtures = [
            login_response(),
            login_redirect(),
            text_response(),
            getport_reply(),
            exports_reply(),
            exports_reply()[28..].to_vec(),
            reply(&[0, 0, 0, 2, 3, 3]),
            reply(&[1, 1, 5]),
        ];
        let decode = |bytes: &[u8]| {
            let _ = pdu_len(bytes);
            let _ = parse_login_response(bytes);
            let _ = parse_text_response(bytes);
            let _ = record_len(bytes);
            let _ = parse_reply(bytes, XID);
            let _ = parse_getport(bytes);
            let _ = parse_exports(bytes);
        };
        for fixture in &fixtures {
            for len in 0..=fixture.len() {
                decode(&fixture[..len]);
            }
            for at in 0..fixture.len() {
                for byte in [0x00, 0x01, 0x7f, 0x80, 0xff] {
                    let mut bad = fixture.clone();
                    bad[at] = byte;
                    decode(&bad);
                }
            }
        }
    }
}
