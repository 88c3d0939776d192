//! A vmknic's TAP device and the naming rules for it.
//!
//! The daemon holds the TAP's file descriptor; the kernel-side netdev is the vmknic's "wire"
//! (DESIGN.md, "A vmknic and its wire"). It stays in the daemon's namespace, joins a Linux
//! bridge, or moves into another namespace (by the configuration or by hand); the descriptor
//! stays valid throughout, and every operation on the netdev finds it through the descriptor
//! wherever it is now ([`crate::netdev`]).

use std::fmt;
use std::io::{self, IoSlice};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};

use thiserror::Error;
use tun_rs::{DeviceBuilder, Layer, SyncDevice};

use crate::netdev::{self, LinkChange, LinkState};
use crate::vnet::VNET_HDR_LEN;
use crate::MacAddr;

/// Longest Linux interface name (IFNAMSIZ - 1).
pub const MAX_IFNAME: usize = 15;

/// A TAP name the kernel would refuse.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TapNameError {
    /// Empty name.
    #[error("a TAP name must not be empty")]
    Empty,
    /// Longer than 15 bytes.
    #[error("TAP name `{0}` is {len} bytes; Linux allows at most 15", len = .0.len())]
    TooLong(String),
    /// A byte Linux refuses in interface names.
    #[error("TAP name `{0}` contains `/`, `:`, whitespace or NUL, which Linux refuses")]
    BadChar(String),
    /// `.` and `..` are reserved.
    #[error("TAP name `{0}` is reserved")]
    Reserved(String),
}

/// Checks a TAP name the way the kernel's `dev_valid_name` does, before any ioctl.
pub fn validate_tap_name(name: &str) -> Result<(), TapNameError> {
    if name.is_empty() {
        return Err(TapNameError::Empty);
    }
    if name.len() > MAX_IFNAME {
        return Err(TapNameError::TooLong(name.to_string()));
    }
    if name == "." || name == ".." {
        return Err(TapNameError::Reserved(name.to_string()));
    }
    if name
        .bytes()
        .any(|b| b == b'/' || b == b':' || b == 0 || b.is_ascii_whitespace())
    {
        return Err(TapNameError::BadChar(name.to_string()));
    }
    Ok(())
}

/// A step of [`Tap`] set-up that failed. Every variant names the TAP; those that come from the
/// kernel carry the cause as their source (for the netdev's operations: the change, the
/// netdev's name and namespace now, and the kernel's error).
#[derive(Debug, Error)]
pub enum TapError {
    /// The name is one the kernel would refuse.
    #[error(transparent)]
    Name(#[from] TapNameError),
    /// Opening `/dev/net/tun` or `TUNSETIFF` failed (no CAP_NET_ADMIN, or the name is taken).
    #[error("cannot create TAP `{tap}`")]
    Create {
        /// The requested name.
        tap: String,
        /// The kernel's error.
        #[source]
        source: io::Error,
    },
    /// The kernel created the device under another name (e.g. a `%d` pattern).
    #[error("TAP `{tap}` was created as `{actual}`")]
    Renamed {
        /// The requested name.
        tap: String,
        /// The name the kernel chose.
        actual: String,
    },
    /// Setting the netdev's MTU failed.
    #[error("cannot set MTU {mtu} on TAP `{tap}`")]
    Mtu {
        /// The TAP name.
        tap: String,
        /// The MTU asked for.
        mtu: u16,
        /// The kernel's error.
        #[source]
        source: io::Error,
    },
    /// Bringing the netdev up or down failed.
    #[error("cannot bring TAP `{tap}` {}", if *.up { "up" } else { "down" })]
    Up {
        /// The TAP name.
        tap: String,
        /// Up (true) or down.
        up: bool,
        /// The kernel's error.
        #[source]
        source: io::Error,
    },
    /// Turning the TAP's offloads on failed.
    #[error("cannot enable checksum/TSO offloads on TAP `{tap}`")]
    Offload {
        /// The TAP name.
        tap: String,
        /// The kernel's error.
        #[source]
        source: io::Error,
    },
    /// Making the descriptor non-blocking failed.
    #[error("cannot make TAP `{tap}` non-blocking")]
    NonBlocking {
        /// The TAP name.
        tap: String,
        /// The kernel's error.
        #[source]
        source: io::Error,
    },
    /// Moving the kernel side into a namespace (or bringing it up there) failed.
    #[error("cannot move TAP `{tap}` into network namespace `{netns}`")]
    Netns {
        /// The TAP name.
        tap: String,
        /// The target namespace.
        netns: String,
        /// The kernel's error.
        #[source]
        source: io::Error,
    },
    /// Joining a Linux bridge failed.
    #[error("cannot join TAP `{tap}` to bridge `{bridge}`")]
    Bridge {
        /// The TAP name.
        tap: String,
        /// The bridge.
        bridge: String,
        /// The kernel's error.
        #[source]
        source: io::Error,
    },
}

/// One TAP device (layer 2, no packet-information header; with offloads, a virtio-net header
/// before each frame, see [`crate::vnet`]) owned by the daemon. The device is not persistent: dropping the `Tap` closes the descriptor and the
/// kernel deletes the netdev, in whichever namespace it is.
///
/// Two MACs are involved and they differ on purpose. [`Tap::mac`] is the vmknic's MAC: the
/// daemon writes frames with it as source and answers ARP with it. The kernel-side netdev keeps
/// its own random MAC, which the daemon never sets: a host attached to the TAP sees the vmknic's
/// MAC only in frames, and Linux never considers that MAC local.
pub struct Tap {
    dev: SyncDevice,
    name: String,
    mac: MacAddr,
    mtu: u16,
    /// `IFF_VNET_HDR` with checksum and TSO offloads.
    offload: bool,
    /// Which queue of a multi-queue TAP this descriptor is (0: the first, or the only one).
    queue: u16,
}

impl fmt::Debug for Tap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tap")
            .field("name", &self.name)
            .field("fd", &self.dev.as_raw_fd())
            .field("mac", &self.mac)
            .field("mtu", &self.mtu)
            .field("offload", &self.offload)
            .finish()
    }
}

