//! The result table (figure | ours | Python SDK | ratio | target | met) and `RESULTS.md`.

/// A measured value, or why there is none (shown as `n/a (reason)`).
pub type Measure = Result<f64, String>;

/// How a figure's unit is shown and which direction is better.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// milliseconds; lower is better
    Millis,
    /// seconds; lower is better
    Seconds,
    /// per second; higher is better
    Rate,
    /// bytes; lower is better
    Bytes,
    /// KiB of memory; lower is better
    KiB,
    /// a share in percent; higher is better
    Percent,
    /// a count of things that should not happen (duplicates); lower is better
    Count,
    /// a ratio of two figures of ours measured side by side (say APNs ÷ FCM); no better direction
    Times,
}

impl Unit {
    fn lower_is_better(self) -> bool {
        matches!(
            self,
            Unit::Millis | Unit::Seconds | Unit::Bytes | Unit::KiB | Unit::Count
        )
    }

    fn format(self, v: f64) -> String {
        match self {
            Unit::Millis if v >= 1000.0 => format!("{:.2} s", v / 1000.0),
            Unit::Millis if v >= 10.0 => format!("{v:.1} ms"),
            Unit::Millis => format!("{v:.2} ms"),
            Unit::Seconds if v < 1.0 => format!("{:.0} ms", v * 1000.0),
            Unit::Seconds => format!("{v:.2} s"),
            Unit::Rate if v >= 100.0 => format!("{}/s", group_thousands(v.round() as u64)),
            Unit::Rate => format!("{v:.1}/s"),
            Unit::Bytes => format!("{:.2} MB", v / 1e6),
            Unit::KiB => format!("{:.1} MB", v * 1024.0 / 1e6),
            Unit::Percent => format!("{v:.0} %"),
            Unit::Count => group_thousands(v.round().max(0.0) as u64),
            Unit::Times => format!("{v:.2}×"),
        }
    }

    fn better_word(self) -> &'static str {
        match self {
            Unit::Millis | Unit::Seconds => "faster",
            Unit::Bytes => "smaller",
            Unit::KiB | Unit::Count => "less",
            Unit::Rate | Unit::Percent | Unit::Times => "higher",
        }
    }
}

/// `12345` → `12,345`.
/// Appends a Markdown section to `path` (creating it), after a blank line.
pub fn append_markdown(path: &std::path::Path, md: &str) -> Result<(), String> {
    use std::io::Write as _;
    std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .and_then(|mut f| f.write_all(format!("\n{md}").as_bytes()))
        .map_err(|e| format!("{}: {e}", path.display()))
}

pub fn group_thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A target to report against (never asserted).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Target {
    None,
    /// ours at least N times better than Python (in the figure's better direction)
    TimesBetter(f64),
    /// ours ≤ value (in the figure's unit)
    OursAtMost(f64),
    /// ours ≥ value (in the figure's unit)
    OursAtLeast(f64),
}

/// One line of the table.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub figure: String,
    pub ours: String,
    pub python: String,
    pub ratio: String,
    pub target: String,
    pub met: String,
}

fn na(reason: &str) -> String {
    format!("n/a ({reason})")
}

/// Build a row from the two measures. `python = None` means the figure has no Python counterpart.
pub fn row(
    figure: &str,
    unit: Unit,
    ours: &Measure,
    python: Option<&Measure>,
    target: Target,
) -> Row {
    let show = |m: &Measure| match m {
        Ok(v) => unit.format(*v),
        Err(e) => na(e),
    };
    let ratio = match (ours, python) {
        (Ok(o), Some(Ok(p))) if *o > 0.0 && *p > 0.0 => {
            Some(if unit.lower_is_better() { p / o } else { o / p })
        }
        _ => None,
    };
    let ratio_text = match (ratio, python) {
        (Some(r), _) => format!("{} {}", times(r), unit.better_word()),
        (None, None) => "—".into(),
        (None, Some(_)) => "n/a".into(),
    };
    let (target_text, met) = match target {
        Target::None => ("—".to_string(), None),
        Target::TimesBetter(x) => (
            format!("≥ {} {}", times(x), unit.better_word()),
            ratio.map(|r| r >= x),
        ),
        Target::OursAtMost(x) => (
            format!("≤ {}", unit.format(x)),
            ours.as_ref().ok().map(|o| *o <= x),
        ),
        Target::OursAtLeast(x) => (
            format!("≥ {}", unit.format(x)),
            ours.as_ref().ok().map(|o| *o >= x),
        ),
    };
    let met = match (target, met) {
        (Target::None, _) => "—".into(),
        (_, Some(true)) => "yes".into(),
        (_, Some(false)) => "**no**".into(),
        (_, None) => "n/a".into(),
    };
    Row {
        figure: figure.into(),
        ours: show(ours),
        python: python.map(show).unwrap_or_else(|| "—".into()),
        ratio: ratio_text,
        target: target_text,
        met,
    }
}

fn times(r: f64) -> String {
    if r >= 10.0 {
        format!("{r:.0}×")
    } else {
        format!("{r:.1}×")
    }
}

