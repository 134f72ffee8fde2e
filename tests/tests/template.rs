//! GIVEN template.yaml, WHEN AWS's own SAM translator (the code CloudFormation runs at deploy)
//! transforms it and cfn-lint checks it, both offline, THEN both accept it, and deliberately
//! broken copies fail (so each check can fail), including a break only the transform catches.

use crate::common;

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

/// The template under test: `CHAT_AUTH_TEMPLATE` if set (to see a check fail on an older copy),
/// else the repository's.
fn template_path() -> std::path::PathBuf {
    std::env::var_os("CHAT_AUTH_TEMPLATE")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| common::root().join("template.yaml"))
}

/// The transformed template, as CloudFormation receives it.
fn transformed() -> serde_json::Value {
    let template = template_path().into_os_string();
    let out = common::python_script(
        "sam_transform.py",
        &[template.as_os_str(), "--json".as_ref()],
    );
    serde_json::from_slice(&out).unwrap()
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

/// Every IAM action of `service` (lower case), from the service authorization data cfn-lint ships.
fn known_actions(service: &str) -> Vec<String> {
    let out = common::python_script("sam_transform.py", &["--actions", service]);
    serde_json::from_slice(&out).unwrap()
}

/// Just enough IAM policy evaluation for this template's resource and key policies: which
/// statements apply to a request. A condition operator or intrinsic function it does not know
/// fails the test rather than being guessed at.
mod iam {
    use serde_json::{Value, json};

    pub const ACCOUNT: &str = "123456789012";

    /// The ARN a template resource's `Arn` attribute stands for here (the roles are the only ones
    /// the policies name).
    pub fn role(resource: &str) -> String {
        format!("arn:aws:iam::{ACCOUNT}:role/{resource}")
    }

    /// `node` with the intrinsic functions the policies use replaced by values; `params` gives
    /// the stack parameters.
    pub fn resolve(node: &Value, params: &[(&str, &str)]) -> Value {
        let pseudo = |name: &str| -> String {
            match name {
                "AWS::AccountId" => ACCOUNT.into(),
                "AWS::Partition" => "aws".into(),
                "AWS::Region" => "us-east-1".into(),
                "AWS::URLSuffix" => "amazonaws.com".into(),
                "AWS::StackName" => "chat-auth".into(),
                other => match params.iter().find(|(k, _)| *k == other) {
                    Some((_, v)) => (*v).into(),
                    None => panic!("no value for Ref {other}"),
                },
            }
        };
        match node {
            // `Ref AWS::NoValue` resolves to null, and drops out of the list holding it.
            Value::Array(items) => items
                .iter()
                .map(|i| resolve(i, params))
                .filter(|v| !v.is_null())
                .collect(),
            Value::Object(map) if map.len() == 1 => {
                let (key, arg) = map.iter().next().unwrap();
                match key.as_str() {
                    "Ref" if arg == "AWS::NoValue" => Value::Null,
                    "Ref" => Value::String(pseudo(arg.as_str().unwrap())),
                    // A condition is given as a parameter of its own name: "true" or not.
                    "Fn::If" => {
                        let holds = pseudo(arg[0].as_str().unwrap()) == "true";
                        resolve(&arg[if holds { 1 } else { 2 }], params)
                    }
                    "Fn::GetAtt" => {
                        assert_eq!(arg[1], "Arn", "{node}");
                        Value::String(role(arg[0].as_str().unwrap()))
                    }
                    "Fn::Split" => {
                        let text = resolve(&arg[1], params);
                        let parts: Vec<&str> = text
                            .as_str()
                            .unwrap()
                            .split(arg[0].as_str().unwrap())
                            .collect();
                        json!(parts)
                    }
                    "Fn::Sub" => {
                        let mut text = arg.as_str().expect("Fn::Sub without variables").to_owned();
                        while let Some(start) = text.find("${") {
                            let end = start + text[start..].find('}').unwrap();
                            let name = &text[start + 2..end];
                            let value = match name.strip_suffix(".Arn") {
                                Some(resource) => role(resource),
                                None => pseudo(name),
                            };
                            text.replace_range(start..=end, &value);
                        }
                        Value::String(text)
                    }
                    k if k.starts_with("Fn::") => panic!("unsupported {k} in {node}"),
                    _ => json!({ key: resolve(arg, params) }),
                }
            }
            Value::Object(map) => map
                .iter()
                .map(|(k, v)| (k.clone(), resolve(v, params)))
                .collect::<serde_json::Map<_, _>>()
                .into(),
            other => other.clone(),
        }
    }

    /// A string or a list of strings.
    pub fn strings(v: &Value) -> Vec<String> {
        match v {
            Value::String(s) => vec![s.clone()],
            Value::Array(items) => items.iter().flat_map(strings).collect(),
            Value::Bool(b) => vec![b.to_string()],
            Value::Number(n) => vec![n.to_string()],
            other => panic!("not a string or list: {other}"),
        }
    }

    /// IAM's wildcard match (`*`, `?`); `fold` for actions, which are case-insensitive.
    pub fn wildcard(pattern: &str, text: &str, fold: bool) -> bool {
        let (p, t): (Vec<char>, Vec<char>) = if fold {
            (
                pattern.to_lowercase().chars().collect(),
                text.to_lowercase().chars().collect(),
            )
        } else {
            (pattern.chars().collect(), text.chars().collect())
        };
        fn go(p: &[char], t: &[char]) -> bool {
            match p.split_first() {
                None => t.is_empty(),
                Some(('*', rest)) => (0..=t.len()).any(|i| go(rest, &t[i..])),
                Some(('?', rest)) => !t.is_empty() && go(rest, &t[1..]),
                Some((c, rest)) => t.first() == Some(c) && go(rest, &t[1..]),
            }
        }
        go(&p, &t)
    }

    /// One request: an action by a principal, with the other context keys it carries.
    pub struct Request<'a> {
        pub action: &'a str,
        pub principal: &'a str,
        pub keys: &'a [(&'a str, &'a [&'a str])],
    }

    impl Request<'_> {
        fn values(&self, key: &str) -> Option<Vec<String>> {
            if key.eq_ignore_ascii_case("aws:PrincipalArn") {
                return Some(vec![self.principal.to_owned()]);
            }
            self.keys
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(key))
                .map(|(_, v)| v.iter().map(|s| (*s).to_owned()).collect())
        }
    }

    /// Whether one condition block (`{"Operator": {"key": values}}`) holds for `request`.
    fn condition_holds(
        operator: &str,
        key: &str,
        wanted: &[String],
        request: &Request<'_>,
    ) -> bool {
        let (set, op) = match operator.split_once(':') {
            Some((set, op)) => (Some(set), op),
            None => (None, operator),
        };
        let (op, if_exists) = match op.strip_suffix("IfExists") {
            Some(op) => (op, true),
            None => (op, false),
        };
        let present = request.values(key);
        if op == "Null" {
            assert_eq!(wanted.len(), 1);
            return (wanted[0] == "true") == present.is_none();
        }
        let (base, negated) = match op {
            "StringNotEquals" => ("StringEquals", true),
            "StringNotLike" => ("StringLike", true),
            "ArnNotEquals" => ("ArnLike", true),
            "ArnNotLike" => ("ArnLike", true),
            "ArnEquals" => ("ArnLike", false),
            "StringEquals" | "StringLike" | "ArnLike" | "Bool" => (op, false),
            "NumericGreaterThanEquals" => (op, false),
            other => panic!("condition operator {other} is not modelled here"),
        };
        let Some(values) = present else {
            return if_exists || set == Some("ForAllValues") || (set.is_none() && negated);
        };
        let matches = |value: &str| {
            wanted.iter().any(|w| match base {
                "StringEquals" | "Bool" => w == value,
                "NumericGreaterThanEquals" => {
                    value.parse::<f64>().unwrap() >= w.parse::<f64>().unwrap()
                }
                _ => wildcard(w, value, false),
            })
        };
        match set {
            None => values.iter().any(|v| matches(v)) != negated,
            Some("ForAnyValue") => values.iter().any(|v| matches(v) != negated),
            Some("ForAllValues") => values.iter().all(|v| matches(v) != negated),
            Some(other) => panic!("set operator {other} is not modelled here"),
        }
    }

    /// Whether `statement` applies to `request` (principal, action and every condition).
    pub fn applies(statement: &Value, request: &Request<'_>) -> bool {
        assert!(
            statement.get("NotPrincipal").is_none() && statement.get("NotAction").is_none(),
            "not modelled: {statement}"
        );
        assert_eq!(statement["Resource"], "*", "{statement}");
        let principal = &statement["Principal"];
        let anyone = *principal == "*" || principal["AWS"] == "*";
        let named = principal
            .get("AWS")
            .is_some_and(|p| strings(p).iter().any(|a| a == request.principal));
        let action = strings(&statement["Action"])
            .iter()
            .any(|a| wildcard(a, request.action, true));
        (anyone || named) && action && conditions_hold(statement, request)
    }

    fn conditions_hold(statement: &Value, request: &Request<'_>) -> bool {
        statement
            .get("Condition")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
            .all(|(operator, keys)| {
                keys.as_object()
                    .unwrap()
                    .iter()
                    .all(|(key, wanted)| condition_holds(operator, key, &strings(wanted), request))
            })
    }

    /// Whether a role's own (identity) policy statements allow `request` on `resource`: an
    /// Allow applies and no Deny does. The principal is the role's, so statements name none.
    pub fn identity_allows(statements: &[Value], request: &Request<'_>, resource: &str) -> bool {
        let applies = |s: &Value| {
            assert!(
                s.get("Principal").is_none() && s.get("NotAction").is_none(),
                "{s}"
            );
            strings(&s["Resource"])
                .iter()
                .any(|r| wildcard(r, resource, false))
                && strings(&s["Action"])
                    .iter()
                    .any(|a| wildcard(a, request.action, true))
                && conditions_hold(s, request)
        };
        statements
            .iter()
            .any(|s| s["Effect"] == "Allow" && applies(s))
            && !statements
                .iter()
                .any(|s| s["Effect"] == "Deny" && applies(s))
    }

    /// Whether an explicit Deny in `policy` refuses `request`.
    pub fn denied(policy: &Value, request: &Request<'_>) -> bool {
        policy["Statement"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["Effect"] == "Deny" && applies(s, request))
    }
}

