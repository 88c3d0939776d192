//! The control socket's server side: a thread accepts clients, a thread per client (bounded)
//! reads request lines, checks the caller's rights, and hands each parsed request to the event
//! loop over a bounded channel, waking it. A slow, silent or hostile client only ever holds
//! its own thread: the data plane and the other clients go on.

use std::io::{BufRead, BufReader, ErrorKind as IoKind, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{bounded, Receiver, Sender, TrySendError};
use mio::Waker;
use tracing::{debug, info, warn};

use vmkstack_api::capture::status_record;
use vmkstack_api::{parse_request, ErrorKind, RemoteError, Response, MAX_LINE};

use super::command::{self, CaptureSlot, Command};
use crate::engine::{Capture, RING_BYTES};
use crate::sys::{peer_cred, PeerCred};

/// Clients served at once; more are told the daemon is busy.
pub const MAX_CLIENTS: usize = 32;
/// A client that sends nothing for this long, or takes this long to send one line, is
/// disconnected.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// A client that does not read its answer for this long is disconnected.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Requests waiting for the event loop at once.
pub const QUEUE_DEPTH: usize = 256;
/// Longest wait for the event loop's answer (pings and probes carry their own, shorter,
/// timeouts).
const REPLY_TIMEOUT: Duration = Duration::from_secs(120);
/// How often a capture's ring is drained to its client.
const CAPTURE_PERIOD: Duration = Duration::from_millis(10);
/// A capture's client that does not read for this long is let go.
const CAPTURE_WRITE_TIMEOUT: Duration = Duration::from_secs(60);

/// A request for the event loop, parsed, with the way back to its client.
pub struct Pending {
    /// What to do.
    pub command: Command,
    /// The netstack it acts on (`-N`); `None`: the default one.
    pub netstack: Option<String>,
    /// Where the answer goes.
    pub reply: Sender<Response>,
}

/// Who may change state.
#[derive(Debug, Clone)]
pub struct Policy {
    /// Members of this group (by ID) may change state; root always may.
    pub group: Option<(String, u32)>,
    /// The user the daemon runs as, who may change state too (an unprivileged daemon's own
    /// user: the socket is that user's).
    pub owner: Option<u32>,
}

impl Policy {
    /// True when `cred` may change state: root, the daemon's own user, or a member (primary
    /// or supplementary, as the kernel captured them at connect) of the configured group.
    pub fn may_change(&self, cred: &PeerCred, groups: &[u32]) -> bool {
        if cred.uid == 0 || Some(cred.uid) == self.owner {
            return true;
        }
        let Some((_, gid)) = &self.group else {
            return false;
        };
        cred.gid == *gid || groups.contains(gid)
    }

    /// The refusal a caller without rights gets.
    fn refusal(&self, cred: &PeerCred) -> RemoteError {
        let owner = match self.owner {
            Some(uid) if uid != 0 => format!(", uid {uid} (the daemon's user)"),
            _ => String::new(),
        };
        let who = match &self.group {
            Some((name, _)) => format!("root{owner} or a member of group {name}"),
            None => format!("root{owner}"),
        };
        RemoteError::new(
            ErrorKind::PermissionDenied,
            format!(
                "permission denied: uid {} may list but not change the stack (changes need {who})",
                cred.uid
            ),
        )
    }
}

/// The effective user ID of this process (from `/proc/self/status`).
pub fn effective_uid() -> std::io::Result<u32> {
    std::fs::read_to_string("/proc/self/status")?
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|uid| uid.parse().ok())
        .ok_or_else(|| std::io::Error::other("no Uid line in /proc/self/status"))
}

/// Looks a group up in /etc/group: its ID.
pub fn group_id(name: &str) -> Option<u32> {
    std::fs::read_to_string("/etc/group")
        .ok()?
        .lines()
        .find_map(|l| {
            let mut f = l.split(':');
            (f.next()? == name).then(|| f.nth(1)?.parse().ok())?
        })
}

/// The running server; [`Server::stop`] ends the accept thread.
pub struct Server {
    stop: Arc<AtomicBool>,
    path: PathBuf,
    accept: Option<JoinHandle<()>>,
    /// A listener bound anew (the socket file was deleted), for the accept thread to take.
    next: Arc<Mutex<Option<UnixListener>>>,
}

/// How long the accept thread waits for a client before it looks at its flags.
const ACCEPT_WAIT: Duration = Duration::from_millis(200);

/// Binds the control socket at `path` (which must not exist): mode 0600, or 0660 with the
/// control group `group`.
pub fn bind_socket(path: &std::path::Path, group: Option<u32>) -> std::io::Result<UnixListener> {
    use std::os::unix::fs::PermissionsExt;
    let listener = UnixListener::bind(path)?;
    let mode = if group.is_some() { 0o660 } else { 0o600 };
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
    if let Some(gid) = group {
        std::os::unix::fs::chown(path, None, Some(gid))?;
    }
    Ok(listener)
}

