//! Structured logs. JSON when Lambda's advanced logging asks for it
//! (`AWS_LAMBDA_LOG_FORMAT=JSON`), compact text otherwise; at the level it asks for
//! (`AWS_LAMBDA_LOG_LEVEL`, else INFO), and `RUST_LOG` filters; never below DEBUG.
//!
//! Not lambda_runtime's `tracing::init_default_subscriber`, although it honours the same two
//! variables the same way (the level is the default directive, and valid `RUST_LOG`
//! directives replace it): it has no level cap, so `AWS_LAMBDA_LOG_LEVEL=TRACE` would log
//! what [`MAX_LEVEL`] keeps out, and it writes to stdout, where our metrics records go.
//!
//! Nothing in this crate logs a token, a private key or an upstream credential: errors carry
//! codes and public messages, keys print as redactions.

use chat_auth_shared::config::TelemetryConfig;
use serde_json::{Map, Value, json};
use std::io::Write;
use std::sync::OnceLock;
use tracing::Subscriber;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::fmt::MakeWriter;
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
/// metrics.
pub fn init(config: &TelemetryConfig) {
    let _ = NAMESPACE.set(config.metrics_namespace.clone());
    let _ = subscriber(config, std::io::stderr).try_init();
}

/// The subscriber [`init`] installs, writing to `writer`. `RUST_LOG` directives that parse
/// replace the level, as tracing-subscriber's `EnvFilter` does everywhere in Rust; either way
/// under [`MAX_LEVEL`].
fn subscriber<W>(config: &TelemetryConfig, writer: W) -> Box<dyn Subscriber + Send + Sync>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let level = config.log_level.unwrap_or(LevelFilter::INFO);
    let filter = config
        .log_filter
        .as_deref()
        .and_then(|directives| EnvFilter::try_new(directives).ok())
        .unwrap_or_else(|| EnvFilter::default().add_directive(level.into()));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    if config.json_logs {
        Box::new(
            builder
                .json()
                .with_current_span(false)
                .without_time()
                .finish()
                .with(MAX_LEVEL),
        )
    } else {
        Box::new(
            builder
                .compact()
                .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
                .finish()
                .with(MAX_LEVEL),
        )
    }
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
    use std::sync::{Arc, Mutex};

    /// What a subscriber built from `config` writes for one event at each level.
    fn logged(config: &TelemetryConfig) -> String {
        #[derive(Clone, Default)]
        struct Lines(Arc<Mutex<Vec<u8>>>);
        impl Write for Lines {
            fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(bytes);
                Ok(bytes.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let lines = Lines::default();
        let writer = lines.clone();
        tracing::subscriber::with_default(subscriber(config, move || writer.clone()), || {
            tracing::trace!("at-trace");
            tracing::debug!("at-debug");
            tracing::info!("at-info");
            tracing::warn!("at-warn");
        });
        String::from_utf8(lines.0.lock().unwrap().clone()).unwrap()
    }

    fn levels(config: &TelemetryConfig) -> Vec<&'static str> {
        let text = logged(config);
        ["at-trace", "at-debug", "at-info", "at-warn"]
            .into_iter()
            .filter(|level| text.contains(level))
            .collect()
    }

    #[test]
    fn lambdas_log_level_sets_the_level_under_the_cap_and_rust_log_refines_it() {
        let with = |level: Option<LevelFilter>, filter: Option<&str>| TelemetryConfig {
            log_level: level,
            log_filter: filter.map(str::to_owned),
            ..TelemetryConfig::default()
        };
        assert_eq!(levels(&with(None, None)), ["at-info", "at-warn"]);
        assert_eq!(levels(&with(Some(LevelFilter::WARN), None)), ["at-warn"]);
        // TRACE is asked for, DEBUG is the most any binary logs.
        assert_eq!(
            levels(&with(Some(LevelFilter::TRACE), None)),
            ["at-debug", "at-info", "at-warn"]
        );
        assert_eq!(
            levels(&with(Some(LevelFilter::WARN), Some("trace"))),
            ["at-debug", "at-info", "at-warn"]
        );
        // Directives that do not parse leave the level in charge.
        assert_eq!(
            levels(&with(Some(LevelFilter::WARN), Some("=bad=level="))),
            ["at-warn"]
        );
        let json = TelemetryConfig {
            json_logs: true,
            ..with(Some(LevelFilter::WARN), None)
        };
        let line: Value = serde_json::from_str(logged(&json).trim()).unwrap();
        assert_eq!(line["fields"]["message"], "at-warn");
    }

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
