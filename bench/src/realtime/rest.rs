//! The REST side of the realtime benchmark: a minimal keep-alive HTTP/1.1 client with the master key (the
//! conversations and the sends whose delivery is timed), and the server process under test.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// One keep-alive connection to the server, signed with the master key (`X-LC-Key: <master>,master`).
#[derive(Debug)]
pub struct Rest {
    addr: SocketAddr,
    app_id: String,
    master_key: String,
    conn: Option<TcpStream>,
    buf: Vec<u8>,
}

impl Rest {
    pub fn new(addr: SocketAddr, app_id: &str, master_key: &str) -> Rest {
        Rest {
            addr,
            app_id: app_id.to_owned(),
            master_key: master_key.to_owned(),
            conn: None,
            buf: Vec::with_capacity(4096),
        }
    }

    /// `POST path` with a JSON body; the status and the body of the answer. Reconnects once if the kept
    /// connection was closed.
    pub async fn post(&mut self, path: &str, body: &Value) -> Result<(u16, Vec<u8>), String> {
        let body = body.to_string();
        let request = format!(
            "POST {path} HTTP/1.1\r\nhost: {}\r\ncontent-type: application/json\r\nx-lc-id: {}\r\n\
             x-lc-key: {},master\r\ncontent-length: {}\r\n\r\n{body}",
            self.addr,
            self.app_id,
            self.master_key,
            body.len()
        );
        match self.exchange(request.as_bytes()).await {
            Ok(r) => Ok(r),
            Err(_) if self.conn.is_none() => self.exchange(request.as_bytes()).await,
            Err(e) => Err(e),
        }
    }

    /// `post` that must answer 2xx with a JSON object.
    pub async fn post_ok(&mut self, path: &str, body: &Value) -> Result<Value, String> {
        let (status, bytes) = self.post(path, body).await?;
        if !(200..300).contains(&status) {
            return Err(format!(
                "POST {path}: HTTP {status}: {}",
                String::from_utf8_lossy(&bytes)
            ));
        }
        serde_json::from_slice(&bytes).map_err(|e| format!("POST {path}: {e}"))
    }

    /// A conversation created through `POST /1.1/classes/_Conversation`; its `objectId`.
    pub async fn create_conversation(&mut self, body: &Value) -> Result<String, String> {
        let v = self.post_ok("/1.1/classes/_Conversation", body).await?;
        v.get("objectId")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| format!("no objectId in {v}"))
    }

    async fn exchange(&mut self, request: &[u8]) -> Result<(u16, Vec<u8>), String> {
        if self.conn.is_none() {
            let s = TcpStream::connect(self.addr)
                .await
                .map_err(|e| format!("connect {}: {e}", self.addr))?;
            s.set_nodelay(true).map_err(|e| e.to_string())?;
            self.conn = Some(s);
        }
        let result = match self.conn.as_mut() {
            Some(s) => exchange_on(s, request, &mut self.buf).await,
            None => Err("no connection".into()),
        };
        match result {
            Ok((status, keep_alive)) => {
                if !keep_alive {
                    self.conn = None;
                }
                Ok((status, std::mem::take(&mut self.buf)))
            }
            Err(e) => {
                self.conn = None;
                Err(e)
            }
        }
    }
}

