//! A server under test as a child process: started, waited for until it says where it listens,
//! measured through `/proc/<pid>` (CPU time and resident memory), and stopped.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::task::JoinHandle;
use tokio::time::timeout;

/// How long a server may take to say it is listening (a big database opens in well under this).
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a server may take to exit after SIGTERM before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// A running server. Dropping it kills the process.
#[derive(Debug)]
pub struct ServerProcess {
    pub name: String,
    pub addr: SocketAddr,
    child: Child,
    pid: u32,
    log: PathBuf,
    /// Reads the rest of standard output so the server never blocks on a full pipe.
    drain: JoinHandle<()>,
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.drain.abort();
        // The child was spawned with kill_on_drop, so it goes with us.
    }
}

impl ServerProcess {
    /// Starts `command`, with its standard error in `log`, and waits for the line saying
    /// `listening on http://ADDR` on its standard output.
    pub async fn spawn(name: &str, mut command: Command, log: &Path) -> Result<ServerProcess> {
        let stderr = std::fs::File::create(log)
            .with_context(|| format!("creating the log {}", log.display()))?;
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(stderr))
            .kill_on_drop(true);
        let mut child = command
            .spawn()
            .with_context(|| format!("starting {name}"))?;
        let pid = child.id().context("the server exited at once")?;
        let stdout = child.stdout.take().context("no standard output")?;
        let mut lines = BufReader::new(stdout).lines();
        let addr = timeout(READY_TIMEOUT, async {
            while let Some(line) = lines.next_line().await? {
                if let Some(addr) = parse_listening(&line) {
                    return Ok(addr);
                }
            }
            bail!("{name} exited before listening")
        })
        .await;
        let addr = match addr {
            Ok(Ok(addr)) => addr,
            Ok(Err(err)) => return Err(err.context(log_tail(log))),
            Err(_) => bail!(
                "{name} did not say it was listening within {READY_TIMEOUT:?}; {}",
                log_tail(log)
            ),
        };
        let drain = tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok(ServerProcess {
            name: name.to_owned(),
            addr,
            child,
            pid,
            log: log.to_owned(),
            drain,
        })
    }

    /// The process's id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// User plus system CPU time the server has used so far.
    pub fn cpu(&self) -> Result<Duration> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid))
            .with_context(|| format!("reading the stat of {}", self.name))?;
        let ticks = parse_stat_cpu_ticks(&stat).context("unreadable /proc/<pid>/stat")?;
        Ok(ticks_to_duration(ticks))
    }

    /// Resident memory, in bytes.
    pub fn rss(&self) -> Result<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid))
            .with_context(|| format!("reading the status of {}", self.name))?;
        parse_vm_rss(&status).context("no VmRSS in /proc/<pid>/status")
    }

    /// Asks the server to stop (SIGTERM) and waits; kills it if it takes too long.
    pub async fn stop(mut self) -> Result<()> {
        if let Ok(pid) = i32::try_from(self.pid)
            && let Some(pid) = rustix::process::Pid::from_raw(pid)
        {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        }
        match timeout(STOP_TIMEOUT, self.child.wait()).await {
            Ok(status) => {
                status?;
            }
            Err(_) => {
                tracing::warn!(server = %self.name, "did not stop in time; killing it");
                self.child.kill().await?;
            }
        }
        Ok(())
    }

    /// The end of the server's log, for an error message.
    pub fn log_tail(&self) -> String {
        log_tail(&self.log)
    }
}

/// The CPU time of several servers measured together (the nodes of a cluster), summed.
pub fn cpu_of(servers: &[ServerProcess]) -> Result<Duration> {
    servers.iter().map(ServerProcess::cpu).sum()
}

/// The resident memory of several servers measured together, summed.
pub fn rss_of(servers: &[ServerProcess]) -> Result<u64> {
    servers.iter().map(ServerProcess::rss).sum()
}

/// User plus system CPU time this process (the load generator) has used so far.
pub fn own_cpu() -> Result<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").context("reading /proc/self/stat")?;
    let ticks = parse_stat_cpu_ticks(&stat).context("unreadable /proc/self/stat")?;
    Ok(ticks_to_duration(ticks))
}

fn ticks_to_duration(ticks: u64) -> Duration {
    let per_second = rustix::param::clock_ticks_per_second().max(1);
    Duration::from_secs_f64(ticks as f64 / per_second as f64)
}

/// The last lines of a server's log.
fn log_tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let tail = lines[lines.len().saturating_sub(10)..].join("\n");
    if tail.is_empty() {
        "its log is empty".to_owned()
    } else {
        format!("its log ends:\n{tail}")
    }
}

/// The address in a line saying `... listening on http://ADDR ...`.
pub fn parse_listening(line: &str) -> Option<SocketAddr> {
    let (_, rest) = line.split_once("listening on http://")?;
    let addr = rest.split(|c: char| c.is_whitespace() || c == '/').next()?;
    addr.parse().ok()
}

/// utime + stime, in clock ticks, from the text of `/proc/<pid>/stat`.
pub fn parse_stat_cpu_ticks(stat: &str) -> Option<u64> {
    // The command name (field 2) is in parentheses and may hold spaces: count from its end.
    let (_, after_name) = stat.rsplit_once(')')?;
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // Field 3 (state) is fields[0]; utime and stime are fields 14 and 15.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// `VmRSS`, in bytes, from the text of `/proc/<pid>/status`.
pub fn parse_vm_rss(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let mut parts = line["VmRSS:".len()..].split_whitespace();
    let value: u64 = parts.next()?.parse().ok()?;
    match parts.next() {
        Some("kB") | None => Some(value * 1024),
        Some(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listening_lines() {
        assert_eq!(
            parse_listening("Tidings is listening on http://127.0.0.1:41234  (Ctrl-C stops it)"),
            Some("127.0.0.1:41234".parse().unwrap())
        );
        assert_eq!(
            parse_listening("naive broadcast server listening on http://127.0.0.1:9/ws"),
            Some("127.0.0.1:9".parse().unwrap())
        );
        assert_eq!(parse_listening("New Tidings server in data."), None);
        assert_eq!(parse_listening("listening on http://nowhere"), None);
    }

    #[test]
    fn cpu_ticks_from_stat_even_with_spaces_in_the_name() {
        let stat = "4242 (tidings server) S 1 4242 4242 0 -1 4194304 1000 0 0 0 \
                    150 35 0 0 20 0 9 0 12345 1000000 2000 18446744073709551615";
        assert_eq!(parse_stat_cpu_ticks(stat), Some(185));
        assert_eq!(parse_stat_cpu_ticks("garbage"), None);
    }

    #[test]
    fn rss_from_status() {
        let status =
            "Name:\ttidings-server\nVmPeak:\t  99999 kB\nVmRSS:\t   20480 kB\nThreads:\t9\n";
        assert_eq!(parse_vm_rss(status), Some(20480 * 1024));
        assert_eq!(parse_vm_rss("Name:\tx\n"), None);
    }

    #[test]
    fn the_stat_of_this_process_parses() {
        let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
        assert!(parse_stat_cpu_ticks(&stat).is_some());
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        assert!(parse_vm_rss(&status).unwrap() > 0);
    }
}
