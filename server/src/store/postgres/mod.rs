//! The PostgreSQL backend (`--db postgres://…`): the pool, the schema migrations and what every operation's
//! PostgreSQL side shares (`shared`: the queries several areas run). The operations themselves sit in each store
//! area's `postgres.rs` (`store/objects/postgres.rs`, `store/messages/postgres.rs`, …), a peer of its `sqlite.rs`
//! under the area's rules, for a database that several server instances share.
//!
//! Every operation is one transaction on a pooled connection (tokio-postgres with deadpool), and answers only
//! after its commit, as on SQLite. What SQLite gets from its single writer, PostgreSQL gets from row locks:
//! - sends to one conversation take that conversation's clock row (`conversation_clocks`) first, so their
//!   timestamps and `seq` follow commit order whichever instance sent them;
//! - broadcasts take one advisory lock, so the broadcast cursor (`seq > cursor`) never skips one committed late;
//! - the creation of a `unique` conversation locks its member set, so two instances never create it twice.
//!
//! Objects' fields are `jsonb` (queries use its operators and GIN indexes); a message's `data` is the sender's
//! text, kept byte for byte.

pub mod copy;
pub mod limits;
pub mod notify;
pub(crate) mod shared;

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use tokio_postgres::types::ToSql;

use crate::store::{Lane, StoreError, StoreResult};

/// Versioned migrations: each runs once, in order, in its own transaction, recorded in `schema_version`.
const MIGRATIONS: [(i32, &str); 12] = [
    (1, include_str!("../../../migrations/postgres/001_init.sql")),
    (
        2,
        include_str!("../../../migrations/postgres/002_files.sql"),
    ),
    (
        3,
        include_str!("../../../migrations/postgres/003_receipts_patches.sql"),
    ),
    (
        4,
        include_str!("../../../migrations/postgres/004_users.sql"),
    ),
    (
        5,
        include_str!("../../../migrations/postgres/005_temp_conversations.sql"),
    ),
    (
        6,
        include_str!("../../../migrations/postgres/006_relations.sql"),
    ),
    (
        7,
        include_str!("../../../migrations/postgres/007_conv_admin.sql"),
    ),
    (
        8,
        include_str!("../../../migrations/postgres/008_class_permissions.sql"),
    ),
    (
        9,
        include_str!("../../../migrations/postgres/009_user_tokens.sql"),
    ),
    (
        10,
        include_str!("../../../migrations/postgres/010_push_queue.sql"),
    ),
    (
        11,
        include_str!("../../../migrations/postgres/011_push_topic.sql"),
    ),
    (
        12,
        include_str!("../../../migrations/postgres/012_installation_channels.sql"),
    ),
];

/// Taken while migrating, so instances starting together migrate once.
const MIGRATION_LOCK: i64 = 0x6c63_6d69_6772;

/// Connections per instance.
const POOL_SIZE: usize = 16;
/// Connections app-key requests (the public key: finds, updates, deletes) may hold at once, so a flood of them
/// never takes the connections sends and master-key requests need (review findings H2/M6, as the SQLite side's
/// lanes).
const SHARED_LANE_CONNECTIONS: usize = POOL_SIZE / 4;

/// Shared handle to a PostgreSQL database. Cheap to clone. `Debug` shows no credentials.
#[derive(Clone)]
pub struct Pg {
    inner: Arc<PgInner>,
}

struct PgInner {
    pool: Pool,
    shared_lane: Arc<tokio::sync::Semaphore>,
    config: tokio_postgres::Config,
    tls: tokio_postgres_rustls::MakeRustlsConnect,
}

impl fmt::Debug for Pg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pg")
            .field("database", &describe(&self.inner.config))
            .finish()
    }
}

pub use crate::config::describe_postgres as describe;

/// An error with its causes, `outer: inner: …` (the pool's and the driver's errors keep the reason, such as a
/// certificate that does not verify, in their sources). None of them quotes the connection string.
fn causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let more = cause.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = cause.source();
    }
    text
}

/// Whether `--db` names a PostgreSQL database rather than a SQLite file.
pub fn is_url(db: &str) -> bool {
    db.starts_with("postgres://") || db.starts_with("postgresql://")
}

