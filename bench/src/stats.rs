//! Order statistics over latency samples (milliseconds).

/// Summary of one series of samples.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    pub count: usize,
    pub median: f64,
    pub p99: f64,
    pub min: f64,
    pub max: f64,
}

/// Nearest-rank percentile (`q` in 0..=1) of already sorted samples.
fn nearest_rank(sorted: &[f64], q: f64) -> f64 {
    let n = sorted.len();
    // nearest rank: the smallest value with at least q*n samples at or below it
    let rank = (q * n as f64).ceil().max(1.0) as usize;
    sorted[rank.min(n) - 1]
}

/// Median (mean of the two middle values for an even count).
fn median_sorted(sorted: &[f64]) -> f64 {
    let n = sorted.len();
    if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    }
}

/// Summarise samples; `None` when there are none (or any is NaN).
pub fn summarize(samples: &[f64]) -> Option<Summary> {
    if samples.is_empty() || samples.iter().any(|s| s.is_nan()) {
        return None;
    }
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    Some(Summary {
        count: sorted.len(),
        median: median_sorted(&sorted),
        p99: nearest_rank(&sorted, 0.99),
        min: sorted[0],
        max: sorted[sorted.len() - 1],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_odd_and_even() {
        assert_eq!(summarize(&[3.0, 1.0, 2.0]).map(|s| s.median), Some(2.0));
        assert_eq!(
            summarize(&[4.0, 1.0, 3.0, 2.0]).map(|s| s.median),
            Some(2.5)
        );
    }

    #[test]
    fn p99_is_nearest_rank() {
        let samples: Vec<f64> = (1..=200).map(f64::from).collect();
        let s = summarize(&samples).expect("samples");
        assert_eq!(s.p99, 198.0);
        assert_eq!(s.min, 1.0);
        assert_eq!(s.max, 200.0);
        let one = summarize(&[7.0]).expect("one sample");
        assert_eq!((one.median, one.p99), (7.0, 7.0));
    }

    #[test]
    fn empty_or_nan_is_none() {
        assert_eq!(summarize(&[]), None);
        assert_eq!(summarize(&[1.0, f64::NAN]), None);
    }
}