/// Render rows as a Markdown table.
pub fn table(rows: &[Row]) -> String {
    let header = [
        "figure",
        "ours (Rust)",
        "Python SDK 3.0.2",
        "ours vs Python",
        "target",
        "met",
    ];
    let mut cells: Vec<[String; 6]> = vec![header.map(String::from)];
    for r in rows {
        cells.push([
            r.figure.clone(),
            r.ours.clone(),
            r.python.clone(),
            r.ratio.clone(),
            r.target.clone(),
            r.met.clone(),
        ]);
    }
    let widths: Vec<usize> = (0..6)
        .map(|i| {
            cells
                .iter()
                .map(|c| c[i].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |c: &[String; 6]| {
        let parts: Vec<String> = c
            .iter()
            .zip(&widths)
            .map(|(s, w)| format!("{s}{}", " ".repeat(w - s.chars().count())))
            .collect();
        format!("| {} |", parts.join(" | "))
    };
    let mut out = String::new();
    out.push_str(&line(&cells[0]));
    out.push('\n');
    let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
    out.push_str(&format!("|-{}-|\n", rule.join("-|-")));
    for c in &cells[1..] {
        out.push_str(&line(c));
        out.push('\n');
    }
    out
}

/// The whole `RESULTS.md`.
pub fn results_markdown(
    machine: &[(String, String)],
    rows: &[Row],
    method: &[String],
    notes: &[String],
) -> String {
    let mut out = String::from(
        "# Benchmark results: ours (Rust) vs the official Python SDK (leancloud 3.0.2)\n\n",
    );
    out.push_str(
        "Written by `bench/run.sh` (see `bench/README.md`); figures are measured, never asserted. ",
    );
    out.push_str("Every figure is from the same run on the same machine, against the local `leancloud-server` (release build, fresh SQLite database, loopback).\n\n");
    out.push_str("## Machine\n\n");
    for (k, v) in machine {
        out.push_str(&format!("- {k}: {v}\n"));
    }
    out.push_str("\n## Results\n\n");
    out.push_str(&table(rows));
    out.push_str("\n## How each figure was measured\n\n");
    for m in method {
        out.push_str(&format!("- {m}\n"));
    }
    if !notes.is_empty() {
        out.push_str("\n## Notes on this run\n\n");
        for n in notes {
            out.push_str(&format!("- {n}\n"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_row_with_ratio_and_target() {
        let r = row(
            "cold start",
            Unit::Millis,
            &Ok(10.0),
            Some(&Ok(400.0)),
            Target::TimesBetter(30.0),
        );
        assert_eq!(r.ours, "10.0 ms");
        assert_eq!(r.python, "400.0 ms");
        assert_eq!(r.ratio, "40× faster");
        assert_eq!(r.target, "≥ 30× faster");
        assert_eq!(r.met, "yes");
    }

    #[test]
    fn rate_ratio_is_ours_over_python() {
        let r = row(
            "calls/s",
            Unit::Rate,
            &Ok(5000.0),
            Some(&Ok(250.0)),
            Target::None,
        );
        assert_eq!(r.ours, "5,000/s");
        assert_eq!(r.ratio, "20× higher");
        assert_eq!(r.met, "—");
    }

    #[test]
    fn missing_values_show_reason_and_no_verdict() {
        let r = row(
            "size",
            Unit::Bytes,
            &Err("binary not built".into()),
            None,
            Target::OursAtMost(8e6),
        );
        assert_eq!(r.ours, "n/a (binary not built)");
        assert_eq!(r.python, "—");
        assert_eq!(r.ratio, "—");
        assert_eq!(r.target, "≤ 8.00 MB");
        assert_eq!(r.met, "n/a");
        let r = row(
            "x",
            Unit::Millis,
            &Ok(1.0),
            Some(&Err("failed".into())),
            Target::TimesBetter(2.0),
        );
        assert_eq!((r.ratio.as_str(), r.met.as_str()), ("n/a", "n/a"));
    }

    #[test]
    fn unmet_target_is_marked() {
        let r = row(
            "rss",
            Unit::KiB,
            &Ok(30_000.0),
            None,
            Target::OursAtMost(25e6 / 1024.0),
        );
        assert_eq!(r.met, "**no**");
        let r = row(
            "server",
            Unit::Rate,
            &Ok(12_000.0),
            None,
            Target::OursAtLeast(10_000.0),
        );
        assert_eq!(
            (r.ours.as_str(), r.target.as_str(), r.met.as_str()),
            ("12,000/s", "≥ 10,000/s", "yes")
        );
    }

    #[test]
    fn counts_and_side_by_side_ratios() {
        let r = row("dups", Unit::Count, &Ok(0.0), None, Target::OursAtMost(0.0));
        assert_eq!(
            (r.ours.as_str(), r.target.as_str(), r.met.as_str()),
            ("0", "≤ 0", "yes")
        );
        let r = row(
            "dups",
            Unit::Count,
            &Ok(1234.0),
            None,
            Target::OursAtMost(0.0),
        );
        assert_eq!((r.ours.as_str(), r.met.as_str()), ("1,234", "**no**"));
        let r = row("a ÷ b", Unit::Times, &Ok(1.234), None, Target::None);
        assert_eq!((r.ours.as_str(), r.ratio.as_str()), ("1.23×", "—"));
    }

    #[test]
    fn table_is_aligned_markdown() {
        let rows = vec![row(
            "a",
            Unit::Seconds,
            &Ok(1.0),
            Some(&Ok(2.0)),
            Target::None,
        )];
        let t = table(&rows);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines.iter().all(|l| l.starts_with('|') && l.ends_with('|')));
        assert_eq!(lines[0].chars().count(), lines[2].chars().count());
        assert_eq!(group_thousands(1_234_567), "1,234,567");
        assert_eq!(group_thousands(999), "999");
    }
}