/// Every Secrets Manager API that changes an existing secret (its value, its stages, its resource
/// policy, its settings, its rotation, its replicas or its existence). Tagging is left out on
/// purpose (template.yaml says why), and is the only other change an API can make.
const SECRET_WRITES: [&str; 12] = [
    "secretsmanager:PutSecretValue",
    "secretsmanager:UpdateSecretVersionStage",
    "secretsmanager:UpdateSecret",
    "secretsmanager:PutResourcePolicy",
    "secretsmanager:DeleteResourcePolicy",
    "secretsmanager:RotateSecret",
    "secretsmanager:CancelRotateSecret",
    "secretsmanager:DeleteSecret",
    "secretsmanager:RestoreSecret",
    "secretsmanager:ReplicateSecretToRegions",
    "secretsmanager:RemoveRegionsFromReplication",
    "secretsmanager:StopReplicationToReplica",
];

/// The rest of Secrets Manager's actions, and why none of them changes one of our secrets.
const SECRET_NOT_WRITES: [(&str, &str); 11] = [
    (
        "secretsmanager:GetSecretValue",
        "read (the signing ring's own Deny)",
    ),
    (
        "secretsmanager:BatchGetSecretValue",
        "read; AWS also authorizes GetSecretValue per secret",
    ),
    ("secretsmanager:DescribeSecret", "read"),
    ("secretsmanager:GetResourcePolicy", "read"),
    ("secretsmanager:ListSecretVersionIds", "read"),
    ("secretsmanager:ListSecrets", "list"),
    ("secretsmanager:GetRandomPassword", "no secret"),
    ("secretsmanager:CreateSecret", "a new secret, not ours"),
    (
        "secretsmanager:ValidateResourcePolicy",
        "changes nothing; also authorized as PutResourcePolicy",
    ),
    (
        "secretsmanager:TagResource",
        "tags: nothing here reads them",
    ),
    (
        "secretsmanager:UntagResource",
        "tags: nothing here reads them",
    ),
];

