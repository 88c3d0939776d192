//! The TAP's kernel-side netdev, wherever it lives now.
//!
//! The daemon's descriptor stays valid when the netdev moves (`ip link set vmk1 netns X`, by
//! the configuration or by hand) or is renamed, but a name looked up in the daemon's namespace
//! no longer finds it. So every operation on the netdev starts from the descriptor: TUNGETIFF
//! gives the netdev's name now and TUNGETDEVNETNS its namespace; a short-lived thread enters
//! that namespace (`setns`) and speaks rtnetlink there (RTM_GETLINK, RTM_SETLINK): MTU, up and
//! down, the bridge (master), a move into a named namespace, and the state for listings.
//! Control-plane only: a thread and a netlink socket per operation, never per packet.

use std::ffi::CString;
use std::fmt;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::time::Duration;

use crate::sys;

/// Where named namespaces live (`ip netns add NAME`).
pub const NETNS_RUN_DIR: &str = "/run/netns";

/// How long a netlink request may wait for the kernel's answer.
const NETLINK_TIMEOUT: Duration = Duration::from_secs(5);

// <linux/netlink.h>, <linux/rtnetlink.h>, <linux/if_link.h>, <linux/if.h>.
const NLMSG_HDR: usize = 16;
const IFINFO: usize = 16;
const NLMSG_ERROR: u16 = 2;
const RTM_NEWLINK: u16 = 16;
const RTM_GETLINK: u16 = 18;
const RTM_SETLINK: u16 = 19;
const NLM_F_REQUEST: u16 = 1;
const NLM_F_ACK: u16 = 4;
const IFLA_IFNAME: u16 = 3;
const IFLA_MTU: u16 = 4;
const IFLA_MASTER: u16 = 10;
const IFLA_NET_NS_FD: u16 = 28;
const IFLA_CARRIER: u16 = 33;
const IFF_UP: u32 = 0x1;

/// A network namespace as a listing names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Netns {
    /// The daemon's own namespace.
    Daemon,
    /// A namespace named under [`NETNS_RUN_DIR`].
    Named(String),
    /// Another namespace (a container's, say), by its inode as `/proc/PID/ns/net` shows it.
    Other(u64),
}

impl Netns {
    /// The name a listing shows: `None` for the daemon's own namespace.
    pub fn name(&self) -> Option<String> {
        match self {
            Netns::Daemon => None,
            other => Some(other.to_string()),
        }
    }

    /// Names the namespace open as `ns`: the daemon's own, one under [`NETNS_RUN_DIR`], or its
    /// inode.
    pub fn of(ns: BorrowedFd<'_>) -> io::Result<Netns> {
        let id = |p: &str| std::fs::metadata(p).map(|m| (m.dev(), m.ino()));
        let this = id(&format!("/proc/self/fd/{}", ns.as_raw_fd()))?;
        if id("/proc/self/ns/net").ok() == Some(this) {
            return Ok(Netns::Daemon);
        }
        if let Ok(dir) = std::fs::read_dir(NETNS_RUN_DIR) {
            let mut names: Vec<String> = dir
                .filter_map(Result::ok)
                .filter(|e| {
                    std::fs::metadata(e.path()).ok().map(|m| (m.dev(), m.ino())) == Some(this)
                })
                .filter_map(|e| e.file_name().into_string().ok())
                .collect();
            names.sort();
            if let Some(name) = names.into_iter().next() {
                return Ok(Netns::Named(name));
            }
        }
        Ok(Netns::Other(this.1))
    }
}

impl fmt::Display for Netns {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Netns::Daemon => f.write_str("the daemon's namespace"),
            Netns::Named(n) => f.write_str(n),
            Netns::Other(ino) => write!(f, "net:[{ino}]"),
        }
    }
}

/// What the kernel says about a TAP's netdev now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkState {
    /// Its name now.
    pub name: String,
    /// Its namespace now.
    pub netns: Netns,
    /// Its interface index there.
    pub index: u32,
    /// Its MTU.
    pub mtu: u32,
    /// Administratively up (`IFF_UP`).
    pub up: bool,
    /// Carrier on (a disabled vmknic's is off).
    pub carrier: bool,
    /// The bridge (or other master) it is a port of.
    pub master: Option<String>,
}

/// One change to a netdev, applied by a single RTM_SETLINK (or, for the bridge, after the
/// bridge's index is looked up in the same namespace).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkChange {
    /// Set the MTU.
    Mtu(u32),
    /// Bring it up (`true`) or down.
    Up(bool),
    /// Make it a port of this bridge (which must exist in the netdev's namespace).
    Master(String),
    /// Take it off its bridge.
    NoMaster,
    /// Move it into the namespace named under [`NETNS_RUN_DIR`] (it goes down there).
    Netns(String),
}

