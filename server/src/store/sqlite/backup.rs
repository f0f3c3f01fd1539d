//! Online backups of the embedded database. Copying a live SQLite file in WAL mode can give a torn copy (the
//! file and its `-wal` change between the reads); a backup here is `VACUUM INTO` on a read-only connection of its
//! own: one read transaction, so the copy is the database as of one instant, every commit acknowledged before
//! it began included, while the server goes on writing (in WAL mode a reader blocks no writer). The copy is
//! written beside the target as `*.partial`, synced and renamed, so a target that exists is always whole.
//!
//! A restore (server stopped) checks the backup (`PRAGMA integrity_check`, a schema this server knows), copies
//! it beside the database, syncs it, drops the old database's `-wal` and `-shm`, and renames it into place.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use rusqlite::{Connection, OpenFlags};

use super::with_suffix;

/// Why a backup or restore did not happen.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("{0}: {1}")]
    Sqlite(PathBuf, rusqlite::Error),
    #[error("{0}: {1}")]
    Io(PathBuf, std::io::Error),
    #[error("{0} already exists: choose another file (a backup never overwrites one)")]
    Exists(PathBuf),
    #[error("{0} is not a usable backup: {1}")]
    Invalid(PathBuf, String),
    #[error(
        "{0}-wal exists: a server may be running on {0}; stop it first (after a crash, pass --force: what \
         its -wal holds is replaced by the backup anyway)"
    )]
    InUse(PathBuf),
}

/// What a backup wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backup {
    pub path: PathBuf,
    pub bytes: u64,
}

fn sqlite(path: &Path) -> impl Fn(rusqlite::Error) -> BackupError + '_ {
    move |e| BackupError::Sqlite(path.to_path_buf(), e)
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> BackupError + '_ {
    move |e| BackupError::Io(path.to_path_buf(), e)
}

/// Syncs the file at `path` and the folder it is in (so a rename into it survives a power loss).
fn sync(path: &Path) -> Result<(), BackupError> {
    File::open(path)
        .and_then(|f| f.sync_all())
        .map_err(io(path))?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io(dir))?;
    }
    Ok(())
}

/// Copies the database at `db` (a server may be running on it) to `to`, which must not exist. Blocking.
pub fn backup(db: &Path, to: &Path) -> Result<Backup, BackupError> {
    if to.exists() {
        return Err(BackupError::Exists(to.to_path_buf()));
    }
    if !db.is_file() {
        return Err(BackupError::Io(
            db.to_path_buf(),
            std::io::Error::new(std::io::ErrorKind::NotFound, "no such database file"),
        ));
    }
    let partial = with_suffix(to, ".partial");
    let _ = std::fs::remove_file(&partial);
    let conn = Connection::open_with_flags(
        db,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(sqlite(db))?;
    // The server's writer may hold the write lock for a moment; a reader only waits on a checkpoint's.
    conn.busy_timeout(Duration::from_secs(30))
        .map_err(sqlite(db))?;
    let target = partial.to_string_lossy().into_owned();
    if let Err(e) = conn.execute("VACUUM INTO ?1", [&target]) {
        let _ = std::fs::remove_file(&partial);
        return Err(sqlite(db)(e));
    }
    drop(conn);
    sync(&partial)?;
    if to.exists() {
        let _ = std::fs::remove_file(&partial);
        return Err(BackupError::Exists(to.to_path_buf()));
    }
    std::fs::rename(&partial, to).map_err(io(to))?;
    sync(to)?;
    let bytes = std::fs::metadata(to).map_err(io(to))?.len();
    Ok(Backup {
        path: to.to_path_buf(),
        bytes,
    })
}

/// Checks that `path` is a whole SQLite database of this server: `PRAGMA integrity_check` answers `ok` and its
/// schema version is one this server can open. Blocking.
pub fn verify(path: &Path) -> Result<(), BackupError> {
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(sqlite(path))?;
    let invalid = |why: String| BackupError::Invalid(path.to_path_buf(), why);
    let check: Vec<String> = conn
        .prepare("PRAGMA integrity_check")
        .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
        .map_err(|e| invalid(e.to_string()))?;
    if check != ["ok"] {
        return Err(invalid(format!("integrity check: {}", check.join("; "))));
    }
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(|e| invalid(e.to_string()))?;
    let newest = super::MIGRATIONS.last().map_or(0, |(v, _)| *v);
    if version < 1 || version > newest {
        return Err(invalid(format!(
            "schema version {version}, this server knows 1 to {newest}"
        )));
    }
    Ok(())
}

/// Replaces the database at `db` (its server stopped) by the backup at `from`, after [`verify`]. Refuses while
/// `db`'s `-wal` exists unless `force`. Blocking.
pub fn restore(from: &Path, db: &Path, force: bool) -> Result<(), BackupError> {
    verify(from)?;
    let wal = with_suffix(db, "-wal");
    if wal.exists() && !force {
        return Err(BackupError::InUse(db.to_path_buf()));
    }
    if let Some(dir) = db.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
    }
    let restoring = with_suffix(db, ".restoring");
    std::fs::copy(from, &restoring).map_err(io(&restoring))?;
    sync(&restoring)?;
    for stale in [wal, with_suffix(db, "-shm")] {
        match std::fs::remove_file(&stale) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io(&stale)(e)),
            _ => {}
        }
    }
    std::fs::rename(&restoring, db).map_err(io(db))?;
    sync(db)
}

