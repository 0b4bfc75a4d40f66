//! Backups while serving, and restores into an empty data dir: `tidings-server backup FILE` and
//! `restore FILE`, and the backups `[backup]` schedules. For a server on its SQLite database; one
//! on PostgreSQL is backed up with `pg_dump`.
//!
//! A backup is one tar archive: `tidings.db` first — the database as of one moment, copied by
//! SQLite's online backup API while the server goes on writing — then `attachments/NAME` for the
//! bytes of each attachment that copy knows, read from wherever they are kept. A restore puts
//! those bytes where the restoring server keeps them (its data dir or its object store), and the
//! restored database is migrated as any older data dir is when a newer server opens it.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read};
use std::path::{Path, PathBuf};

use bytes::Bytes;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::ServerError;
use crate::app::AppState;
use crate::attachment::Attachments;
use crate::config::Config;

/// The database's name inside a backup.
const DATABASE: &str = "tidings.db";
/// The folder of attachments' bytes inside a backup.
const ATTACHMENTS: &str = "attachments/";
/// Attachments read ahead of the archive's writer (or restored behind its reader).
const IN_FLIGHT: usize = 4;
/// The most memory a restore sets aside for a file before reading it.
const PREALLOCATED: usize = 1 << 20;

/// What a backup holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackedUp {
    /// Files kept with it: attachments and their thumbnails.
    pub files: usize,
    /// Files the database knows whose bytes were gone when read (a message deleted meanwhile).
    pub missing: usize,
    /// The archive's size.
    pub bytes: u64,
}

/// What a restore put back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Restored {
    /// Attachments' files (and thumbnails).
    pub files: usize,
}

fn failed(what: impl std::fmt::Display) -> ServerError {
    ServerError::Backup(what.to_string())
}

/// The SQLite database `config` names, or an error saying how a PostgreSQL one is backed up.
fn sqlite_only(config: &Config) -> Result<PathBuf, ServerError> {
    if config.store.is_some() {
        return Err(failed(
            "this server keeps its data in PostgreSQL: back that up with pg_dump, and the \
             attachments where `attachments.object_store` keeps them",
        ));
    }
    Ok(config.database_path())
}

/// A file beside `file`, for writing before it is renamed into place.
fn beside(file: &Path, suffix: &str) -> PathBuf {
    let mut name = file.file_name().unwrap_or_default().to_owned();
    name.push(suffix);
    file.with_file_name(name)
}

/// Backs up the data dir `config` names into `file` (replaced only once the backup is whole).
/// Safe while a server serves that data dir.
pub async fn create(config: &Config, file: &Path) -> Result<BackedUp, ServerError> {
    create_from(config, &open_attachments(config)?, file).await
}

fn open_attachments(config: &Config) -> Result<Attachments, ServerError> {
    Attachments::open(config.attachments.object_store.as_deref(), &config.data_dir)
        .map_err(|err| ServerError::Config(format!("attachments.object_store: {err}")))
}

/// [`create`], reading attachments' bytes from `attachments`.
async fn create_from(
    config: &Config,
    attachments: &Attachments,
    file: &Path,
) -> Result<BackedUp, ServerError> {
    let database = sqlite_only(config)?;
    let snapshot = beside(file, ".db.partial");
    let partial = beside(file, ".partial");
    let result = write_archive(&database, attachments, &snapshot, &partial).await;
    let _ = std::fs::remove_file(&snapshot);
    match result {
        Ok(backed_up) => {
            std::fs::rename(&partial, file)?;
            Ok(backed_up)
        }
        Err(err) => {
            let _ = std::fs::remove_file(&partial);
            Err(err)
        }
    }
}

