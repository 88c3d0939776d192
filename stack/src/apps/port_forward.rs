//! Port forwarding through the stack: a kernel listener in the daemon's namespace; for each
//! accepted connection a TCP connection from the userspace stack (source: the egress vmknic's
//! address, through the routing core and the gateway), relayed both ways.
//!
//! Data moves straight between the kernel socket and the smoltcp socket buffers: no extra
//! copy, no unbounded buffer. When one side cannot take more, the other is not read, so TCP's
//! own windows push back (backpressure both ways). A FIN is passed on as a half-close, a reset
//! as a reset.
//!
//! The kernel sockets report to the forwarder's own epoll, whose descriptor sits in the event
//! loop's: a socket is read, written or accepted on only after it said it was ready, and a
//! forward that is idle costs no system call per turn of the loop.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use mio::net::{TcpListener, TcpStream};
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Registry, Token};
use smoltcp::iface::SocketHandle;
use smoltcp::socket::tcp;
use tracing::{debug, info, warn};
use vmkstack_api::ForwardInfo;

use super::Endpoint;
pub use crate::config::{ForwardSpec, DEFAULT_MAX_CONNECTIONS};

/// Bytes of smoltcp socket buffer each way per connection (window scaling makes TCP use all
/// of it).
pub const STACK_BUFFER: usize = 512 * 1024;
/// How long a closing connection waits for the remote to acknowledge our FIN.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(30);
/// Readiness events taken from the forwarder's epoll at once.
const EVENTS: usize = 256;
/// The interval over which `forward list` reports the current rate.
const RATE_INTERVAL: Duration = Duration::from_secs(1);

struct Conn {
    kernel: TcpStream,
    /// Its token in the forwarder's epoll.
    token: Token,
    /// The kernel socket may have data (or EOF) to read: cleared when a read would block,
    /// set again by its readiness event.
    readable: bool,
    /// The kernel socket may take data: cleared when a write would block.
    writable: bool,
    handle: SocketHandle,
    /// The kernel client sent FIN; passed on to the stack side.
    kernel_eof: bool,
    /// The remote's FIN was passed on to the kernel client.
    fin_to_kernel: bool,
    /// The stack side connected at least once (a reset before that is a refusal).
    established: bool,
    /// Since when our FIN has been waiting for the remote's acknowledgement.
    closing_since: Option<Instant>,
}

struct Fwd {
    spec: ForwardSpec,
    listener: TcpListener,
    token: Token,
    /// The listener may have connections waiting.
    acceptable: bool,
    conns: Vec<Conn>,
    accepted: u64,
    refused: u64,
    bytes_out: u64,
    bytes_in: u64,
    rate: Rate,
}

/// Bytes per second each way over the last complete interval.
#[derive(Debug, Clone, Copy)]
struct Rate {
    /// When the current interval began, and the totals then.
    since: Instant,
    out_then: u64,
    in_then: u64,
    /// The rates of the last complete interval.
    out: u64,
    inb: u64,
}

impl Rate {
    fn new(now: Instant) -> Rate {
        Rate {
            since: now,
            out_then: 0,
            in_then: 0,
            out: 0,
            inb: 0,
        }
    }

    /// Closes the interval once it is [`RATE_INTERVAL`] long: the rates become the bytes
    /// moved in it per second.
    fn tick(&mut self, now: Instant, bytes_out: u64, bytes_in: u64) {
        let dt = now.saturating_duration_since(self.since);
        if dt < RATE_INTERVAL {
            return;
        }
        let per_sec = |now: u64, then: u64| {
            let d = now.saturating_sub(then) as f64 / dt.as_secs_f64();
            d.round() as u64
        };
        self.out = per_sec(bytes_out, self.out_then);
        self.inb = per_sec(bytes_in, self.in_then);
        (self.since, self.out_then, self.in_then) = (now, bytes_out, bytes_in);
    }

    /// The rates, or zero when the last interval ended long ago (nothing ticked it since).
    fn current(&self, now: Instant) -> (u64, u64) {
        if now.saturating_duration_since(self.since) > 3 * RATE_INTERVAL {
            (0, 0)
        } else {
            (self.out, self.inb)
        }
    }
}

