#!/usr/bin/env python3
"""A moto server that enforces IAM on every request, resources included, and writes down every
decision: the server shared/aws/tests/iam.rs runs Leadflow's functions against.

    .venv/bin/python scripts/iam-moto.py DECISIONS.jsonl [--port 0]

Prints `listening on <port>` once it answers. It starts with authorization off, like any moto
server, so that a test can create its resources and roles; `POST /moto-api/reset-auth` with body
`0` switches it on (moto's own switch, INITIAL_NO_AUTH_ACTION_COUNT).

Why not moto's enforcement as it is (moto 5.2.5, moto/iam/access_control.py): it checks the
action only, as `<signing service>:<operation>`, against resource `*` for every service but SQS
and S3. A policy naming the table's ARN would then deny everything, and the action is wrong
wherever IAM's differs from the operation's name: TransactWriteItems is authorized as PutItem,
UpdateItem, DeleteItem and ConditionCheckItem on each table it writes, SendMessageBatch as
SendMessage. So before moto's evaluator (its IAMPolicy, unchanged) decides, this replaces the
request's one action on `*` with what AWS authorizes for it: a list of (action, resource ARN)
pairs, for the operations Leadflow's functions call (DynamoDB, SQS, SES v2, EventBridge,
Secrets Manager, SSM). Every pair must be allowed. (It also answers SES v2 GetAccount, which
moto lacks.) Operations not in the table are checked as
moto does (the operation on `*`) and written down with `"derived": false`, so the test can say
which requests had their resource checked and which not.

Each decision is one JSON line in DECISIONS: principal (the role or user ARN), operation,
action, resource, allowed, derived. A denial answers the function the way AWS does (403,
AccessDeniedException naming action and resource).

What it does not model: conditions (moto knows a few operators and no request context, so an
Allow with a Condition would count as a denial; scripts/iam-policies.py refuses such statements
rather than let the test pass or fail for the wrong reason), NotResource, permission boundaries,
SCPs, session policies, resource-based policies (queue, bus, secret, key policies) and KMS.
"""

import argparse
import json
import logging
import os
import re
import sys
import threading
from urllib.parse import unquote, urlparse

# AWS managed policies (AWSLambdaBasicExecutionRole) exist only when moto loads them; the roles
# attach them as the template says.
os.environ.setdefault("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")

from moto import settings  # noqa: E402
from moto.core.authorization import ActionAuthenticatorMixin  # noqa: E402
from moto.core.exceptions import JsonRESTError  # noqa: E402
from moto.iam.access_control import IAMRequest  # noqa: E402
from moto.moto_server.threaded_moto_server import ThreadedMotoServer  # noqa: E402
from moto.sesv2 import urls as sesv2_urls  # noqa: E402
from moto.sesv2.responses import SESV2Response  # noqa: E402

DECISIONS_LOCK = threading.Lock()
DECISIONS_FILE = None

# IAM authorizes each item of a DynamoDB transaction as the single-item action.
TRANSACT_ACTIONS = {"Put": "PutItem", "Update": "UpdateItem", "Delete": "DeleteItem", "ConditionCheck": "ConditionCheckItem"}
# SQS batch operations are authorized as their single-message action.
SQS_BATCH_ACTIONS = {
    "SendMessageBatch": "SendMessage",
    "DeleteMessageBatch": "DeleteMessage",
    "ChangeMessageVisibilityBatch": "ChangeMessageVisibility",
}
# Operations whose resource is `*` in IAM (no resource-level permissions).
STAR_OPERATIONS = {
    "dynamodb": {"ListTables", "DescribeLimits", "DescribeEndpoints"},
    "sqs": {"ListQueues"},
    "ses": {"GetAccount", "ListEmailIdentities", "ListConfigurationSets"},
    "events": {"ListEventBuses", "ListRules"},
    "secretsmanager": {"ListSecrets", "GetRandomPassword"},
    "ssm": {"DescribeParameters"},
}


class AccessDenied(JsonRESTError):
    code = 403

    def __init__(self, principal, action, resource):
        super().__init__(
            "AccessDeniedException",
            f"User: {principal} is not authorized to perform: {action} on resource: {resource} "
            f"because no identity-based policy allows the {action} action",
        )


