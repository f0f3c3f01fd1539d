//! `leancloud-migrate import`: export directories, console tarballs and single `.jsonl` files into a
//! `leancloud-server` database, one transaction per file (see [`leancloud_server::import`]).

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};
use std::time::Instant;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use leancloud_server::import::{FileKind, FileReport, FileUrls, Importer};
use leancloud_server::store::blobs::Blobs;

use crate::bodies::{move_bodies, BodiesSummary};
use crate::export::{
    class_file, CLASSES_DIR, CLASS_PERMISSIONS, MANIFEST, MESSAGES, RELATIONS, SUBSCRIBERS,
    SUBSCRIBER_MESSAGES,
};
use crate::Error;

/// What a SOURCE argument is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A directory written by `leancloud-migrate export`.
    ExportDir(PathBuf),
    /// LeanCloud's console data export (`.tar.gz` of `<Class>.<n>.jsonl`).
    Tarball(PathBuf),
    /// One `.jsonl` file (e.g. from an unpacked console export).
    File(PathBuf),
}

impl Source {
    pub fn detect(path: &Path) -> Result<Source, Error> {
        let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
        if meta.is_dir() {
            return Ok(Source::ExportDir(path.to_path_buf()));
        }
        let mut magic = [0u8; 2];
        let n = File::open(path)
            .and_then(|mut f| f.read(&mut magic))
            .map_err(|e| Error::io(path, e))?;
        if n == 2 && magic == [0x1f, 0x8b] {
            Ok(Source::Tarball(path.to_path_buf()))
        } else {
            Ok(Source::File(path.to_path_buf()))
        }
    }
}

/// What an import did.
#[derive(Debug, Clone, Default)]
pub struct ImportSummary {
    pub files: Vec<FileReport>,
    pub elapsed_secs: f64,
    pub dry_run: bool,
    /// File bodies moved into the server (with `--file-url-base`), per export directory.
    pub bodies: Vec<BodiesSummary>,
}

/// Where file bodies go on import, and the URL the server serves them under.
#[derive(Debug, Clone)]
pub struct BodiesTarget {
    /// The server's file storage directory (`--files-dir` of the server; `<db>.files` by default).
    pub dir: PathBuf,
    /// Or its bucket (`--files-s3-bucket`), which takes precedence.
    pub s3: Option<leancloud_server::config::S3Store>,
    /// `--file-url-base`: the server's public address; a body's URL is this and its key.
    pub url_base: String,
}

impl ImportSummary {
    pub fn messages(&self) -> u64 {
        self.files
            .iter()
            .filter(|f| f.kind == FileKind::Messages)
            .map(|f| f.rows)
            .sum()
    }

    pub fn rows(&self) -> u64 {
        self.files.iter().map(|f| f.rows).sum()
    }

    pub fn inserted(&self) -> u64 {
        self.files.iter().map(|f| f.inserted).sum()
    }

    pub fn print(&self) {
        let verb = if self.dry_run {
            "would import"
        } else {
            "imported"
        };
        println!(
            "{:<44} {:<24} {:>10} {:>10} {:>10}",
            "file", "what", "rows", "new", "existing"
        );
        for f in &self.files {
            let what = match &f.kind {
                FileKind::Objects { class } => format!("class {class}"),
                FileKind::Messages => "messages".into(),
                FileKind::Subscribers => "service subscribers".into(),
                FileKind::ClassPermissions => "class permissions".into(),
                FileKind::Relations => "relation members".into(),
            };
            println!(
                "{:<44} {:<24} {:>10} {:>10} {:>10}",
                f.file, what, f.rows, f.inserted, f.skipped
            );
        }
        for bodies in &self.bodies {
            bodies.print();
        }
        let secs = self.elapsed_secs.max(1e-9);
        println!(
            "{verb} {} new rows of {} read ({} messages) in {:.2} s: {:.0} rows/s{}",
            self.inserted(),
            self.rows(),
            self.messages(),
            self.elapsed_secs,
            self.rows() as f64 / secs,
            if self.dry_run {
                " (dry run: nothing written)"
            } else {
                ""
            }
        );
    }
}

fn bar(progress: bool, name: &str, len: Option<u64>) -> ProgressBar {
    let bar = match len {
        Some(len) => ProgressBar::new(len),
        None => ProgressBar::new_spinner(),
    };
    bar.set_draw_target(if progress {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    });
    let template = if len.is_some() {
        "{bar:30} {bytes}/{total_bytes} {prefix} ({bytes_per_sec})"
    } else {
        "{spinner} {bytes} {prefix} ({bytes_per_sec})"
    };
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style);
    }
    bar.set_prefix(name.to_string());
    bar
}