/// All forwards of a daemon.
pub struct Forwarder {
    fwds: Vec<Fwd>,
    next_token: usize,
    /// The forwarder's own epoll: listeners and connections report here.
    poll: Poll,
    events: Events,
    /// One descriptor kept in reserve: out of descriptors, it is let go for the time of an
    /// accept, so that the client is refused (reset) instead of left waiting in the backlog.
    reserve: Option<std::fs::File>,
}

/// What one relay step found.
enum Step {
    Open,
    Closed,
}

impl Forwarder {
    /// No forwards yet. The forwarder's epoll is registered with the event loop's `registry`
    /// under `token` (outside the loop's own tokens), so that a ready kernel socket wakes the
    /// loop, which then calls [`Forwarder::poll`].
    pub fn new(registry: &Registry, token: Token) -> io::Result<Forwarder> {
        let poll = Poll::new()?;
        registry.register(&mut SourceFd(&poll.as_raw_fd()), token, Interest::READABLE)?;
        Ok(Forwarder {
            fwds: Vec::new(),
            next_token: 0,
            poll,
            events: Events::with_capacity(EVENTS),
            reserve: std::fs::File::open("/dev/null").ok(),
        })
    }

    fn token(&mut self) -> Token {
        self.next_token += 1;
        Token(self.next_token)
    }

    /// Starts listening for `spec`. Refused if its listen address is already forwarded or
    /// cannot be bound.
    pub fn add(&mut self, spec: ForwardSpec) -> io::Result<()> {
        if self.fwds.iter().any(|f| f.spec.listen == spec.listen) {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("{} is already forwarded", spec.listen),
            ));
        }
        let mut listener = TcpListener::bind(spec.listen)?;
        let token = self.token();
        self.poll
            .registry()
            .register(&mut listener, token, Interest::READABLE)?;
        info!(listen = %spec.listen, remote = %spec.remote, "forward listening");
        self.fwds.push(Fwd {
            spec,
            listener,
            token,
            acceptable: true,
            conns: Vec::new(),
            accepted: 0,
            refused: 0,
            bytes_out: 0,
            bytes_in: 0,
            rate: Rate::new(Instant::now()),
        });
        Ok(())
    }

    /// Stops the forward on `listen`, resetting its connections. False if there is none.
    pub fn remove(&mut self, listen: SocketAddr, stack: &mut impl Endpoint) -> bool {
        let Some(pos) = self.fwds.iter().position(|f| f.spec.listen == listen) else {
            return false;
        };
        let mut f = self.fwds.remove(pos);
        let registry = self.poll.registry();
        let _ = registry.deregister(&mut f.listener);
        for mut c in f.conns.drain(..) {
            close_conn(&mut c, stack, registry, true);
        }
        stack.poll_local();
        info!(%listen, token = f.token.0, "forward removed");
        true
    }

    /// The forwards with their counters and current rates.
    pub fn list(&self) -> Vec<ForwardInfo> {
        let now = Instant::now();
        self.fwds
            .iter()
            .map(|f| (f, f.rate.current(now)))
            .map(|(f, (rate_out, rate_in))| ForwardInfo {
                listen: f.spec.listen,
                remote: f.spec.remote,
                vmknic: f.spec.vmknic.map(|v| v.to_string()),
                max_connections: f.spec.max_connections,
                active: f.conns.len(),
                accepted: f.accepted,
                refused: f.refused,
                bytes_out: f.bytes_out,
                bytes_in: f.bytes_in,
                rate_out,
                rate_in,
                netstack: f.spec.netstack.clone(),
            })
            .collect()
    }

    /// True when some connection is open (the caller keeps the loop responsive).
    pub fn busy(&self) -> bool {
        self.fwds.iter().any(|f| !f.conns.is_empty())
    }

    /// Takes the readiness the kernel reported, accepts new connections and moves data both
    /// ways on every open one.
    pub fn poll(&mut self, stack: &mut impl Endpoint) {
        self.take_events();
        let now = Instant::now();
        let mut next = self.next_token;
        let registry = self.poll.registry();
        for f in &mut self.fwds {
            if f.acceptable {
                accept_all(f, stack, registry, &mut next, &mut self.reserve);
            }
            let mut i = 0;
            while i < f.conns.len() {
                let (out, inb, step) = relay(&mut f.conns[i], stack);
                f.bytes_out += out;
                f.bytes_in += inb;
                match step {
                    Step::Open => i += 1,
                    Step::Closed => {
                        let mut c = f.conns.swap_remove(i);
                        close_conn(&mut c, stack, registry, false);
                    }
                }
            }
            f.rate.tick(now, f.bytes_out, f.bytes_in);
        }
        self.next_token = next;
    }

    /// Drains the forwarder's epoll (without waiting) into the readiness flags. Edge
    /// triggered: a flag stays set until a call would block.
    fn take_events(&mut self) {
        loop {
            if let Err(e) = self.poll.poll(&mut self.events, Some(Duration::ZERO)) {
                if e.kind() != io::ErrorKind::Interrupted {
                    warn!("forward: epoll: {e}");
                }
                return;
            }
            let mut n = 0;
            for ev in self.events.iter() {
                n += 1;
                let t = ev.token();
                for f in &mut self.fwds {
                    if f.token == t {
                        f.acceptable = true;
                    } else if let Some(c) = f.conns.iter_mut().find(|c| c.token == t) {
                        // Errors and hang-ups show on the next read or write.
                        c.readable |= ev.is_readable() || ev.is_read_closed() || ev.is_error();
                        c.writable |= ev.is_writable() || ev.is_write_closed() || ev.is_error();
                    }
                }
            }
            // A full batch may leave more behind; the loop would not be woken for them again.
            if n < EVENTS {
                return;
            }
        }
    }
}

