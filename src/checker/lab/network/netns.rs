//! Named network namespaces (`ip netns`, mounted under /run/netns): make,
//! configure, delete, list, and run code or child processes inside one.

use anyhow::{Context, Result, anyhow, bail};
use std::fs::File;
use std::io::Write;
use std::os::unix::io::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;

pub const NETNS_DIR: &str = "/run/netns";

/// Says what is missing when this process cannot build a LAN: root, the
/// `ip` tool, the tun driver or network namespaces.
pub fn preflight() -> Result<()> {
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    if euid != 0 {
        bail!("the network lab needs root (creating network namespaces); running as uid {euid}");
    }
    if !Path::new("/proc/self/ns/net").exists() {
        bail!("the network lab needs network namespaces; this kernel has none (/proc/self/ns/net)");
    }
    if !Path::new("/dev/net/tun").exists() {
        bail!("the network lab needs the tun driver; /dev/net/tun is missing");
    }
    match Command::new("ip").arg("-V").stdout(Stdio::null()).status() {
        Ok(s) if s.success() => Ok(()),
        _ => bail!("the network lab needs the `ip` tool (Debian: apt-get install iproute2)"),
    }
}

/// Runs `ip <args>`, failing with its stderr.
fn ip(args: &[&str], stdin: Option<&str>) -> Result<()> {
    let mut child = Command::new("ip")
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .context("starting `ip` (iproute2)")?;
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(text.as_bytes())
            .context("writing to `ip -batch`")?;
    }
    let out = child.wait_with_output().context("waiting for `ip`")?;
    if !out.status.success() {
        bail!(
            "`ip {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

pub fn add(name: &str) -> Result<()> {
    ip(&["netns", "add", name], None)
}

/// Runs a batch of `ip` commands (one a line) inside namespace `name`.
pub fn configure(name: &str, batch: &str) -> Result<()> {
    ip(&["-n", name, "-batch", "-"], Some(batch))
}

/// Removes namespace `name` (its mount); the kernel frees the namespace and
/// its devices once no process is left inside. Deleting one that is
/// already gone is not an error.
pub fn delete(name: &str) -> Result<()> {
    let path = Path::new(NETNS_DIR).join(name);
    if !path.exists() {
        return Ok(());
    }
    ip(&["netns", "delete", name], None)
}

/// The names under /run/netns (none when it does not exist).
pub fn list() -> Vec<String> {
    let Ok(dir) = std::fs::read_dir(NETNS_DIR) else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().into_string().ok())
        .collect()
}

fn open(name: &str) -> Result<File> {
    File::open(Path::new(NETNS_DIR).join(name))
        .with_context(|| format!("opening network namespace `{name}`"))
}

/// Moves the calling thread into the namespace open on `fd`.
fn setns(fd: &File) -> std::io::Result<()> {
    // SAFETY: setns(2) on a namespace descriptor we hold open; it changes
    // only the calling thread's network namespace.
    if unsafe { libc::setns(fd.as_raw_fd(), libc::CLONE_NEWNET) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Makes `cmd`'s child start inside namespace `name`: the namespace is
/// opened now (so a missing one fails here, with context) and entered in
/// the child between fork and exec.
pub fn enter(cmd: &mut Command, name: &str) -> Result<()> {
    let fd = Arc::new(open(name)?);
    // SAFETY: the closure runs in the forked child before exec, where only
    // async-signal-safe calls are allowed: it calls setns(2) on a descriptor
    // opened above (kept alive by the Arc the Command owns) and allocates
    // nothing. The descriptor is O_CLOEXEC, so the peer does not inherit it.
    unsafe {
        cmd.pre_exec(move || setns(&fd));
    }
    Ok(())
}

/// Runs `f` on a new thread inside namespace `name` and returns its result;
/// sockets made there stay in that namespace after the thread ends.
pub fn run_in<T: Send + 'static>(
    name: &str,
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    let fd = open(name)?;
    let label = name.to_string();
    std::thread::Builder::new()
        .name("lab-netns".into())
        .spawn(move || {
            setns(&fd).with_context(|| format!("entering network namespace `{label}`"))?;
            f()
        })
        .context("starting a thread for a network namespace")?
        .join()
        .map_err(|_| anyhow!("a thread inside network namespace `{name}` panicked"))?
}
