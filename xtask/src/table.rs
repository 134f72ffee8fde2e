//! The run's one Markdown table, and how its numbers are written.

use crate::figures::{Figure, Round, Unit, median};
use crate::floor::Floors;
use crate::goals::{GOALS, Verdict};

/// A time: `312 ns`, `26.3 µs`, `16.63 ms`.
pub fn duration(seconds: f64) -> String {
    match seconds {
        s if s < 1e-6 => format!("{:.0} ns", s * 1e9),
        s if s < 1e-3 => format!("{:.1} µs", s * 1e6),
        s => format!("{:.2} ms", s * 1e3),
    }
}

/// A whole number with thousands separators: `18,781`.
pub fn thousands(x: f64) -> String {
    let digits = format!("{:.0}", x.abs());
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if x < 0.0 { format!("-{out}") } else { out }
}

/// Memory: `9.8 MiB`.
pub fn mib(bytes: f64) -> String {
    format!("{:.1} MiB", bytes / (1024.0 * 1024.0))
}

/// `x` with at most `decimals` decimals, without trailing zeros: `10`, `1.5`, `0.0004`.
pub fn trimmed(x: f64, decimals: usize) -> String {
    let text = format!("{x:.decimals$}");
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        text
    }
}

/// A value in its unit.
pub fn amount(unit: Unit, x: f64) -> String {
    match unit {
        Unit::Seconds => duration(x),
        Unit::PerSecond => format!("{} req/s", thousands(x)),
        Unit::Bytes => mib(x),
        Unit::PerInvocation => format!("{} per invocation", trimmed(x, 4)),
    }
}

/// Timed runs: `16.63 ms (min 8.10 ms, max 20.56 ms; median of 10)`.
pub fn spread(rounds: &[Round]) -> String {
    let values = || rounds.iter().map(|r| r.value);
    format!(
        "{} (min {}, max {}; median of {})",
        duration(median(values())),
        duration(values().fold(f64::INFINITY, f64::min)),
        duration(values().fold(0.0, f64::max)),
        rounds.len()
    )
}

fn row(cells: &[&str]) -> String {
    format!("| {} |", cells.join(" | "))
}

/// The table: the floors, then every figure with its ratio to the floor and the verdicts of
/// the goals judged on it.
pub fn render(figures: &[Figure], floors: &Floors) -> String {
    let mut lines = vec![
        row(&["measure", "result", "ratio to floor", "goal", "status"]),
        row(&["---"; 5]),
    ];
    let taken = floors.taken();
    for (op, times) in [
        ("sign", taken.iter().map(|f| f.sign).collect::<Vec<_>>()),
        ("verify", taken.iter().map(|f| f.verify).collect()),
    ] {
        if times.is_empty() {
            continue;
        }
        let mid = median(times.iter().copied());
        let label = format!(
            "floor: OpenSSL {} RSA-2048 {op} (`openssl speed -seconds 1 rsa2048`, {}× through \
             the run; each figure is compared with the two taken just before and after it)",
            floors.version().unwrap_or("?"),
            times.len()
        );
        let result = format!(
            "median {} ({}/s); range {} – {}",
            duration(mid),
            thousands(1.0 / mid),
            duration(times.iter().copied().fold(f64::INFINITY, f64::min)),
            duration(times.iter().copied().fold(0.0, f64::max)),
        );
        lines.push(row(&[&label, &result, "1.00", "", ""]));
    }
    for figure in figures {
        let ratio = figure
            .id
            .against()
            .and_then(|op| Some((op, figure.ratio(op, floors)?)))
            .map_or(String::new(), |(op, r)| {
                let per = if figure.id.unit() == Unit::PerSecond {
                    "/s"
                } else {
                    ""
                };
                let rounds = match figure.rounds.len() {
                    1 => String::new(),
                    n => format!(" (median of {n} rounds)"),
                };
                format!("{r:.2}× {}{per}{rounds}", op.name())
            });
        let goals: Vec<_> = GOALS.iter().filter(|g| g.measure == figure.id).collect();
        let bounds: Vec<String> = goals.iter().map(|g| g.bound_text()).collect();
        let verdicts: Vec<String> = goals
            .iter()
            .map(|g| match g.judge(figures, floors) {
                Verdict::Met(x) => format!("**met** ({})", g.on_scale(x, false)),
                Verdict::Missed(x) => format!("**missed** ({})", g.on_scale(x, false)),
                Verdict::NotMeasured => "not measured".to_owned(),
            })
            .collect();
        lines.push(row(&[
            &figure.id.label(),
            &figure.detail,
            &ratio,
            &bounds.join("; "),
            &verdicts.join("; "),
        ]));
    }
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::{duration, thousands, trimmed};

    #[test]
    fn numbers_read_as_in_the_docs() {
        assert_eq!(thousands(18_781.4), "18,781");
        assert_eq!(thousands(999.0), "999");
        assert_eq!(thousands(1_234_567.0), "1,234,567");
        assert_eq!(duration(0.000_026_3), "26.3 µs");
        assert_eq!(duration(0.016_63), "16.63 ms");
        assert_eq!(duration(3.12e-7), "312 ns");
        assert_eq!(trimmed(10.0, 3), "10");
        assert_eq!(trimmed(0.0004, 4), "0.0004");
    }
}
