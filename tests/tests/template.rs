//! GIVEN template.yaml, WHEN AWS's own SAM translator (the code CloudFormation runs at deploy)
//! transforms it and cfn-lint checks it, both offline, THEN both accept it, and deliberately
//! broken copies fail (so each check can fail), including a break only the transform catches.

mod common;

use std::process::Command;

fn lint(path: &std::path::Path) -> std::process::Output {
    Command::new(common::root().join("target/py/bin/cfn-lint"))
        .arg(path)
        .output()
        .expect("cfn-lint is installed under target/py by scripts/test.sh")
}

fn transform(path: &std::path::Path) -> std::process::Output {
    Command::new(common::python())
        .arg(common::root().join("tests/py/sam_transform.py"))
        .arg(path)
        .output()
        .expect("aws-sam-translator is installed under target/py by scripts/test.sh")
}

#[test]
fn the_sam_translator_transforms_the_template() {
    let out = transform(&common::root().join("template.yaml"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_sam_translator_refuses_what_only_the_transform_can_see() {
    let template = std::fs::read_to_string(common::root().join("template.yaml")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    for (needle, broken, cause) in [
        // An AWS_IAM route on an HttpApi without the IAM authorizer enabled: cfn-lint 1.x
        // accepts this, CloudFormation's transform refuses it.
        (
            "        EnableIamAuthorizer: true\n",
            "",
            "Unable to set Authorizer [AWS_IAM]",
        ),
        (
            "              Authorizer: IdentityProvider\n",
            "              Authorizer: NoSuchAuthorizer\n",
            "NoSuchAuthorizer",
        ),
        // The function that the API routes to naming the API: CloudFormation refuses the cycle;
        // neither the translator nor cfn-lint sees it, the dependency check here does.
        (
            "          CHAT_AUTH_TOKEN_URL: /token\n",
            "          CHAT_AUTH_TOKEN_URL: !Sub \"https://${HttpApi}.execute-api.${AWS::Region}.${AWS::URLSuffix}/token\"\n",
            "Circular dependency",
        ),
        // A signer's IAM policy naming the KMS-encrypted secret, whose key names the signer.
        (
            "              Action: secretsmanager:GetSecretValue\n              Resource: !Sub \"arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:${AWS::StackName}-signing-??????\"\n",
            "              Action: secretsmanager:GetSecretValue\n              Resource: !Ref SigningSecret\n",
            "Circular dependency",
        ),
    ] {
        assert!(template.contains(needle), "{needle}");
        let path = dir.path().join("broken.yaml");
        std::fs::write(&path, template.replacen(needle, broken, 1)).unwrap();
        let out = transform(&path);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && stderr.contains(cause),
            "the translator accepted {broken:?} instead of {needle:?}: {stderr}"
        );
    }
}

/// The transformed template, as CloudFormation receives it.
fn transformed() -> serde_json::Value {
    let out = Command::new(common::python())
        .arg(common::root().join("tests/py/sam_transform.py"))
        .arg(common::root().join("template.yaml"))
        .arg("--json")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn the_deployed_keys_are_guarded() {
    let t = transformed();
    let r = &t["Resources"];
    for name in ["SigningKmsKey", "SigningSecret", "PublicKeysSecret"] {
        assert_eq!(r[name]["DeletionPolicy"], "Retain", "{name}");
        assert_eq!(r[name]["UpdateReplacePolicy"], "Retain", "{name}");
    }
    assert_eq!(
        r["SigningSecret"]["Properties"]["KmsKeyId"]["Ref"],
        "SigningKmsKey"
    );
    // Only the signer roles may decrypt; the account administers the key but cannot decrypt.
    let statements = r["SigningKmsKey"]["Properties"]["KeyPolicy"]["Statement"]
        .as_array()
        .unwrap();
    let decrypters: Vec<&serde_json::Value> = statements
        .iter()
        .filter(|s| s["Action"].to_string().contains("kms:Decrypt") || s["Action"] == "kms:*")
        .collect();
    assert_eq!(decrypters.len(), 1, "{decrypters:?}");
    let principals = decrypters[0]["Principal"]["AWS"].to_string();
    assert!(
        principals.contains("MintTokenFunctionRole")
            && principals.contains("RotateKeysFunctionRole")
    );
    // Resource policies deny reading the ring and writing the published set to everyone else.
    for (policy, action) in [
        ("SigningSecretPolicy", "secretsmanager:GetSecretValue"),
        ("SigningSecretPolicy", "secretsmanager:PutSecretValue"),
        ("PublicKeysSecretPolicy", "secretsmanager:PutSecretValue"),
    ] {
        let denies = r[policy]["Properties"]["ResourcePolicy"]["Statement"].to_string();
        assert!(
            denies.contains(action) && denies.contains("\"Deny\""),
            "{policy} {action}"
        );
    }
    assert_eq!(
        r["RotateKeysFunction"]["Properties"]["ReservedConcurrentExecutions"],
        1
    );
    let stale = r["SigningKeyStaleAlarm"]["Properties"].to_string();
    assert!(
        stale.contains("SigningKeyAgeSeconds") && stale.contains("RotationPeriodDays"),
        "{stale}"
    );
    // CORS is mint-token's (the translator mangles a parameterised CorsConfiguration): no
    // gateway CORS object, and preflights reach the function without the JWT authorizer.
    let body = &r["HttpApi"]["Properties"]["Body"];
    assert!(body.get("x-amazon-apigateway-cors").is_none(), "{body}");
    let preflight = &body["paths"]["/token"]["options"];
    assert!(
        preflight.is_object() && preflight.get("security").is_none(),
        "{preflight}"
    );
    assert!(body["paths"]["/token"]["get"]["security"].is_array());
    let globals = t["Resources"]["MintTokenFunction"]["Properties"]["Environment"].to_string();
    assert!(
        globals.contains("\"CHAT_AUTH_IDENTITY_MODE\":\"bearer\""),
        "{globals}"
    );
}

#[test]
fn the_template_lints_clean() {
    let out = lint(&common::root().join("template.yaml"));
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_broken_template_does_not() {
    let template = std::fs::read_to_string(common::root().join("template.yaml")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    for (needle, broken) in [
        (
            "!GetAtt RotateKeysFunction.Arn",
            "!GetAtt RotateKeysFunction.Nope",
        ),
        ("MaxValue: 3600", "MaxValue: many"),
        (
            "      RotateImmediatelyOnUpdate: true",
            "      RotateImmediatelyOnUpdate: true\n      RotateEveryHour: true",
        ),
    ] {
        assert!(template.contains(needle), "{needle}");
        let path = dir.path().join("broken.yaml");
        std::fs::write(&path, template.replacen(needle, broken, 1)).unwrap();
        assert!(
            !lint(&path).status.success(),
            "cfn-lint accepted {broken:?}"
        );
    }
}
