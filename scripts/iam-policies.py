#!/usr/bin/env python3
"""Gives every Lambda function of template.yaml its own role on a moto server, exactly as the
template (after SAM's transform) defines it, and answers what each function runs with.

    .venv/bin/python scripts/iam-policies.py --endpoint URL --prefix PREFIX \
        --parameters JSON [--template template.yaml]

For shared/aws/tests/iam.rs, against scripts/iam-moto.py with authorization still off. Reads
the template as it is on disk, runs SAM's own transform (samtranslator, what `sam deploy` runs),
and for each AWS::Lambda::Function with a `Metadata.BuildProperties.Binary`:

- resolves its role's statements (inline policies, AWS::IAM::Policy resources naming the role)
  and managed policy ARNs, and its environment variables, with Ref, GetAtt, Sub, Join, Select,
  Split, If and FindInMap evaluated against the parameters given and the resources on moto;
- creates the role on moto with those policies and assumes it: the function gets the role's
  temporary credentials, as Lambda gives them.

The table and queues must exist already, named `<PREFIX>-<logical id>` (what
shared/aws/src/provision.rs creates). The SES configuration sets, secrets, SSM parameters and
event buses the functions refer to are created here, and the sender address (parameter
`SenderAddress`) is verified, as an operator does before deploying. Other resources a function
refers to are inert names (the HTTP API, the Cognito pool: the functions only put them in
links), and a reference to any other type is an error naming it, so that the test is extended
rather than run with a made-up value.

A statement with a Condition or NotResource, or a role with a permissions boundary is
refused: the evaluator would not judge it as AWS does (see scripts/iam-moto.py).

Prints one JSON document: {"functions": [{logical_id, binary, role_arn, timeout, memory,
environment, credentials, statements, managed_policies}], "observer": credentials}. The observer
is a user allowed everything, for the test's own requests.
"""

import argparse
import json
import os
import secrets
import string
import sys

import boto3
from samtranslator.translator.transform import transform

ACCOUNT = "123456789012"
REGION = "us-east-1"
PARTITION = "aws"
NO_VALUE = object()


class Refused(Exception):
    pass


class Loader:
    """SAM's managed policy names come from its bundled list; nothing is asked of IAM."""

    def load(self):
        return {}