def record(entry):
    line = json.dumps(entry, sort_keys=True)
    with DECISIONS_LOCK:
        DECISIONS_FILE.write(line + "\n")
        DECISIONS_FILE.flush()


def json_body(response):
    raw = getattr(response, "raw_body", None) or b""
    if isinstance(raw, str):
        raw = raw.encode()
    try:
        body = json.loads(raw or b"{}")
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def param(response, body, name):
    """A parameter of the JSON body, else of the query string or form (the SQS query protocol)."""
    if name in body:
        return body[name]
    values = getattr(response, "querystring", {}).get(name)
    if isinstance(values, list):
        return values[0] if values else None
    return values


def dynamodb_checks(op, body, arn):
    def table(name):
        return name if name.startswith("arn:") else arn("dynamodb", f"table/{name}")

    if op == "TransactWriteItems":
        return [
            (action, table(item[kind]["TableName"]))
            for item in body.get("TransactItems", [])
            for kind, action in TRANSACT_ACTIONS.items()
            if kind in item
        ]
    if op == "TransactGetItems":
        return [("GetItem", table(item["Get"]["TableName"])) for item in body.get("TransactItems", []) if "Get" in item]
    if op in ("BatchGetItem", "BatchWriteItem"):
        return [(op, table(name)) for name in body.get("RequestItems", {})]
    name = body.get("TableName")
    if not name:
        return None
    resource = table(name)
    if body.get("IndexName") and op in ("Query", "Scan"):
        resource += "/index/" + body["IndexName"]
    return [(op, resource)]


def sqs_checks(op, response, body, arn):
    url = param(response, body, "QueueUrl")
    if url:
        parts = urlparse(url).path.strip("/").split("/")
        name = parts[-1]
        account = parts[-2] if len(parts) >= 2 else None
    else:
        name = param(response, body, "QueueName")
        account = None
    if not name:
        return None
    return [(SQS_BATCH_ACTIONS.get(op, op), arn("sqs", name, account=account))]


def ses_checks(op, body, arn, account, region):
    if op != "SendEmail":
        return None
    checks = []
    identity_arn = body.get("FromEmailAddressIdentityArn")
    if not identity_arn:
        address = body.get("FromEmailAddress") or ""
        address = address.rsplit("<", 1)[-1].rstrip(">").strip()
        # SES authorizes the identity the sender is verified through: the address itself, else
        # its domain.
        from moto.ses.models import ses_backends

        verified = ses_backends[account][region].email_identities
        identity = address if address in verified else address.rpartition("@")[2].lower()
        identity_arn = arn("ses", f"identity/{identity}")
    checks.append(("SendEmail", identity_arn))
    if body.get("ConfigurationSetName"):
        checks.append(("SendEmail", arn("ses", f"configuration-set/{body['ConfigurationSetName']}")))
    return checks


def events_checks(op, body, arn):
    if op != "PutEvents":
        return None

    def bus(name):
        name = name or "default"
        return name if name.startswith("arn:") else arn("events", f"event-bus/{name}")

    return sorted({("PutEvents", bus(entry.get("EventBusName"))) for entry in body.get("Entries", [])})


def secretsmanager_checks(op, body, arn, account, region):
    secret_id = body.get("SecretId")
    if not secret_id:
        return None
    if not secret_id.startswith("arn:"):
        from moto.secretsmanager.models import secretsmanager_backends

        found = secretsmanager_backends[account][region].secrets.get(secret_id)
        secret_id = found.arn if found is not None else arn("secretsmanager", f"secret:{secret_id}")
    return [(op, secret_id)]


def ssm_checks(op, body, arn):
    names = body.get("Names") or ([body["Name"]] if body.get("Name") else [])
    if body.get("Path"):
        names = [body["Path"]]
    if not names:
        return None
    # A parameter's ARN has no slash after `parameter` for a name that starts with one.
    return [(op, arn("ssm", "parameter/" + name.lstrip("/"))) for name in names]


def checks_for(response, service, op, account, region):
    """What AWS authorizes for this request, as (action, resource) pairs; None when this table
    does not know the operation."""
    partition = "aws"

    def arn(svc, resource, account=None):
        return f"arn:{partition}:{svc}:{region}:{account or response.current_account}:{resource}"

    if op in STAR_OPERATIONS.get(service, ()):
        return [(op, "*")]
    body = json_body(response)
    if service == "dynamodb":
        return dynamodb_checks(op, body, arn)
    if service == "sqs":
        return sqs_checks(op, response, body, arn)
    if service == "ses":
        return ses_checks(op, body, arn, account, region)
    if service == "events":
        return events_checks(op, body, arn)
    if service == "secretsmanager":
        return secretsmanager_checks(op, body, arn, account, region)
    if service == "ssm":
        return ssm_checks(op, body, arn)
    return None


