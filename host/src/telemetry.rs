//! Structured logs. JSON when Lambda's advanced logging asks for it
//! (`AWS_LAMBDA_LOG_FORMAT=JSON`), compact text otherwise; `RUST_LOG` filters, never below DEBUG.
//!
//! Nothing in this crate logs a token, a private key or an upstream credential: errors carry
//! codes and public messages, keys print as redactions.

use chat_auth_shared::config::TelemetryConfig;
use serde_json::{Map, Value, json};
use std::io::Write;
use std::sync::OnceLock;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// The CloudWatch namespace for metrics, when running on Lambda (set once by [`init`]).
static NAMESPACE: OnceLock<Option<String>> = OnceLock::new();

/// The most detailed level any binary logs, whatever `RUST_LOG` asks for. Our crates log
/// nothing at TRACE; our dependencies do, and some of it is secret: lambda_runtime logs each raw
/// invocation event (with the caller's bearer token) and the AWS SDK logs response bodies (the
/// private ring) when `LOG_SENSITIVE_BODIES` is set. A cap is simpler to trust than a list of
/// targets that a dependency update can outgrow.
pub const MAX_LEVEL: LevelFilter = LevelFilter::DEBUG;

/// Installs the global subscriber once; later calls are ignored. On Lambda it also enables
/// metrics. `RUST_LOG` is read by tracing-subscriber's own `EnvFilter`, as everywhere in Rust,
/// under [`MAX_LEVEL`].
pub fn init(config: &TelemetryConfig) {
    let _ = NAMESPACE.set(config.metrics_namespace.clone());
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let json = config.json_logs;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if json {
        builder
            .json()
            .with_current_span(false)
            .without_time()
            .finish()
            .with(MAX_LEVEL)
            .try_init()
    } else {
        builder
            .compact()
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .finish()
            .with(MAX_LEVEL)
            .try_init()
    };
}

/// Emits `metrics` (name, value, unit) with `dimensions` as one CloudWatch embedded metric
/// format record on stdout: CloudWatch extracts the metrics from the log line, so a request
/// costs a line, never an API call. Does nothing outside Lambda.
pub fn metrics(metrics: &[(&str, f64, &str)], dimensions: &[(&str, &str)]) {
    let Some(Some(namespace)) = NAMESPACE.get() else {
        return;
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let line = emf_record(namespace, metrics, dimensions, now);
    let _ = writeln!(std::io::stdout().lock(), "{line}");
}

/// The embedded-metric-format JSON for one record.
fn emf_record(
    namespace: &str,
    metrics: &[(&str, f64, &str)],
    dimensions: &[(&str, &str)],
    timestamp_ms: u64,
) -> String {
    let mut record = Map::new();
    record.insert(
        "_aws".into(),
        json!({
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": namespace,
                "Dimensions": [dimensions.iter().map(|(k, _)| *k).collect::<Vec<_>>()],
                "Metrics": metrics.iter().map(|(name, _, unit)| json!({"Name": name, "Unit": unit})).collect::<Vec<_>>(),
            }],
        }),
    );
    for (key, value) in dimensions {
        record.insert((*key).into(), Value::String((*value).into()));
    }
    for (name, value, _) in metrics {
        record.insert((*name).into(), json!(value));
    }
    Value::Object(record).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_is_embedded_metric_format() {
        let line = emf_record(
            "ChatAuth/prod",
            &[("ValidationRefusals", 1.0, "Count")],
            &[("ProblemCode", "expired")],
            1_800_000_000_000,
        );
        let v: Value = serde_json::from_str(&line).unwrap();
        let spec = &v["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(v["_aws"]["Timestamp"], 1_800_000_000_000u64);
        assert_eq!(spec["Namespace"], "ChatAuth/prod");
        assert_eq!(spec["Dimensions"], json!([["ProblemCode"]]));
        assert_eq!(
            spec["Metrics"],
            json!([{"Name": "ValidationRefusals", "Unit": "Count"}])
        );
        assert_eq!(v["ProblemCode"], "expired");
        assert_eq!(v["ValidationRefusals"], 1.0);
    }
}
