//! The raw system calls tun-rs lacks: TUNSETCARRIER and TUNSETOFFLOAD; TUNGETIFF and
//! TUNGETDEVNETNS, which tell where the TAP's kernel side is now (its name and namespace);
//! `setns` into that namespace; and the netlink socket that [`crate::netdev`] speaks there.
#![allow(unsafe_code)]

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

/// `_IOW('T', 226, int)` from `<linux/if_tun.h>`.
const TUNSETCARRIER: libc::c_ulong = 0x4004_54e2;

/// Turns the TAP's carrier on or off: with the carrier off the netdev shows NO-CARRIER and the
/// kernel side stops sending, as if the cable were pulled, while its addresses and routes stay.
pub fn set_carrier(fd: RawFd, on: bool) -> io::Result<()> {
    let value: libc::c_int = i32::from(on);
    // SAFETY: `fd` is an open TUN/TAP descriptor owned by the caller for the duration of the
    // call; TUNSETCARRIER reads one `int` through the pointer, which points to a live local.
    let rc = unsafe { libc::ioctl(fd, TUNSETCARRIER as _, &value as *const libc::c_int) };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// `_IOW('T', 208, unsigned int)` from `<linux/if_tun.h>`.
const TUNSETOFFLOAD: libc::c_ulong = 0x4004_54d0;

/// `TUN_F_CSUM`: the reader finishes partial checksums.
pub const TUN_F_CSUM: libc::c_uint = 0x01;
/// `TUN_F_TSO4`: the reader takes TCP/IPv4 super-frames.
pub const TUN_F_TSO4: libc::c_uint = 0x02;
/// `TUN_F_TSO6`: the reader takes TCP/IPv6 super-frames.
pub const TUN_F_TSO6: libc::c_uint = 0x04;
/// `TUN_F_TSO_ECN`: ... including those whose first segment carries CWR.
pub const TUN_F_TSO_ECN: libc::c_uint = 0x08;

/// Tells the kernel which offloads the reader of a `IFF_VNET_HDR` TAP handles (the netdev's
/// TX features follow: with `TUN_F_TSO4` the kernel stops segmenting TCP before the TAP).
pub fn set_offload(fd: RawFd, flags: libc::c_uint) -> io::Result<()> {
    // SAFETY: `fd` is an open TUN/TAP descriptor owned by the caller for the duration of the
    // call; TUNSETOFFLOAD takes its argument by value.
    let rc = unsafe { libc::ioctl(fd, TUNSETOFFLOAD as _, libc::c_ulong::from(flags)) };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// `_IOR('T', 210, unsigned int)` from `<linux/if_tun.h>` (it fills a whole `struct ifreq`).
const TUNGETIFF: libc::c_ulong = 0x8004_54d2;

/// The TAP's netdev name now (a hand rename follows the device; the descriptor stays).
pub fn tun_ifname(fd: RawFd) -> io::Result<String> {
    // SAFETY: `ifreq` is plain old data; all zeros is a valid value.
    let mut ifr: libc::ifreq = unsafe { std::mem::zeroed() };
    // SAFETY: `fd` is an open TUN/TAP descriptor owned by the caller for the duration of the
    // call; TUNGETIFF writes one `struct ifreq` through the pointer, which points to a live
    // local of that type.
    let rc = unsafe { libc::ioctl(fd, TUNGETIFF as _, &mut ifr as *mut libc::ifreq) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    let bytes: Vec<u8> = ifr
        .ifr_name
        .iter()
        .take_while(|c| **c != 0)
        .map(|c| *c as u8)
        .collect();
    String::from_utf8(bytes).map_err(|_| io::Error::other("TAP name is not UTF-8"))
}

/// `_IO('T', 227)` from `<linux/if_tun.h>` (Linux 5.2).
const TUNGETDEVNETNS: libc::c_ulong = 0x54e3;

/// A descriptor of the network namespace the TAP's netdev lives in now (close-on-exec). The
/// kernel asks for CAP_NET_ADMIN over that namespace.
pub fn tun_netns(fd: RawFd) -> io::Result<OwnedFd> {
    // SAFETY: `fd` is an open TUN/TAP descriptor owned by the caller for the duration of the
    // call; TUNGETDEVNETNS takes no argument and returns a new descriptor.
    let ns = unsafe { libc::ioctl(fd, TUNGETDEVNETNS as _) };
    if ns < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel just opened `ns` for us and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(ns) })
}

/// Moves the calling thread into the network namespace `ns` (a thread of its own: the
/// namespace is per thread, and the caller's other threads stay where they are).
pub fn setns_net(ns: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: `ns` is an open namespace descriptor borrowed for the duration of the call.
    let rc = unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Opens `path` read-only and close-on-exec (a namespace file such as `/run/netns/NAME`).
pub fn open_ro(path: &CStr) -> io::Result<OwnedFd> {
    // SAFETY: `path` is a NUL-terminated string that lives for the duration of the call.
    let fd = unsafe { libc::open(path.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel just opened `fd` for us and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// A `NETLINK_ROUTE` socket in the calling thread's network namespace (it keeps that
/// namespace wherever it is used later).
pub fn netlink_route() -> io::Result<OwnedFd> {
    // SAFETY: plain socket(2) call with constant arguments.
    let fd = unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            libc::NETLINK_ROUTE,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel just opened `fd` for us and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Sends one netlink message (to the kernel: the socket is unconnected and unbound).
pub fn netlink_send(fd: BorrowedFd<'_>, msg: &[u8]) -> io::Result<()> {
    loop {
        // SAFETY: `msg` is a live buffer of `msg.len()` bytes; `fd` is an open socket.
        let n = unsafe { libc::send(fd.as_raw_fd(), msg.as_ptr().cast(), msg.len(), 0) };
        if n >= 0 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// Receives one netlink datagram into `buf` (blocking); its length.
pub fn netlink_recv(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        // SAFETY: `buf` is a live, writable buffer of `buf.len()` bytes; `fd` is an open
        // socket.
        let n = unsafe { libc::recv(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
        if n >= 0 {
            return Ok(n as usize);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// Bounds how long a blocking receive on `fd` waits (a kernel that never answers cannot hang
/// a control operation).
pub fn set_recv_timeout(fd: BorrowedFd<'_>, timeout: std::time::Duration) -> io::Result<()> {
    let tv = libc::timeval {
        tv_sec: timeout.as_secs() as libc::time_t,
        tv_usec: libc::suseconds_t::from(timeout.subsec_micros() as i32),
    };
    // SAFETY: `tv` is a live local of the type SO_RCVTIMEO reads; `fd` is an open socket.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            (&tv as *const libc::timeval).cast(),
            std::mem::size_of::<libc::timeval>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Subscribes the netlink socket `fd` to the multicast `groups` (a bitmask of `RTMGRP_*`) and
/// makes it non-blocking: link events are read between turns, never waited for.
pub fn netlink_subscribe(fd: BorrowedFd<'_>, groups: u32) -> io::Result<()> {
    // SAFETY: an all-zero sockaddr_nl is valid; we fill in the family and the groups.
    let mut addr: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
    addr.nl_family = libc::AF_NETLINK as libc::sa_family_t;
    addr.nl_groups = groups;
    // SAFETY: `addr` is a live sockaddr_nl of the size passed; `fd` is an open socket.
    let rc = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&addr as *const libc::sockaddr_nl).cast(),
            std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: F_GETFL on an open descriptor.
    let flags = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) };
    if flags < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: F_SETFL with flags the kernel just returned, plus O_NONBLOCK.
    let rc = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, flags | libc::O_NONBLOCK) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Receives one netlink datagram into `buf` without waiting; `WouldBlock` when none is queued.
pub fn netlink_recv_nowait(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: `buf` is a live, writable buffer of `buf.len()` bytes; `fd` is an open socket.
    let n = unsafe {
        libc::recv(
            fd.as_raw_fd(),
            buf.as_mut_ptr().cast(),
            buf.len(),
            libc::MSG_DONTWAIT,
        )
    };
    if n >= 0 {
        Ok(n as usize)
    } else {
        Err(io::Error::last_os_error())
    }
}