async fn exchange_on(
    s: &mut TcpStream,
    request: &[u8],
    buf: &mut Vec<u8>,
) -> Result<(u16, bool), String> {
    s.write_all(request)
        .await
        .map_err(|e| format!("write: {e}"))?;
    buf.clear();
    let mut chunk = [0u8; 4096];
    let header_end = loop {
        if let Some(pos) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break pos + 4;
        }
        let n = s.read(&mut chunk).await.map_err(|e| format!("read: {e}"))?;
        if n == 0 {
            return Err("connection closed before a response".into());
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = std::str::from_utf8(&buf[..header_end])
        .map_err(|_| "non-UTF-8 response head".to_string())?;
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad status line: {head:.80}"))?;
    let mut length = None;
    let mut keep_alive = true;
    for line in head.split("\r\n").skip(1) {
        if let Some((name, value)) = line.split_once(':') {
            let (name, value) = (name.trim(), value.trim());
            if name.eq_ignore_ascii_case("content-length") {
                length = value.parse::<usize>().ok();
            } else if name.eq_ignore_ascii_case("connection") && value.eq_ignore_ascii_case("close")
            {
                keep_alive = false;
            }
        }
    }
    let length = length.ok_or("response without content-length")?;
    while buf.len() < header_end + length {
        let n = s
            .read(&mut chunk)
            .await
            .map_err(|e| format!("read body: {e}"))?;
        if n == 0 {
            return Err("connection closed in the body".into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    buf.drain(..header_end);
    Ok((status, keep_alive))
}

/// The release server, started for this benchmark alone on a free loopback port with a fresh database.
#[derive(Debug)]
pub struct Server {
    pub addr: SocketAddr,
    pub pid: u32,
    child: tokio::process::Child,
    dir: PathBuf,
}

impl Server {
    pub async fn start(bin: &Path, log: &Path, env: &[(String, String)]) -> Result<Server, String> {
        let port = {
            let l = std::net::TcpListener::bind(("127.0.0.1", 0)).map_err(|e| e.to_string())?;
            l.local_addr().map_err(|e| e.to_string())?.port()
        };
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let dir =
            std::env::temp_dir().join(format!("realtime-bench-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let log_file = std::fs::File::create(log).map_err(|e| format!("{}: {e}", log.display()))?;
        let log_err = log_file.try_clone().map_err(|e| e.to_string())?;
        let child = tokio::process::Command::new(bin)
            .arg("--listen")
            .arg(addr.to_string())
            .arg("--db")
            .arg(dir.join("bench.sqlite3"))
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env(
                "RUST_LOG",
                std::env::var("BENCH_SERVER_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdin(Stdio::null())
            .stdout(log_file)
            .stderr(log_err)
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("{}: {e}", bin.display()))?;
        let pid = child.id().ok_or("server exited at start")?;
        let mut server = Server {
            addr,
            pid,
            child,
            dir,
        };
        for _ in 0..100 {
            if TcpStream::connect(addr).await.is_ok() {
                return Ok(server);
            }
            if let Ok(Some(status)) = server.child.try_wait() {
                return Err(format!(
                    "leancloud-server exited at start ({status}), see {}",
                    log.display()
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        server.stop().await;
        Err(format!(
            "leancloud-server did not listen on {addr} within 10 s"
        ))
    }

    /// Resident set size now (`VmRSS`, KiB).
    pub fn rss_kb(&self) -> Option<u64> {
        rss_kb(self.pid)
    }

    pub async fn stop(&mut self) {
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `VmRSS` (KiB) from a `/proc/<pid>/status` text.
pub fn parse_vmrss_kb(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

/// Resident set size of a live process (KiB).
pub fn rss_kb(pid: u32) -> Option<u64> {
    parse_vmrss_kb(&std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?)
}

/// CPU time and time spent runnable but waiting for a CPU (ns), per thread name, summed over a process's
/// threads (`/proc/<pid>/task/*/schedstat`, `comm`).
pub fn sched_ns(pid: u32) -> Vec<(String, u64, u64)> {
    let mut out: Vec<(String, u64, u64)> = Vec::new();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return out;
    };
    for task in tasks.flatten() {
        let (Ok(comm), Ok(stat)) = (
            std::fs::read_to_string(task.path().join("comm")),
            std::fs::read_to_string(task.path().join("schedstat")),
        ) else {
            continue;
        };
        let mut fields = stat
            .split_whitespace()
            .map(|v| v.parse::<u64>().unwrap_or(0));
        let (cpu, wait) = (fields.next().unwrap_or(0), fields.next().unwrap_or(0));
        let comm = comm.trim().to_owned();
        match out.iter_mut().find(|(c, ..)| *c == comm) {
            Some(entry) => {
                entry.1 += cpu;
                entry.2 += wait;
            }
            None => out.push((comm, cpu, wait)),
        }
    }
    out
}

/// `after − before` of two `sched_ns` readings: (cpu, wait) in ms of the threads named `name`, or of all.
pub fn sched_delta_ms(
    before: &[(String, u64, u64)],
    after: &[(String, u64, u64)],
    name: Option<&str>,
) -> (f64, f64) {
    let sum = |v: &[(String, u64, u64)]| {
        v.iter()
            .filter(|(c, ..)| name.is_none_or(|n| c == n))
            .fold((0u64, 0u64), |(a, b), (_, c, w)| (a + c, b + w))
    };
    let (b, a) = (sum(before), sum(after));
    (
        a.0.saturating_sub(b.0) as f64 / 1e6,
        a.1.saturating_sub(b.1) as f64 / 1e6,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_vmrss() {
        let status = "Name:\tx\nVmHWM:\t    5432 kB\nVmRSS:\t 5000 kB\n";
        assert_eq!(parse_vmrss_kb(status), Some(5000));
        assert_eq!(parse_vmrss_kb("Name: x\n"), None);
        assert!(rss_kb(std::process::id()).is_some_and(|kb| kb > 0));
    }

    #[test]
    fn reads_own_schedstat() {
        let before = sched_ns(std::process::id());
        assert!(!before.is_empty());
        let spin = (0..2_000_000u64).fold(0u64, |a, i| a.wrapping_add(i * i));
        assert!(spin > 0);
        let after = sched_ns(std::process::id());
        let (cpu, wait) = sched_delta_ms(&before, &after, None);
        assert!(cpu >= 0.0 && wait >= 0.0);
        assert_eq!(
            sched_delta_ms(&before, &after, Some("no such thread")),
            (0.0, 0.0)
        );
    }
}