def credential_scope(headers):
    auth = headers.get("Authorization") or ""
    scope = auth.partition("Credential=")[2].partition(",")[0].split("/")
    # key / date / region / service / aws4_request
    return (scope[2], scope[3]) if len(scope) >= 4 else (None, None)


def authorize(self, resource="*"):
    """Replaces ActionAuthenticatorMixin._authenticate_and_authorize_normal_action."""
    if ActionAuthenticatorMixin.request_count < settings.INITIAL_NO_AUTH_ACTION_COUNT:
        ActionAuthenticatorMixin.request_count += 1
        return
    if self.headers.get("X-Amz-Target") in ActionAuthenticatorMixin.PUBLIC_OPERATIONS:
        return
    op = self._get_action()
    region, service = credential_scope(self.headers)
    path = self.raw_path
    query = urlparse(self.uri).query
    if query:
        path += "?" + query

    # moto fills `data` with the headers when a request has neither query nor body (a GET such
    # as SES's GetAccount), and its signature check would then hash them as the payload.
    data = self.data if self.raw_body else {}

    def request_for(action):
        return IAMRequest(
            account_id=self.current_account,
            method=self.method,
            path=path,
            data=data,
            body=self.raw_body,
            headers=self.headers,
            action=action,
        )

    try:
        first = request_for(op)
        first.check_signature()
    except Exception as e:
        key = (self.headers.get("Authorization") or "").partition("Credential=")[2].partition("/")[0]
        record(
            {
                "principal": None,
                "access_key": key,
                "operation": f"{service}:{op}",
                "error": type(e).__name__,
                "allowed": False,
            }
        )
        raise
    principal = first._access_key.arn
    checks = checks_for(self, service, op, self.current_account, region)
    derived = checks is not None
    if not derived:
        checks = [(op, resource)]
    for action, arn in checks:
        request = first if action == op else request_for(action)
        allowed = True
        try:
            request.check_action_permitted(arn)
        except Exception:
            allowed = False
        record(
            {
                "principal": principal,
                "operation": f"{service}:{op}",
                "action": f"{service}:{action}",
                "resource": arn,
                "allowed": allowed,
                "derived": derived,
            }
        )
        if not allowed:
            raise AccessDenied(principal, f"{service}:{action}", arn)


def get_account(self):
    """SES v2 GetAccount, which moto 5.2.5 does not implement (nurture reads its send rate at
    start): a production account with SES's default quota."""
    return json.dumps(
        {
            "DedicatedIpAutoWarmupEnabled": False,
            "EnforcementStatus": "HEALTHY",
            "ProductionAccessEnabled": True,
            "SendQuota": {"Max24HourSend": 50000.0, "MaxSendRate": 14.0, "SentLast24Hours": 0.0},
            "SendingEnabled": True,
        }
    )


def main():
    global DECISIONS_FILE
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("decisions", help="file the authorization decisions are appended to, one JSON line each")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0: any free port (printed)")
    args = parser.parse_args()

    DECISIONS_FILE = open(args.decisions, "a", encoding="utf-8")
    ActionAuthenticatorMixin._authenticate_and_authorize_normal_action = authorize
    if not hasattr(SESV2Response, "get_account"):
        SESV2Response.get_account = get_account
        sesv2_urls.url_paths["{0}/v2/email/account$"] = SESV2Response.dispatch
    # One line per request on stderr would bury the test's own output.
    logging.getLogger("werkzeug").setLevel(logging.ERROR)

    server = ThreadedMotoServer(ip_address=args.host, port=args.port, verbose=False)
    server.start()
    _, port = server.get_host_and_port()
    os.environ["MOTO_PORT"] = str(port)
    print(f"listening on {port}", flush=True)
    # Until the parent closes our stdin or kills us.
    try:
        sys.stdin.read()
    except KeyboardInterrupt:
        pass
    server.stop()


if __name__ == "__main__":
    main()
