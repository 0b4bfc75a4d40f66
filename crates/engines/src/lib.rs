//! Real database engines for tests and benchmarks: the system's PostgreSQL, started on a loopback
//! port in a temporary directory of its own, and its Redis.
//!
//! Nothing outlives the process that started an engine: each server is watched by a small shell
//! that holds the read end of a pipe whose write end only this process has. When the process
//! ends — returning, panicking or killed — the pipe closes and the watcher stops the server and
//! removes its directory. So a test run leaves no server behind, whatever happens to it.
//!
//! Set `TIDINGS_TEST_POSTGRES` to a `postgres://` URL of a server you run yourself to use it
//! instead; its user must be allowed to create databases.

use std::io;
use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

/// Where Debian installs PostgreSQL's server programs (one directory per major version).
const POSTGRES_LIB: &str = "/usr/lib/postgresql";

/// A PostgreSQL server for this process. Dropping one that [`Postgres::start`] started stops it
/// (its watcher sees the pipe close).
#[derive(Debug)]
pub struct Postgres {
    /// `postgres://` URL of the server's `postgres` database, as its superuser.
    admin: String,
    /// The running server, when this process started it (not with `TIDINGS_TEST_POSTGRES`).
    local: Option<Local>,
}

#[derive(Debug)]
struct Local {
    /// The server's data directory (inside `root`).
    data: PathBuf,
    bin: PathBuf,
    port: u16,
    /// The watcher; its stdin is the pipe that keeps the server alive.
    _watcher: Child,
    /// The temp dir holding the data, the socket and the log (the watcher removes it).
    root: PathBuf,
}

impl Postgres {
    /// The server every caller in this process shares, started on first use.
    pub fn shared() -> &'static Postgres {
        static SHARED: OnceLock<Postgres> = OnceLock::new();
        SHARED.get_or_init(|| Postgres::start().expect("starting PostgreSQL for this process"))
    }

    /// Starts a new server (or, with `TIDINGS_TEST_POSTGRES`, uses that one).
    pub fn start() -> io::Result<Postgres> {
        if let Ok(url) = std::env::var("TIDINGS_TEST_POSTGRES") {
            return Ok(Postgres {
                admin: url,
                local: None,
            });
        }
        let bin = server_programs()?;
        let root = tempfile::Builder::new()
            .prefix("tidings-postgres-")
            .tempdir()?
            .keep();
        let data = root.join("data");
        std::fs::create_dir(&data)?;
        // initdb refuses to run as root: the cluster belongs to the `postgres` user then.
        let as_root = is_root();
        if as_root {
            run(Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&root))?;
        }
        run(as_postgres(as_root, &bin.join("initdb"))
            .args([
                "-A",
                "trust",
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--no-sync",
                "-D",
            ])
            .arg(&data))?;
        // The port is free when chosen but not held: when another process binds it first, the
        // server says so in its log and this tries again on another port.
        let mut tries = 0;
        let port = loop {
            let port = free_port()?;
            // No TCP but loopback; the socket directory is the cluster's own.
            let options = format!(
                "-p {port} -k {} -c listen_addresses=127.0.0.1 -c max_connections=200",
                root.display()
            );
            let started = run(as_postgres(as_root, &bin.join("pg_ctl"))
                .args(["-w", "-l"])
                .arg(root.join("log"))
                .arg("-o")
                .arg(options)
                .arg("-D")
                .arg(&data)
                .arg("start"));
            match started {
                Ok(()) => break port,
                Err(_) if tries < 5 && port_was_taken(&root.join("log")) => tries += 1,
                Err(err) => return Err(err),
            }
        };
        let watcher = watch(as_root, &bin, &data, &root)?;
        Ok(Postgres {
            admin: format!("postgres://postgres@127.0.0.1:{port}/postgres"),
            local: Some(Local {
                data,
                bin,
                port,
                _watcher: watcher,
                root,
            }),
        })
    }

    /// A new, empty database on this server; returns its URL.
    pub fn fresh_database(&self) -> io::Result<String> {
        static COUNT: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "tidings_{}_{}",
            std::process::id(),
            COUNT.fetch_add(1, Ordering::Relaxed)
        );
        self.psql(&format!("CREATE DATABASE {name}"))?;
        let (base, _) = self.admin.rsplit_once('/').expect("a URL with a database");
        Ok(format!("{base}/{name}"))
    }

    /// Runs one SQL command on the server's `postgres` database with `psql`, as the superuser.
    pub fn psql(&self, sql: &str) -> io::Result<String> {
        let out = Command::new("psql")
            .arg(&self.admin)
            .args(["-v", "ON_ERROR_STOP=1", "-X", "-q", "-A", "-t", "-c", sql])
            .stderr(Stdio::inherit())
            .output()?;
        if !out.status.success() {
            return Err(io::Error::other(format!("psql -c {sql:?} failed")));
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    }

    /// The TCP port it listens on (loopback), when this process started it.
    pub fn port(&self) -> Option<u16> {
        self.local.as_ref().map(|local| local.port)
    }

    /// Stops the server this process started, at once (as a crash would: `immediate` mode),
    /// and starts it again on the same port and data; for tests of what a restart does to
    /// connections. Committed data survives, as after a crash.
    pub fn restart(&self) -> io::Result<()> {
        let local = self
            .local
            .as_ref()
            .ok_or_else(|| io::Error::other("not a server this process started"))?;
        let as_root = is_root();
        // The log file again: without it the new server would write to this process's pipes.
        run(as_postgres(as_root, &local.bin.join("pg_ctl"))
            .args(["-w", "-m", "immediate", "-l"])
            .arg(local.root.join("log"))
            .arg("-D")
            .arg(&local.data)
            .arg("restart"))
    }
}