/// The files of an export directory in import order: conversations first, then the other classes, the
/// messages (whose `lm` updates need the conversations), the subscribers.
pub fn export_files(dir: &Path) -> Result<Vec<PathBuf>, Error> {
    if !dir.join(MANIFEST).exists() {
        return Err(Error::Other(format!(
            "{} is not a finished export (no {MANIFEST}); run `leancloud-migrate export --out {}` again to complete it",
            dir.display(),
            dir.display()
        )));
    }
    let mut files = Vec::new();
    let conversations = dir.join(class_file("_Conversation"));
    let classes = dir.join(CLASSES_DIR);
    if classes.is_dir() {
        let mut others: Vec<PathBuf> = std::fs::read_dir(&classes)
            .map_err(|e| Error::io(&classes, e))?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "jsonl") && *p != conversations)
            .collect();
        others.sort();
        if conversations.exists() {
            files.push(conversations);
        }
        files.extend(others);
    }
    for rel in [
        MESSAGES,
        SUBSCRIBER_MESSAGES,
        SUBSCRIBERS,
        RELATIONS,
        CLASS_PERMISSIONS,
    ] {
        let p = dir.join(rel);
        if p.exists() {
            files.push(p);
        }
    }
    Ok(files)
}

/// Imports every source into the database at `db`, in order. Stops at the first bad file (that file is
/// rolled back; the files before it stay imported, and importing again skips what is there). The summary
/// lists the files imported, also when an error stopped the import.
pub fn import(
    db: &Path,
    sources: &[PathBuf],
    dry_run: bool,
    progress: bool,
    bodies: Option<&BodiesTarget>,
) -> (ImportSummary, Result<(), Error>) {
    let started = Instant::now();
    let mut summary = ImportSummary {
        dry_run,
        ..ImportSummary::default()
    };
    let mut importer = match Importer::open(db, dry_run) {
        Ok(i) => i,
        Err(e) => return (summary, Err(e.into())),
    };
    for source in sources {
        let result = import_source(&mut importer, source, progress, bodies, &mut summary);
        summary.elapsed_secs = started.elapsed().as_secs_f64();
        if let Err(e) = result {
            return (summary, Err(e));
        }
    }
    (summary, Ok(()))
}

fn import_source(
    importer: &mut Importer,
    source: &Path,
    progress: bool,
    bodies: Option<&BodiesTarget>,
    summary: &mut ImportSummary,
) -> Result<(), Error> {
    match Source::detect(source)? {
        Source::ExportDir(dir) => {
            let files = export_files(&dir)?;
            let mut urls = FileUrls::default();
            if let (Some(target), false) = (bodies, summary.dry_run) {
                let config = leancloud_server::FilesConfig {
                    dir: Some(target.dir.clone()),
                    s3: target.s3.clone(),
                    ..Default::default()
                };
                let blobs = Blobs::open_configured(&config, &target.dir)
                    .map_err(|e| Error::Other(e.to_string()))?;
                // Called on a blocking thread of the tool's runtime (see main.rs).
                let moved = tokio::runtime::Handle::current().block_on(move_bodies(
                    &dir,
                    &blobs,
                    &target.url_base,
                    &mut urls,
                ))?;
                summary.bodies.push(moved);
            }
            importer.set_file_urls(urls);
            for path in files {
                import_path(importer, &path, progress, summary)?;
            }
        }
        Source::File(path) => import_path(importer, &path, progress, summary)?,
        Source::Tarball(path) => {
            let file = File::open(&path).map_err(|e| Error::io(&path, e))?;
            let len = file.metadata().map(|m| m.len()).ok();
            let bar = bar(progress, &path.display().to_string(), len);
            let gz = flate2::read::GzDecoder::new(bar.wrap_read(file));
            let mut archive = tar::Archive::new(gz);
            let tarball = path.display().to_string();
            let entries = archive.entries().map_err(|e| {
                Error::Other(format!("{tarball}: not a readable tar.gz archive: {e}"))
            })?;
            let mut last = String::from("(start of the archive)");
            for entry in entries {
                let entry = entry.map_err(|e| {
                    Error::Other(format!(
                        "{tarball}: the archive is damaged after {last}: {e}; the files before it were imported"
                    ))
                })?;
                let name = entry
                    .path()
                    .map(|p| p.display().to_string())
                    .unwrap_or_else(|_| "(unnamed entry)".into());
                last = name.clone();
                if !entry.header().entry_type().is_file() || !name.ends_with(".jsonl") {
                    continue;
                }
                let file = format!("{tarball}:{name}");
                let report =
                    importer.import_file(&file, BufReader::with_capacity(1 << 20, entry))?;
                summary.files.push(report);
            }
            bar.finish_and_clear();
        }
    }
    Ok(())
}

fn import_path(
    importer: &mut Importer,
    path: &Path,
    progress: bool,
    summary: &mut ImportSummary,
) -> Result<(), Error> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let len = file.metadata().map(|m| m.len()).ok();
    let name = path.display().to_string();
    let bar = bar(progress, &name, len);
    let report = importer.import_file(
        &name,
        BufReader::with_capacity(1 << 20, bar.wrap_read(file)),
    )?;
    bar.finish_and_clear();
    summary.files.push(report);
    Ok(())
}