impl fmt::Display for LinkChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LinkChange::Mtu(m) => write!(f, "set MTU {m}"),
            LinkChange::Up(true) => f.write_str("bring up"),
            LinkChange::Up(false) => f.write_str("bring down"),
            LinkChange::Master(b) => write!(f, "join bridge `{b}`"),
            LinkChange::NoMaster => f.write_str("leave its bridge"),
            LinkChange::Netns(n) => write!(f, "move into namespace `{n}`"),
        }
    }
}

/// Runs `f` on a short-lived thread inside the network namespace open as `ns`. The caller's
/// threads stay where they are; sockets `f` opens belong to `ns`. In the caller's own
/// namespace `f` runs right here: `setns` needs CAP_SYS_ADMIN even into the namespace one is
/// already in, and a daemon holding only CAP_NET_ADMIN must still manage its own TAPs.
pub fn in_netns<T: Send>(
    ns: BorrowedFd<'_>,
    f: impl FnOnce() -> io::Result<T> + Send,
) -> io::Result<T> {
    let id = |p: &str| std::fs::metadata(p).map(|m| (m.dev(), m.ino()));
    let target = id(&format!("/proc/self/fd/{}", ns.as_raw_fd()))?;
    if id("/proc/thread-self/ns/net").ok() == Some(target) {
        return f();
    }
    std::thread::scope(|s| {
        // A thread that cannot start is an error to report, not a panic.
        std::thread::Builder::new()
            .name("vmks-netdev".into())
            .spawn_scoped(s, || {
                sys::setns_net(ns)?;
                f()
            })?
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("netdev thread panicked")))
    })
}

/// Where a TAP's netdev is now: its name and its namespace (an open descriptor of it).
fn locate(tap: BorrowedFd<'_>) -> io::Result<(String, OwnedFd)> {
    let fd = tap.as_raw_fd();
    let name =
        sys::tun_ifname(fd).map_err(|e| io::Error::new(e.kind(), format!("TUNGETIFF: {e}")))?;
    let ns =
        sys::tun_netns(fd).map_err(|e| io::Error::new(e.kind(), format!("TUNGETDEVNETNS: {e}")))?;
    Ok((name, ns))
}

/// The state of the netdev behind the TAP descriptor `tap`, wherever it lives now.
pub fn state(tap: BorrowedFd<'_>) -> io::Result<LinkState> {
    let (name, ns) = locate(tap)?;
    let netns = Netns::of(ns.as_fd())?;
    let (link, master) = in_netns(ns.as_fd(), || {
        let mut nl = Rtnl::open()?;
        let link = nl.get(Key::Name(&name))?;
        let master = match link.master {
            Some(i) => Some(nl.get(Key::Index(i))?.name),
            None => None,
        };
        Ok((link, master))
    })?;
    Ok(LinkState {
        name: link.name,
        netns,
        index: link.index,
        mtu: link.mtu,
        up: link.flags & IFF_UP != 0,
        carrier: link.carrier,
        master,
    })
}

/// Applies `change` to the netdev behind the TAP descriptor `tap`, in the namespace it lives
/// in now. The error names the change, the netdev and its namespace.
pub fn apply(tap: BorrowedFd<'_>, change: &LinkChange) -> io::Result<()> {
    let (name, ns) = locate(tap)?;
    let context = |e: io::Error| {
        let at = Netns::of(ns.as_fd()).map_or_else(|_| "?".to_string(), |n| n.to_string());
        io::Error::new(e.kind(), format!("cannot {change} `{name}` in {at}: {e}"))
    };
    // The target namespace is a file: open it here (file names are not per network
    // namespace), hand the descriptor to the kernel there.
    let target = match change {
        LinkChange::Netns(n) => {
            let path = CString::new(format!("{NETNS_RUN_DIR}/{n}"))
                .map_err(|_| context(io::Error::other("NUL in the namespace name")))?;
            Some(sys::open_ro(&path).map_err(context)?)
        }
        _ => None,
    };
    in_netns(ns.as_fd(), || {
        let mut nl = Rtnl::open()?;
        let index = nl.get(Key::Name(&name))?.index;
        let mut req = SetLink::new(index);
        match change {
            LinkChange::Mtu(m) => req.attr_u32(IFLA_MTU, *m),
            LinkChange::Up(up) => req.flag(IFF_UP, *up),
            LinkChange::Master(b) => {
                let br = nl.get(Key::Name(b)).map_err(|e| {
                    io::Error::new(e.kind(), format!("bridge `{b}` not found: {e}"))
                })?;
                req.attr_u32(IFLA_MASTER, br.index)
            }
            LinkChange::NoMaster => req.attr_u32(IFLA_MASTER, 0),
            LinkChange::Netns(_) => {
                let fd = target.as_ref().map_or(-1, |t| t.as_raw_fd());
                req.attr_u32(IFLA_NET_NS_FD, fd as u32)
            }
        }
        nl.set(req)
    })
    .map_err(context)
}

