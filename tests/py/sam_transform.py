"""Runs AWS's SAM translator (the code CloudFormation runs for `Transform: AWS::Serverless`) on
a template, offline, the way `sam package` + deploy would feed it, then checks the result for
the dependency cycles CloudFormation would refuse ("Circular dependency between resources").

Usage: python sam_transform.py TEMPLATE [--json] -> exit 0 and the resource count (with --json,
the transformed template) on stdout, or exit 1 with the causes on stderr.

python sam_transform.py --actions SERVICE -> every IAM action of SERVICE (e.g. secretsmanager,
kms) as a JSON list, from the copy of AWS's service authorization data that cfn-lint ships: what
tests/tests/template.rs expands policy wildcards over and checks its list of write APIs against.
"""
import json
import os
import re
import sys

from samtranslator.model.exceptions import InvalidDocumentException
from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse


class NoManagedPolicies:
    """The translator asks IAM for AWS managed policy ARNs; offline there are none to look up."""

    def load(self):
        return {}

    def get_managed_policy_map(self):
        return {}


def packaged(node):
    # `sam package` replaces local CodeUri paths by S3 locations before the transform.
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "CodeUri" and isinstance(value, str) and not value.startswith("s3://"):
                node[key] = "s3://chat-auth-artifacts/function.zip"
            else:
                packaged(value)
    elif isinstance(node, list):
        for item in node:
            packaged(item)
    return node


def references(node, names):
    """The resources a template fragment refers to (Ref, Fn::GetAtt, ${X} in Fn::Sub)."""
    found = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "Ref" and value in names:
                found.add(value)
            elif key == "Fn::GetAtt":
                target = value[0] if isinstance(value, list) else str(value).split(".")[0]
                if target in names:
                    found.add(target)
            elif key == "Fn::Sub":
                text = value[0] if isinstance(value, list) else value
                for name in re.findall(r"\$\{([A-Za-z0-9]+)", text):
                    if name in names:
                        found.add(name)
                if isinstance(value, list):
                    found |= references(value[1], names)
            else:
                found |= references(value, names)
    elif isinstance(node, list):
        for item in node:
            found |= references(item, names)
    return found


def cycle(resources):
    """A dependency cycle among the resources, as a list of names, or None."""
    names = set(resources)
    edges = {}
    for name, resource in resources.items():
        deps = references(resource.get("Properties", {}), names)
        depends_on = resource.get("DependsOn", [])
        deps |= set([depends_on] if isinstance(depends_on, str) else depends_on)
        edges[name] = deps
    state, stack = {}, []

    def visit(name):
        state[name] = "open"
        stack.append(name)
        for dep in sorted(edges.get(name, ())):
            if state.get(dep) == "open":
                return stack[stack.index(dep):] + [dep]
            if dep not in state:
                found = visit(dep)
                if found:
                    return found
        stack.pop()
        state[name] = "done"
        return None

    for name in sorted(names):
        if name not in state:
            found = visit(name)
            if found:
                return found
    return None


def actions(service):
    """SERVICE's IAM actions, lower case, as `service:action`."""
    from cfnlint.data import AdditionalSpecs
    from cfnlint.helpers import load_resource

    known = load_resource(AdditionalSpecs, "Policies.json")[service]["Actions"]
    return sorted(f"{service}:{action}" for action in known)


def main(path, as_json=False):
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    with open(path, encoding="utf-8") as f:
        template = packaged(yaml_parse(f.read()))
    try:
        out = transform(template, {}, NoManagedPolicies())
    except InvalidDocumentException as e:
        for cause in e.causes:
            print(cause.message, file=sys.stderr)
        return 1
    found = cycle(out["Resources"])
    if found:
        print("Circular dependency between resources: " + " -> ".join(found), file=sys.stderr)
        return 1
    print(json.dumps(out) if as_json else f"{len(out['Resources'])} resources")
    return 0


if __name__ == "__main__":
    if sys.argv[1] == "--actions":
        print(json.dumps(actions(sys.argv[2])))
        sys.exit(0)
    sys.exit(main(sys.argv[1], "--json" in sys.argv[2:]))
