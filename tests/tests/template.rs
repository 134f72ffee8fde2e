//! GIVEN template.yaml, WHEN cfn-lint (installed by the test command) checks it offline, THEN it
//! passes, and a deliberately broken copy fails (so the check can fail).

mod common;

use std::process::Command;

fn lint(path: &std::path::Path) -> std::process::Output {
    Command::new(common::root().join("target/py/bin/cfn-lint"))
        .arg(path)
        .output()
        .expect("cfn-lint is installed under target/py by scripts/test.sh")
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