/// `RTMGRP_LINK`: the multicast group of link events (new, changed, deleted links).
const RTMGRP_LINK: u32 = 1;

/// Link events of the namespace it was opened in (`RTMGRP_LINK`): a non-blocking netlink
/// socket for the owner's event loop. Its events say only that some link changed; the owner
/// then asks each TAP's netdev for its state ([`state`]). It keeps its namespace alive, so
/// the daemon opens one in its own namespace only (a namespace a user deletes must die, and
/// take its TAPs with it).
#[derive(Debug)]
pub struct LinkMonitor {
    fd: OwnedFd,
    buf: Vec<u8>,
}

impl LinkMonitor {
    /// Subscribes to the link events of the calling thread's namespace.
    pub fn open() -> io::Result<LinkMonitor> {
        let fd = sys::netlink_route()?;
        sys::netlink_subscribe(fd.as_fd(), RTMGRP_LINK)?;
        Ok(LinkMonitor {
            fd,
            buf: vec![0; 16 * 1024],
        })
    }

    /// The descriptor to wait on (readable when events are queued).
    pub fn raw_fd(&self) -> std::os::fd::RawFd {
        self.fd.as_raw_fd()
    }

    /// Reads every queued event; true if there was one (or the socket overflowed, which
    /// also means links changed).
    pub fn drain(&mut self) -> bool {
        let mut any = false;
        loop {
            match sys::netlink_recv_nowait(self.fd.as_fd(), &mut self.buf) {
                Ok(0) => return any,
                Ok(_) => any = true,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return any,
                // ENOBUFS: events were lost; the owner re-reads every state anyway.
                Err(_) => return true,
            }
        }
    }
}

/// A link as RTM_NEWLINK describes it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Link {
    name: String,
    index: u32,
    flags: u32,
    mtu: u32,
    carrier: bool,
    master: Option<u32>,
}

/// Which link to ask for.
#[derive(Debug, Clone, Copy)]
enum Key<'a> {
    Name(&'a str),
    Index(u32),
}

/// An RTM_SETLINK request being built: the ifinfomsg's flags and the attributes.
struct SetLink {
    index: u32,
    flags: u32,
    change: u32,
    attrs: Vec<u8>,
}

impl SetLink {
    fn new(index: u32) -> SetLink {
        SetLink {
            index,
            flags: 0,
            change: 0,
            attrs: Vec::new(),
        }
    }

    fn flag(&mut self, flag: u32, on: bool) {
        self.change |= flag;
        if on {
            self.flags |= flag;
        }
    }

    fn attr_u32(&mut self, ty: u16, v: u32) {
        push_attr(&mut self.attrs, ty, &v.to_ne_bytes());
    }
}

/// Appends one rtattr (length, type, data, padding to 4 bytes).
fn push_attr(out: &mut Vec<u8>, ty: u16, data: &[u8]) {
    let len = 4 + data.len();
    out.extend_from_slice(&(len as u16).to_ne_bytes());
    out.extend_from_slice(&ty.to_ne_bytes());
    out.extend_from_slice(data);
    out.resize(out.len() + (len.next_multiple_of(4) - len), 0);
}

