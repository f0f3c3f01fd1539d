//! Files (`_File`): the upload flow every official SDK speaks in its `s3` mode (`leancloud-users-files-push.md`
//! §2.6), external files, deletion, and the expiry of uploads that never finished.
//!
//! 1. [`issue_upload`] (`POST /1.1/fileTokens`) creates the `_File` object — `name`, `key`, `url`, `mime_type`,
//!    `metaData`, `ACL` — and a one-time upload token, bound to the key, the size limit and an expiry; it answers
//!    where to `PUT` the bytes (`upload_url`, on this server).
//! 2. [`receive_upload`] (`PUT /upload/{key}?token=…`) checks the token and stores the body once.
//! 3. [`callback`] (`POST /1.1/fileCallback`) ends the upload: `result: false` deletes the file; `true` (or no
//!    callback at all, once the token expires) keeps it when its body arrived. An upload whose body never came
//!    is deleted when its token expires ([`sweep_expired`]).
//!
//! A file's URL is the public base of the server and its key (`{base}/{key}`), served by path (not host: the
//! iOS SDK drops the port from `Host`). `_File` objects are immutable; only a caller the ACL lets write (the
//! master key always; by default nobody else) deletes one, and its body with it.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::Stream;
use rand::distr::{Alphanumeric, SampleString};
use serde_json::{json, Map, Value};
use sha1::{Digest, Sha1};

use super::Services;
use crate::config::FilesConfig;
use crate::store::blobs::{valid_key, BlobError, Blobs};
use crate::store::objects::{self, Created};
use crate::store::uploads::{self, Upload};
use crate::store::{Caller, StoreError};

/// The class of files.
pub const FILE_CLASS: &str = "_File";
/// What `bucket` answers (SDKs keep it, none uses it).
const BUCKET: &str = "files";

/// The file storage of a server: the bodies and the settings.
#[derive(Debug)]
pub struct Files {
    pub blobs: Blobs,
    pub config: FilesConfig,
}