async fn write_archive(
    database: &Path,
    attachments: &Attachments,
    snapshot: &Path,
    partial: &Path,
) -> Result<BackedUp, ServerError> {
    let _ = std::fs::remove_file(snapshot);
    let (from, to) = (database.to_owned(), snapshot.to_owned());
    let kept = tokio::task::spawn_blocking(move || tidings_store::backup_sqlite(&from, &to))
        .await
        .map_err(failed)?
        .map_err(|err| match err {
            tidings_store::StoreError::NotFound => {
                failed(format!("there is no database at {}", database.display()))
            }
            other => other.into(),
        })?;

    // The archive is written on a blocking thread; the bytes are read here, a few ahead.
    let (files, mut to_write) = mpsc::channel::<(String, Bytes)>(IN_FLIGHT);
    let (snapshot, partial) = (snapshot.to_owned(), partial.to_owned());
    let writer = tokio::task::spawn_blocking(move || -> std::io::Result<u64> {
        let mut archive = tar::Builder::new(BufWriter::new(File::create(&partial)?));
        archive.append_path_with_name(&snapshot, DATABASE)?;
        while let Some((name, bytes)) = to_write.blocking_recv() {
            let mut header = tar::Header::new_gnu();
            header.set_size(bytes.len() as u64);
            header.set_mode(0o600);
            archive.append_data(&mut header, format!("{ATTACHMENTS}{name}"), &bytes[..])?;
        }
        let file = archive
            .into_inner()?
            .into_inner()
            .map_err(|err| err.into_error())?;
        file.sync_all()?;
        Ok(file.metadata()?.len())
    });

    let (mut stored, mut missing) = (0, 0);
    'reading: for attachment in &kept {
        for name in Attachments::objects_of(attachment) {
            match attachments.read(&name).await.map_err(failed)? {
                Some(bytes) => {
                    if files.send((name, bytes)).await.is_err() {
                        // The writer failed: its error says why.
                        break 'reading;
                    }
                    stored += 1;
                }
                None => {
                    tracing::warn!(name, "an attachment's bytes were gone; not in the backup");
                    missing += 1;
                }
            }
        }
    }
    drop(files);
    let bytes = writer.await.map_err(failed)??;
    Ok(BackedUp {
        files: stored,
        missing,
        bytes,
    })
}

/// Restores the backup `file` into the data dir `config` names, which must be empty or absent;
/// attachments go where `config` keeps them. The database is then opened (and migrated) once,
/// so a backup this build cannot use is refused here, not at the next start. On failure the data
/// dir is left empty.
pub async fn restore(config: &Config, file: &Path) -> Result<Restored, ServerError> {
    let database = sqlite_only(config)?;
    let dir = &config.data_dir;
    if dir.exists() && std::fs::read_dir(dir)?.next().is_some() {
        return Err(failed(format!(
            "{} is not empty: restore into a new data dir",
            dir.display()
        )));
    }
    let archive =
        File::open(file).map_err(|err| failed(format!("cannot read {}: {err}", file.display())))?;
    std::fs::create_dir_all(dir)?;
    let result = unpack(config, archive, &database).await;
    if result.is_err() {
        // It was empty: nothing of anyone else's is lost.
        let _ = std::fs::remove_dir_all(dir);
    }
    result
}

async fn unpack(config: &Config, archive: File, database: &Path) -> Result<Restored, ServerError> {
    let attachments = open_attachments(config)?;
    let (found, mut to_store) = mpsc::channel::<(String, Bytes)>(IN_FLIGHT);
    let database_at = database.to_owned();
    let reader = tokio::task::spawn_blocking(move || -> Result<(), String> {
        let mut archive = tar::Archive::new(BufReader::new(archive));
        let entries = archive.entries().map_err(|err| err.to_string())?;
        let mut first = true;
        for entry in entries {
            let mut entry = entry.map_err(|err| format!("not a Tidings backup: {err}"))?;
            let path = entry.path().map_err(|err| err.to_string())?;
            let name = path.to_string_lossy().into_owned();
            if first {
                if name != DATABASE {
                    return Err(format!("not a Tidings backup: it starts with {name:?}"));
                }
                let mut out = File::create_new(&database_at).map_err(|err| err.to_string())?;
                std::io::copy(&mut entry, &mut out).map_err(|err| err.to_string())?;
                out.sync_all().map_err(|err| err.to_string())?;
                first = false;
                continue;
            }
            let Some(object) = name.strip_prefix(ATTACHMENTS).filter(|n| is_object_name(n)) else {
                return Err(format!("not a Tidings backup: it holds {name:?}"));
            };
            let object = object.to_owned();
            // The size an archive declares is not trusted with memory: bytes are kept as read.
            let declared = usize::try_from(entry.size()).unwrap_or(usize::MAX);
            let mut bytes = Vec::with_capacity(declared.min(PREALLOCATED));
            entry
                .read_to_end(&mut bytes)
                .map_err(|err| err.to_string())?;
            if found.blocking_send((object, bytes.into())).is_err() {
                // Storing failed: that error says why.
                return Ok(());
            }
        }
        if first {
            return Err("not a Tidings backup: it is empty".to_owned());
        }
        Ok(())
    });
    let mut files = 0;
    let mut stored = Ok(());
    while let Some((name, bytes)) = to_store.recv().await {
        if let Err(err) = attachments.write(&name, bytes).await {
            stored = Err(failed(format!("storing attachment {name}: {err}")));
            break;
        }
        files += 1;
    }
    drop(to_store);
    reader.await.map_err(failed)?.map_err(failed)?;
    stored?;
    // Migrates a backup an older server made; refuses one a newer server made.
    let store = crate::open_store(config).await?;
    store.close().await;
    Ok(Restored { files })
}

