//! Peers started through OpenSSH (`peer{ ssh = true }`, docs/NETWORK.md,
//! "Peers over ssh"): the checker drives a peer only through its stdin and
//! stdout, so an `ssh` client's are as good as the process's own, the way
//! Jepsen's control node drives its nodes.
//!
//! On the run's LAN the peer's host gets an `sshd` of its own (a throwaway
//! host key and one authorised client key, generated into the peer's run
//! folder), and the peer is started as `ssh user@<its host> -- <peer
//! command>` from a control host (`ssh-control`) on the same LAN, so the
//! SSH session itself crosses the lab's switch. Every address the scenario
//! uses still comes from the peer's `ready` line.

use super::network::HostInfo;
use super::process::{kill_group, track_process_group};
use anyhow::{Context, Result, bail};
use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const SSHD: &str = "/usr/sbin/sshd";
/// The lab host the `ssh` clients run in.
pub const CONTROL_HOST: &str = "ssh-control";
/// How long an sshd may take to listen.
const LISTEN_TIMEOUT: Duration = Duration::from_secs(10);

/// What is missing for `peer{ ssh = true }`, if anything.
pub fn preflight() -> Result<()> {
    let mut missing = Vec::new();
    if !Path::new(SSHD).is_file() {
        missing.push(SSHD.to_string());
    }
    for tool in ["ssh", "ssh-keygen"] {
        if !on_path(tool) {
            missing.push(format!("`{tool}` on PATH"));
        }
    }
    if !missing.is_empty() {
        bail!(
            "`ssh = true` needs OpenSSH, which is not installed here; missing: {} \
             (apt-get install openssh-server openssh-client)",
            missing.join(", ")
        );
    }
    Ok(())
}

fn on_path(tool: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
}

/// How to log in to one peer's host: what `PeerProc::start` wraps its
/// command in.
#[derive(Debug, Clone)]
pub struct SshLogin {
    pub user: String,
    pub addr: std::net::Ipv4Addr,
    pub key: PathBuf,
    pub known_hosts: PathBuf,
    /// Where the `ssh` client runs.
    pub control: HostInfo,
}

impl SshLogin {
    /// `ssh … user@addr -- exec 'program' 'arg' …`, entered into the control
    /// host. The remote shell runs the quoted command line.
    pub fn command(&self, argv: &[OsString]) -> Result<Command> {
        let mut cmd = Command::new("ssh");
        cmd.arg("-F")
            .arg("/dev/null")
            .arg("-i")
            .arg(&self.key)
            .arg("-T");
        for opt in [
            "IdentitiesOnly=yes".to_string(),
            "BatchMode=yes".to_string(),
            "StrictHostKeyChecking=yes".to_string(),
            format!("UserKnownHostsFile={}", self.known_hosts.display()),
            "GlobalKnownHostsFile=/dev/null".to_string(),
            "ConnectTimeout=5".to_string(),
            // A dead link ends the session (and so the remote peer's stdin)
            // within about 6 s.
            "ServerAliveInterval=2".to_string(),
            "ServerAliveCountMax=3".to_string(),
            "LogLevel=ERROR".to_string(),
        ] {
            cmd.arg("-o").arg(opt);
        }
        cmd.arg(format!("{}@{}", self.user, self.addr))
            .arg("--")
            .arg(remote_command(argv)?);
        self.control.enter(&mut cmd)?;
        Ok(cmd)
    }
}

/// `exec 'a' 'b c' 'it'\''s'`: each argument single-quoted for the remote
/// POSIX shell.
pub fn remote_command(argv: &[OsString]) -> Result<String> {
    let mut out = String::from("exec");
    for a in argv {
        let a = a
            .to_str()
            .with_context(|| format!("argument {a:?} is not UTF-8"))?;
        out.push_str(" '");
        out.push_str(&a.replace('\'', "'\\''"));
        out.push('\'');
    }
    Ok(out)
}

/// One host's sshd; killed (its process group) when dropped.
pub struct Sshd {
    child: Child,
    pid: i32,
}

impl Drop for Sshd {
    fn drop(&mut self) {
        kill_group(self.pid);
        let _ = self.child.wait();
    }
}