/// Answers a client's first request with `e` and closes: the request is read first (for at
/// most [`REFUSAL_WAIT`]), so that the client, which writes before it reads, gets the answer
/// instead of a broken pipe.
fn refuse(stream: UnixStream, e: RemoteError) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(REFUSAL_WAIT));
    let _ = stream.set_write_timeout(Some(REFUSAL_WAIT));
    let mut reader = BufReader::new(&stream);
    let mut line = Vec::new();
    let _ = reader
        .by_ref()
        .take(MAX_LINE as u64 + 1)
        .read_until(b'\n', &mut line);
    let _ = (&stream).write_all(Response::err(e).to_line().as_bytes());
}

/// How long a refused client is given to send its request and read the answer.
const REFUSAL_WAIT: Duration = Duration::from_millis(500);

/// True for the errors that mean this process (or the system) is out of file descriptors.
fn out_of_fds(e: &std::io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EMFILE) | Some(libc::ENFILE))
}

/// The refusal a client gets when the daemon is out of file descriptors.
pub fn out_of_fds_error() -> RemoteError {
    RemoteError::new(
        ErrorKind::Busy,
        format!(
            "the daemon is out of file descriptors (its limit is {}); try again later, or \
             raise it (ulimit -n, systemd LimitNOFILE=)",
            crate::sys::fd_limit().map_or_else(|| "unknown".to_string(), |n| n.to_string())
        ),
    )
}

/// Accepts the control clients of `listener` until `stop`; takes a listener bound anew from
/// `next`. Out of file descriptors, it still answers each client with a refusal: one
/// descriptor is kept in reserve and let go for the time of that answer.
fn accept_loop(
    mut listener: UnixListener,
    stop: &AtomicBool,
    next: &Mutex<Option<UnixListener>>,
    serve: impl Fn(UnixStream),
) {
    let mut reserve = std::fs::File::open("/dev/null").ok();
    let mut last_fd_warning: Option<std::time::Instant> = None;
    let _ = listener.set_nonblocking(true);
    while !stop.load(Ordering::Relaxed) {
        if let Some(l) = next.lock().ok().and_then(|mut n| n.take()) {
            listener = l;
            let _ = listener.set_nonblocking(true);
        }
        match listener.accept() {
            Ok((stream, _)) => {
                let _ = stream.set_nonblocking(false);
                serve(stream);
            }
            Err(e) if e.kind() == IoKind::WouldBlock => {
                crate::sys::wait_readable(listener.as_raw_fd(), ACCEPT_WAIT);
            }
            Err(e) if e.kind() == IoKind::Interrupted => {}
            Err(e) if out_of_fds(&e) => {
                if last_fd_warning.is_none_or(|t| t.elapsed() > Duration::from_secs(10)) {
                    warn!("control socket: out of file descriptors; refusing clients");
                    last_fd_warning = Some(std::time::Instant::now());
                }
                // Let the reserve go for the refusal, then take it back.
                drop(reserve.take());
                if let Ok((stream, _)) = listener.accept() {
                    refuse(stream, out_of_fds_error());
                }
                reserve = std::fs::File::open("/dev/null").ok();
                if reserve.is_none() {
                    // Not even one descriptor: wait instead of spinning.
                    std::thread::sleep(ACCEPT_WAIT);
                }
            }
            Err(e) => {
                warn!("control socket: accept: {e}");
                std::thread::sleep(ACCEPT_WAIT);
            }
        }
    }
}

impl Server {
    /// Serves `listener` (bound at `path`) until stopped.
    pub fn spawn(
        listener: UnixListener,
        path: PathBuf,
        queue: Sender<Pending>,
        waker: Arc<Waker>,
        policy: Policy,
    ) -> std::io::Result<Server> {
        let stop = Arc::new(AtomicBool::new(false));
        let next = Arc::new(Mutex::new(None));
        let active = Arc::new(AtomicUsize::new(0));
        let (stop2, next2) = (stop.clone(), next.clone());
        let serve = move |stream: UnixStream| {
            if active.load(Ordering::Relaxed) >= MAX_CLIENTS {
                let busy = RemoteError::new(
                    ErrorKind::Busy,
                    format!("too many control clients (limit {MAX_CLIENTS}); try again"),
                );
                let _ = (&stream).write_all(Response::err(busy).to_line().as_bytes());
                return;
            }
            active.fetch_add(1, Ordering::Relaxed);
            let (queue, waker, policy, active) =
                (queue.clone(), waker.clone(), policy.clone(), active.clone());
            let spawned = std::thread::Builder::new()
                .name("vmkstack-client".into())
                .spawn(move || {
                    serve_client(stream, &queue, &waker, &policy);
                    active.fetch_sub(1, Ordering::Relaxed);
                });
            if let Err(e) = spawned {
                warn!("cannot start a control client thread: {e}");
            }
        };
        let accept = std::thread::Builder::new()
            .name("vmkstack-control".into())
            .spawn(move || accept_loop(listener, &stop2, &next2, serve))?;
        Ok(Server {
            stop,
            path,
            accept: Some(accept),
            next,
        })
    }

