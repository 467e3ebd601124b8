//! A host's network interface: a TUN device created inside the host's
//! namespace, whose file descriptor the checker's switch holds. The kernel
//! removes the device when the descriptor closes, so a dead checker leaves
//! no device behind (only the namespace's mount, see `cleanup`).

use anyhow::{Context, Result, bail};
use std::fs::{File, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::io::AsRawFd;

const TUNSETIFF: libc::c_ulong = 0x4004_54ca;
const IFF_TUN: libc::c_short = 0x0001;
const IFF_NO_PI: libc::c_short = 0x1000;
const IFF_VNET_HDR: libc::c_short = 0x4000;
const TUNSETOFFLOAD: libc::c_ulong = 0x4004_54d0;
const TUN_F_CSUM: libc::c_ulong = 0x01;

/// Every packet read or written starts with a `struct virtio_net_hdr`
/// (10 bytes by default). With it the kernel hands over packets whose
/// checksum is still to be done and takes them back unchanged, so no
/// checksum is ever computed for a packet between two hosts: without it,
/// summing 64 KiB packets twice cost a bulk TCP stream over half its
/// throughput (docs/NETWORK.md).
pub const VNET_HDR_LEN: usize = 10;

#[repr(C)]
struct IfReq {
    name: [u8; libc::IFNAMSIZ],
    flags: libc::c_short,
    _pad: [u8; 22],
}

/// Creates TUN device `name` in the calling thread's network namespace and
/// returns its non-blocking descriptor: IPv4 packets behind a
/// `VNET_HDR_LEN` header, checksum offload on.
pub fn create(name: &str) -> Result<File> {
    if name.len() >= libc::IFNAMSIZ {
        bail!("interface name `{name}` is longer than 15 bytes");
    }
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open("/dev/net/tun")
        .context("opening /dev/net/tun (the network lab needs the tun driver)")?;
    let mut req = IfReq {
        name: [0; libc::IFNAMSIZ],
        flags: IFF_TUN | IFF_NO_PI | IFF_VNET_HDR,
        _pad: [0; 22],
    };
    req.name[..name.len()].copy_from_slice(name.as_bytes());
    // SAFETY: TUNSETIFF reads (and may write back) one `struct ifreq`, which
    // IfReq lays out (40 bytes), on a descriptor we own.
    let rc = unsafe { libc::ioctl(file.as_raw_fd(), TUNSETIFF, &mut req as *mut IfReq) };
    if rc < 0 {
        return Err(std::io::Error::last_os_error())
            .with_context(|| format!("creating TUN device `{name}`"));
    }
    // SAFETY: TUNSETOFFLOAD takes its flags by value on our descriptor.
    if unsafe { libc::ioctl(file.as_raw_fd(), TUNSETOFFLOAD, TUN_F_CSUM) } < 0 {
        return Err(std::io::Error::last_os_error())
            .with_context(|| format!("turning on checksum offload for `{name}`"));
    }
    Ok(file)
}
