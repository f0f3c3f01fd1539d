//! `leancloud-migrate`: export an app's IM data from LeanCloud's API, import it (and the console's data
//! export) into a `leancloud-server` database, and verify the result. Step by step: README.md, "Leaving
//! LeanCloud"; file format: migrate/README.md.
//!
//! ```text
//! leancloud-migrate export --out DIR [--class C]… [--files-only] [--file-domain URL] [--max-requests-per-second N]
//! leancloud-migrate import --db PATH|postgres://… SOURCE… [--file-url-base URL [--files-dir DIR]] [--dry-run]
//! leancloud-migrate copy --from PATH [--to postgres://…]
//! leancloud-migrate verify --from SOURCE --to URL
//! ```

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use leancloud_migrate::api::{config, Api, ApiOptions};
use leancloud_migrate::export::{export, ExportOptions, DEFAULT_CLASSES};
use leancloud_migrate::files::{DownloadOptions, FAILED};
use leancloud_migrate::import::BodiesTarget;
use leancloud_migrate::{import, verify, Error};

#[derive(Debug, Parser)]
#[command(
    name = "leancloud-migrate",
    version,
    about = "Leave LeanCloud with every conversation, message and subscriber: export, import, verify"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

/// Credentials and API server; the `LEANCLOUD_*` variables the functions read unless given here.
#[derive(Debug, Clone, Args)]
struct Credentials {
    /// App id (default: LEANCLOUD_APP_ID).
    #[arg(long)]
    app_id: Option<String>,
    /// Master key (default: LEANCLOUD_APP_MASTER_KEY, or LEANCLOUD_MASTER_KEY).
    #[arg(long)]
    master_key: Option<String>,
    /// API server URL, e.g. https://xxxxxxxx.api.lncldglobal.com (default: LEANCLOUD_API_SERVER, else
    /// derived from the app id as the SDK does).
    #[arg(long)]
    api_server: Option<String>,
}

#[derive(Debug, Clone, Args)]
struct Pace {
    /// At most this many API requests per second (0: no limit).
    #[arg(long, default_value_t = 20.0)]
    max_requests_per_second: f64,
    /// Limit of one request, in seconds.
    #[arg(long, default_value_t = 30.0)]
    request_timeout: f64,
    /// Attempts per request before giving up (429, 5xx, timeouts and dropped connections are retried).
    #[arg(long, default_value_t = 30)]
    max_attempts: u32,
}

impl Pace {
    fn options(&self) -> ApiOptions {
        ApiOptions {
            max_requests_per_second: self.max_requests_per_second.max(0.0),
            request_timeout: Duration::from_secs_f64(self.request_timeout.max(0.1)),
            max_attempts: self.max_attempts.max(1),
        }
    }
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Export _Conversation, _SysMessage, _File, _User, _Role, _Installation and --class classes, the body of every file, every
    /// conversation's history and the service-conversation subscribers into DIR (resumable: run it again to
    /// continue; a re-run also retries the file bodies that failed).
    Export {
        /// The export directory (created if missing; an unfinished export in it is continued).
        #[arg(long)]
        out: PathBuf,
        /// Another class to export (repeatable), e.g. --class _User --class Post.
        #[arg(long = "class")]
        classes: Vec<String>,
        #[command(flatten)]
        credentials: Credentials,
        #[command(flatten)]
        pace: Pace,
        /// Also export each service-conversation subscriber's own history (where LeanCloud keeps the
        /// messages sent to chosen clients only); one or more requests per subscriber.
        #[arg(long)]
        subscriber_history: bool,
        /// Only _File and the file bodies: save the files today, before anything else is ready. A later
        /// export without this flag into the same DIR goes on with everything else.
        #[arg(long)]
        files_only: bool,
        /// The app's file domain (e.g. https://files.example.com), for _File rows without a url: their body
        /// is fetched from this URL + "/" + key.
        #[arg(long)]
        file_domain: Option<String>,
        /// At most this many file downloads started per second (0: no limit).
        #[arg(long, default_value_t = 10.0)]
        max_downloads_per_second: f64,
        /// File downloads at once.
        #[arg(long, default_value_t = 4)]
        download_concurrency: usize,
        /// No progress bars.
        #[arg(long)]
        quiet: bool,
    },
    /// Import export directories, console tarballs (.tar.gz) or .jsonl files into a leancloud-server
    /// database (stop the server first). Importing again changes nothing.
    Import {
        /// The server's SQLite file (created if missing), or a PostgreSQL database (`postgres://…`; or set
        /// LEANCLOUD_DATABASE_URL and pass `--db postgres`): imported into a temporary SQLite file, then copied.
        #[arg(long)]
        db: String,
        /// PEM file of the PostgreSQL server's CA, when it is not a public one (Amazon RDS, Cloud SQL).
        #[arg(long)]
        postgres_ca_file: Option<PathBuf>,
        /// Export directories, console .tar.gz files or .jsonl files.
        #[arg(required = true)]
        sources: Vec<PathBuf>,
        /// Read and count everything, write nothing.
        #[arg(long)]
        dry_run: bool,
        /// Move the exported file bodies into the server's file storage and rewrite file URLs (`_File.url`,
        /// `_lcfile.url` in messages) to this base + "/" + key: the server's public address, e.g.
        /// https://im.example.com.
        #[arg(long)]
        file_url_base: Option<String>,
        /// The server's file storage, as the server is started with: `--files-dir` (default `<db>.files` beside a
        /// SQLite file) or `--files-s3-bucket` and its options.
        #[command(flatten)]
        file_store: leancloud_server::config::FileStoreArgs,
        #[arg(long)]
        quiet: bool,
    },
    /// Copy a leancloud-server SQLite database into a PostgreSQL one (servers stopped), to move a server to
    /// PostgreSQL. Rows already there are kept, so copying again changes nothing.
    Copy {
        /// The server's SQLite file.
        #[arg(long)]
        from: PathBuf,
        /// The PostgreSQL database (`postgres://…`); default: LEANCLOUD_DATABASE_URL, which keeps a password
        /// out of the process list.
        #[arg(long)]
        to: Option<String>,
        /// PEM file of the PostgreSQL server's CA, when it is not a public one.
        #[arg(long)]
        postgres_ca_file: Option<PathBuf>,
    },
    /// Compare a source (an export directory, or the URL of a live API) with a server, class by class and
    /// conversation by conversation. Exits 1 when something differs.
    Verify {
        /// Export directory or API URL.
        #[arg(long)]
        from: String,
        /// The server to check (the same app id and master key).
        #[arg(long)]
        to: String,
        /// Classes to compare besides _Conversation and _SysMessage when --from is a URL.
        #[arg(long = "class")]
        classes: Vec<String>,
        /// Show every conversation, not only those that differ.
        #[arg(long)]
        all: bool,
        #[command(flatten)]
        credentials: Credentials,
        #[command(flatten)]
        pace: Pace,
    },
}