/// TLS for `sslmode=prefer|require`: the Mozilla roots, plus the PEM certificates of `extra_ca` (a managed
/// database's own CA, such as Amazon RDS's, is not among them).
fn tls(
    extra_ca: Option<&std::path::Path>,
) -> StoreResult<tokio_postgres_rustls::MakeRustlsConnect> {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    roots.add_parsable_certificates(webpki_root_certs::TLS_SERVER_ROOT_CERTS.iter().cloned());
    if let Some(path) = extra_ca {
        let certs = rustls::pki_types::CertificateDer::pem_file_iter(path)
            .map_err(|e| StoreError::internal(format!("cannot read {}: {e}", path.display())))?;
        for cert in certs {
            let cert = cert
                .map_err(|e| StoreError::internal(format!("bad PEM in {}: {e}", path.display())))?;
            roots
                .add(cert)
                .map_err(|e| StoreError::internal(format!("bad CA in {}: {e}", path.display())))?;
        }
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(StoreError::internal)?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
}

impl Pg {
    /// Connects (checking the database answers) and brings the schema to the newest version.
    pub async fn connect(url: &str, extra_ca: Option<&std::path::Path>) -> StoreResult<Pg> {
        // The parser's error never quotes the string, so the password stays out of it.
        let config = tokio_postgres::Config::from_str(url)
            .map_err(|e| StoreError::internal(format!("invalid PostgreSQL URL: {e}")))?;
        let tls = tls(extra_ca)?;
        let manager = Manager::from_config(
            config.clone(),
            tls.clone(),
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .wait_timeout(Some(std::time::Duration::from_secs(10)))
            .create_timeout(Some(std::time::Duration::from_secs(10)))
            .build()
            .map_err(StoreError::internal)?;
        let pg = Pg {
            inner: Arc::new(PgInner {
                pool,
                shared_lane: Arc::new(tokio::sync::Semaphore::new(SHARED_LANE_CONNECTIONS)),
                config,
                tls,
            }),
        };
        pg.migrate().await?;
        Ok(pg)
    }

    async fn migrate(&self) -> StoreResult<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
            .await?;
        tx.batch_execute(
            "CREATE TABLE IF NOT EXISTS schema_version (
                 version INTEGER PRIMARY KEY,
                 applied_at TIMESTAMPTZ NOT NULL DEFAULT now())",
        )
        .await?;
        let current: i32 = tx
            .query_one("SELECT COALESCE(MAX(version), 0) FROM schema_version", &[])
            .await?
            .get(0);
        for (version, sql) in MIGRATIONS {
            if version > current {
                tx.batch_execute(sql).await?;
                tx.execute(
                    "INSERT INTO schema_version (version) VALUES ($1)",
                    &[&version],
                )
                .await?;
                tracing::info!(version, "postgres: schema migrated");
            }
        }
        tx.commit().await?;
        Ok(())
    }

    /// A pooled connection.
    pub async fn client(&self) -> StoreResult<deadpool_postgres::Object> {
        self.inner
            .pool
            .get()
            .await
            .map_err(|e| StoreError::internal(format!("no database connection: {}", causes(&e))))
    }

    /// A pooled connection for a request of `lane`: app-key requests ([`Lane::Shared`]) first wait for one of
    /// the few connections they may hold.
    pub async fn client_in(&self, lane: Lane) -> StoreResult<Pooled> {
        let permit = match lane {
            Lane::Priority => None,
            Lane::Shared => Some(
                self.inner
                    .shared_lane
                    .clone()
                    .acquire_owned()
                    .await
                    .map_err(|_| StoreError::internal("database is closed"))?,
            ),
        };
        Ok(Pooled {
            client: self.client().await?,
            _permit: permit,
        })
    }

    /// A connection of its own, outside the pool: for `LISTEN`, which holds it for as long as it listens.
    pub async fn dedicated(
        &self,
    ) -> StoreResult<(
        tokio_postgres::Client,
        tokio_postgres::Connection<
            tokio_postgres::Socket,
            <tokio_postgres_rustls::MakeRustlsConnect as tokio_postgres::tls::MakeTlsConnect<
                tokio_postgres::Socket,
            >>::Stream,
        >,
    )> {
        self.inner
            .config
            .connect(self.inner.tls.clone())
            .await
            .map_err(|e| StoreError::internal(format!("no database connection: {}", causes(&e))))
    }

    /// Whether the database answers a query within 2 s.
    /// `pg_database_size` of this database, in bytes.
    pub async fn database_size(&self) -> StoreResult<i64> {
        let client = self.client().await?;
        Ok(client
            .query_one("SELECT pg_database_size(current_database())", &[])
            .await?
            .get(0))
    }

    pub async fn ping(&self) -> bool {
        let check = async {
            let client = self.client().await.ok()?;
            client.simple_query("SELECT 1").await.ok()
        };
        matches!(
            tokio::time::timeout(std::time::Duration::from_secs(2), check).await,
            Ok(Some(_))
        )
    }

    pub fn close(&self) {
        self.inner.shared_lane.close();
        self.inner.pool.close();
    }

    /// Runs `f` on a connection of its own in a runtime of its own, on another thread: for the synchronous
    /// inspector, which may be called from inside a runtime (a test's).
    pub fn blocking<T: Send + 'static>(
        &self,
        f: impl for<'c> FnOnce(
                &'c deadpool_postgres::Client,
            ) -> futures::future::BoxFuture<'c, StoreResult<T>>
            + Send
            + 'static,
    ) -> StoreResult<T> {
        let (config, tls) = (self.inner.config.clone(), self.inner.tls.clone());
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(StoreError::internal)?;
            runtime.block_on(async move {
                let pool =
                    Pool::builder(Manager::from_config(config, tls, ManagerConfig::default()))
                        .max_size(1)
                        .runtime(deadpool_postgres::Runtime::Tokio1)
                        .build()
                        .map_err(StoreError::internal)?;
                let client = pool
                    .get()
                    .await
                    .map_err(|e| StoreError::internal(format!("no database connection: {e}")))?;
                f(&client).await
            })
        })
        .join()
        .map_err(|_| StoreError::internal("inspector thread panicked"))?
    }
}

