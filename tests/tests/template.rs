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
