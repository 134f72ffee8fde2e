//! moto's Secrets Manager and KMS server, driven through the real AWS SDK.

use crate::process::Process;
use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::config::{
    BehaviorVersion, Credentials, Region, SharedCredentialsProvider,
};
use std::process::{Command, Stdio};

/// A moto server on a free loopback port, killed on drop.
pub struct Moto {
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
    _process: Process,
}

impl Moto {
    /// Starts moto through tests/py/moto_server.py (moto with AWS's staging-label behaviour;
    /// see that file), its request log to `log` (the benchmarks count a function's calls in
    /// it), configured to run registered Lambda functions without Docker.
    pub async fn start(log: Stdio) -> Moto {
        let port = crate::free_port();
        let mut process = Process::spawn(
            "moto (python with moto, installed by scripts/test.sh)",
            Command::new(crate::python())
                .arg(crate::root().join("tests/py/moto_server.py"))
                .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .stdout(Stdio::null())
                .stderr(log),
        );
        let endpoint = format!("http://127.0.0.1:{port}");
        process.wait_http(&format!("{endpoint}/moto-api/")).await;
        let moto = Moto {
            endpoint,
            _process: process,
        };
        moto.configure().await;
        moto
    }

    async fn configure(&self) {
        crate::http_client()
            .post(format!("{}/moto-api/config", self.endpoint))
            .json(&serde_json::json!({"lambda": {"use_docker": false}}))
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .expect("moto config");
    }

    /// Empties moto (much faster than a new server).
    pub async fn reset(&self) {
        crate::http_client()
            .post(format!("{}/moto-api/reset", self.endpoint))
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .expect("moto reset");
        self.configure().await;
    }

    /// A Secrets Manager client for this moto.
    pub fn client(&self) -> Client {
        Client::new(&self.sdk_config())
    }

    /// A KMS client for this moto.
    pub fn kms_client(&self) -> aws_sdk_kms::Client {
        aws_sdk_kms::Client::new(&self.sdk_config())
    }

    /// The SDK configuration for this moto, with the fixed test credentials moto accepts: one
    /// for every service's client, as the functions share one.
    pub fn sdk_config(&self) -> aws_config::SdkConfig {
        aws_config::SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .endpoint_url(&self.endpoint)
            .region(Region::new("us-east-1"))
            .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
                "test", "test", None, None, "test",
            )))
            .build()
    }

    /// `CreateSecret` `name` holding `value`.
    pub async fn create_secret(&self, name: &str, value: &str) {
        self.client()
            .create_secret()
            .name(name)
            .secret_string(value)
            .send()
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "CreateSecret {name}: {}",
                    aws_sdk_secretsmanager::error::DisplayErrorContext(&e)
                )
            });
    }

    /// Registers a rotation function, so that `RotateSecret` behaves as on AWS; its ARN.
    pub fn register_rotation_lambda(&self) -> String {
        let out = crate::python_script("moto_register_lambda.py", &[&self.endpoint]);
        String::from_utf8(out)
            .expect("an ARN is text")
            .trim()
            .to_owned()
    }

    /// `RotateSecret` as Secrets Manager starts a rotation: the new version's token, or the
    /// refusal.
    pub async fn rotate_secret(&self, secret: &str, lambda_arn: &str) -> Result<String, String> {
        let out = self
            .client()
            .rotate_secret()
            .secret_id(secret)
            .rotation_lambda_arn(lambda_arn)
            .rotation_rules(
                aws_sdk_secretsmanager::types::RotationRulesType::builder()
                    .automatically_after_days(30)
                    .build(),
            )
            .send()
            .await
            .map_err(|e| {
                format!(
                    "rotate_secret: {}",
                    aws_sdk_secretsmanager::error::DisplayErrorContext(&e)
                )
            })?;
        Ok(out.version_id().unwrap_or_default().to_owned())
    }

    /// The environment that points a function binary's SDK at this moto.
    pub fn env(&self) -> Vec<(String, String)> {
        [
            ("AWS_ENDPOINT_URL", self.endpoint.as_str()),
            ("AWS_ACCESS_KEY_ID", "test"),
            ("AWS_SECRET_ACCESS_KEY", "test"),
            ("AWS_REGION", "us-east-1"),
            ("AWS_EC2_METADATA_DISABLED", "true"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }
}
