//! The one raw ioctl tun-rs lacks: TUNSETCARRIER.
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