/// Accepts every waiting connection of `f`; `f.acceptable` ends false once none is left.
fn accept_all(
    f: &mut Fwd,
    stack: &mut impl Endpoint,
    registry: &Registry,
    next: &mut usize,
    reserve: &mut Option<std::fs::File>,
) {
    loop {
        let (mut kernel, peer) = match f.listener.accept() {
            Ok(c) => c,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                f.acceptable = false;
                return;
            }
            Err(e) if matches!(e.raw_os_error(), Some(libc::EMFILE) | Some(libc::ENFILE)) => {
                // Out of descriptors: the reserve one takes the client for the time of a
                // reset, a clear refusal (counted, logged for the first and every 1000th).
                drop(reserve.take());
                let refused = match f.listener.accept() {
                    Ok((kernel, peer)) => {
                        f.refused += 1;
                        if f.refused % 1000 == 1 {
                            warn!(listen = %f.spec.listen, %peer, refused = f.refused,
                                "forward: the daemon is out of file descriptors \
                                 (ulimit -n); connections reset");
                        }
                        let _ = crate::sys::set_linger_zero(kernel.as_raw_fd());
                        // Closed here, before the reserve is taken back.
                        drop(kernel);
                        true
                    }
                    Err(_) => false,
                };
                *reserve = std::fs::File::open("/dev/null").ok();
                if refused && reserve.is_some() {
                    continue;
                }
                // Not even the reserve: tried again on the next turn.
                return;
            }
            Err(e) => {
                warn!(listen = %f.spec.listen, "accept: {e}");
                return;
            }
        };
        if f.conns.len() >= f.spec.max_connections {
            f.refused += 1;
            // One line for the first refusal and then every 1000th: a connect flood must not
            // flood the log too (the count is in `forward list`).
            if f.refused % 1000 == 1 {
                warn!(listen = %f.spec.listen, %peer, limit = f.spec.max_connections,
                    refused = f.refused, "forward at its connection limit; connections reset");
            }
            let _ = crate::sys::set_linger_zero(kernel.as_raw_fd());
            continue;
        }
        let handle =
            match stack.tcp_connect(f.spec.remote, f.spec.vmknic, STACK_BUFFER, STACK_BUFFER) {
                Ok(h) => h,
                Err(e) => {
                    f.refused += 1;
                    warn!(listen = %f.spec.listen, remote = %f.spec.remote, "forward: {e}");
                    let _ = crate::sys::set_linger_zero(kernel.as_raw_fd());
                    continue;
                }
            };
        *next += 1;
        let token = Token(*next);
        if let Err(e) =
            registry.register(&mut kernel, token, Interest::READABLE | Interest::WRITABLE)
        {
            warn!("forward: cannot watch a connection: {e}");
            stack.sockets().get_mut::<tcp::Socket>(handle).abort();
            stack.sockets().remove(handle);
            continue;
        }
        let _ = kernel.set_nodelay(true);
        f.accepted += 1;
        debug!(listen = %f.spec.listen, %peer, "forward: connection");
        f.conns.push(Conn {
            kernel,
            token,
            // A new socket may hold data already; the first read or write finds out.
            readable: true,
            writable: true,
            handle,
            kernel_eof: false,
            fin_to_kernel: false,
            established: false,
            closing_since: None,
        });
    }
}

