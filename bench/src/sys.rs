//! Process memory, file sizes and the machine description.

/// `VmHWM` (peak resident set size, KiB) from a `/proc/<pid>/status` text.
pub fn parse_vmhwm_kb(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

/// Peak RSS (KiB) of a live process.
pub fn vmhwm_kb(pid: u32) -> Option<u64> {
    parse_vmhwm_kb(&std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?)
}

/// The machine the run happened on, as lines for RESULTS.md.
pub fn machine_description() -> Vec<(String, String)> {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu = cpuinfo
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")
                .and_then(|r| r.split_once(':'))
                .map(|(_, v)| v.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".into());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|r| r.split_whitespace().next()?.parse::<u64>().ok())
        .map(|kb| format!("{:.1} GiB", kb as f64 / 1024.0 / 1024.0))
        .unwrap_or_else(|| "unknown".into());
    let nproc = std::thread::available_parallelism()
        .map(|n| n.get().to_string())
        .unwrap_or_else(|_| "?".into());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_owned())
        .unwrap_or_default();
    let rustc = command_line("rustc", &["--version"]);
    let load = std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default();
    vec![
        (
            "date".into(),
            chrono::Utc::now().format("%Y-%m-%d %H:%M UTC").to_string(),
        ),
        ("nproc".into(), nproc),
        ("CPU".into(), cpu),
        ("memory".into(), mem),
        ("kernel".into(), format!("Linux {kernel}")),
        ("rustc".into(), rustc),
        (
            "load average (1, 5, 15 min) when the table was written".into(),
            load,
        ),
    ]
}

/// First line of a command's stdout, or a note that it failed.
pub fn command_line(program: &str, args: &[&str]) -> String {
    match std::process::Command::new(program).args(args).output() {
        Ok(out) if out.status.success() => {
            let text = if out.stdout.is_empty() {
                out.stderr
            } else {
                out.stdout
            };
            String::from_utf8_lossy(&text)
                .lines()
                .next()
                .unwrap_or("")
                .trim()
                .to_owned()
        }
        Ok(out) => format!("{program} failed ({})", out.status),
        Err(e) => format!("{program} not run ({e})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_vmhwm() {
        let status = "Name:\tx\nVmPeak:\t  10000 kB\nVmHWM:\t    5432 kB\nVmRSS:\t 5000 kB\n";
        assert_eq!(parse_vmhwm_kb(status), Some(5432));
        assert_eq!(parse_vmhwm_kb("Name: x\n"), None);
    }

    #[test]
    fn own_process_has_a_peak_rss() {
        assert!(vmhwm_kb(std::process::id()).is_some_and(|kb| kb > 0));
    }
}
