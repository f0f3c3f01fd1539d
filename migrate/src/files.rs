//! File bodies: the bytes behind every exported `_File` row, downloaded into `DIR/files/` while LeanCloud's
//! file domain still answers (it stops on 2027-01-12, and nothing can fetch them after that).
//!
//! Resumable without a cursor: the directory is the state. A body is streamed into `files/.partial/`,
//! checked against the row's `metaData.size` and `_checksum` (MD5) where present, fsynced and only then
//! renamed to `files/<objectId>`; a body at its final name is never fetched again, so a killed run loses at
//! most the downloads in flight, and a re-run fetches exactly what is missing (failures included).
//!
//! Downloads run a few at a time, spaced by their own rate limit (the file domain is not the API), retried on
//! 5xx, 429 (after its `Retry-After`), timeouts and dropped connections with the shared [`RetryPolicy`]; a
//! 4xx or a body that fails its checks is a failure, listed at the end and in `files-failed.jsonl`. No
//! LeanCloud header — above all the master key — is ever sent to a file URL.

use std::fs::{self, File};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::stream::{self, StreamExt};
use indicatif::{MultiProgress, ProgressBar};
use leancloud_im::{RetryClass, RetryOutcome, RetryPolicy};
use md5::{Digest, Md5};
use serde::Serialize;
use serde_json::{json, Map, Value};

use crate::api::{segment, Pacer};
use crate::Error;

/// Where the bodies go, one file per `_File` object: `files/<objectId>` (the id percent-encoded).
pub const FILES_DIR: &str = "files";
/// Downloads in progress; emptied at the start of every run.
const PARTIAL_DIR: &str = ".partial";
/// The failures of the last run, one JSON object a line (rewritten by every run).
pub const FAILED: &str = "files-failed.jsonl";
/// The class whose rows name the files.
pub const FILE_CLASS: &str = "_File";

/// The relative path of a file's body in an export directory.
pub fn body_path(object_id: &str) -> String {
    format!("{FILES_DIR}/{}", file_name(object_id))
}

/// The id as one file name: percent-encoded, and never `.`, `..` or hidden (where `.partial` lives).
fn file_name(object_id: &str) -> String {
    let name = segment(object_id);
    match name.strip_prefix('.') {
        Some(rest) => format!("%2E{rest}"),
        None => name,
    }
}

/// How to download.
#[derive(Debug, Clone)]
pub struct DownloadOptions {
    /// Prepended to `key` for rows without a `url` (LeanCloud's Scan leaves `url` out of internal files and
    /// tells to rebuild it as "file domain + key").
    pub file_domain: Option<String>,
    /// Downloads started per second at most (0: no limit).
    pub max_downloads_per_second: f64,
    /// Downloads at once.
    pub concurrency: usize,
    /// Connecting, and each wait for the next chunk of a body (not the whole body: a large file may take
    /// minutes).
    pub timeout: Duration,
    /// Attempts per file within one run.
    pub max_attempts: u32,
    pub progress: bool,
}

impl Default for DownloadOptions {
    fn default() -> Self {
        DownloadOptions {
            file_domain: None,
            max_downloads_per_second: 10.0,
            concurrency: 4,
            timeout: Duration::from_secs(30),
            max_attempts: 5,
            progress: false,
        }
    }
}

/// One `_File` row, as far as its body is concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileRow {
    pub id: String,
    pub url: Option<String>,
    /// `metaData.size`, unless the file is external (`metaData.__source: "external"`, whose size is only
    /// what the app claimed, often 0).
    pub size: Option<u64>,
    /// `metaData._checksum`: the MD5 of the body, lower-case hex.
    pub checksum: Option<String>,
}

impl FileRow {
    /// Reads what matters from an exported `_File` object; `None` without an `objectId`.
    pub fn from_object(obj: &Map<String, Value>, file_domain: Option<&str>) -> Option<FileRow> {
        let id = obj.get("objectId")?.as_str()?.to_string();
        let meta = obj.get("metaData").and_then(Value::as_object);
        let external =
            meta.and_then(|m| m.get("__source")).and_then(Value::as_str) == Some("external");
        let size = meta
            .and_then(|m| m.get("size"))
            .and_then(|s| s.as_u64().or_else(|| s.as_f64().map(|f| f as u64)))
            .filter(|_| !external);
        let checksum = meta
            .and_then(|m| m.get("_checksum"))
            .and_then(Value::as_str)
            .filter(|c| c.len() == 32 && c.bytes().all(|b| b.is_ascii_hexdigit()))
            .map(str::to_ascii_lowercase);
        let url = obj
            .get("url")
            .and_then(Value::as_str)
            .filter(|u| !u.is_empty())
            .map(str::to_owned)
            .or_else(|| {
                let key = obj.get("key").and_then(Value::as_str)?;
                let domain = file_domain?;
                Some(format!(
                    "{}/{}",
                    domain.trim_end_matches('/'),
                    key.trim_start_matches('/')
                ))
            });
        Some(FileRow {
            id,
            url,
            size,
            checksum,
        })
    }
}

