//! File bodies in a bucket of S3-compatible object storage (AWS S3, MinIO, Ceph; tested against moto), what
//! several instances on one PostgreSQL database share. Each body is one object under `prefix + key`, with its
//! content type as the object's `Content-Type` and its MD5 as user metadata (`x-amz-meta-md5`), so a download
//! reads the facts with one `HEAD` and streams the bytes with one ranged `GET`.
//!
//! A body up to [`PART`] bytes is one `PUT` with `If-None-Match: *`: the store refuses it when the key has a body,
//! so a key is written once even by two requests at the same time. A larger body goes up in parts of [`PART`]
//! bytes (a multipart upload, aborted when the client's stream breaks or passes the limit, so nothing half
//! written is ever visible). Its MD5 is known only after the last part, when the object's metadata can no longer
//! change, so the object says `md5: pending` and its facts go into a sidecar object `<key>.meta` (a name no key
//! can take) written right after; until the sidecar exists the body counts as not there. Multipart uploads cannot
//! be conditional, so the key is checked with a `HEAD` first: two uploads of the same large body racing with one
//! token would both succeed, the later replacing the earlier.

use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures::stream::BoxStream;
use futures::{Stream, StreamExt, TryStreamExt};
use object_store::aws::AmazonS3Builder;
use object_store::path::Path as ObjectPath;
use object_store::{
    Attribute, Attributes, ClientOptions, GetOptions, GetRange, ObjectStore, ObjectStoreExt,
    PutMode, PutMultipartOptions, PutOptions, PutPayload, WriteMultipart,
};

use super::{BlobError, BlobMeta, BlobReader, BlobsConfigError, Meter};
use crate::config::S3Store;

/// Bodies up to this size are one conditional `PUT`; larger ones go up in parts of this size (S3's minimum
/// part is 5 MiB).
pub const PART: usize = 8 * 1024 * 1024;
/// Parts in flight at once during a multipart upload.
const PARTS_IN_FLIGHT: usize = 2;
/// The user metadata key of a body's MD5.
const MD5_KEY: &str = "md5";

/// A bucket (and prefix) of S3-compatible storage.
#[derive(Debug, Clone)]
pub struct S3Blobs {
    store: Arc<dyn ObjectStore>,
    prefix: String,
    describe: String,
}

/// One stored object, to read ranges of.
#[derive(Debug)]
pub struct ObjectRef {
    store: Arc<dyn ObjectStore>,
    path: ObjectPath,
}

impl ObjectRef {
    pub(super) async fn range(
        self,
        start: u64,
        len: u64,
    ) -> Result<BoxStream<'static, std::io::Result<Bytes>>, BlobError> {
        let opts = GetOptions {
            range: Some(GetRange::Bounded(start..start.saturating_add(len))),
            ..GetOptions::default()
        };
        let got = self
            .store
            .get_opts(&self.path, opts)
            .await
            .map_err(remote)?;
        Ok(got.into_stream().map_err(std::io::Error::other).boxed())
    }
}

fn remote(e: object_store::Error) -> BlobError {
    BlobError::Remote(e.to_string())
}

impl S3Blobs {
    /// The bucket `config` names. Credentials and the region come from the environment (`AWS_*`).
    pub fn new(config: &S3Store) -> Result<S3Blobs, BlobsConfigError> {
        // No whole-request timeout: a download streams for as long as the client reads.
        let mut client = ClientOptions::new();
        if config.tls_roots == leancloud_im::TlsRoots::Bundled {
            // Mozilla's roots built in, not the system's store (which may be empty: a `FROM scratch` image).
            client = webpki_root_certs::TLS_SERVER_ROOT_CERTS
                .iter()
                .filter_map(|der| object_store::Certificate::from_der(der).ok())
                .fold(client.with_no_system_certificates(true), |c, cert| {
                    c.with_root_certificate(cert)
                });
        }
        let client = client
            .with_connect_timeout(Duration::from_secs(10))
            .with_timeout_disabled()
            .with_allow_http(
                config
                    .endpoint
                    .as_deref()
                    .is_some_and(|e| e.starts_with("http://")),
            );
        let mut builder = AmazonS3Builder::from_env()
            .with_bucket_name(&config.bucket)
            .with_client_options(client);
        if let Some(region) = &config.region {
            builder = builder.with_region(region);
        } else if std::env::var_os("AWS_REGION").is_none()
            && std::env::var_os("AWS_DEFAULT_REGION").is_none()
        {
            builder = builder.with_region("us-east-1");
        }
        if let Some(endpoint) = &config.endpoint {
            builder = builder
                .with_endpoint(endpoint)
                .with_virtual_hosted_style_request(false);
        }
        let store = builder.build().map_err(|e| (config, e))?;
        let prefix = config.prefix.trim_matches('/');
        Ok(S3Blobs {
            store: Arc::new(store),
            prefix: if prefix.is_empty() {
                String::new()
            } else {
                format!("{prefix}/")
            },
            describe: config.describe(),
        })
    }

    pub fn describe(&self) -> String {
        self.describe.clone()
    }

    fn path(&self, key: &str) -> ObjectPath {
        ObjectPath::from(format!("{}{key}", self.prefix))
    }

