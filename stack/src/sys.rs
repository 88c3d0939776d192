//! The one raw socket option std does not offer on stable: SO_PEERCRED.
#![allow(unsafe_code)]

use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;

/// Who is on the other end of a Unix socket, as the kernel saw it at `connect`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerCred {
    /// Process ID.
    pub pid: i32,
    /// User ID.
    pub uid: u32,
    /// Primary group ID.
    pub gid: u32,
}

/// The peer credentials of `stream`.
pub fn peer_cred(stream: &UnixStream) -> io::Result<PeerCred> {
    let mut cred = libc::ucred {
        pid: 0,
        uid: 0,
        gid: 0,
    };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: the fd is a live Unix socket borrowed from `stream`; `cred` and `len` are valid
    // locals of the size the kernel writes for SO_PEERCRED, and `len` tells it that size.
    let rc = unsafe {
        libc::getsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cred as *mut libc::ucred).cast(),
            &mut len,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(PeerCred {
        pid: cred.pid,
        uid: cred.uid,
        gid: cred.gid,
    })
}

/// Arms `SO_LINGER` with a zero timeout so that closing the socket sends a reset instead of
/// a FIN: how a reset from the far side is passed on to a kernel client.
pub fn set_linger_zero(fd: std::os::fd::RawFd) -> io::Result<()> {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: `fd` is an open socket owned by the caller for the duration of the call; the
    // kernel reads `size_of::<linger>()` bytes from a valid local.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// The peer's supplementary groups as the kernel captured them at `connect`
/// (`SO_PEERGROUPS`, Linux 4.13+): no race with the peer exiting and its PID being reused.
pub fn peer_groups(stream: &UnixStream) -> io::Result<Vec<u32>> {
    let mut groups = [0 as libc::gid_t; 256];
    let mut len = std::mem::size_of_val(&groups) as libc::socklen_t;
    // SAFETY: the fd is a live Unix socket borrowed from `stream`; `groups` is a local array
    // of `len` bytes that the kernel fills, and it writes back how many bytes it used.
    let rc = unsafe {
        libc::getsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERGROUPS,
            groups.as_mut_ptr().cast(),
            &mut len,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    let n = (len as usize / std::mem::size_of::<libc::gid_t>()).min(groups.len());
    Ok(groups[..n].to_vec())
}

/// Waits until `fd` is readable or `timeout` passes (poll(2)); errors count as "look again".
pub fn wait_readable(fd: std::os::fd::RawFd, timeout: std::time::Duration) {
    let mut pfd = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    let ms = i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX);
    // SAFETY: `pfd` is one live pollfd; the count passed is 1.
    unsafe {
        libc::poll(&mut pfd, 1, ms);
    }
}

/// This process's soft limit on open file descriptors (RLIMIT_NOFILE).
pub fn fd_limit() -> Option<u64> {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `r` is a live rlimit the call fills in.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) };
    (rc == 0).then_some(r.rlim_cur)
}