/// Generates the keys into `dir`, starts an sshd listening on `host`'s
/// address inside `host`, and waits until it listens.
pub fn start(dir: &Path, host: &HostInfo, control: HostInfo) -> Result<(Sshd, SshLogin)> {
    preflight()?;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let host_key = dir.join("host_key");
    let key = dir.join("client_key");
    for k in [&host_key, &key] {
        // A restarted run folder keeps nothing: fresh keys every time.
        let _ = std::fs::remove_file(k);
        let _ = std::fs::remove_file(k.with_extension("pub"));
        let out = Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C", "lanspread-lab", "-f"])
            .arg(k)
            .output()
            .context("running ssh-keygen")?;
        if !out.status.success() {
            bail!(
                "ssh-keygen failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
    }
    let read =
        |p: &Path| std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()));
    let authorized = dir.join("authorized_keys");
    std::fs::write(&authorized, read(&key.with_extension("pub"))?)?;
    let known_hosts = dir.join("known_hosts");
    std::fs::write(
        &known_hosts,
        format!("{} {}", host.addr, read(&host_key.with_extension("pub"))?),
    )?;
    let user = user_name()?;
    let config = dir.join("sshd_config");
    std::fs::write(
        &config,
        format!(
            "ListenAddress {addr}:22\n\
             HostKey {host_key}\n\
             AuthorizedKeysFile {authorized}\n\
             AllowUsers {user}\n\
             PermitRootLogin prohibit-password\n\
             PubkeyAuthentication yes\n\
             PasswordAuthentication no\n\
             KbdInteractiveAuthentication no\n\
             UsePAM no\n\
             StrictModes no\n\
             PidFile none\n\
             PrintMotd no\n\
             LogLevel INFO\n",
            addr = host.addr,
            host_key = host_key.display(),
            authorized = authorized.display(),
        ),
    )?;
    // sshd insists on its privilege-separation folder.
    std::fs::create_dir_all("/run/sshd").context("creating /run/sshd for sshd")?;
    let log_path = dir.join("sshd.log");
    let log = std::fs::File::create(&log_path)?;
    let mut cmd = Command::new(SSHD);
    cmd.arg("-D")
        .arg("-e")
        .arg("-f")
        .arg(&config)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .process_group(0);
    host.enter(&mut cmd)?;
    let mut child = cmd.spawn().context("starting sshd")?;
    let pid = child.id() as i32;
    track_process_group(pid);
    let until = Instant::now() + LISTEN_TIMEOUT;
    loop {
        let text = std::fs::read_to_string(&log_path).unwrap_or_default();
        if text.contains("Server listening on") {
            break;
        }
        if let Ok(Some(status)) = child.try_wait() {
            kill_group(pid);
            bail!("sshd exited ({status}) before it listened: {}", text.trim());
        }
        if Instant::now() >= until {
            kill_group(pid);
            let _ = child.wait();
            bail!(
                "sshd did not listen within {LISTEN_TIMEOUT:?}: {}",
                text.trim()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let login = SshLogin {
        user,
        addr: host.addr,
        key,
        known_hosts,
        control,
    };
    Ok((Sshd { child, pid }, login))
}

/// The name of the user this checker runs as (the one sshd lets in).
fn user_name() -> Result<String> {
    // SAFETY: getpwuid returns a pointer into static storage or null; the
    // name is copied out at once, before any other passwd call.
    unsafe {
        let pw = libc::getpwuid(libc::geteuid());
        if pw.is_null() || (*pw).pw_name.is_null() {
            bail!("no passwd entry for uid {}", libc::geteuid());
        }
        Ok(std::ffi::CStr::from_ptr((*pw).pw_name)
            .to_string_lossy()
            .into_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_command_quotes_every_argument_for_the_shell() -> Result<()> {
        let argv: Vec<OsString> = ["/bin/x", "peer", "a b", "it's", "$HOME;rm"]
            .iter()
            .map(OsString::from)
            .collect();
        assert_eq!(
            remote_command(&argv)?,
            r#"exec '/bin/x' 'peer' 'a b' 'it'\''s' '$HOME;rm'"#
        );
        // The shell gives back exactly the arguments.
        let out = Command::new("sh")
            .arg("-c")
            .arg(remote_command(&[
                "printf".into(),
                "[%s]".into(),
                "a b".into(),
                "it's".into(),
                "$HOME;rm".into(),
            ])?)
            .output()?;
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "[a b][it's][$HOME;rm]"
        );
        Ok(())
    }
}
