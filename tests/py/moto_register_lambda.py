"""Registers a stand-in rotation function in moto so that rotate_secret behaves as on AWS
(it creates the empty AWSPENDING version named by the token). Prints the function ARN."""
import io
import sys
import zipfile

import boto3

endpoint = sys.argv[1]
kw = dict(endpoint_url=endpoint, region_name="us-east-1",
          aws_access_key_id="test", aws_secret_access_key="test")
role = boto3.client("iam", **kw).create_role(
    RoleName="rotate-keys-role", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
archive = io.BytesIO()
with zipfile.ZipFile(archive, "w") as z:
    z.writestr("bootstrap", "#!/bin/sh\n")
fn = boto3.client("lambda", **kw).create_function(
    FunctionName="rotate-keys", Runtime="provided.al2023", Role=role,
    Handler="bootstrap", Code={"ZipFile": archive.getvalue()})
print(fn["FunctionArn"])