    fn attributes(content_type: &str, md5: &str) -> Attributes {
        let mut attributes = Attributes::new();
        attributes.insert(Attribute::ContentType, content_type.to_string().into());
        attributes.insert(Attribute::Metadata(MD5_KEY.into()), md5.to_string().into());
        attributes
    }

    pub(super) async fn put_new<S, E>(
        &self,
        key: &str,
        content_type: &str,
        mut body: S,
        max: u64,
    ) -> Result<BlobMeta, BlobError>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        let path = self.path(key);
        let mut meter = Meter::new(max);
        let mut first = BytesMut::new();
        // The first part decides: a body that ends within it is one conditional PUT.
        let mut ended = true;
        while let Some(chunk) = meter.next(&mut body).await? {
            first.extend_from_slice(&chunk);
            if first.len() > PART {
                ended = false;
                break;
            }
        }
        if ended {
            let meta = meter.finish(content_type);
            let opts = PutOptions {
                mode: PutMode::Create,
                attributes: Self::attributes(content_type, &meta.md5),
                ..PutOptions::default()
            };
            return match self
                .store
                .put_opts(&path, PutPayload::from(first.freeze()), opts)
                .await
            {
                Ok(_) => Ok(meta),
                Err(
                    object_store::Error::AlreadyExists { .. }
                    | object_store::Error::Precondition { .. },
                ) => Err(BlobError::Exists),
                Err(e) => Err(remote(e)),
            };
        }
        // A large body: in parts, its facts in the sidecar once the last part is in.
        match self.store.head(&path).await {
            Ok(_) => return Err(BlobError::Exists),
            Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => return Err(remote(e)),
        }
        let upload = self
            .store
            .put_multipart_opts(
                &path,
                PutMultipartOptions {
                    attributes: Self::attributes(content_type, "pending"),
                    ..PutMultipartOptions::default()
                },
            )
            .await
            .map_err(remote)?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, PART);
        let written = async {
            writer.put(first.freeze());
            while let Some(chunk) = meter.next(&mut body).await? {
                writer
                    .wait_for_capacity(PARTS_IN_FLIGHT)
                    .await
                    .map_err(remote)?;
                writer.put(chunk);
            }
            Ok::<(), BlobError>(())
        }
        .await;
        if let Err(e) = written {
            let _ = writer.abort().await;
            return Err(e);
        }
        writer.finish().await.map_err(remote)?;
        let meta = meter.finish(content_type);
        self.write_sidecar(&path, content_type, &meta.md5).await?;
        Ok(meta)
    }

    /// The facts of a multipart body, once its MD5 is known.
    async fn write_sidecar(
        &self,
        path: &ObjectPath,
        content_type: &str,
        md5: &str,
    ) -> Result<(), BlobError> {
        let sidecar = ObjectPath::from(format!("{path}.meta"));
        let facts = serde_json::json!({"md5": md5, "content_type": content_type}).to_string();
        self.store
            .put(&sidecar, PutPayload::from(facts))
            .await
            .map_err(remote)?;
        Ok(())
    }

    pub(super) async fn open(&self, key: &str) -> Result<Option<BlobReader>, BlobError> {
        let path = self.path(key);
        let head = GetOptions {
            head: true,
            ..GetOptions::default()
        };
        let got = match self.store.get_opts(&path, head).await {
            Ok(got) => got,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(remote(e)),
        };
        let attr = |a: &Attribute| got.attributes.get(a).map(|v| v.to_string());
        let mut md5 = attr(&Attribute::Metadata(MD5_KEY.into())).unwrap_or_default();
        let mut content_type =
            attr(&Attribute::ContentType).unwrap_or_else(|| "application/octet-stream".into());
        if md5 == "pending" || md5.is_empty() {
            // A multipart body: its facts are in the sidecar (no sidecar yet: the upload is finishing).
            let sidecar = ObjectPath::from(format!("{path}.meta"));
            let facts = match self.store.get(&sidecar).await {
                Ok(got) => got.bytes().await.map_err(remote)?,
                Err(object_store::Error::NotFound { .. }) => return Ok(None),
                Err(e) => return Err(remote(e)),
            };
            let facts: serde_json::Value = serde_json::from_slice(&facts)
                .map_err(|e| BlobError::Remote(format!("{sidecar}: {e}")))?;
            md5 = facts["md5"].as_str().unwrap_or_default().to_string();
            if let Some(ct) = facts["content_type"].as_str() {
                content_type = ct.to_string();
            }
        }
        let meta = BlobMeta {
            size: got.meta.size,
            md5,
            content_type,
        };
        Ok(Some(BlobReader::object(
            meta,
            ObjectRef {
                store: self.store.clone(),
                path,
            },
        )))
    }

    pub(super) async fn delete(&self, key: &str) -> Result<bool, BlobError> {
        let path = self.path(key);
        let existed = match self.store.head(&path).await {
            Ok(_) => true,
            Err(object_store::Error::NotFound { .. }) => false,
            Err(e) => return Err(remote(e)),
        };
        if existed {
            self.store.delete(&path).await.map_err(remote)?;
        }
        let sidecar = ObjectPath::from(format!("{path}.meta"));
        match self.store.delete(&sidecar).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => return Err(remote(e)),
        }
        Ok(existed)
    }
}