/// The name of a periodic backup taken at `at`: `leancloud-20261207T101500.000Z.sqlite3` (sorts by time).
pub fn periodic_name(at: SystemTime) -> String {
    let at: chrono::DateTime<chrono::Utc> = at.into();
    format!("leancloud-{}.sqlite3", at.format("%Y%m%dT%H%M%S%.3fZ"))
}

/// Deletes the oldest periodic backups in `dir` beyond the newest `keep`; the names deleted.
pub fn prune(dir: &Path, keep: usize) -> Result<Vec<PathBuf>, BackupError> {
    let mut backups: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(io(dir))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("leancloud-") && n.ends_with("Z.sqlite3"))
        })
        .collect();
    backups.sort();
    let excess = backups.len().saturating_sub(keep.max(1));
    let old: Vec<PathBuf> = backups.drain(..excess).collect();
    for path in &old {
        std::fs::remove_file(path).map_err(io(path))?;
    }
    Ok(old)
}

/// Takes a backup of the database at `db` into `config.dir` every `config.every` (the first one `every` after the
/// start), keeping the newest `config.keep`. A failure is logged and the next turn tries again.
pub async fn backup_forever(db: PathBuf, config: crate::config::BackupConfig) {
    let every = config.every.max(Duration::from_millis(100));
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tick.tick().await;
        let (db, dir, keep) = (db.clone(), config.dir.clone(), config.keep);
        let taken = tokio::task::spawn_blocking(move || {
            std::fs::create_dir_all(&dir).map_err(io(&dir))?;
            let taken = backup(&db, &dir.join(periodic_name(SystemTime::now())))?;
            prune(&dir, keep)?;
            Ok::<_, BackupError>(taken)
        })
        .await;
        match taken {
            Ok(Ok(b)) => tracing::info!(path = %b.path.display(), bytes = b.bytes, "backup taken"),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "backup failed; trying again at the next turn")
            }
            Err(e) => tracing::warn!(error = %e, "backup task failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_torn_or_foreign_file_is_not_restored_and_the_database_stays() {
        let dir = tempfile::tempdir().expect("dir");
        let db = dir.path().join("live.sqlite3");
        std::fs::write(&db, b"the live database").expect("write");
        let foreign = dir.path().join("foreign.sqlite3");
        Connection::open(&foreign)
            .and_then(|c| c.execute_batch("CREATE TABLE t (x); PRAGMA user_version = 99;"))
            .expect("foreign db");
        let torn = dir.path().join("torn.sqlite3");
        std::fs::write(&torn, b"SQLite format 3\0 and then nothing").expect("write");

        let err = restore(&foreign, &db, false).expect_err("foreign schema");
        assert!(err.to_string().contains("schema version 99"), "{err}");
        assert!(restore(&torn, &db, false).is_err());
        assert_eq!(
            b"the live database".to_vec(),
            std::fs::read(&db).expect("read")
        );
    }

    #[test]
    fn periodic_backups_beyond_the_newest_n_are_pruned_and_nothing_else() {
        let dir = tempfile::tempdir().expect("dir");
        let names = [
            "leancloud-20261207T100000Z.sqlite3",
            "leancloud-20261207T110000Z.sqlite3",
            "leancloud-20261207T120000Z.sqlite3",
            "leancloud-20261207T120000Z.sqlite3.partial",
            "notes.txt",
        ];
        for n in names {
            std::fs::write(dir.path().join(n), b"x").expect("write");
        }
        let gone = prune(dir.path(), 2).expect("prune");
        assert_eq!(vec![dir.path().join(names[0])], gone);
        let mut left: Vec<String> = std::fs::read_dir(dir.path())
            .expect("dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(names[1..].to_vec(), left);
        assert_eq!(
            "leancloud-20261207T101500.000Z.sqlite3",
            periodic_name(SystemTime::UNIX_EPOCH + Duration::from_secs(1_796_638_500))
        );
    }
}
