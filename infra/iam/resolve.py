"""Each function's effective IAM policy, from template.yaml, for `make iam`.

The template is expanded by the AWS SAM translator itself (the `samtranslator` package the
pinned SAM CLI installs): SAM's policy templates, the roles it makes for each function,
the managed policies and event-source policies it attaches. Intrinsic functions are then
resolved for a fixed account, region and stack, naming each resource by its logical id,
as the IAM ledger (`localdb::ledger`) names the resources of the calls it records.

Output (JSON on stdout):
  functions: {Fn: {role, policies: [{name, source, document, reason?}], unused_ok: [...]}}
  key_policies: {key ARN: policy document}

Usage: python resolve.py TEMPLATE [Name=Value ...]   (parameter overrides)
"""

import copy
import json
import os
import sys

from samtranslator.internal.managed_policies import get_bundled_managed_policy_map
from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse

ACCOUNT = "123456789012"
REGION = "eu-west-1"
PARTITION = "aws"
STACK = "ic"
# The IAM ledger stamps streams with this label (localdb::ledger::STREAM_LABEL).
STREAM_LABEL = "2026-01-01T00:00:00.000"

# The AWS managed policies SAM attaches, as AWS publishes them
# (https://docs.aws.amazon.com/aws-managed-policy/latest/reference/), each with why a
# function may hold grants its own code never uses.
AWS_MANAGED = {
    "AWSLambdaBasicExecutionRole": {
        "document": {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
                    "Resource": "*",
                }
            ],
        },
        "reason": "Lambda itself writes the function's output to CloudWatch Logs with these; "
        "the function's code makes no such call.",
    },
    "AWSLambdaDynamoDBExecutionRole": {
        "document": {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": [
                        "dynamodb:DescribeStream",
                        "dynamodb:GetRecords",
                        "dynamodb:GetShardIterator",
                        "dynamodb:ListStreams",
                        "logs:CreateLogGroup",
                        "logs:CreateLogStream",
                        "logs:PutLogEvents",
                    ],
                    "Resource": "*",
                }
            ],
        },
        "reason": "the event source mapping reads the stream with the function's role "
        "(ListStreams when it starts) and Lambda writes the function's logs.",
    },
}


class BundledPolicies:
    """samtranslator's managed-policy loader, from the map it ships (no IAM call)."""

    def load(self):
        return get_bundled_managed_policy_map(PARTITION)


def arn(service, resource, region=REGION):
    return f"arn:{PARTITION}:{service}:{region}:{ACCOUNT}:{resource}"