impl Tap {
    /// Validates the name, creates the TAP (`IFF_TAP | IFF_NO_PI`, plus `IFF_VNET_HDR` with
    /// checksum and TCP/IPv4 segmentation offloads when `offload`), sets the netdev's MTU (so
    /// that the kernel side takes frames that large), brings it up and makes the descriptor
    /// non-blocking. The kernel's name for the device must equal `name`; a name
    /// already in use in this namespace is an error.
    ///
    /// `mac` is the vmknic's wire MAC, kept for the caller ([`Tap::mac`]) and for logs only: it
    /// is NOT configured on the netdev (see [`Tap`]).
    pub fn create(name: &str, mac: MacAddr, mtu: u16, offload: bool) -> Result<Tap, TapError> {
        Tap::create_inner(name, mac, mtu, offload, false)
    }

    /// [`Tap::create`] with `queues` queues (`IFF_MULTI_QUEUE` when more than one): the
    /// returned `Tap` is queue 0, which takes the device operations; the others are plain
    /// descriptors of the same device, one per data-plane worker. The kernel spreads the
    /// frames it sends among the queues by flow (a hash of the addresses and ports, or the
    /// queue a flow's last frame was written on), so a flow stays on one queue.
    pub fn create_queues(
        name: &str,
        mac: MacAddr,
        mtu: u16,
        offload: bool,
        queues: usize,
    ) -> Result<(Tap, Vec<Tap>), TapError> {
        let tap = Tap::create_inner(name, mac, mtu, offload, queues > 1)?;
        let mut more = Vec::with_capacity(queues.saturating_sub(1));
        for q in 1..queues {
            more.push(tap.open_queue(q as u16)?);
        }
        Ok((tap, more))
    }

    /// Attaches another queue to this multi-queue TAP.
    fn open_queue(&self, queue: u16) -> Result<Tap, TapError> {
        let tap = || self.name.clone();
        let dev = self
            .dev
            .try_clone()
            .map_err(|source| TapError::Create { tap: tap(), source })?;
        if self.offload {
            // tun-rs sets its own offload mask on the new queue (device-wide): back to ours.
            use crate::sys::{TUN_F_CSUM, TUN_F_TSO4, TUN_F_TSO_ECN};
            crate::sys::set_offload(dev.as_raw_fd(), TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO_ECN)
                .map_err(|source| TapError::Offload { tap: tap(), source })?;
        }
        dev.set_nonblocking(true)
            .map_err(|source| TapError::NonBlocking { tap: tap(), source })?;
        Ok(Tap {
            dev,
            name: self.name.clone(),
            mac: self.mac,
            mtu: self.mtu,
            offload: self.offload,
            queue,
        })
    }