impl Files {
    pub fn new(blobs: Blobs, config: FilesConfig) -> Arc<Files> {
        Arc::new(Files { blobs, config })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Blob(#[from] BlobError),
    /// A request the API refuses (code 1, as LeanCloud answers parameter errors).
    #[error("{0}")]
    Invalid(String),
    /// The upload token is unknown, used, expired or for another key.
    #[error("The upload token is invalid or expired.")]
    Token,
    #[error("Could not find file by id '{0}'.")]
    NotFound(String),
}

/// `POST /1.1/fileTokens`: what the SDK sends.
#[derive(Debug, Clone, Default)]
pub struct NewUpload {
    pub name: String,
    pub mime_type: Option<String>,
    pub meta_data: Map<String, Value>,
    pub acl: Option<Value>,
    /// A key of the caller's choosing (master key only).
    pub key: Option<String>,
    /// Keep the name as the key's last segment.
    pub keep_file_name: bool,
}

/// The content type of a file named `name`, by its extension (`application/octet-stream` when unknown).
pub fn mime_for(name: &str) -> String {
    mime_guess::from_path(name)
        .first()
        .map_or_else(|| "application/octet-stream".to_string(), |m| m.to_string())
}

/// Whether a chosen key would be served at a path the API answers (files are served at `/{key}`).
pub fn shadows_api(key: &str) -> bool {
    let first = key.split('/').next().unwrap_or("");
    matches!(
        first,
        "1.1" | "1.2" | "v1" | "__admin" | "console" | "upload" | "metrics"
    )
}

fn token_hash(token: &str) -> String {
    hex::encode(Sha1::digest(token.as_bytes()))
}

/// A new key: 32 letters and digits, with the name's extension when it has a plain one, or the name itself
/// as a last segment (`keep_file_name`).
fn new_key(name: &str, keep_file_name: bool) -> String {
    let random = Alphanumeric.sample_string(&mut rand::rng(), 32);
    if keep_file_name && valid_key(name) && !name.contains('/') {
        return format!("{random}/{name}");
    }
    match plain_extension(name) {
        Some(ext) => format!("{random}.{ext}"),
        None => random,
    }
}

/// The extension of `name`, lower-cased, when it is a plain one (1 to 8 letters and digits) a key may carry.
pub fn plain_extension(name: &str) -> Option<String> {
    let (_, ext) = name.rsplit_once('.')?;
    ((1..=8).contains(&ext.len()) && ext.bytes().all(|b| b.is_ascii_alphanumeric()))
        .then(|| ext.to_ascii_lowercase())
}

/// The default ACL of a file: anyone may read it; its uploader (a signed-in user) may delete it, and nobody else
/// but the master key (LeanCloud: «删除文件默认关闭»).
fn default_acl(caller: &Caller) -> Value {
    match caller.user_id() {
        Some(owner) => json!({"*": {"read": true}, owner: {"read": true, "write": true}}),
        None => json!({"*": {"read": true}}),
    }
}

/// Creates the `_File` object of an upload and its one-time token. `base` is the server's public URL.
pub async fn issue_upload(
    svc: &Services,
    caller: Caller,
    req: NewUpload,
    base: &str,
) -> Result<Map<String, Value>, FileError> {
    let files = &svc.files;
    if req.name.trim().is_empty() {
        return Err(FileError::Invalid("A file needs a name.".into()));
    }
    // Only the master key chooses a key; a client's is ignored (the JS SDK 3.x sends a random one with every
    // upload, and an app-key client must not squat on keys), as LeanCloud's own s3 mode does.
    let key = match req.key.filter(|_| caller.is_master()) {
        Some(key) if !valid_key(&key) || shadows_api(&key) => {
            return Err(FileError::Invalid(format!("Unsupported file key {key:?}.")))
        }
        Some(key) => key,
        None => new_key(&req.name, req.keep_file_name),
    };
    let mime_type = req
        .mime_type
        .filter(|m| !m.trim().is_empty())
        .unwrap_or_else(|| mime_for(&req.name));
    let url = format!("{}/{key}", base.trim_end_matches('/'));
    let mut meta = req.meta_data;
    match caller.user_id() {
        Some(owner) => {
            meta.insert("owner".into(), json!(owner));
        }
        None => {
            meta.entry("owner").or_insert_with(|| json!("unknown"));
        }
    }
    let mut body = Map::new();
    body.insert("name".into(), json!(req.name));
    body.insert("key".into(), json!(key));
    body.insert("url".into(), json!(url));
    body.insert("mime_type".into(), json!(mime_type));
    body.insert("bucket".into(), json!(BUCKET));
    body.insert("provider".into(), json!("s3"));
    body.insert("metaData".into(), Value::Object(meta));
    body.insert(
        "ACL".into(),
        req.acl.unwrap_or_else(|| default_acl(&caller)),
    );
    let created = objects::create(&svc.db, FILE_CLASS.to_string(), body.clone(), true).await?;
    let token = Alphanumeric.sample_string(&mut rand::rng(), 40);
    let ttl = i64::try_from(files.config.upload_ttl.as_millis()).unwrap_or(i64::MAX);
    let upload = Upload {
        token_hash: token_hash(&token),
        object_id: created.id.clone(),
        key: key.clone(),
        mime_type: mime_type.clone(),
        max_size: files.config.max_bytes,
        expires_at: chrono::Utc::now().timestamp_millis().saturating_add(ttl),
        uploaded: false,
    };
    uploads::issue(&svc.db, upload).await?;
    let mut answer = body;
    answer.remove("ACL");
    answer.insert("objectId".into(), json!(created.id));
    if let Some(at) = created.body.get("createdAt") {
        answer.insert("createdAt".into(), at.clone());
    }
    answer.insert(
        "upload_url".into(),
        json!(format!(
            "{}/upload/{key}?token={token}",
            base.trim_end_matches('/')
        )),
    );
    answer.insert("token".into(), json!(token));
    Ok(answer)
}

/// Stores the body of an upload, once, if `token` is the live token of `key`. Answers its size.
pub async fn receive_upload<S, E>(
    svc: &Services,
    key: &str,
    token: &str,
    body: S,
) -> Result<u64, FileError>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    let now = chrono::Utc::now().timestamp_millis();
    let upload = match uploads::find(&svc.db, token_hash(token)).await? {
        Some(u) if u.key == key && !u.uploaded && u.expires_at > now => u,
        _ => return Err(FileError::Token),
    };
    let max = upload.max_size.min(svc.files.config.max_bytes);
    let meta = svc
        .files
        .blobs
        .put_new(key, &upload.mime_type, body, max)
        .await?;
    uploads::mark_uploaded(&svc.db, upload.token_hash).await?;
    Ok(meta.size)
}

/// `POST /1.1/fileCallback`: `result: false` deletes the file and its body; `true` ends the upload (a file
/// whose body never arrived is then deleted). Unknown tokens are ignored, as the SDKs ignore the answer.
pub async fn callback(svc: &Services, token: &str, result: bool) -> Result<(), FileError> {
    let Some(upload) = uploads::find(&svc.db, token_hash(token)).await? else {
        return Ok(());
    };
    if result && upload.uploaded {
        uploads::remove(&svc.db, upload.token_hash).await?;
        return Ok(());
    }
    if result {
        // The body may still be on its way (a callback sent before the PUT ended): the token's expiry decides.
        return Ok(());
    }
    abandon(svc, upload).await
}

/// Deletes an unfinished or refused upload: its object, its body, its token.
async fn abandon(svc: &Services, upload: Upload) -> Result<(), FileError> {
    match objects::delete(
        &svc.db,
        Caller::Master,
        FILE_CLASS.to_string(),
        upload.object_id.clone(),
        None,
    )
    .await
    {
        Ok(()) | Err(StoreError::NotFound { .. }) | Err(StoreError::ClassNotFound(_)) => {}
        Err(e) => return Err(e.into()),
    }
    svc.files.blobs.delete(&upload.key).await?;
    uploads::remove(&svc.db, upload.token_hash).await?;
    Ok(())
}

/// Deletes the uploads whose token expired without a body, and forgets the finished ones whose callback never
/// came. Answers how many files were deleted.
pub async fn sweep_expired(svc: &Services) -> Result<usize, FileError> {
    let now = chrono::Utc::now().timestamp_millis();
    let mut deleted = 0;
    for upload in uploads::expired(&svc.db, now, 500).await? {
        if upload.uploaded {
            uploads::remove(&svc.db, upload.token_hash).await?;
        } else {
            abandon(svc, upload).await?;
            deleted += 1;
        }
    }
    Ok(deleted)
}

/// Runs [`sweep_expired`] every `every`, for as long as the server runs.
pub async fn sweep_forever(svc: Services, every: Duration) {
    let mut tick = tokio::time::interval(every);
    loop {
        tick.tick().await;
        match sweep_expired(&svc).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(files = n, "deleted uploads that never finished"),
            Err(e) => tracing::warn!(error = %e, "expired uploads not swept"),
        }
    }
}