/// An attachment's object name as the server makes them: its id, or its id and `.thumbnail`.
/// Anything else in an archive (a path, `..`) is refused.
fn is_object_name(name: &str) -> bool {
    let id = name.strip_suffix(".thumbnail").unwrap_or(name);
    !id.is_empty()
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Makes a backup every `backup.every` into `backup.dir`, named by its time
/// (`tidings-2026-12-03T101500.123Z.tar`, so names sort by age), and deletes all but the newest
/// `backup.keep`. Ends when `cancel` is.
pub async fn schedule(state: AppState, cancel: CancellationToken) {
    let Some(every) = state.config.backup.every else {
        return;
    };
    if state.config.store.is_some() {
        tracing::warn!("backup.every is set, but a server on PostgreSQL is backed up with pg_dump");
        return;
    }
    let dir = state.config.backup_dir();
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
        if let Err(err) = std::fs::create_dir_all(&dir) {
            tracing::error!(%err, dir = %dir.display(), "cannot make the backup directory");
            continue;
        }
        let stamp = humantime::format_rfc3339_millis(std::time::SystemTime::now())
            .to_string()
            .replace(':', "");
        let file = dir.join(format!("tidings-{stamp}.tar"));
        match create_from(&state.config, &state.attachments, &file).await {
            Ok(done) => tracing::info!(
                file = %file.display(),
                files = done.files,
                missing = done.missing,
                bytes = done.bytes,
                "backed up"
            ),
            Err(err) => tracing::error!(%err, file = %file.display(), "backup failed"),
        }
        prune(&dir, state.config.backup.keep);
    }
}

/// Deletes all but the newest `keep` scheduled backups in `dir`.
fn prune(dir: &Path, keep: usize) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut backups: Vec<PathBuf> = entries
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| {
            path.file_name()
                .and_then(|name| name.to_str())
                .is_some_and(|name| name.starts_with("tidings-") && name.ends_with(".tar"))
        })
        .collect();
    backups.sort();
    let old = backups.len().saturating_sub(keep);
    for path in &backups[..old] {
        if let Err(err) = std::fs::remove_file(path) {
            tracing::warn!(%err, file = %path.display(), "could not delete an old backup");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_names_the_server_makes_are_restored() {
        for good in ["Ab3_-x", "Ab3_-x.thumbnail"] {
            assert!(is_object_name(good), "{good}");
        }
        for bad in [
            "",
            ".thumbnail",
            "../x",
            "a/b",
            "..",
            "a.b",
            "/etc/passwd",
            "a\\b",
        ] {
            assert!(!is_object_name(bad), "{bad}");
        }
    }

    #[test]
    fn pruning_keeps_the_newest() {
        let dir = tempfile::tempdir().unwrap();
        let names = [
            "tidings-2026-12-01T000000.000Z.tar",
            "tidings-2026-12-02T000000.000Z.tar",
            "tidings-2026-12-03T000000.000Z.tar",
            "notes.txt",
        ];
        for name in names {
            std::fs::write(dir.path().join(name), b"x").unwrap();
        }
        prune(dir.path(), 2);
        let mut left: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(left, [names[3], names[1], names[2]]);
    }
}