    fn create_inner(
        name: &str,
        mac: MacAddr,
        mtu: u16,
        offload: bool,
        multi_queue: bool,
    ) -> Result<Tap, TapError> {
        validate_tap_name(name)?;
        let tap = || name.to_string();
        let dev = DeviceBuilder::new()
            .name(name)
            .layer(Layer::L2)
            .packet_information(false)
            .offload(offload)
            .multi_queue(multi_queue)
            .inherit_enable_state()
            .build_sync()
            .map_err(|source| TapError::Create { tap: tap(), source })?;
        let actual = dev
            .name()
            .map_err(|source| TapError::Create { tap: tap(), source })?;
        if actual != name {
            return Err(TapError::Renamed { tap: tap(), actual });
        }
        if offload {
            // tun-rs also enables USO; the data plane cuts and forwards TCP super-frames (IPv4
            // and IPv6) only, so ask for exactly that.
            use crate::sys::{TUN_F_CSUM, TUN_F_TSO4, TUN_F_TSO6, TUN_F_TSO_ECN};
            let flags = TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_TSO_ECN;
            crate::sys::set_offload(dev.as_raw_fd(), flags)
                .map_err(|source| TapError::Offload { tap: tap(), source })?;
        }
        dev.set_nonblocking(true)
            .map_err(|source| TapError::NonBlocking { tap: tap(), source })?;
        let mut tap = Tap {
            dev,
            name: name.to_string(),
            mac,
            mtu,
            offload,
            queue: 0,
        };
        tap.set_mtu(mtu)?;
        tap.set_up(true)?;
        tracing::info!(tap = name, %mac, mtu, offload, fd = tap.as_raw_fd(), "TAP created");
        Ok(tap)
    }

    /// Joins the kernel side to the Linux bridge `bridge` (`ip link set dev NAME master BR`),
    /// in the namespace the kernel side is in now (so move it first when both are configured;
    /// a later move takes the TAP off the bridge). The bridge must exist there.
    pub fn join_bridge(&self, bridge: &str) -> Result<(), TapError> {
        self.change(&LinkChange::Master(bridge.to_string()))
            .map_err(|source| TapError::Bridge {
                tap: self.name.clone(),
                bridge: bridge.to_string(),
                source,
            })?;
        tracing::info!(tap = %self.name, bridge, "TAP joined bridge");
        Ok(())
    }

    /// Moves the kernel side into the namespace named `netns` (`ip link set dev NAME netns
    /// NS`) from wherever it is now, and brings it up there (a move takes a netdev down). The
    /// MTU and the descriptor survive the move; later operations act there.
    pub fn move_to_netns(&mut self, netns: &str) -> Result<(), TapError> {
        let fail = |tap: &str, source| TapError::Netns {
            tap: tap.to_string(),
            netns: netns.to_string(),
            source,
        };
        self.change(&LinkChange::Netns(netns.to_string()))
            .and_then(|()| self.change(&LinkChange::Up(true)))
            .map_err(|e| fail(&self.name, e))?;
        tracing::info!(tap = %self.name, netns, "TAP moved into namespace");
        Ok(())
    }

    /// The interface name (also the vmknic's name).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The vmknic's wire MAC given to [`Tap::create`] (not the netdev's own MAC).
    pub fn mac(&self) -> MacAddr {
        self.mac
    }

    /// The MTU set on the netdev.
    pub fn mtu(&self) -> u16 {
        self.mtu
    }

    /// True when frames carry a virtio-net header (checksum and TSO offloads on).
    pub fn offload(&self) -> bool {
        self.offload
    }

    /// Which queue of the TAP this descriptor is (0 for a single-queue TAP).
    pub fn queue(&self) -> u16 {
        self.queue
    }

    /// The kernel side as it is now: its name, namespace, MTU, up, carrier and bridge,
    /// wherever it lives (moved or renamed by hand included).
    pub fn link(&self) -> io::Result<LinkState> {
        netdev::state(self.dev.as_fd())
    }

    /// Applies one change to the kernel side, in the namespace it is in now.
    fn change(&self, change: &LinkChange) -> io::Result<()> {
        netdev::apply(self.dev.as_fd(), change)
    }