/// A whole netlink message: header, ifinfomsg, attributes.
fn link_message(ty: u16, seq: u32, index: u32, flags: u32, change: u32, attrs: &[u8]) -> Vec<u8> {
    let len = NLMSG_HDR + IFINFO + attrs.len();
    let mut m = Vec::with_capacity(len);
    m.extend_from_slice(&(len as u32).to_ne_bytes());
    m.extend_from_slice(&ty.to_ne_bytes());
    m.extend_from_slice(&(NLM_F_REQUEST | NLM_F_ACK).to_ne_bytes());
    m.extend_from_slice(&seq.to_ne_bytes());
    m.extend_from_slice(&0u32.to_ne_bytes());
    // ifinfomsg: family AF_UNSPEC, pad, type, index, flags, change.
    m.extend_from_slice(&[0, 0, 0, 0]);
    m.extend_from_slice(&index.to_ne_bytes());
    m.extend_from_slice(&flags.to_ne_bytes());
    m.extend_from_slice(&change.to_ne_bytes());
    m.extend_from_slice(attrs);
    m
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// What one netlink message of a reply says.
#[derive(Debug, PartialEq, Eq)]
enum Reply {
    /// NLMSG_ERROR with error 0.
    Ack,
    /// NLMSG_ERROR with an errno.
    Error(i32),
    /// RTM_NEWLINK.
    Link(Link),
    /// Anything else (or a message for another request).
    Other,
}

/// Splits a datagram into its messages for request `seq`; a malformed datagram ends the list.
fn parse_replies(buf: &[u8], seq: u32) -> Vec<Reply> {
    let mut out = Vec::new();
    let mut at = 0;
    while let (Some(len), Some(ty), Some(s)) =
        (u32_at(buf, at), u16_at(buf, at + 4), u32_at(buf, at + 8))
    {
        let len = len as usize;
        let Some(msg) = buf.get(at..at + len).filter(|_| len >= NLMSG_HDR) else {
            break;
        };
        at += len.next_multiple_of(4);
        if s != seq {
            out.push(Reply::Other);
            continue;
        }
        out.push(match ty {
            NLMSG_ERROR => match u32_at(msg, NLMSG_HDR) {
                Some(0) => Reply::Ack,
                Some(e) => Reply::Error(-(e as i32)),
                None => Reply::Other,
            },
            RTM_NEWLINK => parse_link(msg).map_or(Reply::Other, Reply::Link),
            _ => Reply::Other,
        });
    }
    out
}

/// An RTM_NEWLINK message's ifinfomsg and the attributes we read.
fn parse_link(msg: &[u8]) -> Option<Link> {
    let mut link = Link {
        index: u32_at(msg, NLMSG_HDR + 4)?,
        flags: u32_at(msg, NLMSG_HDR + 8)?,
        ..Link::default()
    };
    let mut at = NLMSG_HDR + IFINFO;
    while let (Some(len), Some(ty)) = (u16_at(msg, at), u16_at(msg, at + 2)) {
        let len = usize::from(len);
        let data = msg.get(at + 4..at + len.max(4))?;
        match ty {
            IFLA_IFNAME => {
                let end = data.iter().position(|b| *b == 0).unwrap_or(data.len());
                link.name = String::from_utf8_lossy(&data[..end]).into_owned();
            }
            IFLA_MTU => link.mtu = u32_at(data, 0)?,
            IFLA_MASTER => link.master = u32_at(data, 0).filter(|i| *i != 0),
            IFLA_CARRIER => link.carrier = data.first().is_some_and(|c| *c != 0),
            _ => {}
        }
        if len < 4 {
            break;
        }
        at += len.next_multiple_of(4);
    }
    Some(link)
}

/// A NETLINK_ROUTE socket in the current thread's namespace.
struct Rtnl {
    fd: OwnedFd,
    seq: u32,
    buf: Vec<u8>,
}

impl Rtnl {
    fn open() -> io::Result<Rtnl> {
        let fd = sys::netlink_route()?;
        sys::set_recv_timeout(fd.as_fd(), NETLINK_TIMEOUT)?;
        Ok(Rtnl {
            fd,
            seq: 0,
            buf: vec![0; 32 * 1024],
        })
    }

    /// Sends `msg` (with sequence number `self.seq`) and reads replies until its ACK or error;
    /// returns the link it described, if any.
    fn exchange(&mut self, msg: &[u8]) -> io::Result<Option<Link>> {
        sys::netlink_send(self.fd.as_fd(), msg)?;
        let mut link = None;
        loop {
            let n = sys::netlink_recv(self.fd.as_fd(), &mut self.buf)?;
            let replies = parse_replies(self.buf.get(..n).unwrap_or_default(), self.seq);
            if replies.is_empty() {
                return Err(io::Error::other("malformed netlink reply"));
            }
            for r in replies {
                match r {
                    Reply::Ack => return Ok(link),
                    Reply::Error(errno) => return Err(io::Error::from_raw_os_error(errno)),
                    Reply::Link(l) => link = Some(l),
                    Reply::Other => {}
                }
            }
        }
    }

    fn get(&mut self, key: Key<'_>) -> io::Result<Link> {
        self.seq += 1;
        let (index, attrs) = match key {
            Key::Index(i) => (i, Vec::new()),
            Key::Name(n) => {
                let mut a = Vec::new();
                let mut z = n.as_bytes().to_vec();
                z.push(0);
                push_attr(&mut a, IFLA_IFNAME, &z);
                (0, a)
            }
        };
        let msg = link_message(RTM_GETLINK, self.seq, index, 0, 0, &attrs);
        self.exchange(&msg)?
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "the kernel described no link"))
    }

    fn set(&mut self, req: SetLink) -> io::Result<()> {
        self.seq += 1;
        let msg = link_message(
            RTM_SETLINK,
            self.seq,
            req.index,
            req.flags,
            req.change,
            &req.attrs,
        );
        self.exchange(&msg).map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_construct() {
        let mut req = SetLink::new(7);
        req.attr_u32(IFLA_MTU, 1400);
        req.flag(IFF_UP, true);
        let m = link_message(RTM_SETLINK, 3, req.index, req.flags, req.change, &req.attrs);
        assert_eq!(m.len(), 16 + 16 + 8);
        assert_eq!(u32_at(&m, 0), Some(40), "length");
        assert_eq!(u16_at(&m, 4), Some(RTM_SETLINK));
        assert_eq!(u16_at(&m, 6), Some(NLM_F_REQUEST | NLM_F_ACK));
        assert_eq!(u32_at(&m, 8), Some(3), "sequence");
        assert_eq!(u32_at(&m, 20), Some(7), "index");
        assert_eq!(
            (u32_at(&m, 24), u32_at(&m, 28)),
            (Some(1), Some(1)),
            "IFF_UP"
        );
        assert_eq!((u16_at(&m, 32), u16_at(&m, 34)), (Some(8), Some(IFLA_MTU)));
        assert_eq!(u32_at(&m, 36), Some(1400));
    }

    #[test]
    fn test_name_attr_is_padded() {
        let mut a = Vec::new();
        push_attr(&mut a, IFLA_IFNAME, b"vmk1\0");
        assert_eq!(a.len(), 12);
        assert_eq!(u16_at(&a, 0), Some(9));
        assert_eq!(&a[4..9], b"vmk1\0");
        assert_eq!(&a[9..], &[0, 0, 0]);
    }

    fn newlink(seq: u32) -> Vec<u8> {
        let mut attrs = Vec::new();
        push_attr(&mut attrs, IFLA_IFNAME, b"vmk1\0");
        push_attr(&mut attrs, IFLA_MTU, &1400u32.to_ne_bytes());
        push_attr(&mut attrs, IFLA_MASTER, &5u32.to_ne_bytes());
        push_attr(&mut attrs, IFLA_CARRIER, &[1]);
        let mut m = link_message(RTM_NEWLINK, seq, 9, IFF_UP | 0x1000, 0, &attrs);
        m[4..6].copy_from_slice(&RTM_NEWLINK.to_ne_bytes());
        m
    }

    fn error(seq: u32, errno: i32) -> Vec<u8> {
        let mut m = Vec::new();
        m.extend_from_slice(&36u32.to_ne_bytes());
        m.extend_from_slice(&NLMSG_ERROR.to_ne_bytes());
        m.extend_from_slice(&0u16.to_ne_bytes());
        m.extend_from_slice(&seq.to_ne_bytes());
        m.extend_from_slice(&0u32.to_ne_bytes());
        m.extend_from_slice(&(-errno).to_ne_bytes());
        m.extend_from_slice(&[0; 16]);
        m
    }

    #[test]
    fn test_parse() {
        let mut dgram = newlink(4);
        dgram.extend(error(4, 0));
        let r = parse_replies(&dgram, 4);
        assert_eq!(
            r,
            vec![
                Reply::Link(Link {
                    name: "vmk1".into(),
                    index: 9,
                    flags: IFF_UP | 0x1000,
                    mtu: 1400,
                    carrier: true,
                    master: Some(5),
                }),
                Reply::Ack
            ]
        );
        assert_eq!(parse_replies(&error(2, 19), 2), vec![Reply::Error(19)]);
        assert_eq!(parse_replies(&error(2, 19), 3), vec![Reply::Other]);
    }

    #[test]
    fn test_parse_truncated_and_garbage() {
        let full = newlink(1);
        for cut in 0..full.len() {
            // Never panics, and a cut message describes no link.
            let r = parse_replies(&full[..cut], 1);
            assert!(
                !r.iter().any(|r| matches!(r, Reply::Link(_))),
                "{cut}: {r:?}"
            );
        }
        let mut bad = full.clone();
        bad[0..4].copy_from_slice(&3u32.to_ne_bytes());
        assert!(
            parse_replies(&bad, 1).is_empty(),
            "a length below the header"
        );
        let mut zero_attr = full;
        zero_attr[32..34].copy_from_slice(&0u16.to_ne_bytes());
        assert!(matches!(
            parse_replies(&zero_attr, 1).as_slice(),
            [Reply::Link(l)] if l.index == 9 && l.name.is_empty()
        ));
    }
}