/// Ends a connection: with `reset`, both sides get a reset. The stack is polled before the
/// socket is removed, so that what it still has to send (the reset, the last ACK) goes out.
fn close_conn(c: &mut Conn, stack: &mut impl Endpoint, registry: &Registry, reset: bool) {
    if reset {
        let _ = crate::sys::set_linger_zero(c.kernel.as_raw_fd());
        stack.sockets().get_mut::<tcp::Socket>(c.handle).abort();
    }
    let _ = registry.deregister(&mut c.kernel);
    stack.poll_local();
    stack.sockets().remove(c.handle);
}

/// Moves what can move; returns bytes client→remote, remote→client, and whether the
/// connection is still open.
fn relay(c: &mut Conn, stack: &mut impl Endpoint) -> (u64, u64, Step) {
    let sock = stack.sockets().get_mut::<tcp::Socket>(c.handle);
    let mut out = 0u64;
    let mut inb = 0u64;
    let state = sock.state();
    if matches!(state, tcp::State::Established | tcp::State::CloseWait) {
        c.established = true;
    }
    // A reset from the remote (or a refused connect): pass it on as a reset.
    if state == tcp::State::Closed && !(c.kernel_eof && c.fin_to_kernel) {
        let _ = crate::sys::set_linger_zero(c.kernel.as_raw_fd());
        return (0, 0, Step::Closed);
    }
    // Client → remote, only as fast as the stack's send buffer drains.
    while c.readable && !c.kernel_eof && sock.may_send() && sock.can_send() {
        let r = sock.send(|buf| match c.kernel.read(buf) {
            Ok(0) => (0, Ok(0)),
            Ok(n) => (n, Ok(n)),
            Err(e) => (0, Err(e)),
        });
        match r {
            Ok(Ok(0)) => {
                c.kernel_eof = true;
                sock.close();
            }
            Ok(Ok(n)) => out += n as u64,
            Ok(Err(e)) if e.kind() == io::ErrorKind::WouldBlock => c.readable = false,
            Ok(Err(_)) | Err(_) => {
                // The client reset or vanished: reset the remote side too.
                sock.abort();
                return (out, inb, Step::Closed);
            }
        }
    }
    // Remote → client, only as fast as the client reads.
    while c.writable && sock.can_recv() {
        let r = sock.recv(|data| match c.kernel.write(data) {
            Ok(n) => (n, Ok(n)),
            Err(e) => (0, Err(e)),
        });
        match r {
            Ok(Ok(0)) => break,
            Ok(Ok(n)) => inb += n as u64,
            Ok(Err(e)) if e.kind() == io::ErrorKind::WouldBlock => c.writable = false,
            Ok(Err(_)) | Err(_) => {
                sock.abort();
                return (out, inb, Step::Closed);
            }
        }
    }
    // The remote's FIN, once everything before it is delivered: half-close the client.
    if !c.fin_to_kernel && c.established && !sock.may_recv() && !sock.can_recv() {
        let _ = c.kernel.shutdown(Shutdown::Write);
        c.fin_to_kernel = true;
    }
    // A remote that never acknowledges our FIN must not keep the socket forever. (smoltcp's
    // own timeout is an idle timer in every state; it would reset quiet connections too.)
    let state = sock.state();
    if matches!(
        state,
        tcp::State::FinWait1 | tcp::State::Closing | tcp::State::LastAck
    ) {
        let since = *c.closing_since.get_or_insert_with(Instant::now);
        if since.elapsed() > CLOSE_TIMEOUT {
            sock.abort();
            return (out, inb, Step::Closed);
        }
    } else {
        c.closing_since = None;
    }
    // Done when both FINs are through: the socket must live until ours is acknowledged
    // (LAST-ACK, CLOSING), or it would never be sent when the remote closed first.
    let finished = c.kernel_eof
        && c.fin_to_kernel
        && matches!(sock.state(), tcp::State::Closed | tcp::State::TimeWait);
    (out, inb, if finished { Step::Closed } else { Step::Open })
}
