//! Local server mode: this computer hosts the group. The bundled server runs in-process, its data
//! beside the app's, and is started again on every launch once set up.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tidings_server::{Clock, Config, account, admin, open_store};
use tokio_util::sync::CancellationToken;

use crate::error::CommandError;

/// The port a hosted group prefers; another is picked when it is taken.
const PREFERRED_PORT: u16 = 7878;

/// What is remembered about hosting between launches (`host.json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct HostFile {
    listen: SocketAddr,
    lan: bool,
}

/// The running local server.
#[derive(Debug)]
pub struct Host {
    /// The address this app connects to (always loopback).
    pub local: String,
    /// The address to give others (the LAN name when `lan`, else loopback).
    pub address: String,
    pub lan: bool,
    stop: CancellationToken,
}

impl Drop for Host {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// What the UI shows about hosting.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct HostInfo {
    pub address: String,
    pub lan: bool,
}

impl Host {
    pub fn info(&self) -> HostInfo {
        HostInfo {
            address: self.address.clone(),
            lan: self.lan,
        }
    }

    /// Creates the server's data with its owner and a first invite, then starts it.
    pub async fn create(
        data: &Path,
        owner: &str,
        password: &str,
        lan: bool,
    ) -> Result<(Host, String), CommandError> {
        let config = server_config(data, SocketAddr::from(([127, 0, 0, 1], PREFERRED_PORT)));
        let store = open_store(&config).await.map_err(CommandError::internal)?;
        let result = async {
            if !store.has_owner().await.map_err(CommandError::internal)? {
                let now = Clock::System.now_ms();
                account::found_group(&store, owner, password, now).await?;
            }
            let now = Clock::System.now_ms();
            let terms = admin::InviteTerms::default();
            Ok::<_, CommandError>(admin::create_invite(&store, None, now, terms).await?.1)
        }
        .await;
        store.close().await;
        let invite = result?;
        let host = Host::start(data, lan, None).await?;
        Ok((host, invite.code))
    }

    /// Starts the server again if this computer hosts a group.
    pub async fn resume(data: &Path) -> Result<Option<Host>, CommandError> {
        let Ok(text) = std::fs::read_to_string(host_file(data)) else {
            return Ok(None);
        };
        let file: HostFile = serde_json::from_str(&text).map_err(CommandError::internal)?;
        Host::start(data, file.lan, Some(file.listen.port()))
            .await
            .map(Some)
    }

    async fn start(data: &Path, lan: bool, port: Option<u16>) -> Result<Host, CommandError> {
        let ip = if lan { [0, 0, 0, 0] } else { [127, 0, 0, 1] };
        let wanted = SocketAddr::from((ip, port.unwrap_or(PREFERRED_PORT)));
        let listener = match tidings_server::listen(wanted) {
            Ok(listener) => listener,
            // Taken (another program, or another Tidings): any free port will do.
            Err(_) => {
                tidings_server::listen(SocketAddr::from((ip, 0))).map_err(CommandError::internal)?
            }
        };
        let listen = listener.local_addr().map_err(CommandError::internal)?;
        let file = HostFile { listen, lan };
        std::fs::write(
            host_file(data),
            serde_json::to_vec_pretty(&file).map_err(CommandError::internal)?,
        )
        .map_err(CommandError::internal)?;
        let config = server_config(data, listen);
        let stop = CancellationToken::new();
        let signal = stop.clone();
        tokio::spawn(async move {
            if let Err(err) =
                tidings_server::run(listener, config, async move { signal.cancelled().await }).await
            {
                tracing::error!(%err, "the local server stopped");
            }
        });
        let local = format!("http://127.0.0.1:{}", listen.port());
        let address = if lan {
            format!("http://{}:{}", lan_host(), listen.port())
        } else {
            local.clone()
        };
        tracing::info!(%address, "hosting");
        Ok(Host {
            local,
            address,
            lan,
            stop,
        })
    }
}

fn server_config(data: &Path, listen: SocketAddr) -> Config {
    Config {
        listen,
        data_dir: data.join("server"),
        ..Config::default()
    }
}

fn host_file(data: &Path) -> PathBuf {
    data.join("host.json")
}

/// How others on the LAN reach this computer: its address on the local network (a private IPv4
/// address; names are not resolved on every LAN), else its name.
fn lan_host() -> String {
    let addresses = if_addrs::get_if_addrs().unwrap_or_default();
    let ipv4 = || {
        addresses
            .iter()
            .filter_map(|interface| match interface.ip() {
                std::net::IpAddr::V4(ip) if !ip.is_loopback() && !ip.is_link_local() => Some(ip),
                _ => None,
            })
    };
    ipv4()
        .find(|ip| ip.is_private())
        .or_else(|| ipv4().next())
        .map(|ip| ip.to_string())
        .unwrap_or_else(hostname)
}

/// This computer's name.
fn hostname() -> String {
    std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "this-computer".to_owned())
}