#[test]
fn only_rotation_writes_the_secrets_and_only_the_deployers_change_them() {
    // GIVEN every Secrets Manager action AWS defines, sorted into writes and the rest
    let mut classified: Vec<String> = SECRET_WRITES
        .iter()
        .copied()
        .chain(SECRET_NOT_WRITES.iter().map(|(a, _)| *a))
        .map(str::to_lowercase)
        .collect();
    classified.sort();
    assert_eq!(
        classified,
        known_actions("secretsmanager"),
        "Secrets Manager's actions changed: sort the new ones into SECRET_WRITES or SECRET_NOT_WRITES"
    );
    let t = transformed();
    let deployers = "arn:aws:iam::123456789012:role/cfn-deploy,arn:aws:iam::123456789012:role/ci";
    let params = [("DeployRoleArns", deployers)];
    let writer = iam::role("RotateKeysFunctionRole");
    let signer = iam::role("MintTokenFunctionRole");
    let admin = "arn:aws:iam::123456789012:role/SecretsManagerReadWrite-holder";
    let (cloudformation, via_service): (&[&str], &[&str]) =
        (&["cloudformation.amazonaws.com"], &["true"]);
    let worst_case: &[(&str, &[&str])] = &[
        (
            "secretsmanager:RotationLambdaARN",
            &["arn:aws:lambda:us-east-1:123456789012:function:x"],
        ),
        ("secretsmanager:ModifyRotationRules", &["true"]),
    ];
    let through_a_stack: &[(&str, &[&str])] = &[
        ("aws:CalledVia", cloudformation),
        ("aws:CalledViaFirst", cloudformation),
        ("aws:ViaAWSService", via_service),
    ];
    for name in ["SigningSecretPolicy", "PublicKeysSecretPolicy"] {
        let policy = iam::resolve(
            &t["Resources"][name]["Properties"]["ResourcePolicy"],
            &params,
        );
        let denied = |action: &str, principal: &str, keys: &[(&str, &[&str])]| {
            iam::denied(
                &policy,
                &iam::Request {
                    action,
                    principal,
                    keys,
                },
            )
        };
        // WHEN anyone else, directly, through a stack of their own or as another function, writes
        for outsider in [admin, signer.as_str()] {
            for keys in [&[][..], worst_case, through_a_stack] {
                for action in SECRET_WRITES {
                    // THEN an explicit Deny refuses it, whatever their IAM policies allow
                    assert!(
                        denied(action, outsider, keys),
                        "{name} lets {outsider} call {action} (context {keys:?})"
                    );
                }
            }
        }
        // ... and rotate-keys writes versions (and nothing else), the deployers the rest.
        for action in SECRET_WRITES {
            let versions =
                action.ends_with("PutSecretValue") || action.ends_with("UpdateSecretVersionStage");
            assert_eq!(
                denied(action, &writer, &[]),
                !versions,
                "{name}: rotate-keys' role and {action}"
            );
            for deployer in deployers.split(',') {
                for keys in [&[][..], worst_case, through_a_stack] {
                    assert_eq!(
                        denied(action, deployer, keys),
                        versions,
                        "{name}: stack updates by {deployer} and {action}"
                    );
                }
            }
        }
    }
    // The signers read the ring; nobody else does.
    let ring = iam::resolve(
        &t["Resources"]["SigningSecretPolicy"]["Properties"]["ResourcePolicy"],
        &params,
    );
    for (principal, refused) in [(signer.as_str(), false), (&writer, false), (admin, true)] {
        let request = iam::Request {
            action: "secretsmanager:GetSecretValue",
            principal,
            keys: &[],
        };
        assert_eq!(iam::denied(&ring, &request), refused, "{principal}");
    }
}