class Resolver:
    def __init__(self, template, parameters, prefix, clients):
        self.template = template
        self.resources = template.get("Resources", {})
        self.prefix = prefix
        self.clients = clients
        self.params = {}
        for name, spec in template.get("Parameters", {}).items():
            if name in parameters:
                value = parameters[name]
            elif "Default" in spec:
                value = spec["Default"]
            else:
                raise Refused(f"parameter {name} has no default: give it in --parameters")
            if spec.get("Type") == "CommaDelimitedList" and isinstance(value, str):
                value = [v.strip() for v in value.split(",")] if value else []
            self.params[name] = value
        self.pseudo = {
            "AWS::AccountId": ACCOUNT,
            "AWS::Region": REGION,
            "AWS::Partition": PARTITION,
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::StackName": prefix,
            "AWS::StackId": f"arn:{PARTITION}:cloudformation:{REGION}:{ACCOUNT}:stack/{prefix}/iam-test",
            "AWS::NotificationARNs": [],
        }
        self.physical = {}
        self.conditions = {}

    # ------------------------------------------------------------------ resources

    def name_of(self, logical):
        return f"{self.prefix}-{logical}"

    def attributes(self, logical):
        """The physical values of a resource: {"Ref": ..., "Arn": ..., ...}."""
        if logical in self.physical:
            return self.physical[logical]
        resource = self.resources.get(logical)
        if resource is None:
            raise Refused(f"{logical} is neither a parameter nor a resource")
        kind = resource["Type"]
        props = resource.get("Properties", {})
        arn = lambda service, rest: f"arn:{PARTITION}:{service}:{REGION}:{ACCOUNT}:{rest}"  # noqa: E731
        if kind == "AWS::DynamoDB::Table":
            name = self.name_of(logical)
            try:
                table = self.clients["dynamodb"].describe_table(TableName=name)["Table"]
            except Exception as e:
                raise Refused(f"table {logical} ({name}) is not on moto: provision it first ({e})")
            values = {"Ref": name, "Arn": table["TableArn"]}
        elif kind == "AWS::SQS::Queue":
            name = self.name_of(logical) + (".fifo" if str(props.get("FifoQueue")).lower() == "true" else "")
            try:
                url = self.clients["sqs"].get_queue_url(QueueName=name)["QueueUrl"]
            except Exception as e:
                raise Refused(f"queue {logical} ({name}) is not on moto: provision it first ({e})")
            values = {"Ref": url, "QueueUrl": url, "QueueName": name, "Arn": arn("sqs", name)}
        elif kind == "AWS::SES::ConfigurationSet":
            name = self.resolve(props.get("Name")) or self.name_of(logical)
            self.clients["sesv2"].create_configuration_set(ConfigurationSetName=name)
            values = {"Ref": name}
        elif kind == "AWS::SecretsManager::Secret":
            props = self.resolve(props)
            name = props.get("Name") or self.name_of(logical)
            if "SecretString" in props:
                value = props["SecretString"]
            else:
                # Letters and digits only: what ExcludePunctuation asks, and fine without it.
                generate = props.get("GenerateSecretString", {})
                length = int(generate.get("PasswordLength", 32))
                value = "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(length))
                if "SecretStringTemplate" in generate:
                    doc = json.loads(generate["SecretStringTemplate"])
                    doc[generate["GenerateStringKey"]] = value
                    value = json.dumps(doc)
            created = self.clients["secretsmanager"].create_secret(Name=name, SecretString=value)
            values = {"Ref": created["ARN"], "Id": created["ARN"]}
        elif kind == "AWS::SSM::Parameter":
            props = self.resolve(props)
            name = props.get("Name") or self.name_of(logical)
            value = props["Value"]
            self.clients["ssm"].put_parameter(Name=name, Value=value, Type=props.get("Type", "String"))
            values = {"Ref": name, "Value": value}
        elif kind == "AWS::Events::EventBus":
            name = self.resolve(props["Name"])
            bus = self.clients["events"].create_event_bus(Name=name)
            values = {"Ref": name, "Name": name, "Arn": bus["EventBusArn"]}
        elif kind == "AWS::IAM::Role":
            values = {"Arn": arn("iam", f"role/{self.name_of(logical)}").replace(f":{REGION}:", "::")}
        elif kind == "AWS::Lambda::Function":
            name = self.name_of(logical)
            values = {"Ref": name, "Arn": arn("lambda", f"function:{name}")}
        # Named in links and settings only; the functions never call them through the SDK.
        elif kind == "AWS::ApiGatewayV2::Api":
            values = {"Ref": "iamtestapi", "ApiEndpoint": f"https://iamtestapi.execute-api.{REGION}.amazonaws.com"}
        elif kind == "AWS::Cognito::UserPool":
            pool = f"{REGION}_iamtest"
            values = {
                "Ref": pool,
                "ProviderName": f"cognito-idp.{REGION}.amazonaws.com/{pool}",
                "ProviderURL": f"https://cognito-idp.{REGION}.amazonaws.com/{pool}",
                "Arn": arn("cognito-idp", f"userpool/{pool}"),
            }
        elif kind == "AWS::Cognito::UserPoolClient":
            values = {"Ref": "iamtestclient", "ClientId": "iamtestclient"}
        elif kind == "AWS::Cognito::UserPoolDomain":
            values = {"Ref": "leadflow-iamtest"}
        else:
            raise Refused(
                f"a function refers to {logical} ({kind}), which scripts/iam-policies.py does not know "
                "how to create on moto: teach it"
            )
        self.physical[logical] = values
        return values

    def ref(self, name):
        if name in self.pseudo:
            return self.pseudo[name]
        if name == "AWS::NoValue":
            return NO_VALUE
        if name in self.params:
            return self.params[name]
        return self.attributes(name)["Ref"]

    def get_att(self, logical, attribute):
        values = self.attributes(logical)
        if attribute not in values:
            kind = self.resources[logical]["Type"]
            raise Refused(f"{logical}.{attribute} ({kind}) is not known to scripts/iam-policies.py: teach it")
        return values[attribute]

    # ------------------------------------------------------------------ intrinsics

    def condition(self, name):
        if name not in self.conditions:
            self.conditions[name] = bool(self.resolve(self.template["Conditions"][name]))
        return self.conditions[name]

    def sub(self, text, variables):
        out, i = [], 0
        while i < len(text):
            start = text.find("${", i)
            if start < 0:
                out.append(text[i:])
                break
            out.append(text[i:start])
            end = text.index("}", start)
            name = text[start + 2 : end]
            if name.startswith("!"):
                out.append("${" + name[1:] + "}")
            elif name in variables:
                out.append(str(variables[name]))
            elif "." in name and not name.startswith("AWS::"):
                logical, attribute = name.split(".", 1)
                out.append(str(self.get_att(logical, attribute)))
            else:
                out.append(str(self.ref(name)))
            i = end + 1
        return "".join(out)

    def resolve(self, v):
        if isinstance(v, list):
            items = [self.resolve(x) for x in v]
            return [x for x in items if x is not NO_VALUE]
        if not isinstance(v, dict):
            return v
        if len(v) == 1:
            (key, arg), = v.items()
            if key == "Ref":
                return self.ref(arg)
            if key == "Fn::GetAtt":
                logical, attribute = arg.split(".", 1) if isinstance(arg, str) else arg
                return self.get_att(logical, self.resolve(attribute))
            if key == "Fn::Sub":
                if isinstance(arg, str):
                    return self.sub(arg, {})
                text, variables = arg
                return self.sub(text, {k: self.resolve(x) for k, x in variables.items()})
            if key == "Fn::Join":
                sep, items = arg
                return self.resolve(sep).join(str(x) for x in self.resolve(items))
            if key == "Fn::Select":
                index, items = arg
                return self.resolve(items)[int(self.resolve(index))]
            if key == "Fn::Split":
                sep, text = arg
                return self.resolve(text).split(self.resolve(sep))
            if key == "Fn::If":
                name, yes, no = arg
                return self.resolve(yes if self.condition(name) else no)
            if key == "Fn::Equals":
                a, b = arg
                return str(self.resolve(a)) == str(self.resolve(b))
            if key == "Fn::Not":
                return not self.resolve(arg[0])
            if key == "Fn::And":
                return all(self.resolve(x) for x in arg)
            if key == "Fn::Or":
                return any(self.resolve(x) for x in arg)
            if key == "Condition":
                return self.condition(arg)
            if key == "Fn::FindInMap":
                mapping, top, second = (self.resolve(x) for x in arg)
                return self.template["Mappings"][mapping][top][second]
            if key.startswith("Fn::"):
                raise Refused(f"{key} is not evaluated by scripts/iam-policies.py: teach it")
        out = {}
        for key, x in v.items():
            x = self.resolve(x)
            if x is not NO_VALUE:
                out[key] = x
        return out

    def exists(self, resource):
        return "Condition" not in resource or self.condition(resource["Condition"])