fn api(credentials: &Credentials, server: Option<&str>, pace: &Pace) -> Result<Api, Error> {
    let config = config(
        credentials.app_id.as_deref(),
        credentials.master_key.as_deref(),
        server.or(credentials.api_server.as_deref()),
    )?;
    Ok(Api::new(config, pace.options())?)
}

async fn run(cli: Cli) -> Result<bool, Error> {
    match cli.cmd {
        Cmd::Export {
            out,
            classes,
            credentials,
            pace,
            subscriber_history,
            files_only,
            file_domain,
            max_downloads_per_second,
            download_concurrency,
            quiet,
        } => {
            let api = api(&credentials, None, &pace)?;
            let downloads = DownloadOptions {
                file_domain,
                max_downloads_per_second: max_downloads_per_second.max(0.0),
                concurrency: download_concurrency.clamp(1, 64),
                timeout: pace.options().request_timeout,
                progress: !quiet,
                ..DownloadOptions::default()
            };
            eprintln!(
                "exporting app {} from {} into {}",
                api.client().config().app_id(),
                api.client().config().api_server(),
                out.display()
            );
            let summary = export(
                &api,
                &ExportOptions {
                    out: out.clone(),
                    extra_classes: classes,
                    progress: !quiet,
                    subscriber_history,
                    files_only,
                    downloads,
                },
            )
            .await
            .map_err(|e| {
                Error::Other(format!(
                    "{e}\nthe export stopped; run the same command again to continue from its checkpoint"
                ))
            })?;
            summary.print();
            let failed = summary.files.failed.len();
            if failed > 0 {
                eprintln!(
                    "{failed} file bodies were not saved (listed above and in {}); run the same command again to retry them",
                    out.join(FAILED).display()
                );
            }
            Ok(failed == 0)
        }
        Cmd::Import {
            db,
            postgres_ca_file,
            sources,
            dry_run,
            file_url_base,
            file_store,
            quiet,
        } => {
            let postgres = database_url(Some(db.clone()));
            let (dir, s3) = file_store.store();
            let bodies = match file_url_base {
                None => None,
                Some(base) if !(base.starts_with("http://") || base.starts_with("https://")) => {
                    return Err(Error::Other(format!(
                        "--file-url-base must be an http(s) URL, not {base:?}"
                    )))
                }
                Some(_) if postgres.is_some() && dir.is_none() && s3.is_none() => {
                    return Err(Error::Other(
                        "with a PostgreSQL database, give the server's file storage: --files-dir or --files-s3-bucket".into(),
                    ))
                }
                Some(base) => Some(BodiesTarget {
                    dir: dir.unwrap_or_else(|| {
                        leancloud_server::config::files_beside(std::path::Path::new(&db))
                    }),
                    s3,
                    url_base: base,
                }),
            };
            // Into PostgreSQL through a SQLite file of this run: the import's checks and its one transaction per
            // file stay the same, and the copy skips what is already there.
            let file = match &postgres {
                Some(_) => std::env::temp_dir()
                    .join(format!("leancloud-migrate-{}.sqlite3", std::process::id())),
                None => PathBuf::from(&db),
            };
            let path = file.clone();
            let result = tokio::task::spawn_blocking(move || {
                import::import(&path, &sources, dry_run, !quiet, bodies.as_ref())
            })
            .await
            .map_err(|e| Error::Other(format!("import task failed: {e}")))?;
            let (summary, result) = result;
            if result.is_ok() || !summary.files.is_empty() {
                summary.print();
            }
            let copied = match (&postgres, &result) {
                (Some(url), Ok(())) if !dry_run => copy(&file, url, postgres_ca_file.as_deref())
                    .await
                    .map(|_| ()),
                _ => Ok(()),
            };
            if postgres.is_some() {
                for suffix in ["", "-wal", "-shm"] {
                    let _ = std::fs::remove_file(format!("{}{suffix}", file.display()));
                }
            }
            result.and(copied).map(|()| true)
        }
        Cmd::Copy {
            from,
            to,
            postgres_ca_file,
        } => {
            let url = database_url(to).ok_or_else(|| {
                Error::Other("give --to postgres://… or set LEANCLOUD_DATABASE_URL".into())
            })?;
            copy(&from, &url, postgres_ca_file.as_deref()).await?;
            Ok(true)
        }
        Cmd::Verify {
            from,
            to,
            classes,
            all,
            credentials,
            pace,
        } => {
            let source = if from.starts_with("http://") || from.starts_with("https://") {
                let mut list: Vec<String> = DEFAULT_CLASSES.iter().map(|c| c.to_string()).collect();
                list.extend(classes.iter().cloned());
                let api = api(&credentials, Some(&from), &pace)?;
                verify::from_api(&api, &list, &[], false).await?
            } else {
                let dir = PathBuf::from(&from);
                tokio::task::spawn_blocking(move || verify::from_dir(&dir))
                    .await
                    .map_err(|e| Error::Other(format!("verify task failed: {e}")))??
            };
            let target_api = api(&credentials, Some(&to), &pace)?;
            let class_list: Vec<String> = source.classes.keys().cloned().collect();
            let convs: Vec<String> = source.conversations.keys().cloned().collect();
            let target = verify::from_api(&target_api, &class_list, &convs, true).await?;
            Ok(verify::print(&verify::compare(&source, &target), all))
        }
    }
}