    /// Non-blocking read of one frame into `buf[VNET_HDR_LEN..]`, with its virtio-net header
    /// in `buf[..VNET_HDR_LEN]` (all zero when offloads are off). Returns the end of the frame
    /// in `buf`, or `Ok(None)` when nothing is waiting (EAGAIN). A frame longer than the
    /// buffer is truncated; one that does not even carry the header is returned as an empty
    /// frame with a zero header.
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        if buf.len() <= VNET_HDR_LEN {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "receive buffer shorter than a virtio-net header",
            ));
        }
        loop {
            // The header and the frame are contiguous in `buf`: one plain read fills both.
            let read = if self.offload {
                self.dev.recv(&mut *buf)
            } else {
                self.dev
                    .recv(&mut buf[VNET_HDR_LEN..])
                    .map(|n| n + VNET_HDR_LEN)
            };
            match read {
                Ok(n) if n < VNET_HDR_LEN || !self.offload => {
                    buf[..VNET_HDR_LEN].fill(0);
                    return Ok(Some(n.max(VNET_HDR_LEN)));
                }
                Ok(n) => return Ok(Some(n)),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(None),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// Non-blocking write of one plain frame (complete checksums, no segmentation; with
    /// offloads on, a zero virtio-net header goes before it). `Ok(false)` when the kernel
    /// cannot take it now (EAGAIN) and the caller counts a drop.
    pub fn send(&self, frame: &[u8]) -> io::Result<bool> {
        const PLAIN: [u8; VNET_HDR_LEN] = [0; VNET_HDR_LEN];
        if self.offload {
            self.write(|dev| dev.send_vectored(&[IoSlice::new(&PLAIN), IoSlice::new(frame)]))
        } else {
            self.write(|dev| dev.send(frame))
        }
    }

    /// Non-blocking write of a virtio-net header and its frame, `hdr_and_frame` as
    /// [`Tap::recv`] fills it: a partial checksum or a super-frame goes as it is for the
    /// kernel to finish. Only for a TAP with offloads on; on any other it is an error.
    pub fn send_offloaded(&self, hdr_and_frame: &[u8]) -> io::Result<bool> {
        if !self.offload {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "virtio-net header on a TAP without offloads",
            ));
        }
        self.write(|dev| dev.send(hdr_and_frame))
    }

    /// [`Tap::send_offloaded`] of a frame in two pieces, with one gathering write
    /// (`writev`): `head` (the virtio-net header and the frame's first bytes) and `tail`
    /// (the rest), neither copied in user space.
    pub fn send_offloaded_gather(&self, head: &[u8], tail: &[u8]) -> io::Result<bool> {
        if !self.offload {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "virtio-net header on a TAP without offloads",
            ));
        }
        self.write(|dev| dev.send_vectored(&[IoSlice::new(head), IoSlice::new(tail)]))
    }

    fn write(&self, mut op: impl FnMut(&SyncDevice) -> io::Result<usize>) -> io::Result<bool> {
        loop {
            match op(&self.dev) {
                Ok(_) => return Ok(true),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// Turns the carrier on or off (a disabled vmknic: the wire is unplugged, the host side
    /// keeps its addresses and routes).
    pub fn set_carrier(&self, on: bool) -> io::Result<()> {
        crate::sys::set_carrier(self.dev.as_raw_fd(), on)
    }

    /// Changes the netdev's MTU, wherever its kernel side lives now.
    pub fn set_mtu(&mut self, mtu: u16) -> Result<(), TapError> {
        self.change(&LinkChange::Mtu(u32::from(mtu)))
            .map_err(|source| TapError::Mtu {
                tap: self.name.clone(),
                mtu,
                source,
            })?;
        self.mtu = mtu;
        Ok(())
    }

    /// Brings the netdev up or down (`IFF_UP`), wherever its kernel side lives now.
    pub fn set_up(&self, up: bool) -> Result<(), TapError> {
        self.change(&LinkChange::Up(up))
            .map_err(|source| TapError::Up {
                tap: self.name.clone(),
                up,
                source,
            })
    }

    /// The descriptor, for epoll/mio registration; it stays owned by the `Tap`.
    pub fn as_raw_fd(&self) -> RawFd {
        self.dev.as_raw_fd()
    }
}

impl AsRawFd for Tap {
    fn as_raw_fd(&self) -> RawFd {
        self.dev.as_raw_fd()
    }
}

impl AsFd for Tap {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.dev.as_fd()
    }
}

impl Drop for Tap {
    fn drop(&mut self) {
        if self.queue > 0 {
            return tracing::debug!(tap = %self.name, queue = self.queue, "TAP queue closed");
        }
        tracing::info!(tap = %self.name, "TAP closed; the kernel deletes the device");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_tap_names() {
        assert_eq!(validate_tap_name("vmk0"), Ok(()));
        assert_eq!(validate_tap_name("abcdefghijklmno"), Ok(()));
        let e = validate_tap_name("abcdefghijklmnop").unwrap_err();
        assert_eq!(
            e.to_string(),
            "TAP name `abcdefghijklmnop` is 16 bytes; Linux allows at most 15"
        );
        assert!(validate_tap_name("").is_err());
        assert!(validate_tap_name("a b").is_err());
        assert!(validate_tap_name("a/b").is_err());
        assert!(validate_tap_name("..").is_err());
    }
}