/// The newest installed major version's `bin/` directory.
fn server_programs() -> io::Result<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir(POSTGRES_LIB)
        .map_err(|err| {
            io::Error::new(
                err.kind(),
                format!(
                    "PostgreSQL's server is not installed ({POSTGRES_LIB}: {err}); \
                     scripts/deps.sh --test installs it"
                ),
            )
        })?
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let major = entry.file_name().to_str()?.parse().ok()?;
            Some((major, entry.path().join("bin")))
        })
        .filter(|(_, bin)| bin.join("initdb").exists())
        .collect();
    versions.sort();
    versions
        .pop()
        .map(|(_, bin)| bin)
        .ok_or_else(|| io::Error::other(format!("no PostgreSQL server under {POSTGRES_LIB}")))
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|out| out.stdout.trim_ascii() == b"0")
        .unwrap_or(false)
}

/// `program`, run as the `postgres` user when this process is root.
fn as_postgres(as_root: bool, program: &Path) -> Command {
    if as_root {
        let mut cmd = Command::new("runuser");
        cmd.args(["-u", "postgres", "--"]).arg(program);
        cmd
    } else {
        Command::new(program)
    }
}

fn run(cmd: &mut Command) -> io::Result<()> {
    let out = cmd.stdin(Stdio::null()).output()?;
    if out.status.success() {
        Ok(())
    } else {
        Err(io::Error::other(format!(
            "{cmd:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )))
    }
}

/// Whether the server's log says its port was taken.
fn port_was_taken(log: &Path) -> bool {
    std::fs::read_to_string(log).is_ok_and(|log| log.contains("Address already in use"))
}

/// A port free on loopback right now.
fn free_port() -> io::Result<u16> {
    Ok(TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
        .local_addr()?
        .port())
}

/// Starts the watcher that stops the server and removes `root` once this process is gone.
fn watch(as_root: bool, bin: &Path, data: &Path, root: &Path) -> io::Result<Child> {
    let stop = as_postgres(as_root, &bin.join("pg_ctl"));
    let mut stop_line = vec![stop.get_program().to_string_lossy().into_owned()];
    stop_line.extend(
        stop.get_args()
            .map(|arg| arg.to_string_lossy().into_owned()),
    );
    let script = format!(
        "cat >/dev/null; {} -m immediate -D \"$1\" stop >/dev/null 2>&1; rm -rf \"$2\"",
        stop_line.join(" ")
    );
    Command::new("sh")
        .arg("-c")
        .arg(script)
        .arg("watcher")
        .arg(data)
        .arg(root)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
}

/// A Redis server of this process, on a loopback port, keeping nothing on disk.
#[derive(Debug)]
pub struct Redis {
    port: u16,
    server: std::sync::Mutex<Option<(Child, Child)>>,
}

impl Redis {
    /// Starts a server; it answers `PING` before this returns.
    ///
    /// The port is free when chosen but not held, so another process may take it before
    /// redis-server binds it; then the server exits and this tries again on another port.
    pub fn start() -> io::Result<Redis> {
        let mut tries = 0;
        loop {
            let redis = Redis {
                port: free_port()?,
                server: std::sync::Mutex::new(None),
            };
            match redis.resume() {
                Ok(()) => return Ok(redis),
                Err(err) if err.kind() == io::ErrorKind::AddrInUse && tries < 5 => tries += 1,
                Err(err) => return Err(err),
            }
        }
    }

    /// `redis://` URL of the server.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Stops the server at once (SIGKILL), as a crash would; [`Redis::resume`] starts it again.
    pub fn stop(&self) {
        let mut server = self.server.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((mut redis, _watcher)) = server.take() {
            let _ = redis.kill();
            let _ = redis.wait();
        }
    }

    /// Starts the server (again) on the same port, empty.
    pub fn resume(&self) -> io::Result<()> {
        let mut server = self.server.lock().unwrap_or_else(|p| p.into_inner());
        if server.is_some() {
            return Ok(());
        }
        let redis = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|err| {
                io::Error::new(
                    err.kind(),
                    format!("redis-server: {err}; scripts/deps.sh --test installs it"),
                )
            })?;
        // The watcher kills it when this process is gone (see the crate's documentation).
        let watcher = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "cat >/dev/null; kill -9 {} 2>/dev/null",
                redis.id()
            ))
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        *server = Some((redis, watcher));
        // Ready when it answers PING. Something else answering on the port (a process that
        // took it first) does not count; redis-server exits then, which is told apart.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            if ping(self.port) {
                return Ok(());
            }
            let (redis, _) = server.as_mut().expect("started above");
            if let Some(status) = redis.try_wait()? {
                *server = None;
                return Err(io::Error::new(
                    io::ErrorKind::AddrInUse,
                    format!("redis-server exited ({status}): port {} taken?", self.port),
                ));
            }
            if std::time::Instant::now() > deadline {
                return Err(io::Error::other("redis-server did not answer PING"));
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }
}

/// Whether a Redis server answers `PING` on this loopback port (each step bounded in time).
fn ping(port: u16) -> bool {
    use std::io::{Read, Write};
    let limit = std::time::Duration::from_secs(1);
    let Ok(mut conn) =
        std::net::TcpStream::connect_timeout(&(Ipv4Addr::LOCALHOST, port).into(), limit)
    else {
        return false;
    };
    let _ = conn.set_read_timeout(Some(limit));
    let mut answer = [0u8; 7];
    conn.write_all(b"PING\r\n").is_ok()
        && conn.read_exact(&mut answer).is_ok()
        && &answer == b"+PONG\r\n"
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redis_on_a_port_another_process_holds_is_not_taken_for_ready() {
        // What start() meets when another process binds the chosen port first.
        let holder = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let redis = Redis {
            port: holder.local_addr().unwrap().port(),
            server: std::sync::Mutex::new(None),
        };
        let err = redis.resume().unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AddrInUse, "{err}");
        assert!(redis.server.lock().unwrap().is_none());
        // start() goes on to a port of its own.
        let other = Redis::start().unwrap();
        assert_ne!(other.port, redis.port);
        assert!(ping(other.port));
    }
}