#[test]
fn the_account_can_neither_decrypt_the_ring_nor_grant_itself_that() {
    let t = transformed();
    let kms = known_actions("kms");
    let policy = iam::resolve(
        &t["Resources"]["SigningKmsKey"]["Properties"]["KeyPolicy"],
        &[],
    );
    let account = format!("arn:aws:iam::{}:root", iam::ACCOUNT);
    for statement in policy["Statement"].as_array().unwrap() {
        let actions = iam::strings(&statement["Action"]);
        // Named action by action: no wildcard hides a grant or a decrypt, and no name is a typo.
        for action in &actions {
            assert!(
                !action.contains(['*', '?']),
                "{action} in {}: list KMS actions explicitly",
                statement["Sid"]
            );
            assert!(kms.contains(&action.to_lowercase()), "unknown {action}");
        }
        if statement["Effect"] != "Allow" {
            continue;
        }
        let grants = actions
            .iter()
            .any(|a| a.eq_ignore_ascii_case("kms:CreateGrant"));
        let for_aws_resources =
            statement["Condition"]["Bool"]["kms:GrantIsForAWSResource"] == "true";
        assert!(
            !grants || for_aws_resources,
            "{} allows kms:CreateGrant without kms:GrantIsForAWSResource",
            statement["Sid"]
        );
        if iam::strings(&statement["Principal"]["AWS"]).contains(&account) {
            for action in &kms {
                let cryptographic = ["kms:decrypt", "kms:reencrypt", "kms:generatedatakey"]
                    .iter()
                    .any(|p| action.starts_with(p));
                let allowed = actions.iter().any(|a| iam::wildcard(a, action, true));
                assert!(
                    !(cryptographic && allowed),
                    "the account may {action} with the ring's key ({})",
                    statement["Sid"]
                );
            }
        }
    }
}