    /// Serves `listener` from now on instead (bound anew at the same path).
    pub fn replace(&self, listener: UnixListener) {
        if let Ok(mut n) = self.next.lock() {
            *n = Some(listener);
        }
    }

    /// Stops accepting (client threads end with their clients or their idle timeout).
    pub fn stop(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wake the accept thread.
        let _ = UnixStream::connect(&self.path);
        if let Some(t) = self.accept.take() {
            let _ = t.join();
        }
    }
}

/// Reads request lines until the client leaves, idles out, or breaks the protocol.
fn serve_client(stream: UnixStream, queue: &Sender<Pending>, waker: &Waker, policy: &Policy) {
    let cred = match peer_cred(&stream) {
        Ok(c) => c,
        Err(e) => {
            debug!("control client without credentials: {e}");
            return;
        }
    };
    let groups = crate::sys::peer_groups(&stream).unwrap_or_default();
    let may_change = policy.may_change(&cred, &groups);
    // Reads and writes are bounded: a client that stops reading its answers, or trickles a
    // line byte by byte, loses its slot instead of keeping it.
    let _ = stream.set_read_timeout(Some(IDLE_TIMEOUT));
    let _ = stream.set_write_timeout(Some(WRITE_TIMEOUT));
    let read_half = match stream.try_clone() {
        Ok(r) => r,
        Err(e) => {
            if out_of_fds(&e) {
                let line = Response::err(out_of_fds_error()).to_line();
                let _ = (&stream).write_all(line.as_bytes());
            }
            return;
        }
    };
    let mut reader = BufReader::new(read_half);
    let mut writer = stream;
    loop {
        let mut line = Vec::new();
        match read_line(&mut reader, &mut line) {
            Ok(true) => {}
            Ok(false) => return,
            Err(e) if matches!(e.kind(), IoKind::WouldBlock | IoKind::TimedOut) => {
                debug!(uid = cred.uid, "control client idle or too slow; closing");
                return;
            }
            Err(_) => return,
        }
        if line.last() != Some(&b'\n') && line.len() > MAX_LINE {
            let e = RemoteError::new(
                ErrorKind::TooLong,
                format!("request longer than {MAX_LINE} bytes; closing the connection"),
            );
            let _ = writer.write_all(Response::err(e).to_line().as_bytes());
            return;
        }
        let resp = match std::str::from_utf8(&line) {
            Err(_) => Response::err(RemoteError::new(
                ErrorKind::BadRequest,
                "request is not UTF-8",
            )),
            Ok(text) if text.trim().is_empty() => continue,
            Ok(text) => {
                let mut capture = None;
                let resp = answer(
                    text.trim_end(),
                    &cred,
                    may_change,
                    queue,
                    waker,
                    policy,
                    &mut capture,
                );
                if let Some(c) = capture.and_then(|rx| rx.try_recv().ok()) {
                    if resp.ok && writer.write_all(resp.to_line().as_bytes()).is_ok() {
                        stream_capture(&mut writer, &c);
                    }
                    c.close();
                    return;
                }
                resp
            }
        };
        if writer.write_all(resp.to_line().as_bytes()).is_err() {
            return;
        }
    }
}

/// Reads one line (at most `MAX_LINE + 1` bytes) that must arrive within [`IDLE_TIMEOUT`]
/// from the start. False at end of stream with nothing read.
fn read_line(reader: &mut BufReader<UnixStream>, line: &mut Vec<u8>) -> std::io::Result<bool> {
    let deadline = std::time::Instant::now() + IDLE_TIMEOUT;
    loop {
        let buf = reader.fill_buf()?;
        if buf.is_empty() {
            return Ok(!line.is_empty());
        }
        let room = MAX_LINE + 1 - line.len();
        let (take, done) = match buf.iter().position(|&b| b == b'\n') {
            Some(i) if i < room => (i + 1, true),
            _ => (buf.len().min(room), buf.len() >= room),
        };
        line.extend_from_slice(&buf[..take]);
        reader.consume(take);
        if done {
            return Ok(true);
        }
        if std::time::Instant::now() >= deadline {
            return Err(std::io::Error::new(IoKind::TimedOut, "line too slow"));
        }
    }
}