/// `POST /1.1/files`: a file that lives elsewhere (`url`), recorded with `metaData.__source: "external"`.
pub async fn create_external(
    svc: &Services,
    caller: &Caller,
    mut body: Map<String, Value>,
) -> Result<Created, FileError> {
    let url = body.get("url").and_then(Value::as_str).unwrap_or("");
    if url.is_empty() {
        return Err(FileError::Invalid("An external file needs a url.".into()));
    }
    if body
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .is_empty()
    {
        return Err(FileError::Invalid("A file needs a name.".into()));
    }
    let mut meta = match body.remove("metaData") {
        Some(Value::Object(m)) => m,
        _ => Map::new(),
    };
    meta.insert("__source".into(), json!("external"));
    match caller.user_id() {
        Some(owner) => {
            meta.insert("owner".into(), json!(owner));
        }
        None => {
            meta.entry("owner").or_insert_with(|| json!("unknown"));
        }
    }
    body.insert("metaData".into(), Value::Object(meta));
    if !body.contains_key("mime_type") {
        let name = body.get("name").and_then(Value::as_str).unwrap_or("");
        body.insert("mime_type".into(), json!(mime_for(name)));
    }
    body.entry("ACL").or_insert_with(|| default_acl(caller));
    // Answered whole: the JS SDK 3.x takes the file's name and url from the answer.
    Ok(objects::create(&svc.db, FILE_CLASS.to_string(), body, true).await?)
}

/// `DELETE /1.1/files/{id}`: the object (if `caller` may write it), then its body and any upload token.
pub async fn delete(svc: &Services, caller: Caller, id: &str) -> Result<(), FileError> {
    let row = objects::get(
        &svc.db,
        Caller::Master,
        FILE_CLASS.to_string(),
        id.to_string(),
        false,
    )
    .await
    .or_else(|e| match e {
        StoreError::ClassNotFound(_) => Ok(None),
        e => Err(e),
    })?
    .ok_or_else(|| FileError::NotFound(id.to_string()))?;
    objects::delete(
        &svc.db,
        caller,
        FILE_CLASS.to_string(),
        id.to_string(),
        None,
    )
    .await?;
    let ours = row.get("provider").and_then(Value::as_str) == Some("s3");
    if let (true, Some(key)) = (ours, row.get("key").and_then(Value::as_str)) {
        if valid_key(key) {
            svc.files.blobs.delete(key).await?;
        }
        uploads::remove_for_object(&svc.db, id.to_string()).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types_follow_the_extension() {
        assert_eq!("text/plain", mime_for("Blah.txt"));
        assert_eq!("image/png", mime_for("logo.PNG"));
        assert_eq!("application/octet-stream", mime_for("xxx"));
    }

    #[test]
    fn keys_are_random_with_a_plain_extension_or_the_kept_name() {
        let k = new_key("photo.JPG", false);
        assert_eq!(36, k.len(), "{k}");
        assert!(k.ends_with(".jpg") && valid_key(&k), "{k}");
        assert_eq!(32, new_key("no extension", false).len());
        assert_eq!(32, new_key("weird.ex t", false).len());
        let kept = new_key("report-2026.pdf", true);
        assert!(
            kept.ends_with("/report-2026.pdf") && valid_key(&kept),
            "{kept}"
        );
        assert_ne!(new_key("a.txt", false), new_key("a.txt", false));
    }
}