/// A pooled connection, and for an app-key request its place among the connections those may hold.
pub struct Pooled {
    client: deadpool_postgres::Object,
    _permit: Option<tokio::sync::OwnedSemaphorePermit>,
}

impl fmt::Debug for Pooled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pooled")
            .field("shared_lane", &self._permit.is_some())
            .finish()
    }
}

impl std::ops::Deref for Pooled {
    type Target = deadpool_postgres::Object;
    fn deref(&self) -> &Self::Target {
        &self.client
    }
}

impl std::ops::DerefMut for Pooled {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.client
    }
}

/// Query parameters built up with the SQL text (`$1`, `$2`, … in push order).
#[derive(Default)]
pub(crate) struct Params {
    values: Vec<Box<dyn ToSql + Sync + Send>>,
}

impl Params {
    /// Adds a value and returns its placeholder.
    pub(crate) fn push(&mut self, value: impl ToSql + Sync + Send + 'static) -> String {
        self.values.push(Box::new(value));
        format!("${}", self.values.len())
    }

    pub(crate) fn refs(&self) -> Vec<&(dyn ToSql + Sync)> {
        self.values
            .iter()
            .map(|v| v.as_ref() as &(dyn ToSql + Sync))
            .collect()
    }
}

/// A JSON array of strings (a `recipients` column) as a list; NULL is none.
pub(crate) fn strings(v: Option<serde_json::Value>) -> Vec<String> {
    v.and_then(|v| serde_json::from_value(v).ok())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// H2/M6 on PostgreSQL: app-key requests hold at most a quarter of the pool, and a master-key request is
    /// served while they do. Needs the cluster at `LEANCLOUD_TEST_POSTGRES` (`scripts/test.sh` starts one).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn app_key_requests_hold_at_most_a_quarter_of_the_connections() {
        let url = std::env::var("LEANCLOUD_TEST_POSTGRES").expect(
            "LEANCLOUD_TEST_POSTGRES names a PostgreSQL cluster (scripts/test.sh starts one)",
        );
        let pg = Pg::connect(&url, None).await.expect("connects");
        let mut held = Vec::new();
        for _ in 0..SHARED_LANE_CONNECTIONS {
            held.push(
                pg.client_in(Lane::Shared)
                    .await
                    .expect("a shared connection"),
            );
        }
        let waiting = tokio::time::timeout(
            std::time::Duration::from_millis(200),
            pg.client_in(Lane::Shared),
        )
        .await;
        assert!(waiting.is_err(), "a fifth app-key request waits");
        let master = tokio::time::timeout(
            std::time::Duration::from_secs(5),
            pg.client_in(Lane::Priority),
        )
        .await
        .expect("a master-key request is not held up")
        .expect("a connection");
        master.simple_query("SELECT 1").await.expect("served");
        held.pop();
        tokio::time::timeout(
            std::time::Duration::from_secs(5),
            pg.client_in(Lane::Shared),
        )
        .await
        .expect("a freed place is taken")
        .expect("a connection");
    }
}