/// The committed data rows of an export file: the first `committed` bytes, header skipped.
pub fn committed_rows(path: &Path, committed: u64) -> Result<Vec<Map<String, Value>>, Error> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io(path, e)),
    };
    let mut out = Vec::new();
    let mut read = 0u64;
    for (n, line) in BufReader::new(file).lines().enumerate() {
        let line = line.map_err(|e| Error::io(path, e))?;
        read += line.len() as u64 + 1;
        if read > committed {
            break;
        }
        if n == 0 || line.trim().is_empty() {
            continue;
        }
        let row: Map<String, Value> = serde_json::from_str(&line)
            .map_err(|e| Error::Other(format!("{}: line {}: {e}", path.display(), n + 1)))?;
        out.push(row);
    }
    Ok(out)
}

/// A body that could not be saved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Failure {
    #[serde(rename = "objectId")]
    pub id: String,
    pub url: Option<String>,
    pub reason: String,
}

/// What the download step did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct FilesSummary {
    /// `_File` rows.
    pub files: u64,
    /// Bodies that were already there when the run started.
    pub present: u64,
    /// Bodies fetched by this run, and their bytes.
    pub downloaded: u64,
    pub downloaded_bytes: u64,
    /// Requests sent to file URLs, retries included.
    pub requests: u64,
    pub elapsed_secs: f64,
    pub failed: Vec<Failure>,
}

impl FilesSummary {
    /// The lines of the final table.
    pub fn print(&self) {
        let rate = if self.elapsed_secs > 0.0 {
            self.downloaded_bytes as f64 / 1e6 / self.elapsed_secs
        } else {
            0.0
        };
        println!("  {:<28} {:>10}", "files (_File rows)", self.files);
        println!(
            "  {:<28} {:>10} ({} already there)",
            "file bodies saved",
            self.present + self.downloaded,
            self.present
        );
        println!(
            "  {:<28} {:>10} ({:.1} MB, {rate:.1} MB/s, {} requests)",
            "downloaded this run",
            self.downloaded,
            self.downloaded_bytes as f64 / 1e6,
            self.requests
        );
        println!("  {:<28} {:>10}", "file bodies failed", self.failed.len());
        const SHOWN: usize = 20;
        for f in self.failed.iter().take(SHOWN) {
            println!(
                "    {}  {}  {}",
                f.id,
                f.url.as_deref().unwrap_or("(no url)"),
                f.reason
            );
        }
        if self.failed.len() > SHOWN {
            println!(
                "    … and {} more (all of them in {FAILED})",
                self.failed.len() - SHOWN
            );
        }
    }
}

/// Why one attempt failed, and whether another may help.
struct AttemptError {
    reason: String,
    class: RetryClass,
    retry_after: Option<Duration>,
}

impl AttemptError {
    fn fatal(reason: impl Into<String>) -> AttemptError {
        AttemptError {
            reason: reason.into(),
            class: RetryClass::Never,
            retry_after: None,
        }
    }
}

