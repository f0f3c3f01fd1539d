//! `import --file-url-base URL`: the file bodies an export saved (`files/<objectId>`) go into the server's file
//! storage, each checked again against its row's `metaData.size` and `_checksum`, and the new URLs —
//! `URL/<key>`, the path the server serves a body at — are handed to the import, which writes them into
//! `_File.url` and into the `_lcfile.url` of every message carrying the file. A body that fails its check is
//! reported and not imported (its row and messages keep their old URL). Importing again finds every body in
//! place and changes nothing.

use std::path::Path;

use leancloud_server::domain::files::{plain_extension, shadows_api};
use leancloud_server::import::FileUrls;
use leancloud_server::store::blobs::{valid_key, BlobError, Blobs};
use md5::{Digest, Md5};
use serde::Serialize;
use serde_json::Value;

use crate::export::class_file;
use crate::files::{body_path, committed_rows, FileRow, FILE_CLASS};
use crate::Error;

/// What moving the bodies of one export did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct BodiesSummary {
    /// Bodies put into the server's storage by this run.
    pub imported: u64,
    pub imported_bytes: u64,
    /// Bodies the storage had already (an earlier import).
    pub present: u64,
    /// `_File` rows whose body the export does not have (external files, failed downloads).
    pub without_body: u64,
    /// Bodies refused: `(objectId, why)`.
    pub corrupt: Vec<(String, String)>,
}

impl BodiesSummary {
    pub fn print(&self) {
        println!(
            "file bodies: {} imported ({:.1} MB), {} already there, {} rows without a body, {} refused",
            self.imported,
            self.imported_bytes as f64 / 1e6,
            self.present,
            self.without_body,
            self.corrupt.len()
        );
        for (id, why) in &self.corrupt {
            println!("  refused {id}: {why}");
        }
    }
}

/// The key a body is stored under: the row's own key when the server can serve it at that path, else one
/// made from its objectId (keeping the extension).
fn key_for(row: &serde_json::Map<String, Value>, id: &str) -> String {
    if let Some(key) = row.get("key").and_then(Value::as_str) {
        if valid_key(key) && !shadows_api(key) {
            return key.to_string();
        }
    }
    let name = row.get("name").and_then(Value::as_str).unwrap_or("");
    let ext = plain_extension(name);
    let safe: String = id
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    match ext {
        Some(ext) => format!("imported/{safe}.{ext}"),
        None => format!("imported/{safe}"),
    }
}

/// Moves the saved bodies of the export in `dir` into `blobs`, and answers the URL changes under `base`.
pub async fn move_bodies(
    dir: &Path,
    blobs: &Blobs,
    base: &str,
    urls: &mut FileUrls,
) -> Result<BodiesSummary, Error> {
    let mut summary = BodiesSummary::default();
    let rows = committed_rows(&dir.join(class_file(FILE_CLASS)), u64::MAX)?;
    for row in &rows {
        let Some(file) = FileRow::from_object(row, None) else {
            continue;
        };
        let path = dir.join(body_path(&file.id));
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                summary.without_body += 1;
                continue;
            }
            Err(e) => return Err(Error::io(&path, e)),
        };
        if let Some(size) = file.size.filter(|s| *s != bytes.len() as u64) {
            summary.corrupt.push((
                file.id,
                format!("{} bytes, metaData.size says {size}", bytes.len()),
            ));
            continue;
        }
        let md5 = hex::encode(Md5::digest(&bytes));
        if let Some(sum) = file.checksum.as_deref().filter(|c| *c != md5) {
            summary
                .corrupt
                .push((file.id, format!("MD5 {md5}, metaData._checksum says {sum}")));
            continue;
        }
        let key = key_for(row, &file.id);
        let content_type = row
            .get("mime_type")
            .and_then(Value::as_str)
            .unwrap_or("application/octet-stream");
        let size = bytes.len() as u64;
        match blobs.put_bytes(&key, content_type, bytes).await {
            Ok(_) => {
                summary.imported += 1;
                summary.imported_bytes += size;
            }
            Err(BlobError::Exists) => summary.present += 1,
            Err(e) => return Err(Error::Other(format!("{key}: {e}"))),
        }
        let url = format!("{}/{key}", base.trim_end_matches('/'));
        if let Some(old) = file.url.filter(|old| *old != url) {
            urls.by_url.insert(old, url.clone());
        }
        urls.by_id.insert(file.id, url);
    }
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn row(v: Value) -> serde_json::Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn a_body_keeps_its_leancloud_key_when_the_server_can_serve_it() {
        assert_eq!(
            "gamesaves/abc/logo.png",
            key_for(&row(json!({"key": "gamesaves/abc/logo.png"})), "f1")
        );
        assert_eq!(
            "imported/f1.png",
            key_for(&row(json!({"key": "../x", "name": "logo.PNG"})), "f1")
        );
        assert_eq!(
            "imported/f_2",
            key_for(&row(json!({"name": "noext"})), "f/2")
        );
        assert_eq!(
            "imported/f1.txt",
            key_for(&row(json!({"key": "1.1/classes", "name": "a.txt"})), "f1")
        );
    }
}
