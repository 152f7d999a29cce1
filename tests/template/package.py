#!/usr/bin/env python3
"""Packages the stack as `sam package` would, offline, and translates it from SAM to plain
CloudFormation with aws-sam-translator (pinned in tests/testbed/requirements.txt).

usage: package.py TEMPLATE.yaml OUT.json --binary PATH --endpoint URL --bucket B [--moto]

- The processor's binary is zipped as `bootstrap` (what provided.al2023 runs) and put in the
  bucket at ENDPOINT (moto's S3); each function's CodeUri then points at it.
- --moto: moto's CloudFormation silently skips some types (Secrets Manager secrets, lifecycle
  hooks, queue policies) and a Ref to a skipped resource resolves to nothing, which breaks the
  IAM policies naming it. With --moto, those Refs become placeholder ARNs, and the ESP ingress
  rule gets the ports -1 that moto insists on; the README lists what moto cannot create, and
  tests/template/stack.guard checks their wiring instead.
"""
import argparse
import io
import json
import sys
import zipfile

import boto3
from samtranslator.model.exceptions import InvalidDocumentException
from samtranslator.parser.parser import Parser
from samtranslator.translator.translator import Translator
from samtranslator.yaml_helper import yaml_parse

REGION = "us-east-1"
MOTO_SKIPS = {
    "AWS::SecretsManager::Secret",
    "AWS::AutoScaling::LifecycleHook",
    "AWS::SQS::QueuePolicy",
    "AWS::EC2::SecurityGroupEgress",
}


def upload(binary, endpoint, bucket):
    data = io.BytesIO()
    with zipfile.ZipFile(data, "w", zipfile.ZIP_DEFLATED) as archive:
        info = zipfile.ZipInfo("bootstrap")
        info.external_attr = 0o755 << 16
        with open(binary, "rb") as f:
            archive.writestr(info, f.read())
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name=REGION)
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="lifecycle.zip", Body=data.getvalue())
    return {"Bucket": bucket, "Key": "lifecycle.zip"}


def placeholders(node, skipped):
    if isinstance(node, dict):
        if set(node) == {"Ref"} and node["Ref"] in skipped:
            return f"arn:aws:secretsmanager:{REGION}:123456789012:secret:{node['Ref']}-placeholder"
        return {k: placeholders(v, skipped) for k, v in node.items()}
    if isinstance(node, list):
        return [placeholders(v, skipped) for v in node]
    return node


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("src")
    ap.add_argument("dst")
    ap.add_argument("--binary", required=True)
    ap.add_argument("--endpoint", required=True)
    ap.add_argument("--bucket", required=True)
    ap.add_argument("--moto", action="store_true")
    a = ap.parse_args()

    with open(a.src, encoding="utf-8") as f:
        sam = yaml_parse(f.read())
    code = upload(a.binary, a.endpoint, a.bucket)
    for resource in sam["Resources"].values():
        if resource["Type"] == "AWS::Serverless::Function":
            resource["Properties"]["CodeUri"] = code
    translator = Translator(None, Parser(), boto_session=boto3.session.Session(region_name=REGION))
    try:
        cfn = translator.translate(sam, parameter_values={}, get_managed_policy_map=lambda: {})
    except InvalidDocumentException as error:
        for cause in error.causes:
            print(f"SAM: {cause.message}", file=sys.stderr)
        return 1
    if a.moto:
        skipped = {name for name, r in cfn["Resources"].items() if r["Type"] in MOTO_SKIPS}
        cfn = placeholders(cfn, skipped)
        # moto reads the ports of every ingress rule, even ESP's, which has none.
        for resource in cfn["Resources"].values():
            if resource["Type"] == "AWS::EC2::SecurityGroupIngress":
                resource["Properties"].setdefault("FromPort", -1)
                resource["Properties"].setdefault("ToPort", -1)
    with open(a.dst, "w", encoding="utf-8") as f:
        json.dump(cfn, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
