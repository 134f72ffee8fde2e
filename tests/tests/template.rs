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
    transformed_at(&template_path())
}

/// The template at `path`, transformed.
fn transformed_at(path: &std::path::Path) -> serde_json::Value {
    let out = common::python_script("sam_transform.py", &[path.as_os_str(), "--json".as_ref()]);
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
        resolve_in(&Value::Null, node, params)
    }

    /// [`resolve`] within the transformed `template`, as CloudFormation would deploy it with
    /// `params`: a parameter they leave out takes its default, `Fn::If` follows the template's
    /// conditions, `AWS::NoValue` removes what it stands in, and a `Ref` to a resource stands for
    /// `ref:NAME`.
    pub fn resolve_in(template: &Value, node: &Value, params: &[(&str, &str)]) -> Value {
        value(template, node, params).unwrap_or_else(|| panic!("{node} is AWS::NoValue"))
    }

    /// Whether `template`'s condition `name` holds with `params`.
    pub fn condition(template: &Value, name: &str, params: &[(&str, &str)]) -> bool {
        let node = &template["Conditions"][name];
        assert!(!node.is_null(), "no condition {name}");
        match value(template, node, params) {
            Some(Value::Bool(holds)) => holds,
            other => panic!("condition {name} is {other:?}"),
        }
    }

    /// `node` resolved, or None where it is `AWS::NoValue`.
    fn value(template: &Value, node: &Value, params: &[(&str, &str)]) -> Option<Value> {
        let pseudo = |name: &str| -> Option<String> {
            Some(match name {
                "AWS::AccountId" => ACCOUNT.into(),
                "AWS::Partition" => "aws".into(),
                "AWS::Region" => "us-east-1".into(),
                "AWS::URLSuffix" => "amazonaws.com".into(),
                "AWS::StackName" => "chat-auth".into(),
                "AWS::NoValue" => return None,
                other => match params.iter().find(|(k, _)| *k == other) {
                    Some((_, v)) => (*v).into(),
                    None => match &template["Parameters"][other]["Default"] {
                        Value::String(default) => default.clone(),
                        Value::Number(default) => default.to_string(),
                        _ if template["Resources"].get(other).is_some() => format!("ref:{other}"),
                        _ => panic!("no value for Ref {other}"),
                    },
                },
            })
        };
        let resolved = |node: &Value| value(template, node, params);
        let holds = |node: &Value| match resolved(node) {
            Some(Value::Bool(holds)) => holds,
            other => panic!("not a condition: {other:?}"),
        };
        Some(match node {
            Value::Array(items) => items.iter().filter_map(resolved).collect(),
            Value::Object(map) if map.len() == 1 => {
                let (key, arg) = map.iter().next().unwrap();
                match key.as_str() {
                    "Ref" => Value::String(pseudo(arg.as_str().unwrap())?),
                    "Fn::GetAtt" => {
                        assert_eq!(arg[1], "Arn", "{node}");
                        Value::String(role(arg[0].as_str().unwrap()))
                    }
                    "Fn::If" => {
                        let holds = condition(template, arg[0].as_str().unwrap(), params);
                        return resolved(&arg[if holds { 1 } else { 2 }]);
                    }
                    "Condition" if arg.is_string() => {
                        Value::Bool(condition(template, arg.as_str().unwrap(), params))
                    }
                    "Fn::Equals" => Value::Bool(resolved(&arg[0]) == resolved(&arg[1])),
                    "Fn::Not" => Value::Bool(!holds(&arg[0])),
                    "Fn::And" => Value::Bool(arg.as_array().unwrap().iter().all(holds)),
                    "Fn::Or" => Value::Bool(arg.as_array().unwrap().iter().any(holds)),
                    "Fn::Split" => {
                        let text = resolved(&arg[1])?;
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
                                None => pseudo(name).expect("AWS::NoValue in Fn::Sub"),
                            };
                            text.replace_range(start..=end, &value);
                        }
                        Value::String(text)
                    }
                    k if k.starts_with("Fn::") => panic!("unsupported {k} in {node}"),
                    _ => match resolved(arg) {
                        Some(v) => json!({ key: v }),
                        None => json!({}),
                    },
                }
            }
            Value::Object(map) => map
                .iter()
                .filter_map(|(k, v)| Some((k.clone(), resolved(v)?)))
                .collect::<serde_json::Map<_, _>>()
                .into(),
            other => other.clone(),
        })
    }

    /// A string or a list of strings (a number or a boolean as written).
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
            "NumericNotEquals" => ("NumericEquals", true),
            "StringEquals"
            | "StringLike"
            | "ArnLike"
            | "Bool"
            | "NumericEquals"
            | "NumericLessThan"
            | "NumericLessThanEquals"
            | "NumericGreaterThan"
            | "NumericGreaterThanEquals" => (op, false),
            other => panic!("condition operator {other} is not modelled here"),
        };
        let Some(values) = present else {
            return if_exists || set == Some("ForAllValues") || (set.is_none() && negated);
        };
        let number = |text: &str| -> i64 {
            text.parse()
                .unwrap_or_else(|_| panic!("{key}: {text} is not a whole number"))
        };
        let matches = |value: &str| {
            wanted.iter().any(|w| match base {
                "StringEquals" | "Bool" => w == value,
                "NumericEquals" => number(value) == number(w),
                "NumericLessThan" => number(value) < number(w),
                "NumericLessThanEquals" => number(value) <= number(w),
                "NumericGreaterThan" => number(value) > number(w),
                "NumericGreaterThanEquals" => number(value) >= number(w),
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

    /// Whether every condition of `statement` holds for `request`.
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

    /// Whether a role's own policy documents let it make `request` on `resource` (a key's ARN,
    /// or `*` for an action that names no resource): an Allow matches action, resource and
    /// conditions, and no Deny does.
    pub fn role_allows(documents: &[Value], request: &Request<'_>, resource: &str) -> bool {
        let matching = |effect: &str| {
            documents
                .iter()
                .flat_map(|d| d["Statement"].as_array().unwrap())
                .filter(|s| s["Effect"] == effect)
                .any(|s| {
                    assert!(
                        ["NotAction", "NotResource", "Principal"]
                            .iter()
                            .all(|k| s.get(k).is_none()),
                        "not modelled: {s}"
                    );
                    strings(&s["Action"])
                        .iter()
                        .any(|a| wildcard(a, request.action, true))
                        && strings(&s["Resource"])
                            .iter()
                            .any(|r| wildcard(r, resource, false))
                        && conditions_hold(s, request)
                })
        };
        matching("Allow") && !matching("Deny")
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

/// The name `iam::resolve` gives `AWS::StackName`, and another stack's in the same account.
const STACK: &str = "chat-auth";
const OTHER_STACK: &str = "chat-auth-staging";

/// A KMS key of the account in the stack's Region: whose it is lies in its tags alone, which is
/// all the roles' policies can tell keys apart by (rotation makes the keys after deploy).
const KEY: &str = "arn:aws:kms:us-east-1:123456789012:key/0b7f3b8e-5c1a-4f0e-9d2a-6f1e2d3c4b5a";

/// The tags rotation puts on each key it makes (aws/src/kms.rs).
const ROTATION_TAGS: [&str; 3] = ["chat-auth:stack", "chat-auth:rotation", "chat-auth:created"];

type Keys = Vec<(&'static str, &'static [&'static str])>;

/// Everything a request by mint-token or rotation carries about one of this stack's keys: the
/// context in which any grant of theirs applies, if it applies at all.
const OURS: &[(&str, &[&str])] = &[
    ("aws:ResourceTag/chat-auth:stack", &[STACK]),
    ("aws:RequestTag/chat-auth:stack", &[STACK]),
    ("aws:TagKeys", &ROTATION_TAGS),
    ("kms:KeySpec", &["RSA_2048"]),
    ("kms:KeyUsage", &["SIGN_VERIFY"]),
    ("kms:SigningAlgorithm", &["RSASSA_PKCS1_V1_5_SHA_256"]),
    ("kms:MessageType", &["RAW"]),
    ("kms:ScheduleKeyDeletionPendingWindowInDays", &["30"]),
];

fn ours() -> Keys {
    OURS.to_vec()
}

/// `keys` with `key` set to `values`, or left out (None).
fn with(mut keys: Keys, key: &'static str, values: Option<&'static [&'static str]>) -> Keys {
    keys.retain(|(k, _)| *k != key);
    keys.extend(values.map(|v| (key, v)));
    keys
}

/// The same request about another stack's key, and about a key with no tags.
fn foreign() -> [(&'static str, Keys); 2] {
    let tag = "aws:ResourceTag/chat-auth:stack";
    [
        (
            "another stack's key",
            with(ours(), tag, Some(&[OTHER_STACK])),
        ),
        ("an untagged key", with(ours(), tag, None)),
    ]
}

/// What rotation calls in KMS custody: nothing else, and never kms:Sign.
const ROTATION_ACTIONS: [&str; 8] = [
    "kms:CreateKey",
    "kms:TagResource",
    "kms:ListKeys",
    "kms:ListResourceTags",
    "kms:DescribeKey",
    "kms:GetPublicKey",
    "kms:DisableKey",
    "kms:ScheduleKeyDeletion",
];

/// Every IAM role of the transformed template `t` with its own policy documents and managed
/// policy ARNs, as deployed with `params`.
fn roles(
    t: &serde_json::Value,
    params: &[(&str, &str)],
) -> Vec<(String, Vec<serde_json::Value>, Vec<String>)> {
    t["Resources"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(_, r)| r["Type"] == "AWS::IAM::Role")
        .map(|(name, r)| {
            let properties = iam::resolve_in(t, &r["Properties"], params);
            let documents = properties["Policies"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|p| p["PolicyDocument"].clone())
                .collect();
            let managed = properties
                .get("ManagedPolicyArns")
                .map(iam::strings)
                .unwrap_or_default();
            (name.clone(), documents, managed)
        })
        .collect()
}

/// How the transformed template `t` grants more of KMS than KMS custody needs, one line each.
/// None when, with `KeyCustody=KMS`, mint-token may kms:Sign this stack's keys (RS256 over the
/// raw input) and do nothing else in KMS, rotate-keys may make, read and withdraw them (and no
/// other stack's) but not sign, and no other role's policies name a KMS action; when, with the
/// default custody, no role's policies name a KMS action; and when no key policy allows kms:Sign.
fn kms_custody_faults(t: &serde_json::Value) -> Vec<String> {
    let kms = known_actions("kms");
    let mut faults = Vec::new();
    // The translator adds this AWS managed policy (CloudWatch Logs only) to every function's
    // role; any other managed or standalone policy is one this check cannot read.
    let basic = "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole";
    for (name, resource) in t["Resources"].as_object().unwrap() {
        let kind = resource["Type"].as_str().unwrap();
        if kind.starts_with("AWS::IAM::") && kind.ends_with("Policy") {
            faults.push(format!("{name}: a {kind} this check does not read"));
        }
    }
    for (custody, params) in [("KMS", &[("KeyCustody", "KMS")][..]), ("default", &[])] {
        for (name, key) in t["Resources"]
            .as_object()
            .unwrap()
            .iter()
            .filter(|(_, r)| r["Type"] == "AWS::KMS::Key")
        {
            let policy = iam::resolve_in(t, &key["Properties"]["KeyPolicy"], params);
            for statement in policy["Statement"].as_array().unwrap() {
                let actions = iam::strings(&statement["Action"]);
                if statement["Effect"] == "Allow"
                    && actions.iter().any(|a| iam::wildcard(a, "kms:Sign", true))
                {
                    faults.push(format!(
                        "{name}'s key policy allows kms:Sign ({}, {custody} custody)",
                        statement["Sid"]
                    ));
                }
            }
        }
        for (role, documents, managed) in roles(t, params) {
            for arn in managed.iter().filter(|a| *a != basic) {
                faults.push(format!("{role} has managed policy {arn}"));
            }
            let principal = iam::role(&role);
            let may = |action: &str, keys: &Keys| {
                let request = iam::Request {
                    action,
                    principal: &principal,
                    keys,
                };
                [KEY, "*"]
                    .iter()
                    .any(|resource| iam::role_allows(&documents, &request, resource))
            };
            match (custody, role.as_str()) {
                ("KMS", "MintTokenFunctionRole") => {
                    if !may("kms:Sign", &ours()) {
                        faults.push("mint-token cannot kms:Sign this stack's keys".into());
                    }
                    let mut refused: Vec<(&str, Keys)> = foreign().into();
                    refused.push((
                        "a digest (MessageType DIGEST)",
                        with(ours(), "kms:MessageType", Some(&["DIGEST"])),
                    ));
                    refused.push((
                        "with RSASSA_PSS_SHA_256",
                        with(
                            ours(),
                            "kms:SigningAlgorithm",
                            Some(&["RSASSA_PSS_SHA_256"]),
                        ),
                    ));
                    for (what, keys) in refused {
                        if may("kms:Sign", &keys) {
                            faults.push(format!("mint-token may kms:Sign {what}"));
                        }
                    }
                    for action in kms.iter().filter(|a| a.as_str() != "kms:sign") {
                        if may(action, &ours()) {
                            faults.push(format!("mint-token may {action}"));
                        }
                    }
                }
                ("KMS", "RotateKeysFunctionRole") => {
                    for action in &kms {
                        let needed = ROTATION_ACTIONS
                            .iter()
                            .any(|a| a.eq_ignore_ascii_case(action));
                        match (needed, may(action, &ours())) {
                            (true, false) => {
                                faults.push(format!("rotate-keys cannot {action} its own keys"))
                            }
                            (false, true) => faults.push(format!("rotate-keys may {action}")),
                            _ => {}
                        }
                    }
                    let tag = "aws:RequestTag/chat-auth:stack";
                    const EXTRA: &[&str] = &[
                        "chat-auth:stack",
                        "chat-auth:rotation",
                        "chat-auth:created",
                        "owner",
                    ];
                    let tagging = [
                        (
                            "another stack's tag",
                            with(ours(), tag, Some(&[OTHER_STACK])),
                        ),
                        (
                            "a tag rotation does not set",
                            with(ours(), "aws:TagKeys", Some(EXTRA)),
                        ),
                    ];
                    for (what, keys) in &tagging {
                        for action in ["kms:CreateKey", "kms:TagResource"] {
                            if may(action, keys) {
                                faults.push(format!("rotate-keys may {action} with {what}"));
                            }
                        }
                    }
                    for (what, keys) in [
                        ("without this stack's tag", with(ours(), tag, None)),
                        (
                            "of another spec (RSA_4096)",
                            with(ours(), "kms:KeySpec", Some(&["RSA_4096"])),
                        ),
                        (
                            "for encryption",
                            with(ours(), "kms:KeyUsage", Some(&["ENCRYPT_DECRYPT"])),
                        ),
                    ] {
                        if may("kms:CreateKey", &keys) {
                            faults.push(format!("rotate-keys may kms:CreateKey {what}"));
                        }
                    }
                    // Those on keys that exist: ListResourceTags onwards.
                    for (what, keys) in foreign() {
                        for action in &ROTATION_ACTIONS[3..] {
                            if may(action, &keys) {
                                faults.push(format!("rotate-keys may {action} on {what}"));
                            }
                        }
                    }
                    let window = "kms:ScheduleKeyDeletionPendingWindowInDays";
                    if may(
                        "kms:ScheduleKeyDeletion",
                        &with(ours(), window, Some(&["6"])),
                    ) {
                        faults.push(
                            "rotate-keys may schedule a deletion 6 days out, under AWS's minimum of 7"
                                .into(),
                        );
                    }
                }
                _ => {
                    // No statement allows a KMS action at all, on any resource, under any
                    // condition: the ring's key lets mint-token and rotation decrypt in its own
                    // policy, not theirs.
                    for document in &documents {
                        for statement in document["Statement"].as_array().unwrap() {
                            if statement["Effect"] != "Allow" {
                                continue;
                            }
                            let actions = iam::strings(&statement["Action"]);
                            for action in kms
                                .iter()
                                .filter(|k| actions.iter().any(|a| iam::wildcard(a, k, true)))
                            {
                                faults.push(format!(
                                    "{role} is allowed {action} ({custody} custody)"
                                ));
                            }
                        }
                    }
                }
            }
        }
    }
    faults
}

#[test]
fn in_kms_custody_only_mint_token_signs_and_only_with_this_stacks_keys() {
    // GIVEN the template as AWS's translator transforms it, deployed with KeyCustody=KMS and with
    // the default custody; WHEN every role's policies and every key policy in it are evaluated
    // for every KMS action, on this stack's keys, another stack's and untagged ones
    let faults = kms_custody_faults(&transformed());
    // THEN each role may do in KMS what its function does, and nothing signs but mint-token
    assert!(
        faults.is_empty(),
        "KMS grants beyond what KMS custody needs:\n{}",
        faults.join("\n")
    );
}

#[test]
fn a_widened_kms_grant_is_refused() {
    let template = std::fs::read_to_string(common::root().join("template.yaml")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let key_arn =
        "Resource: !Sub \"arn:${AWS::Partition}:kms:${AWS::Region}:${AWS::AccountId}:key/*\"";
    let existing_keys = format!(
        "                  - kms:DisableKey\n                {key_arn}\n                Condition:\n                  StringEquals:\n                    aws:ResourceTag/chat-auth:stack: !Ref AWS::StackName\n"
    );
    let any_keys = format!("                  - kms:DisableKey\n                {key_arn}\n");
    for (needle, widened, fault) in [
        // mint-token signing with any key of the account
        (
            "                    aws:ResourceTag/chat-auth:stack: !Ref AWS::StackName\n                    kms:SigningAlgorithm",
            "                    kms:SigningAlgorithm",
            "mint-token may kms:Sign another stack's key",
        ),
        // rotation signing
        (
            "                  - kms:GetPublicKey\n",
            "                  - kms:GetPublicKey\n                  - kms:Sign\n",
            "rotate-keys may kms:sign",
        ),
        // a verifier reading keys (the first such statement is validate-token's)
        (
            "              Action: secretsmanager:GetSecretValue\n              Resource: !Ref PublicKeysSecret\n",
            "              Action: [secretsmanager:GetSecretValue, kms:DescribeKey]\n              Resource: !Ref PublicKeysSecret\n",
            "ValidateTokenFunctionRole is allowed kms:describekey",
        ),
        // KMS grants whatever the custody
        (
            "  KmsCustody: !Equals [!Ref KeyCustody, KMS]\n",
            "  KmsCustody: !Equals [KMS, KMS]\n",
            "MintTokenFunctionRole is allowed kms:sign (default custody)",
        ),
        // the account signing through IAM policies
        (
            "              - kms:DescribeKey\n              - kms:GetKeyPolicy\n",
            "              - kms:DescribeKey\n              - kms:Sign\n              - kms:GetKeyPolicy\n",
            "SigningKmsKey's key policy allows kms:Sign",
        ),
        // rotation making keys with tags of its choosing, or tagging others' keys as its own
        (
            "                    kms:KeyUsage: SIGN_VERIFY\n                  ForAllValues:StringEquals:\n                    aws:TagKeys: [chat-auth:stack, chat-auth:rotation, chat-auth:created]\n",
            "                    kms:KeyUsage: SIGN_VERIFY\n",
            "rotate-keys may kms:CreateKey with a tag rotation does not set",
        ),
        (
            "                Action: kms:TagResource\n                Resource: \"*\"\n                Condition:\n                  StringEquals:\n                    aws:RequestTag/chat-auth:stack: !Ref AWS::StackName\n",
            "                Action: kms:TagResource\n                Resource: \"*\"\n                Condition:\n",
            "rotate-keys may kms:TagResource with another stack's tag",
        ),
        // rotation withdrawing another stack's keys
        (
            existing_keys.as_str(),
            any_keys.as_str(),
            "rotate-keys may kms:DisableKey on another stack's key",
        ),
        (
            "kms:ScheduleKeyDeletionPendingWindowInDays: 7",
            "kms:ScheduleKeyDeletionPendingWindowInDays: 1",
            "6 days out",
        ),
    ] {
        assert!(template.contains(needle), "{needle}");
        let path = dir.path().join("widened.yaml");
        std::fs::write(&path, template.replacen(needle, widened, 1)).unwrap();
        let faults = kms_custody_faults(&transformed_at(&path));
        assert!(
            faults.iter().any(|f| f.contains(fault)),
            "the check accepted {widened:?} in place of {needle:?}: {faults:#?}"
        );
    }
}

#[test]
fn key_custody_reaches_mint_token_and_rotation_alone() {
    use serde_json::json;
    let t = transformed();
    let parameter = &t["Parameters"]["KeyCustody"];
    assert_eq!(parameter["Default"], "SecretsManager");
    assert_eq!(parameter["AllowedValues"], json!(["SecretsManager", "KMS"]));
    for (custody, value) in [("KMS", "kms"), ("SecretsManager", "secret")] {
        let params = [("KeyCustody", custody)];
        let mut functions = Vec::new();
        for (name, function) in t["Resources"]
            .as_object()
            .unwrap()
            .iter()
            .filter(|(_, r)| r["Type"] == "AWS::Lambda::Function")
        {
            let vars: serde_json::Map<String, serde_json::Value> =
                function["Properties"]["Environment"]["Variables"]
                    .as_object()
                    .unwrap()
                    .iter()
                    .filter(|(k, _)| {
                        *k == "CHAT_AUTH_KEY_CUSTODY" || k.starts_with("CHAT_AUTH_KMS_")
                    })
                    .map(|(k, v)| (k.clone(), iam::resolve_in(&t, v, &params)))
                    .collect();
            let expected = match name.as_str() {
                "MintTokenFunction" => json!({ "CHAT_AUTH_KEY_CUSTODY": value }),
                "RotateKeysFunction" => json!({
                    "CHAT_AUTH_KEY_CUSTODY": value,
                    "CHAT_AUTH_KMS_STACK_TAG": STACK,
                    "CHAT_AUTH_KMS_SIGNER_ROLE_ARN": iam::role("MintTokenFunctionRole"),
                    "CHAT_AUTH_KMS_ROTATOR_ROLE_ARN": iam::role("RotateKeysFunctionRole"),
                }),
                _ => json!({}),
            };
            assert_eq!(json!(vars), expected, "{name} with KeyCustody={custody}");
            functions.push(name.as_str());
        }
        functions.sort();
        assert_eq!(
            functions,
            [
                "MintTokenFunction",
                "ProviderScriptFunction",
                "PublicKeysFunction",
                "RotateKeysFunction",
                "ValidateTokenFunction"
            ]
        );
    }
}

/// GIVEN the transformed template, WHEN client ids are listed or not, THEN backends off AWS get
/// `POST /issue/client-credentials` behind a JWT authorizer of their own audience only when
/// listed (the route, authorizer, integration and invoke permission exist under one
/// condition), mint-token gets the list, `POST /issue` stays IAM's and `/token` the page's;
/// and the stack refuses a listed client without an audience, or with the page's audience.
#[test]
fn backends_off_aws_get_their_own_authorizer_and_route_only_when_listed() {
    use serde_json::json;
    let t = transformed();
    let r = &t["Resources"];
    let listed = [
        ("IssueClientIds", "backend-app,6e3a9a5c"),
        ("IssueClientAudience", "api://chat-auth-issue"),
        ("IdentityIssuerUrl", "https://login.contoso.example/"),
        ("IdentityAudience", "chat-widget"),
    ];
    let resources = [
        "IssueClientsAuthorizer",
        "IssueClientsIntegration",
        "IssueClientsPermission",
        "IssueClientsRoute",
    ];
    // Every resource that serves the route is one of the four, under the one condition.
    let serving: Vec<&str> = r
        .as_object()
        .unwrap()
        .iter()
        .filter(|(_, v)| {
            v.to_string().contains("IssueClients") || v.to_string().contains("/issue/client")
        })
        .map(|(k, _)| k.as_str())
        .filter(|k| *k != "MintTokenFunction")
        .collect();
    assert_eq!(serving, resources);
    for name in resources {
        assert_eq!(r[name]["Condition"], "HasIssueClients", "{name}");
    }
    assert!(!iam::condition(&t, "HasIssueClients", &[]));
    assert!(iam::condition(&t, "HasIssueClients", &listed));
    let props = |name: &str| iam::resolve_in(&t, &r[name]["Properties"], &listed);
    assert_eq!(
        props("IssueClientsAuthorizer"),
        json!({"ApiId": "ref:HttpApi", "Name": "IssueClients", "AuthorizerType": "JWT",
               "IdentitySource": ["$request.header.Authorization"],
               "JwtConfiguration": {"Issuer": "https://login.contoso.example/",
                                    "Audience": ["api://chat-auth-issue"]}})
    );
    assert_eq!(
        props("IssueClientsRoute"),
        json!({"ApiId": "ref:HttpApi", "RouteKey": "POST /issue/client-credentials",
               "AuthorizationType": "JWT", "AuthorizerId": "ref:IssueClientsAuthorizer",
               "Target": "integrations/ref:IssueClientsIntegration"})
    );
    let integration = &r["IssueClientsIntegration"]["Properties"];
    assert_eq!(
        integration["IntegrationUri"],
        json!({"Fn::GetAtt": ["MintTokenFunction", "Arn"]})
    );
    assert_eq!(
        (
            &integration["IntegrationType"],
            &integration["PayloadFormatVersion"]
        ),
        (&json!("AWS_PROXY"), &json!("2.0"))
    );
    let permission = props("IssueClientsPermission");
    assert_eq!(permission["FunctionName"], "ref:MintTokenFunction");
    assert_eq!(
        permission["SourceArn"],
        "arn:aws:execute-api:us-east-1:123456789012:ref:HttpApi/*/POST/issue/client-credentials"
    );
    let mint = &r["MintTokenFunction"]["Properties"]["Environment"]["Variables"];
    assert_eq!(
        iam::resolve_in(&t, &mint["CHAT_AUTH_ISSUE_CLIENTS"], &listed),
        "backend-app,6e3a9a5c"
    );
    // The SAM routes keep their authorizers: IAM on /issue, the page's on /token.
    let api = &r["HttpApi"]["Properties"]["Body"];
    assert_eq!(
        api["paths"]["/issue"]["post"]["security"],
        json!([{"AWS_IAM": []}])
    );
    for method in ["get", "post"] {
        assert_eq!(
            api["paths"]["/token"][method]["security"],
            json!([{"IdentityProvider": []}])
        );
    }
    let page = &api["components"]["securitySchemes"]["IdentityProvider"]["x-amazon-apigateway-authorizer"]
        ["jwtConfiguration"]["audience"];
    assert_eq!(iam::resolve_in(&t, page, &listed), json!(["chat-widget"]));
    // The stack's rule: listed clients need an audience of their own.
    let rule = &t["Rules"]["IssueClientsNeedTheirOwnAudience"];
    let passes = |params: &[(&str, &str)]| {
        let applies = iam::resolve_in(&t, &rule["RuleCondition"], params) == json!(true);
        !applies
            || rule["Assertions"]
                .as_array()
                .unwrap()
                .iter()
                .all(|a| iam::resolve_in(&t, &a["Assert"], params) == json!(true))
    };
    assert!(passes(&listed));
    assert!(
        passes(&[("IdentityAudience", "chat-widget")]),
        "nothing listed"
    );
    let mut without_audience = listed;
    without_audience[1].1 = "";
    assert!(!passes(&without_audience));
    let mut with_the_page_audience = listed;
    with_the_page_audience[1].1 = "chat-widget";
    assert!(!passes(&with_the_page_audience));
}
