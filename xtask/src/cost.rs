//! What the measured CPU per warm invocation would cost on Lambda: GB-seconds and dollars per
//! million tokens at three memory sizes. An estimate, from this machine's CPU time and AWS's
//! published rules; the prices and the Graviton line are published figures, not measured.

use crate::figures::{Figure, Function, Id};
use crate::table::trimmed;

/// Lambda gives a function CPU in proportion to its memory: one vCPU at 1,769 MB (published:
/// docs.aws.amazon.com/lambda/latest/dg/configuration-memory.html). The functions are
/// single-threaded, so more than one vCPU does not shorten them.
const MB_PER_VCPU: f64 = 1769.0;
/// Duration is billed in 1 ms increments (published: aws.amazon.com/lambda/pricing).
const BILLING_STEP: f64 = 0.001;
/// us-east-1 prices (published: aws.amazon.com/lambda/pricing): per GB-second, x86_64 and
/// arm64, and per request.
const X86_PER_GB_SECOND: f64 = 0.000_016_666_7;
const ARM64_PER_GB_SECOND: f64 = 0.000_013_333_4;
const PER_REQUEST: f64 = 0.000_000_2;
/// The memory sizes the issue asks about.
const SIZES_MB: [f64; 3] = [128.0, 512.0, 1024.0];

/// Billed seconds and GB-seconds of one invocation costing `cpu` seconds of CPU at `mb`:
/// the function gets `mb / 1,769` of a vCPU, so a CPU-bound invocation lasts `cpu` divided by
/// that share, rounded up to the billing step.
pub fn billed(cpu: f64, mb: f64) -> (f64, f64) {
    let share = (mb / MB_PER_VCPU).min(1.0);
    let steps = (cpu / share / BILLING_STEP - 1e-9).ceil().max(1.0);
    let seconds = steps * BILLING_STEP;
    (seconds, seconds * mb / 1024.0)
}

/// The cost section under the table, for mint-token's measured CPU per warm invocation; `None`
/// when it was not measured.
pub fn render(figures: &[Figure]) -> Option<String> {
    let cpu = figures
        .iter()
        .find(|f| f.id == Id::WarmCpu(Function::MintToken))?
        .value();
    let mut out = format!(
        "Cost estimate for mint-token from its {:.1} µs of CPU per warm invocation on this \
         machine (CPU-bound: duration = CPU ÷ memory's vCPU share, 1 vCPU at 1,769 MB, billed \
         per 1 ms; us-east-1 prices; published figures, not measured):\n\n\
         | memory | billed duration | GB-s per invocation | x86_64 $ per million tokens | \
         arm64 $ per million tokens (published price; same duration assumed) |\n\
         | --- | --- | --- | --- | --- |\n",
        cpu * 1e6
    );
    for mb in SIZES_MB {
        let (seconds, gb_seconds) = billed(cpu, mb);
        let per_million = |price: f64| 1e6 * (gb_seconds * price + PER_REQUEST);
        out.push_str(&format!(
            "| {mb:.0} MB | {} ms | {} | {:.4} | {:.4} |\n",
            trimmed(seconds * 1e3, 0),
            trimmed(gb_seconds, 6),
            per_million(X86_PER_GB_SECOND),
            per_million(ARM64_PER_GB_SECOND),
        ));
    }
    out.push_str(
        "\nThe $0.20 per million requests is most of it: compute is the rest. arm64 (Graviton) \
         is 20% cheaper per GB-s (published price), and AWS publishes \"up to 34% better price \
         performance\" for Graviton2 functions; its RSA speed is not measured here (qemu-user \
         emulation says nothing about it), so the arm64 column assumes this machine's duration.",
    );
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::billed;

    #[test]
    fn billing_rounds_up_to_the_millisecond_at_the_memory_share() {
        // 128 MB is 7.2% of a vCPU: 0.4 ms of CPU lasts 5.5 ms, billed 6.
        let (seconds, gb_seconds) = billed(0.000_4, 128.0);
        assert!((seconds - 0.006).abs() < 1e-12, "{seconds}");
        assert!((gb_seconds - 0.006 * 0.125).abs() < 1e-12, "{gb_seconds}");
        // Above 1,769 MB the single thread gets no faster: 1.5 ms is billed 2 ms, not 1.
        assert!((billed(0.001_5, 3008.0).0 - 0.002).abs() < 1e-12);
        // Exactly one step is one step, not two.
        assert!((billed(0.001, 1769.0).0 - 0.001).abs() < 1e-12);
    }
}
