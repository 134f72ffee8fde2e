"""Runs AWS's SAM translator (the code CloudFormation runs for `Transform: AWS::Serverless`) on
a template, offline, the way `sam package` + deploy would feed it.

Usage: python sam_transform.py TEMPLATE  -> exit 0 and the resource count on stdout, or exit 1
with the translator's causes on stderr.
"""
import os
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


def main(path):
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    with open(path, encoding="utf-8") as f:
        template = packaged(yaml_parse(f.read()))
    try:
        out = transform(template, {}, NoManagedPolicies())
    except InvalidDocumentException as e:
        for cause in e.causes:
            print(cause.message, file=sys.stderr)
        return 1
    print(f"{len(out['Resources'])} resources")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
