//! Running the Python SDK scripts in `bench/python/` and reading their JSON.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use serde::Deserialize;

/// Where the Python side lives.
#[derive(Debug, Clone)]
pub struct Python {
    /// The venv's interpreter (`.venv-sdk/bin/python`).
    pub interpreter: PathBuf,
    /// `bench/python`
    pub dir: PathBuf,
    /// Environment for every Python process (LEANCLOUD_*).
    pub env: Vec<(String, String)>,
}

/// `ops.py fanout` output.
#[derive(Debug, Clone, Deserialize)]
pub struct Fanout {
    pub calls: u64,
    pub recipients: u64,
    pub total_s: f64,
    pub vmhwm_kb: Option<u64>,
}

/// `ops.py pkgsize` output.
#[derive(Debug, Clone, Deserialize)]
pub struct PackageSize {
    pub bytes: u64,
    pub dists: Vec<String>,
}

impl Python {
    fn command(&self, args: &[&str]) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(&self.interpreter);
        cmd.args(args)
            .current_dir(&self.dir)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .kill_on_drop(true);
        cmd
    }

    /// Run `ops.py <args>` and parse its stdout.
    pub async fn ops<T: for<'de> Deserialize<'de>>(&self, args: &[&str]) -> Result<T, String> {
        let mut full = vec!["ops.py"];
        full.extend_from_slice(args);
        let out = self
            .command(&full)
            .output()
            .await
            .map_err(|e| format!("python not run: {e}"))?;
        if !out.status.success() {
            let err = String::from_utf8_lossy(&out.stderr);
            let last: Vec<&str> = err.lines().rev().take(3).collect();
            return Err(format!(
                "ops.py {} failed ({}): {}",
                args.join(" "),
                out.status,
                last.join(" / ")
            ));
        }
        serde_json::from_slice(&out.stdout)
            .map_err(|e| format!("ops.py {}: bad JSON: {e}", args.join(" ")))
    }

    /// Latency samples (ms) per operation.
    pub async fn single_ops(
        &self,
        iterations: u32,
        warmup: u32,
    ) -> Result<BTreeMap<String, Vec<f64>>, String> {
        self.ops(&[
            "single",
            "--iterations",
            &iterations.to_string(),
            "--warmup",
            &warmup.to_string(),
        ])
        .await
    }

    /// Whether `awslambdaric` imports in the venv.
    pub async fn has_awslambdaric(&self) -> bool {
        self.command(&["-c", "import awslambdaric"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .await
            .is_ok_and(|s| s.success())
    }

    /// The cold-start command: the handler under awslambdaric, or under `runtime_loop.py`.
    pub fn lambda_command(&self, awslambdaric: bool) -> (PathBuf, Vec<String>, &Path) {
        let args = if awslambdaric {
            vec![
                "-m".to_string(),
                "awslambdaric".into(),
                "handler.handler".into(),
            ]
        } else {
            vec!["runtime_loop.py".to_string(), "handler.handler".into()]
        };
        (self.interpreter.clone(), args, &self.dir)
    }

    pub async fn version(&self) -> String {
        match self.command(&["--version"]).output().await {
            Ok(o) => String::from_utf8_lossy(if o.stdout.is_empty() {
                &o.stderr
            } else {
                &o.stdout
            })
            .trim()
            .to_owned(),
            Err(e) => format!("unknown ({e})"),
        }
    }
}