#[test]
fn the_key_alarms_fire_well_before_the_signing_key_expires() {
    // GIVEN the expiry the published documents give the signing key, in rotation periods from the
    // moment it began signing (2: one period signing, one more published)
    let period = 30 * 86_400;
    let ring = chat_auth_shared::RingState::generate(0, period).unwrap();
    let policy = chat_auth_shared::RingPolicy::new(period, 0, 300, 60, 30);
    let published = ring.publication(None, None, &policy, 0).unwrap();
    let key = published.key(&ring.current.kid).unwrap();
    let expiry = (key.expiry - ring.current.times.activates) as f64 / period as f64;
    assert_eq!(expiry, 2.0);
    let emitted: String = ["mint-token", "rotate-keys"]
        .map(|f| {
            std::fs::read_to_string(common::root().join(format!("functions/{f}/src/lib.rs")))
                .unwrap()
        })
        .concat();
    let t = transformed();
    // WHEN the alarms on the key's age are read: the stale alarm must leave half a period before
    // the expiry; the deferred alarm must fire at any deferral that would keep the key signing
    // (one more period, to the next scheduled rotation) past its expiry.
    for (name, at_most) in [
        ("SigningKeyStaleAlarm", expiry - 0.5),
        ("RotationDeferredAlarm", expiry - 1.0),
    ] {
        let alarm = &t["Resources"][name]["Properties"];
        assert!(alarm.is_object(), "no {name}");
        let metrics = alarm["Metrics"].as_array().unwrap();
        let stat = metrics
            .iter()
            .find(|m| m.get("MetricStat").is_some())
            .unwrap();
        let metric = &stat["MetricStat"]["Metric"];
        assert_eq!(metric["Namespace"]["Fn::Sub"], "ChatAuth/${AWS::StackName}");
        let name_of_metric = metric["MetricName"].as_str().unwrap();
        // THEN each reads a metric a function emits, in rotation periods, and fires in time
        assert!(
            emitted.contains(&format!("\"{name_of_metric}\"")),
            "{name} reads {name_of_metric}, which no function emits"
        );
        let returned = metrics.iter().find(|m| m["ReturnData"] == true).unwrap();
        assert_eq!(
            returned["Expression"]["Fn::Sub"],
            format!(
                "{} / (86400 * ${{RotationPeriodDays}})",
                stat["Id"].as_str().unwrap()
            ),
            "{name}"
        );
        assert_eq!(
            alarm["ComparisonOperator"], "GreaterThanThreshold",
            "{name}"
        );
        let threshold = alarm["Threshold"].as_f64().unwrap();
        assert!(
            threshold <= at_most,
            "{name} fires past {threshold} rotation periods; the key's advertised expiry is at {expiry}, so it must fire by {at_most}"
        );
    }
}

/// Every role the template makes, with the statements of its own policies, in `custody`.
fn role_statements(custody: &str) -> Vec<(String, Vec<serde_json::Value>)> {
    let t = transformed();
    let kms = (custody == "KMS").to_string();
    let params = [
        ("KmsCustody", kms.as_str()),
        ("KeyCustody", custody),
        (
            "PublicKeysSecret",
            "arn:aws:secretsmanager:us-east-1:123456789012:secret:chat-auth-public-AbCdEf",
        ),
    ];
    t["Resources"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(_, r)| r["Type"] == "AWS::IAM::Role")
        .map(|(name, role)| {
            let policies = iam::resolve(&role["Properties"]["Policies"], &params);
            let statements = policies
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|p| p["PolicyDocument"]["Statement"].as_array().unwrap().clone())
                .collect();
            (name.clone(), statements)
        })
        .collect()
}