/// The HTTP client for file URLs: its own, so no LeanCloud header can reach a file domain.
fn http_client(timeout: Duration) -> Result<reqwest::Client, Error> {
    reqwest::Client::builder()
        .connect_timeout(timeout)
        .read_timeout(timeout)
        .user_agent(concat!("leancloud-migrate/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| Error::Other(format!("HTTP client: {e}")))
}

/// Saves the body of every row of `rows` that `dir` lacks.
pub async fn download_all(
    dir: &Path,
    rows: &[FileRow],
    options: &DownloadOptions,
    multi: &MultiProgress,
) -> Result<FilesSummary, Error> {
    let started = Instant::now();
    let files_dir = dir.join(FILES_DIR);
    let partial = files_dir.join(PARTIAL_DIR);
    // What a killed run left half-written is worthless: its downloads start over.
    let _ = fs::remove_dir_all(&partial);
    fs::create_dir_all(&partial).map_err(|e| Error::io(&partial, e))?;

    let mut summary = FilesSummary {
        files: rows.len() as u64,
        ..FilesSummary::default()
    };
    let mut todo = Vec::new();
    for row in rows {
        if dir.join(body_path(&row.id)).is_file() {
            summary.present += 1;
        } else {
            todo.push(row.clone());
        }
    }
    let bar = multi.add(ProgressBar::new(rows.len() as u64));
    bar.set_style(crate::bar_style(
        "{bar:30} {pos}/{len} file bodies, {msg} ({elapsed})",
    ));
    bar.set_position(summary.present);

    let client = http_client(options.timeout)?;
    let pacer = Arc::new(Pacer::new(options.max_downloads_per_second));
    let policy = RetryPolicy {
        max_attempts: options.max_attempts.max(1),
        base: Duration::from_millis(250),
        cap: Duration::from_secs(30),
    };
    let mut results = stream::iter(todo)
        .map(|row| {
            let client = client.clone();
            let pacer = pacer.clone();
            async move {
                let outcome = download(&client, &pacer, policy, dir, &row).await;
                (row, outcome)
            }
        })
        .buffer_unordered(options.concurrency.max(1));
    let mut failed = Vec::new();
    while let Some((row, (requests, outcome))) = results.next().await {
        summary.requests += requests;
        match outcome {
            Ok(bytes) => {
                summary.downloaded += 1;
                summary.downloaded_bytes += bytes;
                bar.inc(1);
                bar.set_message(format!(
                    "{:.1} MB this run",
                    summary.downloaded_bytes as f64 / 1e6
                ));
            }
            Err(reason) => {
                tracing::warn!(id = %row.id, %reason, "file body not saved");
                failed.push(Failure {
                    id: row.id,
                    url: row.url,
                    reason,
                });
            }
        }
    }
    drop(results);
    bar.finish();
    failed.sort_by(|a, b| a.id.cmp(&b.id));
    summary.failed = failed;
    summary.elapsed_secs = started.elapsed().as_secs_f64();

    let mut text = String::new();
    for f in &summary.failed {
        text.push_str(&json!(f).to_string());
        text.push('\n');
    }
    let failed_path = dir.join(FAILED);
    if text.is_empty() {
        let _ = fs::remove_file(&failed_path);
    } else {
        fs::write(&failed_path, text).map_err(|e| Error::io(&failed_path, e))?;
    }
    let _ = fs::remove_dir(&partial);
    Ok(summary)
}

/// Downloads one body with retries: the requests it sent, and its size or why it failed.
async fn download(
    client: &reqwest::Client,
    pacer: &Pacer,
    policy: RetryPolicy,
    dir: &Path,
    row: &FileRow,
) -> (u64, Result<u64, String>) {
    let Some(url) = row.url.as_deref() else {
        return (
            0,
            Err("no url, and no --file-domain to build one from its key".into()),
        );
    };
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return (0, Err("not an http(s) URL".into()));
    }
    let name = file_name(&row.id);
    let partial = dir.join(FILES_DIR).join(PARTIAL_DIR).join(&name);
    let target = dir.join(FILES_DIR).join(&name);
    let mut attempt = 1;
    loop {
        pacer.wait().await;
        let error = match attempt_once(client, url, &partial, row).await {
            Ok(bytes) => {
                return match commit(&partial, &target) {
                    Ok(()) => (attempt as u64, Ok(bytes)),
                    Err(e) => (attempt as u64, Err(e.to_string())),
                };
            }
            Err(e) => e,
        };
        let _ = fs::remove_file(&partial);
        let outcome = match error.retry_after {
            // A 429: wait as told, within the attempts.
            Some(after) if attempt < policy.max_attempts => RetryOutcome::RetryAfter(after),
            Some(_) => RetryOutcome::Stop,
            None => policy.decide(
                error.class,
                attempt,
                true,
                Duration::MAX,
                rand::random::<f64>(),
            ),
        };
        match outcome {
            RetryOutcome::Stop => return (attempt as u64, Err(error.reason)),
            RetryOutcome::RetryAfter(wait) => {
                tracing::debug!(id = %row.id, attempt, ?wait, reason = %error.reason, "retrying a download");
                tokio::time::sleep(wait).await;
                attempt += 1;
            }
        }
    }
}

/// One GET into `partial`, checked; the body's size.
async fn attempt_once(
    client: &reqwest::Client,
    url: &str,
    partial: &Path,
    row: &FileRow,
) -> Result<u64, AttemptError> {
    let transport = |e: reqwest::Error| AttemptError {
        reason: if e.is_timeout() {
            "timed out".to_string()
        } else {
            format!("transport: {e}")
        },
        class: if e.is_connect() {
            RetryClass::Always
        } else {
            RetryClass::IfIdempotent
        },
        retry_after: None,
    };
    let mut response = client.get(url).send().await.map_err(transport)?;
    let status = response.status();
    if status == reqwest::StatusCode::TOO_MANY_REQUESTS {
        let after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map_or(Duration::from_secs(5), Duration::from_secs)
            .min(Duration::from_secs(300));
        return Err(AttemptError {
            reason: "HTTP 429".into(),
            class: RetryClass::IfIdempotent,
            retry_after: Some(after),
        });
    }
    if !status.is_success() {
        return Err(AttemptError {
            reason: format!("HTTP {}", status.as_u16()),
            class: RetryClass::of_status(Some(status.as_u16())),
            retry_after: None,
        });
    }
    let mut file = File::create(partial)
        .map_err(|e| AttemptError::fatal(format!("{}: {e}", partial.display())))?;
    let mut md5 = Md5::new();
    let mut size = 0u64;
    while let Some(chunk) = response.chunk().await.map_err(transport)? {
        size += chunk.len() as u64;
        if row.size.is_some_and(|expected| size > expected) {
            return Err(AttemptError::fatal(format!(
                "larger than metaData.size {}",
                row.size.unwrap_or(0)
            )));
        }
        md5.update(&chunk);
        file.write_all(&chunk)
            .map_err(|e| AttemptError::fatal(format!("{}: {e}", partial.display())))?;
    }
    if let Some(expected) = row.size {
        if size != expected {
            return Err(AttemptError::fatal(format!(
                "{size} bytes, metaData.size says {expected}"
            )));
        }
    }
    if let Some(expected) = &row.checksum {
        let got = hex::encode(md5.finalize());
        if &got != expected {
            return Err(AttemptError::fatal(format!(
                "MD5 {got}, metaData._checksum says {expected}"
            )));
        }
    }
    file.sync_all()
        .map_err(|e| AttemptError::fatal(format!("{}: {e}", partial.display())))?;
    Ok(size)
}

/// The size and MD5 of what `url` serves (`None` unless it answers 200 with the whole body).
pub async fn fetch_md5(client: &reqwest::Client, url: &str) -> Option<(u64, String)> {
    let mut response = client.get(url).send().await.ok()?;
    if response.status() != reqwest::StatusCode::OK {
        return None;
    }
    let mut md5 = Md5::new();
    let mut size = 0u64;
    while let Some(chunk) = response.chunk().await.ok()? {
        size += chunk.len() as u64;
        md5.update(&chunk);
    }
    Some((size, hex::encode(md5.finalize())))
}

/// Moves a checked body to its final name; the rename reaches the disk before the body counts as saved.
fn commit(partial: &Path, target: &Path) -> Result<(), Error> {
    fs::rename(partial, target).map_err(|e| Error::io(target, e))?;
    if let Some(parent) = target.parent() {
        if let Ok(d) = File::open(parent) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_row_without_url_is_rebuilt_from_the_file_domain_and_its_key() {
        let obj = json!({"objectId": "f1", "key": "abc/logo.png",
            "metaData": {"size": 12, "_checksum": "0123456789ABCDEF0123456789abcdef"}});
        let row = FileRow::from_object(
            obj.as_object().expect("object"),
            Some("https://files.example.com/"),
        )
        .expect("row");
        assert_eq!(
            FileRow {
                id: "f1".into(),
                url: Some("https://files.example.com/abc/logo.png".into()),
                size: Some(12),
                checksum: Some("0123456789abcdef0123456789abcdef".into()),
            },
            row
        );
        let no_domain = FileRow::from_object(obj.as_object().expect("object"), None).expect("row");
        assert_eq!(None, no_domain.url);
    }

    #[test]
    fn an_external_file_s_claimed_size_is_not_checked() {
        let obj = json!({"objectId": "f2", "url": "https://example.com/a.jpg",
            "metaData": {"size": 0, "__source": "external", "_checksum": "not-md5"}});
        let row = FileRow::from_object(obj.as_object().expect("object"), None).expect("row");
        assert_eq!((None, None), (row.size, row.checksum));
        assert_eq!(Some("https://example.com/a.jpg"), row.url.as_deref());
    }

    #[test]
    fn body_paths_cannot_leave_the_files_directory() {
        assert_eq!("files/%2E.%2Fx", body_path("../x"));
        assert_eq!("files/%2E.", body_path(".."));
        assert_eq!("files/5f00abc", body_path("5f00abc"));
    }
}
