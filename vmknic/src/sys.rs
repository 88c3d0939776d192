//! The raw ioctls tun-rs lacks or sets otherwise: TUNSETCARRIER and TUNSETOFFLOAD.
#![allow(unsafe_code)]

use std::io;
use std::os::fd::RawFd;

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