/// Streams a started capture's records to its client until the client goes away (a write
/// fails): what the ring holds every [`CAPTURE_PERIOD`], the counts about once a second.
/// The client thread does this; the data plane only ever tries the ring's lock.
fn stream_capture(writer: &mut UnixStream, c: &Capture) {
    // A reader paused for a while (a stopped tcpdump) may resume; one gone for this long is
    // let go.
    let _ = writer.set_write_timeout(Some(CAPTURE_WRITE_TIMEOUT));
    let mut buf = Vec::with_capacity(RING_BYTES);
    let mut last_status = std::time::Instant::now();
    loop {
        buf.clear();
        c.drain_into(&mut buf);
        if !buf.is_empty() && writer.write_all(&buf).is_err() {
            return;
        }
        if last_status.elapsed() >= Duration::from_secs(1) {
            let (captured, lost) = c.counts();
            if writer.write_all(&status_record(captured, lost)).is_err() {
                return;
            }
            last_status = std::time::Instant::now();
        }
        std::thread::sleep(CAPTURE_PERIOD);
    }
}

/// One request: parse the line, check rights, parse the action into a command, queue it for
/// the loop, wait for its answer. A capture's command gets a slot, whose receiver is left in
/// `capture` for the caller to stream from.
fn answer(
    text: &str,
    cred: &PeerCred,
    may_change: bool,
    queue: &Sender<Pending>,
    waker: &Waker,
    policy: &Policy,
    capture: &mut Option<Receiver<Arc<Capture>>>,
) -> Response {
    let req = match parse_request(text) {
        Ok(r) => r,
        Err(e) => return Response::err(e),
    };
    if req.action.changes_state() && !may_change {
        info!(
            uid = cred.uid,
            pid = cred.pid,
            "refused a state change from a caller without rights"
        );
        return Response::err(policy.refusal(cred));
    }
    let mut command = match command::parse(req.action) {
        Ok(c) => c,
        Err(e) => return Response::err(e),
    };
    let netstack = match req.netstack.map(command::netstack_name).transpose() {
        Ok(n) => n,
        Err(e) => return Response::err(e),
    };
    if let Command::Capture { slot, .. } = &mut command {
        let (tx, rx) = bounded(1);
        *slot = CaptureSlot(Some(tx));
        *capture = Some(rx);
    }
    let (tx, rx) = bounded(1);
    match queue.try_send(Pending {
        command,
        netstack,
        reply: tx,
    }) {
        Ok(()) => {}
        Err(TrySendError::Full(_)) => {
            return Response::err(RemoteError::new(
                ErrorKind::Busy,
                format!("{QUEUE_DEPTH} requests are already waiting; try again"),
            ))
        }
        Err(TrySendError::Disconnected(_)) => {
            return Response::err(RemoteError::new(
                ErrorKind::Io,
                "the daemon is shutting down",
            ))
        }
    }
    let _ = waker.wake();
    rx.recv_timeout(REPLY_TIMEOUT).unwrap_or_else(|_| {
        Response::err(RemoteError::new(
            ErrorKind::Timeout,
            "the event loop did not answer in time",
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_policy() {
        let root = PeerCred {
            pid: 1,
            uid: 0,
            gid: 0,
        };
        let user = PeerCred {
            pid: i32::MAX,
            uid: 1000,
            gid: 1000,
        };
        let none = Policy {
            group: None,
            owner: Some(0),
        };
        assert!(none.may_change(&root, &[]));
        assert!(!none.may_change(&user, &[]));
        assert!(none.refusal(&user).message.contains("changes need root)"));
        let owned = Policy {
            group: None,
            owner: Some(1000),
        };
        assert!(owned.may_change(&user, &[]), "the daemon's own user");
        let stranger = PeerCred { uid: 1001, ..user };
        assert!(!owned.may_change(&stranger, &[]));
        assert!(owned
            .refusal(&stranger)
            .message
            .contains("changes need root, uid 1000 (the daemon's user)"));
        let group = Policy {
            group: Some(("vmkadmin".into(), 1000)),
            owner: None,
        };
        assert!(group.may_change(&user, &[]));
        let other = Policy {
            group: Some(("vmkadmin".into(), 4242)),
            owner: None,
        };
        assert!(!other.may_change(&user, &[]));
        assert!(other.may_change(&user, &[7, 4242]), "supplementary group");
        assert!(other.refusal(&user).message.contains("group vmkadmin"));
    }

    #[test]
    fn test_group_id_of_root() {
        assert_eq!(group_id("root"), Some(0));
        assert_eq!(group_id("no-such-group-vmks"), None);
    }
}