/// What each role may do to KMS keys in each custody, by its own policies (each key's own
/// policy, made by rotate-keys, is checked against moto in tests/tests/kms_custody.rs): only
/// mint-token signs, only with this stack's keys and only RAW RS256; rotate-keys creates,
/// reads, disables and deletes this stack's keys but never signs; no other role touches KMS.
#[test]
fn in_kms_custody_only_mint_token_signs_and_only_with_this_stacks_keys() {
    const KEY: &str = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab";
    let ours: &[&str] = &["chat-auth"];
    let theirs: &[&str] = &["another-stack"];
    let rs256: &[(&str, &[&str])] = &[
        ("kms:SigningAlgorithm", &["RSASSA_PKCS1_V1_5_SHA_256"]),
        ("kms:MessageType", &["RAW"]),
    ];
    let verdicts = |custody: &str| -> Vec<(String, String)> {
        let kms = known_actions("kms");
        let mut allowed = Vec::new();
        for (role, statements) in role_statements(custody) {
            for action in &kms {
                for stack in [ours, theirs, &[][..]] {
                    let mut keys: Vec<(&str, &[&str])> = rs256.to_vec();
                    keys.push(("aws:ResourceTag/chat-auth:stack", stack));
                    keys.push(("aws:RequestTag/chat-auth:stack", stack));
                    keys.push(("kms:KeySpec", &["RSA_2048"]));
                    keys.push(("kms:KeyUsage", &["SIGN_VERIFY"]));
                    keys.push(("kms:ScheduleKeyDeletionPendingWindowInDays", &["30"]));
                    let request = iam::Request {
                        action,
                        principal: &role,
                        keys: &keys,
                    };
                    if iam::identity_allows(&statements, &request, KEY) {
                        let whose = match stack.first() {
                            Some(&"chat-auth") => "ours",
                            Some(_) => "another stack's",
                            None => "untagged",
                        };
                        allowed.push((role.clone(), format!("{action} on {whose}")));
                    }
                }
            }
        }
        allowed.sort();
        allowed.dedup();
        allowed
    };
    let by_role = |allowed: &[(String, String)], role: &str| -> Vec<String> {
        allowed
            .iter()
            .filter(|(r, _)| r == role)
            .map(|(_, a)| a.clone())
            .collect()
    };
    let kms = verdicts("KMS");
    assert_eq!(by_role(&kms, "MintTokenFunctionRole"), ["kms:sign on ours"]);
    let rotation = by_role(&kms, "RotateKeysFunctionRole");
    // ListKeys has no resource-level permission: it is the one action not tied to our tag.
    assert_eq!(
        rotation,
        [
            "kms:createkey on ours",
            "kms:describekey on ours",
            "kms:disablekey on ours",
            "kms:getpublickey on ours",
            "kms:listkeys on another stack's",
            "kms:listkeys on ours",
            "kms:listkeys on untagged",
            "kms:listresourcetags on ours",
            "kms:putkeypolicy on ours",
            "kms:schedulekeydeletion on ours",
            "kms:tagresource on ours",
        ]
    );
    for (role, action) in &kms {
        assert!(
            role == "MintTokenFunctionRole" || role == "RotateKeysFunctionRole",
            "{role} may {action}"
        );
    }
    // RS256 over the raw message only, and a deletion window of at least AWS's 7 days.
    let sign_as = |keys: &[(&str, &[&str])]| {
        let mint = role_statements("KMS")
            .into_iter()
            .find(|(r, _)| r == "MintTokenFunctionRole")
            .unwrap()
            .1;
        iam::identity_allows(
            &mint,
            &iam::Request {
                action: "kms:Sign",
                principal: "MintTokenFunctionRole",
                keys,
            },
            KEY,
        )
    };
    let tagged: (&str, &[&str]) = ("aws:ResourceTag/chat-auth:stack", ours);
    assert!(sign_as(&[tagged, rs256[0], rs256[1]]));
    assert!(!sign_as(&[
        tagged,
        rs256[0],
        ("kms:MessageType", &["DIGEST"])
    ]));
    assert!(!sign_as(&[
        tagged,
        ("kms:SigningAlgorithm", &["RSASSA_PSS_SHA_256"]),
        rs256[1]
    ]));
    // In the default custody, no role has any KMS action on keys at all.
    assert_eq!(verdicts("SecretsManager"), Vec::<(String, String)>::new());
}