def as_list(v):
    return v if isinstance(v, list) else [v]


def check_statements(function, statements):
    for s in statements:
        for key in ("Condition", "NotResource", "NotPrincipal"):
            if key in s:
                raise Refused(
                    f"{function}: a statement with {key} ({json.dumps(s)}) is not judged by the IAM test's "
                    "evaluator as AWS judges it; see scripts/iam-moto.py"
                )


def role_policies(resolver, role_id):
    """The role's policy documents (inline and AWS::IAM::Policy resources naming it) and its
    managed policy ARNs, resolved."""
    role = resolver.resources[role_id]
    props = role.get("Properties", {})
    if "PermissionsBoundary" in props:
        raise Refused(f"{role_id}: a permissions boundary is not modelled by the IAM test")
    documents = [(p["PolicyName"], resolver.resolve(p["PolicyDocument"])) for p in props.get("Policies", [])]
    managed = [resolver.resolve(a) for a in props.get("ManagedPolicyArns", [])]
    for logical, resource in resolver.resources.items():
        if not resolver.exists(resource):
            continue
        roles = resource.get("Properties", {}).get("Roles", [])
        if not any(r == {"Ref": role_id} for r in roles):
            continue
        if resource["Type"] == "AWS::IAM::Policy":
            documents.append((logical, resolver.resolve(resource["Properties"]["PolicyDocument"])))
        elif resource["Type"] == "AWS::IAM::ManagedPolicy":
            raise Refused(f"{logical}: customer managed policies are not modelled by the IAM test yet")
    return documents, managed


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--prefix", required=True, help="the name prefix the table and queues were created with")
    parser.add_argument("--parameters", default="{}", help="template parameters, a JSON object")
    parser.add_argument("--template", default="template.yaml")
    args = parser.parse_args()

    session = boto3.session.Session(aws_access_key_id="test", aws_secret_access_key="test", region_name=REGION)
    clients = {
        name: session.client(name, endpoint_url=args.endpoint)
        for name in ("dynamodb", "sqs", "sesv2", "secretsmanager", "ssm", "events", "iam", "sts")
    }
    from samtranslator.yaml_helper import yaml_parse

    with open(args.template, encoding="utf-8") as f:
        template = yaml_parse(f.read())
    parameters = json.loads(args.parameters)
    for resource in template.get("Resources", {}).values():
        if resource.get("Type") == "AWS::Serverless::Function":
            # What `sam validate` does: the code's location does not change any role.
            resource.setdefault("Properties", {})["CodeUri"] = "s3://iam-test/code.zip"
    # SAM's transform takes the region from boto's default session.
    os.environ["AWS_DEFAULT_REGION"] = REGION
    translated = transform(template, dict(parameters, **{"AWS::Region": REGION, "AWS::AccountId": ACCOUNT}), Loader())
    resolver = Resolver(translated, parameters, args.prefix, clients)

    sender = resolver.params.get("SenderAddress")
    if sender:
        clients["sesv2"].create_email_identity(EmailIdentity=sender)

    iam, sts = clients["iam"], clients["sts"]
    functions = []
    for logical, resource in translated["Resources"].items():
        if resource["Type"] != "AWS::Lambda::Function" or not resolver.exists(resource):
            continue
        binary = (resource.get("Metadata") or {}).get("BuildProperties", {}).get("Binary")
        if not binary:
            continue
        props = resource["Properties"]
        role_ref = props.get("Role")
        if not (isinstance(role_ref, dict) and "Fn::GetAtt" in role_ref):
            raise Refused(f"{logical}: Role is not `!GetAtt <role>.Arn` of a role in the template")
        role_id = role_ref["Fn::GetAtt"][0] if isinstance(role_ref["Fn::GetAtt"], list) else role_ref["Fn::GetAtt"].split(".")[0]
        documents, managed = role_policies(resolver, role_id)
        role_name = resolver.name_of(role_id)
        trust = resolver.resolve(resolver.resources[role_id]["Properties"]["AssumeRolePolicyDocument"])
        role_arn = iam.create_role(RoleName=role_name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
        statements = []
        for name, document in documents:
            document = dict(document)
            # IAM takes a document without a Version (as 2008-10-17); moto insists on one.
            document.setdefault("Version", "2012-10-17")
            document["Statement"] = as_list(document.get("Statement", []))
            check_statements(logical, document["Statement"])
            statements.extend(document["Statement"])
            iam.put_role_policy(RoleName=role_name, PolicyName=name, PolicyDocument=json.dumps(document))
        for policy_arn in managed:
            iam.attach_role_policy(RoleName=role_name, PolicyArn=policy_arn)
        credentials = sts.assume_role(RoleArn=role_arn, RoleSessionName=binary)["Credentials"]
        variables = resolver.resolve(props.get("Environment", {}).get("Variables", {}))
        logging = resolver.resolve(props.get("LoggingConfig", {}))
        functions.append(
            {
                "logical_id": logical,
                "binary": binary,
                "role_arn": role_arn,
                "timeout": int(resolver.resolve(props.get("Timeout", 3))),
                "memory": int(resolver.resolve(props.get("MemorySize", 128))),
                "log_level": logging.get("ApplicationLogLevel"),
                "environment": {k: str(v) for k, v in variables.items()},
                "credentials": {
                    "access_key_id": credentials["AccessKeyId"],
                    "secret_access_key": credentials["SecretAccessKey"],
                    "session_token": credentials["SessionToken"],
                },
                "statements": statements,
                "managed_policies": managed,
            }
        )

    observer = f"{args.prefix}-observer"
    iam.create_user(UserName=observer)
    everything = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
    iam.put_user_policy(UserName=observer, PolicyName="everything", PolicyDocument=json.dumps(everything))
    key = iam.create_access_key(UserName=observer)["AccessKey"]
    json.dump(
        {
            "functions": functions,
            "observer": {
                "access_key_id": key["AccessKeyId"],
                "secret_access_key": key["SecretAccessKey"],
                "session_token": None,
            },
        },
        sys.stdout,
    )


if __name__ == "__main__":
    try:
        main()
    except Refused as e:
        sys.exit(f"iam-policies.py: {e}")