/// The PostgreSQL URL `arg` names: itself, or LEANCLOUD_DATABASE_URL when `arg` is absent or just `postgres`.
fn database_url(arg: Option<String>) -> Option<String> {
    let env = || {
        std::env::var("LEANCLOUD_DATABASE_URL")
            .ok()
            .filter(|u| !u.is_empty())
    };
    match arg {
        Some(a) if leancloud_server::store::postgres::is_url(&a) => Some(a),
        Some(a) if a == "postgres" => env(),
        Some(_) => None,
        None => env(),
    }
}

/// Copies a SQLite database of the server into PostgreSQL and prints the counts.
async fn copy(
    from: &std::path::Path,
    url: &str,
    ca: Option<&std::path::Path>,
) -> Result<leancloud_server::store::postgres::copy::CopyCounts, Error> {
    use leancloud_server::store::postgres::{copy, Pg};
    let pg = Pg::connect(url, ca)
        .await
        .map_err(|e| Error::Other(e.to_string()))?;
    let started = std::time::Instant::now();
    let counts = copy::from_sqlite(from, &pg)
        .await
        .map_err(|e| Error::Other(format!("copy into PostgreSQL: {e}")))?;
    pg.close();
    println!(
        "copied {} into PostgreSQL in {:.1} s: {} objects, {} messages, {} per-client history keys, {} subscribers, {} read positions",
        from.display(),
        started.elapsed().as_secs_f64(),
        counts.objects,
        counts.messages,
        counts.recipients,
        counts.subscribers,
        counts.positions
    );
    Ok(counts)
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("RUST_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("error")),
        )
        .with_writer(std::io::stderr)
        .init();
    match run(Cli::parse()).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("leancloud-migrate: {e}");
            ExitCode::from(2)
        }
    }
}