class Resolver:
    def __init__(self, template, parameters):
        self.resources = template.get("Resources", {})
        self.parameters = {}
        for name, spec in template.get("Parameters", {}).items():
            if name in parameters:
                self.parameters[name] = parameters[name]
            elif "Default" in spec:
                self.parameters[name] = spec["Default"]
            else:
                self.parameters[name] = f"<{name}>"
        self.conditions = template.get("Conditions", {})
        self.condition_values = {}

    def kind(self, logical):
        return self.resources.get(logical, {}).get("Type", "")

    def ref(self, name):
        pseudo = {
            "AWS::AccountId": ACCOUNT,
            "AWS::Region": REGION,
            "AWS::Partition": PARTITION,
            "AWS::StackName": STACK,
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::StackId": arn("cloudformation", f"stack/{STACK}/0"),
        }
        if name in pseudo:
            return pseudo[name]
        if name in self.parameters:
            return self.parameters[name]
        kind = self.kind(name)
        if kind == "AWS::IAM::ManagedPolicy":
            return f"arn:{PARTITION}:iam::{ACCOUNT}:policy/{name}"
        if kind == "AWS::SQS::Queue":
            return f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{name}"
        return name

    def get_att(self, logical, attribute):
        kind = self.kind(logical)
        if kind == "AWS::DynamoDB::Table":
            table = arn("dynamodb", f"table/{logical}")
            return {"Arn": table, "StreamArn": f"{table}/stream/{STREAM_LABEL}"}.get(attribute)
        if kind == "AWS::IAM::Role" and attribute == "Arn":
            return f"arn:{PARTITION}:iam::{ACCOUNT}:role/{logical}"
        if kind == "AWS::KMS::Key":
            return {"Arn": arn("kms", f"key/{logical}"), "KeyId": logical}.get(attribute)
        if kind == "AWS::Cognito::UserPool":
            return {
                "Arn": arn("cognito-idp", f"userpool/{logical}"),
                "ProviderName": f"cognito-idp.{REGION}.amazonaws.com/{logical}",
                "UserPoolId": logical,
            }.get(attribute)
        if kind == "AWS::SQS::Queue":
            return {"Arn": arn("sqs", logical), "QueueName": logical}.get(attribute)
        if kind == "AWS::Lambda::Function" and attribute == "Arn":
            return arn("lambda", f"function:{logical}")
        if kind == "AWS::Logs::LogGroup" and attribute == "Arn":
            return arn("logs", f"log-group:{logical}:*")
        return f"<{logical}.{attribute}>"

    def condition(self, name):
        if name not in self.condition_values:
            self.condition_values[name] = bool(self.resolve(self.conditions[name]))
        return self.condition_values[name]

    def sub(self, text, variables):
        out, i = "", 0
        while i < len(text):
            start = text.find("${", i)
            if start < 0:
                out += text[i:]
                break
            out += text[i:start]
            end = text.index("}", start)
            name = text[start + 2 : end]
            if name.startswith("!"):
                out += "${" + name[1:] + "}"
            elif name in variables:
                out += str(variables[name])
            elif "." in name and not name.startswith("AWS::"):
                logical, attribute = name.split(".", 1)
                out += str(self.get_att(logical, attribute))
            else:
                out += str(self.ref(name))
            i = end + 1
        return out

    def resolve(self, node):
        if isinstance(node, list):
            return [v for v in (self.resolve(v) for v in node) if v is not NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            (key, value), = node.items()
            if key == "Ref":
                return NO_VALUE if value == "AWS::NoValue" else self.ref(value)
            if key == "Fn::GetAtt":
                logical, attribute = value if isinstance(value, list) else value.split(".", 1)
                return self.get_att(logical, attribute)
            if key == "Fn::Sub":
                if isinstance(value, list):
                    text, variables = value
                    return self.sub(text, self.resolve(variables))
                return self.sub(value, {})
            if key == "Fn::If":
                name, yes, no = value
                return self.resolve(yes if self.condition(name) else no)
            if key == "Fn::Join":
                separator, parts = value
                return separator.join(str(p) for p in self.resolve(parts))
            if key == "Fn::Select":
                index, items = value
                return self.resolve(items)[int(self.resolve(index))]
            if key == "Fn::Split":
                separator, text = value
                return str(self.resolve(text)).split(separator)
            if key == "Fn::Equals":
                a, b = self.resolve(value)
                return str(a) == str(b)
            if key == "Fn::Not":
                return not self.resolve(value)[0]
            if key == "Fn::And":
                return all(self.resolve(value))
            if key == "Fn::Or":
                return any(self.resolve(value))
            if key == "Condition":
                return self.condition(value)
        out = {}
        for k, v in node.items():
            r = self.resolve(v)
            if r is not NO_VALUE:
                out[k] = r
        return out


NO_VALUE = object()


def main():
    path = sys.argv[1]
    overrides = dict(arg.split("=", 1) for arg in sys.argv[2:])
    with open(path, encoding="utf-8") as f:
        original = yaml_parse(f.read())
    # The translator asks a boto3 session for the region (nothing is called).
    os.environ["AWS_DEFAULT_REGION"] = REGION
    pseudo = {"AWS::Region": REGION, "AWS::AccountId": ACCOUNT, "AWS::Partition": PARTITION, "AWS::StackName": STACK}
    packaged = copy.deepcopy(original)
    # As `sam deploy` packages it: each function's code is an S3 object by then.
    for resource in packaged.get("Resources", {}).values():
        if resource.get("Type") == "AWS::Serverless::Function":
            resource.setdefault("Properties", {})["CodeUri"] = "s3://code/function.zip"
    cfn = transform(packaged, {**overrides, **pseudo}, BundledPolicies())
    resolver = Resolver(cfn, overrides)
    resources = cfn["Resources"]
    functions = {}
    for logical, resource in resources.items():
        if resource.get("Type") != "AWS::Lambda::Function":
            continue
        role = resource["Properties"].get("Role", {})
        role_logical = role.get("Fn::GetAtt", [None])[0] if isinstance(role, dict) else None
        if isinstance(role_logical, str) and "." in role_logical:
            role_logical = role_logical.split(".")[0]
        if role_logical not in resources:
            raise SystemExit(f"{logical}: its role is not a role of the template ({role})")
        role_props = resolver.resolve(resources[role_logical].get("Properties", {}))
        policies = []
        for policy in role_props.get("Policies", []):
            policies.append(
                {"name": policy["PolicyName"], "source": "inline", "document": policy["PolicyDocument"]}
            )
        for managed in role_props.get("ManagedPolicyArns", []):
            name = managed.rsplit("/", 1)[-1]
            if managed.startswith(f"arn:{PARTITION}:iam::aws:policy/"):
                if name not in AWS_MANAGED:
                    raise SystemExit(
                        f"{logical}: the AWS managed policy {name} is not known to infra/iam/resolve.py: "
                        "add its document (from AWS's reference) and why the function holds it"
                    )
                known = AWS_MANAGED[name]
                policies.append(
                    {"name": name, "source": "AWS managed", "document": known["document"], "reason": known["reason"]}
                )
            elif resolver.kind(name) == "AWS::IAM::ManagedPolicy":
                document = resolver.resolve(resources[name]["Properties"]["PolicyDocument"])
                policies.append({"name": name, "source": "template managed policy", "document": document})
            else:
                raise SystemExit(f"{logical}: unknown managed policy {managed}")
        metadata = original.get("Resources", {}).get(logical, {}).get("Metadata", {})
        functions[logical] = {
            "role": resolver.get_att(role_logical, "Arn"),
            "policies": policies,
            "unused_ok": metadata.get("IamUnusedGrants", []),
        }
    key_policies = {}
    for logical, resource in resources.items():
        if resource.get("Type") == "AWS::KMS::Key":
            key_policies[resolver.get_att(logical, "Arn")] = resolver.resolve(resource["Properties"]["KeyPolicy"])
    json.dump(
        {"account": ACCOUNT, "region": REGION, "functions": functions, "key_policies": key_policies},
        sys.stdout,
        indent=1,
        sort_keys=True,
    )


if __name__ == "__main__":
    main()
