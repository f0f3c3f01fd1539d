#!/usr/bin/env python3
"""Static checks of template.yaml that cfn-lint and `sam validate` do not make.

Run with the .venv-aws python (cfn-lint's decoder reads the CloudFormation tags; aws-sam-cli brings the SAM
translator):

    .venv-aws/bin/python scripts/checks/template_test.py [template.yaml]   # check the template
    .venv-aws/bin/python scripts/checks/template_test.py --self-test       # prove every check can fail

Prints one line per check and a closing `template_test: N passed, M failed`; exits 1 when anything failed.
"""

from __future__ import annotations

import copy
import json
import os
import re
import sys
from pathlib import Path
from typing import Any, Callable, Iterator

os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ.setdefault("AWS_CONFIG_FILE", os.devnull)
os.environ.setdefault("AWS_SHARED_CREDENTIALS_FILE", os.devnull)

from cfnlint.decode import decode  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
BIN_DIR = ROOT / "functions" / "src" / "bin"
# docs/architecture.md: one Lambda binary per operation.
EXPECTED_BINARIES = {"create-conversation", "add-member", "remove-member", "send-message", "broadcast", "schedules",
                     "recall-message", "mute-members", "block-members"}
# issue 4: the HTTP contract.
EXPECTED_ROUTES = {
    ("POST", "/conversations"): "create-conversation",
    ("POST", "/conversations/{conversation_id}/members"): "add-member",
    ("DELETE", "/conversations/{conversation_id}/members"): "remove-member",
    ("POST", "/conversations/{conversation_id}/messages"): "send-message",
    ("POST", "/conversations/{conversation_id}/broadcasts"): "broadcast",
    # issue 13: scheduled sends over HTTP.
    ("POST", "/schedules"): "schedules",
    ("GET", "/schedules"): "schedules",
    ("DELETE", "/schedules/{name}"): "schedules",
    # issue 26: recall and edit, silence, blacklists through the 1.2 API.
    ("POST", "/conversations/{conversation_id}/messages/{msg_id}/recall"): "recall-message",
    ("PUT", "/conversations/{conversation_id}/messages/{msg_id}"): "recall-message",
    ("POST", "/conversations/{conversation_id}/silenced"): "mute-members",
    ("DELETE", "/conversations/{conversation_id}/silenced"): "mute-members",
    ("POST", "/conversations/{conversation_id}/blocked"): "block-members",
    ("DELETE", "/conversations/{conversation_id}/blocked"): "block-members",
}
MASTER_KEY_PARAMETER_ENV = "LEANCLOUD_APP_MASTER_KEY_PARAMETER"
# Actions IAM authorizes only on Resource "*" (no resource-level permission exists for them); a statement of
# nothing but these may name "*". scheduler:ListSchedules only lists names: the function passes its own group.
UNSCOPABLE_ACTIONS = {"scheduler:ListSchedules"}
LEANCLOUD_429_PENALTY_SECONDS = 60


class CheckFailed(Exception):
    pass


def expect(condition: bool, message: str) -> None:
    if not condition:
        raise CheckFailed(message)


# ------------------------------------------------------------------------------------------------ helpers


def plain(value: Any) -> Any:
    """cfn-lint's decoder returns str/dict/list subclasses; turn them into plain JSON values."""
    return json.loads(json.dumps(value, default=str))


def resources(tpl: dict, kind: str) -> Iterator[tuple[str, dict]]:
    for name, res in tpl.get("Resources", {}).items():
        if isinstance(res, dict) and res.get("Type") == kind:
            yield name, res


def function_globals(tpl: dict) -> dict:
    return tpl.get("Globals", {}).get("Function", {}) or {}


def function_property(tpl: dict, fn: dict, key: str, default: Any = None) -> Any:
    props = fn.get("Properties", {}) or {}
    if key in props:
        return props[key]
    return function_globals(tpl).get(key, default)


def function_environment(tpl: dict, fn: dict) -> dict:
    env = dict((function_globals(tpl).get("Environment", {}) or {}).get("Variables", {}) or {})
    env.update(((fn.get("Properties", {}) or {}).get("Environment", {}) or {}).get("Variables", {}) or {})
    return env


def branches(value: Any) -> list[Any]:
    """The possible values of a property that may be wrapped in Fn::If (both branches, recursively)."""
    if isinstance(value, dict) and set(value) == {"Fn::If"}:
        _, yes, no = value["Fn::If"]
        return branches(yes) + branches(no)
    if value == {"Ref": "AWS::NoValue"}:
        return []
    return [value]


def resolve_number(tpl: dict, value: Any) -> float:
    """A literal number, or a Ref to a parameter: its Default (and, conservatively, its MaxValue)."""
    if isinstance(value, dict) and "Ref" in value:
        param = tpl.get("Parameters", {}).get(value["Ref"])
        expect(param is not None, f"Ref to unknown parameter {value['Ref']}")
        candidates = [param.get("Default"), param.get("MaxValue")]
        numbers = [float(c) for c in candidates if c is not None]
        expect(numbers, f"parameter {value['Ref']} has no Default to check against")
        return max(numbers)
    return float(value)


def ref_target(value: Any) -> str | None:
    """Logical id named by Ref / Fn::GetAtt X.Arn, else None."""
    if isinstance(value, dict):
        if "Ref" in value:
            return value["Ref"]
        if "Fn::GetAtt" in value:
            att = value["Fn::GetAtt"]
            return att[0] if isinstance(att, list) else str(att).split(".")[0]
    return None


def sub_text(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and "Fn::Sub" in value:
        sub = value["Fn::Sub"]
        return sub if isinstance(sub, str) else sub[0]
    return None


def sqs_consumers(tpl: dict) -> Iterator[tuple[str, str, dict, dict]]:
    """(description, function logical id, settings, queue ref) for every SQS trigger, SAM event or raw mapping."""
    for fn_name, fn in resources(tpl, "AWS::Serverless::Function"):
        for ev_name, ev in ((fn.get("Properties", {}) or {}).get("Events", {}) or {}).items():
            if ev.get("Type") == "SQS":
                props = ev.get("Properties", {}) or {}
                yield f"{fn_name}.Events.{ev_name}", fn_name, props, props.get("Queue")
    for name, esm in resources(tpl, "AWS::Lambda::EventSourceMapping"):
        props = esm.get("Properties", {}) or {}
        source = ref_target(props.get("EventSourceArn"))
        if source and tpl["Resources"].get(source, {}).get("Type") == "AWS::SQS::Queue":
            yield name, ref_target(props.get("FunctionName")) or "", props, props.get("EventSourceArn")


def translate(tpl: dict) -> dict:
    """Run the SAM translator locally (as `sam validate` does) and return the CloudFormation template."""
    import logging

    from samtranslator.translator.transform import transform

    # the translator warns about its own unpublished usage metrics when garbage-collected
    logging.getLogger("samtranslator.metrics.metrics").setLevel(logging.ERROR)

    tpl = copy.deepcopy(tpl)
    for _, fn in resources(tpl, "AWS::Serverless::Function"):
        fn.setdefault("Properties", {})["CodeUri"] = "s3://bucket/key"

    class NoManagedPolicies:
        def load(self) -> dict:
            return {}

    return plain(transform(tpl, {"AWS::Region": "us-east-1"}, NoManagedPolicies()))


# ------------------------------------------------------------------------------------------------ checks


def check_functions_name_existing_binaries(tpl: dict, text: str) -> None:
    seen = set()
    fns = list(resources(tpl, "AWS::Serverless::Function"))
    expect(fns, "no AWS::Serverless::Function")
    for name, fn in fns:
        meta = fn.get("Metadata", {}) or {}
        expect(meta.get("BuildMethod") == "rust-cargolambda", f"{name}: Metadata.BuildMethod is not rust-cargolambda")
        binary = (meta.get("BuildProperties", {}) or {}).get("Binary")
        expect(isinstance(binary, str) and binary, f"{name}: Metadata.BuildProperties.Binary missing")
        source = BIN_DIR / f"{binary}.rs"
        expect(source.is_file() or (BIN_DIR / binary / "main.rs").is_file(),
               f"{name}: binary {binary!r} has no source functions/src/bin/{binary}.rs")
        expect(function_property(tpl, fn, "CodeUri") == ".", f"{name}: CodeUri must be the workspace root '.'")
        seen.add(binary)
    expect(seen == EXPECTED_BINARIES, f"functions build {sorted(seen)}, expected one per binary {sorted(EXPECTED_BINARIES)}")


def check_runtime_settings(tpl: dict, text: str) -> None:
    for name, fn in resources(tpl, "AWS::Serverless::Function"):
        expect(function_property(tpl, fn, "Runtime") == "provided.al2023", f"{name}: Runtime is not provided.al2023")
        expect(function_property(tpl, fn, "Handler") == "bootstrap", f"{name}: Handler is not bootstrap")
        expect(function_property(tpl, fn, "Architectures") == ["arm64"], f"{name}: Architectures is not [arm64]")
        logging = dict(function_globals(tpl).get("LoggingConfig", {}) or {})
        logging.update((fn.get("Properties", {}) or {}).get("LoggingConfig", {}) or {})
        expect(logging.get("LogFormat") == "JSON", f"{name}: LoggingConfig.LogFormat is not JSON")


def check_sqs_events_report_batch_item_failures(tpl: dict, text: str) -> None:
    consumers = list(sqs_consumers(tpl))
    expect(consumers, "no SQS trigger at all (the bulk-notification queue must feed send-message)")
    for where, _, props, _ in consumers:
        expect("ReportBatchItemFailures" in (props.get("FunctionResponseTypes") or []),
               f"{where}: FunctionResponseTypes lacks ReportBatchItemFailures")
        expect((props.get("ScalingConfig") or {}).get("MaximumConcurrency") is not None,
               f"{where}: ScalingConfig.MaximumConcurrency not set")


def check_queue_visibility_timeout(tpl: dict, text: str) -> None:
    for where, fn_name, _, queue in sqs_consumers(tpl):
        queue_id = ref_target(queue)
        expect(queue_id in tpl["Resources"], f"{where}: queue {queue!r} is not a resource of this template")
        queue_props = tpl["Resources"][queue_id].get("Properties", {}) or {}
        visibility = resolve_number(tpl, queue_props.get("VisibilityTimeout", 30))
        fn = tpl["Resources"].get(fn_name)
        expect(fn is not None, f"{where}: consumer function {fn_name!r} not found")
        timeout = resolve_number(tpl, function_property(tpl, fn, "Timeout", 3))
        expect(visibility >= 6 * timeout,
               f"{queue_id}: VisibilityTimeout {visibility:g} < 6 x {fn_name} Timeout {timeout:g}")
        expect(visibility >= LEANCLOUD_429_PENALTY_SECONDS,
               f"{queue_id}: VisibilityTimeout {visibility:g} < LeanCloud's 60 s rate-limit penalty")
        redrive = queue_props.get("RedrivePolicy") or {}
        expect(redrive.get("deadLetterTargetArn") and redrive.get("maxReceiveCount"),
               f"{queue_id}: no RedrivePolicy with deadLetterTargetArn and maxReceiveCount")


def check_no_unauthenticated_route(tpl: dict, text: str) -> None:
    apis = dict(resources(tpl, "AWS::Serverless::HttpApi"))
    expect(apis, "no AWS::Serverless::HttpApi")
    expect(not list(resources(tpl, "AWS::Serverless::Api")), "a REST API (AWS::Serverless::Api) is not expected")
    for name, api in apis.items():
        auth = (api.get("Properties", {}) or {}).get("Auth") or {}
        default = auth.get("DefaultAuthorizer")
        expect(isinstance(default, str) and default and default != "NONE", f"{name}: Auth.DefaultAuthorizer not set")
        if default == "AWS_IAM":
            expect(auth.get("EnableIamAuthorizer") is True, f"{name}: DefaultAuthorizer AWS_IAM needs EnableIamAuthorizer")
    routes = {}
    for fn_name, fn in resources(tpl, "AWS::Serverless::Function"):
        props = fn.get("Properties", {}) or {}
        url = props.get("FunctionUrlConfig")
        expect(not url or url.get("AuthType") != "NONE", f"{fn_name}: function URL with AuthType NONE")
        for ev_name, ev in (props.get("Events", {}) or {}).items():
            if ev.get("Type") in ("Api", "HttpApi"):
                ev_props = ev.get("Properties", {}) or {}
                where = f"{fn_name}.Events.{ev_name}"
                expect(ev.get("Type") == "HttpApi", f"{where}: Api (REST) event not expected")
                expect(ref_target(ev_props.get("ApiId")) in apis,
                       f"{where}: no ApiId of an explicit HttpApi (the implicit API has no authorizer)")
                authorizer = (ev_props.get("Auth") or {}).get("Authorizer")
                expect(authorizer != "NONE", f"{where}: Auth.Authorizer NONE makes the route public")
                binary = fn.get("Metadata", {}).get("BuildProperties", {}).get("Binary")
                routes[(str(ev_props.get("Method", "")).upper(), ev_props.get("Path"))] = binary
    expect(routes == EXPECTED_ROUTES, f"routes {routes} differ from the contract {EXPECTED_ROUTES}")


def check_generated_api_security(tpl: dict, text: str) -> None:
    """What API Gateway will import: every operation of every generated API carries a non-empty security
    requirement in every branch of every condition, naming schemes that exist in the same branch."""
    out = translate(tpl)
    apis = list(resources(out, "AWS::ApiGatewayV2::Api"))
    expect(apis, "the translated template has no AWS::ApiGatewayV2::Api")
    operations = 0
    for name, api in apis:
        body = (api.get("Properties", {}) or {}).get("Body")
        expect(isinstance(body, dict), f"{name}: no inline OpenAPI body")
        schemes = (body.get("components", {}) or {}).get("securitySchemes", {}) or {}
        scheme_names = {k for k, v in schemes.items() if branches(v)}
        for path, item in (body.get("paths", {}) or {}).items():
            for path_item in branches(item):
                for method, op in path_item.items():
                    if method in ("parameters", "options"):
                        continue
                    for operation in branches(op):
                        if "x-amazon-apigateway-integration" not in operation:
                            continue
                        operations += 1
                        security = operation.get("security")
                        alternatives = branches(security) if security is not None else [None]
                        for requirement in alternatives:
                            expect(isinstance(requirement, list) and requirement,
                                   f"{name}: {method.upper()} {path} has no security requirement")
                            for entry in requirement:
                                expect(isinstance(entry, dict) and entry, f"{name}: {method.upper()} {path}: empty security entry")
                                for scheme in entry:
                                    expect(scheme in scheme_names,
                                           f"{name}: {method.upper()} {path} uses undefined scheme {scheme!r}")
    expect(operations >= len(EXPECTED_ROUTES), f"only {operations} integrated operations in the generated API")


def check_no_dynamic_references(tpl: dict, text: str) -> None:
    expect("{{resolve:" not in text, "a {{resolve:...}} dynamic reference puts a secret into plain configuration")


def check_master_key_not_in_environment(tpl: dict, text: str) -> None:
    params = tpl.get("Parameters", {}) or {}
    fns = list(resources(tpl, "AWS::Serverless::Function")) + list(resources(tpl, "AWS::Lambda::Function"))
    for name, fn in fns:
        env = function_environment(tpl, fn)
        expect("LEANCLOUD_APP_MASTER_KEY" not in env, f"{name}: LEANCLOUD_APP_MASTER_KEY set as an environment value")
        for var, value in env.items():
            if re.search(r"MASTER|SECRET|PASSWORD|TOKEN|(^|_)KEY($|_)", var):
                expect(var.endswith(("_PARAMETER", "_ARN", "_NAME")),
                       f"{name}: environment variable {var} looks like a secret value")
            target = ref_target(value)
            if target in params:
                ptype = params[target].get("Type", "")
                expect(not ptype.startswith("AWS::SSM::Parameter::Value"),
                       f"{name}: {var} resolves SSM parameter {target} at deploy time")
                expect(not params[target].get("NoEcho"), f"{name}: {var} carries the NoEcho parameter {target}")
        name_ref = ref_target(env.get(MASTER_KEY_PARAMETER_ENV))
        expect(name_ref in params and params[name_ref].get("Type") == "String",
               f"{name}: {MASTER_KEY_PARAMETER_ENV} is not a Ref to a String parameter holding the SSM name")


def check_schedules_have_stack_unique_names(tpl: dict, text: str) -> None:
    found = 0
    for fn_name, fn in resources(tpl, "AWS::Serverless::Function"):
        for ev_name, ev in ((fn.get("Properties", {}) or {}).get("Events", {}) or {}).items():
            if ev.get("Type") != "ScheduleV2":
                continue
            found += 1
            where = f"{fn_name}.Events.{ev_name}"
            props = ev.get("Properties", {}) or {}
            expect(not props.get("OmitName"), f"{where}: OmitName")
            name = sub_text(props.get("Name"))
            expect(name and "${AWS::StackName}" in name,
                   f"{where}: Name must be explicit and contain ${{AWS::StackName}} (the default collides across stacks)")
            expect(props.get("RetryPolicy"), f"{where}: no RetryPolicy")
            expect(props.get("DeadLetterConfig"), f"{where}: no DeadLetterConfig")
            expect(props.get("ScheduleExpressionTimezone"), f"{where}: no ScheduleExpressionTimezone")
            body = sub_text(props.get("Input"))
            expect(body is not None, f"{where}: no Input")
            sample = re.sub(r"\$\{[^}]+\}", "x", body)
            try:
                record = json.loads(sample)
            except json.JSONDecodeError as err:
                raise CheckFailed(f"{where}: Input is not JSON: {err}") from None
            for field in ("conversation_id", "from_client", "message", "idempotency_key"):
                expect(field in record, f"{where}: Input lacks {field}")
            expect("<aws.scheduler.scheduled-time>" in record["idempotency_key"],
                   f"{where}: idempotency_key does not include the scheduled time")
    for name, sched in resources(tpl, "AWS::Scheduler::Schedule"):
        found += 1
        expect("Name" in (sched.get("Properties", {}) or {}), f"{name}: AWS::Scheduler::Schedule without Name")
    expect(found >= 2, "expected the example cron and at() schedules")
    expressions = text
    expect("cron(" in expressions and "at(" in expressions, "expected one cron() and one at() schedule")


def check_idempotency_table(tpl: dict, text: str) -> None:
    tables = list(resources(tpl, "AWS::DynamoDB::Table"))
    expect(len(tables) == 1, f"expected one DynamoDB table, found {len(tables)}")
    name, table = tables[0]
    props = table.get("Properties", {})
    expect(props.get("BillingMode") == "PAY_PER_REQUEST", f"{name}: BillingMode is not PAY_PER_REQUEST")
    keys = {k["AttributeName"]: k["KeyType"] for k in props.get("KeySchema", [])}
    expect(keys == {"pk": "HASH", "sk": "RANGE"}, f"{name}: key schema {keys} is not pk/sk")
    attrs = {a["AttributeName"]: a["AttributeType"] for a in props.get("AttributeDefinitions", [])}
    expect(attrs == {"pk": "S", "sk": "S"}, f"{name}: pk/sk are not strings")
    ttl = props.get("TimeToLiveSpecification") or {}
    expect(ttl.get("AttributeName") == "expires_at" and ttl.get("Enabled") is True, f"{name}: TTL on expires_at not enabled")
    for fn_name, fn in resources(tpl, "AWS::Serverless::Function"):
        expect(ref_target(function_environment(tpl, fn).get("IDEMPOTENCY_TABLE")) == name,
               f"{fn_name}: IDEMPOTENCY_TABLE does not name {name}")


def unscopable(statement: dict) -> bool:
    actions = statement.get("Action")
    actions = actions if isinstance(actions, list) else [actions]
    return statement.get("Effect") == "Allow" and bool(actions) and set(actions) <= UNSCOPABLE_ACTIONS


def check_least_privilege(tpl: dict, text: str) -> None:
    pollers = {fn for _, fn, _, _ in sqs_consumers(tpl)}
    for fn_name, fn in resources(tpl, "AWS::Serverless::Function"):
        props = fn.get("Properties", {}) or {}
        expect("Role" not in props, f"{fn_name}: an external Role cannot be checked")
        for policy in props.get("Policies", []) or []:
            expect(not isinstance(policy, str), f"{fn_name}: managed policy by name {policy!r} (too broad)")
            if isinstance(policy, dict):
                expect("Statement" not in policy or all(s.get("Resource") != "*" or unscopable(s)
                                                        for s in policy["Statement"]),
                       f"{fn_name}: inline statement on Resource '*'")
                if "SQSPollerPolicy" in policy:
                    expect(fn_name in pollers, f"{fn_name}: SQSPollerPolicy without an SQS trigger")
        if fn_name in pollers:
            expect(any(isinstance(p, dict) and "SQSPollerPolicy" in p for p in props.get("Policies", []) or [])
                   or any(ev.get("Type") == "SQS" for ev in (props.get("Events") or {}).values()),
                   f"{fn_name}: consumes a queue without SQS poller permissions")
    for name, policy in resources(tpl, "AWS::IAM::ManagedPolicy"):
        for statement in branches((policy["Properties"]["PolicyDocument"]).get("Statement")):
            for s in statement if isinstance(statement, list) else [statement]:
                for one in branches(s):
                    expect(one.get("Resource") != "*", f"{name}: statement on Resource '*'")
                    actions = one.get("Action")
                    actions = actions if isinstance(actions, list) else [actions]
                    expect(not any(a.endswith(":*") or a == "*" for a in actions), f"{name}: wildcard action {actions}")


def check_alarms_and_outputs(tpl: dict, text: str) -> None:
    alarms = [a.get("Properties", {}) for _, a in resources(tpl, "AWS::CloudWatch::Alarm")]

    def alarmed(namespace: str, metric: str, target: str) -> bool:
        return any(a.get("Namespace") == namespace and a.get("MetricName") == metric
                   and any(ref_target(d.get("Value")) == target for d in a.get("Dimensions", []))
                   for a in alarms)

    dlqs = set()
    for _, queue in resources(tpl, "AWS::SQS::Queue"):
        target = ref_target(((queue.get("Properties") or {}).get("RedrivePolicy") or {}).get("deadLetterTargetArn"))
        if target:
            dlqs.add(target)
    for _, fn in resources(tpl, "AWS::Serverless::Function"):
        props = fn.get("Properties", {}) or {}
        on_failure = ((props.get("EventInvokeConfig") or {}).get("DestinationConfig") or {}).get("OnFailure") or {}
        if on_failure.get("Type") == "SQS":
            dlqs.add(ref_target(on_failure.get("Destination")))
        for ev in (props.get("Events") or {}).values():
            if ev.get("Type") in ("ScheduleV2", "Schedule"):
                dlq = ((ev.get("Properties") or {}).get("DeadLetterConfig") or {})
                expect("Arn" in dlq, "a schedule's DeadLetterConfig must name a queue of this template (to alarm on it)")
                dlqs.add(ref_target(dlq["Arn"]))
    expect(None not in dlqs, "a dead-letter queue is not a resource of this template")
    for dlq in dlqs:
        expect(alarmed("AWS/SQS", "ApproximateNumberOfMessagesVisible", dlq), f"no depth alarm on dead-letter queue {dlq}")
    for fn_name, _ in resources(tpl, "AWS::Serverless::Function"):
        expect(alarmed("AWS/Lambda", "Errors", fn_name), f"no Errors alarm on {fn_name}")
    outputs = tpl.get("Outputs", {})
    expect("ApiUrl" in outputs and "BulkQueueUrl" in outputs, "Outputs ApiUrl and BulkQueueUrl are required")


# review finding H1: app-wide operations need the admin scope; JWT callers are bound to a claim.
ADMIN_ROUTES = {("post", "/conversations/{conversation_id}/broadcasts"), ("post", "/schedules"),
                ("get", "/schedules"), ("delete", "/schedules/{name}"),
                ("post", "/conversations/{conversation_id}/silenced"),
                ("delete", "/conversations/{conversation_id}/silenced"),
                ("post", "/conversations/{conversation_id}/blocked"),
                ("delete", "/conversations/{conversation_id}/blocked")}


def _declared_paths(tpl: dict) -> dict:
    api = tpl["Resources"][_first(tpl, "AWS::Serverless::HttpApi")]
    return ((api.get("Properties") or {}).get("DefinitionBody") or {}).get("paths") or {}


def check_jwt_callers_are_bound(tpl: dict, text: str) -> None:
    paths = _declared_paths(tpl)
    for method, path in ADMIN_ROUTES:
        security = ((paths.get(path) or {}).get(method) or {}).get("security")
        jwt = [entry for requirement in branches(security) for entry in requirement if "JwtAuthorizer" in entry]
        expect(jwt, f"{method.upper()} {path}: no JwtAuthorizer requirement")
        for entry in jwt:
            expect({"Ref": "JwtAdminScope"} in (entry["JwtAuthorizer"] or []),
                   f"{method.upper()} {path}: a JWT without the admin scope is let through (AuthorizationScopes)")
    env = function_globals(tpl).get("Environment", {}).get("Variables", {})
    for var, param in (("JWT_IDENTITY_CLAIM", "JwtIdentityClaim"), ("JWT_ADMIN_SCOPE", "JwtAdminScope")):
        expect(env.get(var) == {"Ref": param}, f"Globals: {var} must come from the {param} parameter")


# review finding M3: no cleartext master signatures unless the deployer says so.
def check_cleartext_api_server_needs_consent(tpl: dict, text: str) -> None:
    param = (tpl.get("Parameters") or {}).get("AllowInsecureApiServer") or {}
    expect(param.get("Default") == "false", "AllowInsecureApiServer must exist and default to false")
    env = function_globals(tpl).get("Environment", {}).get("Variables", {})
    expect(env.get("LEANCLOUD_ALLOW_INSECURE_API_SERVER") == {"Ref": "AllowInsecureApiServer"},
           "Globals: LEANCLOUD_ALLOW_INSECURE_API_SERVER must come from AllowInsecureApiServer")


# review finding L1: the ledger's four item calls, on the table, for the two functions that send.
LEDGER_ACTIONS = {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"}


def check_ledger_access_is_narrow(tpl: dict, text: str) -> None:
    table_users = set()
    for fn_name, fn in resources(tpl, "AWS::Serverless::Function"):
        for policy in (fn.get("Properties") or {}).get("Policies") or []:
            expect(not (isinstance(policy, dict) and any(k.startswith("DynamoDB") for k in policy)),
                   f"{fn_name}: SAM DynamoDB policy template {list(policy)} (Scan, batch writes...) is wider than the ledger needs")
            if ref_target(policy) == "LedgerAccessPolicy":
                table_users.add(fn_name)
    expect(table_users == {"SendMessageFunction", "BroadcastFunction"},
           f"the ledger policy is attached to {sorted(table_users)}, expected send-message and broadcast only")
    for name, policy in resources(tpl, "AWS::IAM::ManagedPolicy"):
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            for one in branches(statement):
                actions = one.get("Action")
                actions = set(actions if isinstance(actions, list) else [actions])
                if any(a.startswith("dynamodb:") for a in actions):
                    expect(actions <= LEDGER_ACTIONS, f"{name}: DynamoDB actions {sorted(actions - LEDGER_ACTIONS)} not needed")
                    expect(ref_target(one.get("Resource")) == "IdempotencyTable", f"{name}: DynamoDB access beyond the table")


# review finding L2: reserved concurrency, per-route throttles for app-wide routes, access logs.
def check_concurrency_throttles_and_access_logs(tpl: dict, text: str) -> None:
    reserved = function_globals(tpl).get("ReservedConcurrentExecutions")
    expect(reserved is not None, "Globals: no ReservedConcurrentExecutions")
    for name, fn in resources(tpl, "AWS::Serverless::Function"):
        expect("ReservedConcurrentExecutions" not in ((fn.get("Properties") or {})) or
               (fn["Properties"]["ReservedConcurrentExecutions"] is not None), f"{name}: ReservedConcurrentExecutions empty")
    api = (tpl["Resources"][_first(tpl, "AWS::Serverless::HttpApi")].get("Properties") or {})
    logs = api.get("AccessLogSettings") or {}
    expect(ref_target(logs.get("DestinationArn")) in tpl["Resources"], "HttpApi: no AccessLogSettings to a log group of this stack")
    expect("$context.identity.userArn" in str(logs.get("Format")) and "$context.authorizer.claims.sub" in str(logs.get("Format")),
           "HttpApi: the access log must name the caller (IAM ARN and JWT subject)")
    routes = api.get("RouteSettings") or {}
    for key in ("POST /conversations/{conversation_id}/broadcasts", "POST /schedules"):
        expect(key in routes and resolve_number(tpl, routes[key].get("ThrottlingRateLimit", 1e9))
               < resolve_number(tpl, api["DefaultRouteSettings"]["ThrottlingRateLimit"]),
               f"HttpApi: {key} has no throttle of its own below the stage default")


CHECKS: list[Callable[[dict, str], None]] = [
    check_functions_name_existing_binaries,
    check_runtime_settings,
    check_sqs_events_report_batch_item_failures,
    check_queue_visibility_timeout,
    check_no_unauthenticated_route,
    check_generated_api_security,
    check_no_dynamic_references,
    check_master_key_not_in_environment,
    check_schedules_have_stack_unique_names,
    check_idempotency_table,
    check_least_privilege,
    check_alarms_and_outputs,
    check_jwt_callers_are_bound,
    check_cleartext_api_server_needs_consent,
    check_ledger_access_is_narrow,
    check_concurrency_throttles_and_access_logs,
]


def run_checks(tpl: dict, text: str, verbose: bool = True) -> dict[str, str | None]:
    results: dict[str, str | None] = {}
    for check in CHECKS:
        try:
            check(copy.deepcopy(tpl), text)
            results[check.__name__] = None
        except CheckFailed as err:
            results[check.__name__] = str(err)
        except Exception as err:  # a crash is a failure too, with its reason
            results[check.__name__] = f"{type(err).__name__}: {err}"
        if verbose:
            error = results[check.__name__]
            print(f"{'ok  ' if error is None else 'FAIL'} {check.__name__}{'' if error is None else ': ' + error}")
    return results


def load(path: Path) -> tuple[dict, str]:
    tpl, matches = decode(str(path))
    if matches or tpl is None:
        raise SystemExit(f"cannot parse {path}: {[str(m) for m in matches]}")
    return plain(tpl), path.read_text()


# ------------------------------------------------------------------------------------------------ self-test


def _fn(tpl: dict, logical_id: str) -> dict:
    return tpl["Resources"][logical_id]["Properties"]


def _first(tpl: dict, kind: str) -> str:
    return next(name for name, _ in resources(tpl, kind))


def _schedule_event(tpl: dict) -> dict:
    for _, fn in resources(tpl, "AWS::Serverless::Function"):
        for ev in (fn["Properties"].get("Events") or {}).values():
            if ev["Type"] == "ScheduleV2":
                return ev["Properties"]
    raise CheckFailed("no ScheduleV2 event to break")


def _sqs_settings(tpl: dict) -> dict:
    return next(props for _, _, props, _ in sqs_consumers(tpl))


def _http_event(tpl: dict) -> dict:
    for _, fn in resources(tpl, "AWS::Serverless::Function"):
        for ev in (fn["Properties"].get("Events") or {}).values():
            if ev["Type"] == "HttpApi":
                return ev["Properties"]
    raise CheckFailed("no HttpApi event to break")


def _first_path_op(tpl: dict) -> dict:
    body = tpl["Resources"][_first(tpl, "AWS::Serverless::HttpApi")]["Properties"]["DefinitionBody"]
    return next(iter(body["paths"].values()))["post"]


def _queue_of_consumer(tpl: dict) -> dict:
    return tpl["Resources"][ref_target(next(q for _, _, _, q in sqs_consumers(tpl)))]["Properties"]


def _globals_env(tpl: dict) -> dict:
    return tpl["Globals"]["Function"]["Environment"]["Variables"]


# (check expected to fail, description, mutation of a deep copy of the template dict)
BREAKAGES: list[tuple[Callable, str, Callable[[dict], None]]] = [
    (check_functions_name_existing_binaries, "Binary names a missing source file",
     lambda t: t["Resources"][_first(t, "AWS::Serverless::Function")]["Metadata"]["BuildProperties"].update(Binary="no-such-bin")),
    (check_functions_name_existing_binaries, "BuildMethod removed",
     lambda t: t["Resources"][_first(t, "AWS::Serverless::Function")]["Metadata"].pop("BuildMethod")),
    (check_runtime_settings, "x86_64 architecture",
     lambda t: t["Globals"]["Function"].update(Architectures=["x86_64"])),
    (check_sqs_events_report_batch_item_failures, "ReportBatchItemFailures removed",
     lambda t: _sqs_settings(t).update(FunctionResponseTypes=[])),
    (check_sqs_events_report_batch_item_failures, "MaximumConcurrency removed",
     lambda t: _sqs_settings(t).pop("ScalingConfig")),
    (check_sqs_events_report_batch_item_failures, "SAM SQS event without ReportBatchItemFailures",
     lambda t: _fn(t, _first(t, "AWS::Serverless::Function"))["Events"].update(
         Extra={"Type": "SQS", "Properties": {"Queue": {"Fn::GetAtt": ["BulkQueue", "Arn"]},
                                              "ScalingConfig": {"MaximumConcurrency": 2}}})),
    (check_queue_visibility_timeout, "visibility timeout below 6x the function timeout",
     lambda t: _queue_of_consumer(t).update(VisibilityTimeout=60)),
    (check_queue_visibility_timeout, "function timeout raised past the queue's",
     lambda t: t["Globals"]["Function"].update(Timeout=900) or [
         fn["Properties"].pop("Timeout", None) for _, fn in resources(t, "AWS::Serverless::Function")]),
    (check_no_unauthenticated_route, "route with Authorizer NONE",
     lambda t: _http_event(t).update(Auth={"Authorizer": "NONE"})),
    (check_no_unauthenticated_route, "DefaultAuthorizer removed",
     lambda t: t["Resources"][_first(t, "AWS::Serverless::HttpApi")]["Properties"]["Auth"].pop("DefaultAuthorizer")),
    (check_no_unauthenticated_route, "route on the implicit API",
     lambda t: _http_event(t).pop("ApiId")),
    (check_generated_api_security, "anonymous security requirement [{}] on a declared route",
     lambda t: _first_path_op(t).update(security=[{}])),
    (check_generated_api_security, "route security and the API's Auth removed",
     lambda t: [_first_path_op(t).pop("security"),
                t["Resources"][_first(t, "AWS::Serverless::HttpApi")]["Properties"].pop("Auth")]),
    (check_generated_api_security, "security [] in one branch of the condition",
     lambda t: _first_path_op(t).update(security={"Fn::If": ["UseJwt", [{"JwtAuthorizer": []}], []]})),
    (check_no_dynamic_references, "{{resolve:ssm-secure:...}} in the environment",
     lambda t: _globals_env(t).update(LEANCLOUD_APP_MASTER_KEY_PARAMETER="{{resolve:ssm-secure:/leancloud-im/master-key}}")),
    (check_master_key_not_in_environment, "master key as an environment value",
     lambda t: _globals_env(t).update(LEANCLOUD_APP_MASTER_KEY={"Ref": "MasterKeyParameterName"})),
    (check_master_key_not_in_environment, "parameter name resolved at deploy time",
     lambda t: t["Parameters"][ref_target(_globals_env(t)[MASTER_KEY_PARAMETER_ENV])].update(
         Type="AWS::SSM::Parameter::Value<String>")),
    (check_schedules_have_stack_unique_names, "schedule Name removed",
     lambda t: _schedule_event(t).pop("Name")),
    (check_schedules_have_stack_unique_names, "schedule Name without the stack name",
     lambda t: _schedule_event(t).update(Name="daily-broadcast")),
    (check_schedules_have_stack_unique_names, "schedule Input not JSON",
     lambda t: _schedule_event(t).update(Input="{not json")),
    (check_idempotency_table, "TTL removed",
     lambda t: t["Resources"][_first(t, "AWS::DynamoDB::Table")]["Properties"].pop("TimeToLiveSpecification")),
    (check_least_privilege, "broad managed policy by name",
     lambda t: _fn(t, _first(t, "AWS::Serverless::Function"))["Policies"].append("AmazonSQSFullAccess")),
    (check_alarms_and_outputs, "schedule dead-letter queue alarm removed",
     lambda t: t["Resources"].pop(next(n for n, a in resources(t, "AWS::CloudWatch::Alarm")
                                       if ref_target(a["Properties"]["Dimensions"][0]["Value"])
                                       == ref_target(_schedule_event(t)["DeadLetterConfig"]["Arn"])))),
    (check_alarms_and_outputs, "Errors alarm removed",
     lambda t: t["Resources"].pop(next(n for n, a in resources(t, "AWS::CloudWatch::Alarm")
                                       if a["Properties"]["MetricName"] == "Errors"))),
    (check_jwt_callers_are_bound, "broadcast route open to any JWT",
     lambda t: _declared_paths(t)["/conversations/{conversation_id}/broadcasts"]["post"].update(
         security={"Fn::If": ["UseJwt", [{"JwtAuthorizer": []}], [{"AWS_IAM": []}]]})),
    (check_jwt_callers_are_bound, "identity claim not passed to the functions",
     lambda t: _globals_env(t).pop("JWT_IDENTITY_CLAIM")),
    (check_cleartext_api_server_needs_consent, "cleartext allowed by default",
     lambda t: t["Parameters"]["AllowInsecureApiServer"].update(Default="true")),
    (check_ledger_access_is_narrow, "DynamoDBCrudPolicy back on create-conversation",
     lambda t: _fn(t, "CreateConversationFunction")["Policies"].append({"DynamoDBCrudPolicy": {"TableName": {"Ref": "IdempotencyTable"}}})),
    (check_ledger_access_is_narrow, "Scan added to the ledger policy",
     lambda t: t["Resources"]["LedgerAccessPolicy"]["Properties"]["PolicyDocument"]["Statement"][0]["Action"].append("dynamodb:Scan")),
    (check_concurrency_throttles_and_access_logs, "reserved concurrency removed",
     lambda t: t["Globals"]["Function"].pop("ReservedConcurrentExecutions")),
    (check_concurrency_throttles_and_access_logs, "access logs removed",
     lambda t: t["Resources"][_first(t, "AWS::Serverless::HttpApi")]["Properties"].pop("AccessLogSettings")),
    (check_concurrency_throttles_and_access_logs, "broadcast route throttle removed",
     lambda t: t["Resources"][_first(t, "AWS::Serverless::HttpApi")]["Properties"]["RouteSettings"].pop(
         "POST /conversations/{conversation_id}/broadcasts")),
]


def self_test(path: Path) -> int:
    tpl, text = load(path)
    passed = failed = 0
    for check, description, mutate in BREAKAGES:
        broken = copy.deepcopy(tpl)
        mutate(broken)
        broken_text = json.dumps(broken) if check is check_no_dynamic_references else text
        try:
            check(broken, broken_text)
            error = None
        except CheckFailed as err:
            error = str(err)
        except Exception as err:
            error = f"crashed instead of failing cleanly: {type(err).__name__}: {err}"
        caught = error is not None and not error.startswith("crashed")
        print(f"{'ok  ' if caught else 'FAIL'} self-test {check.__name__} catches: {description}"
              + (f" ({error})" if error else " (not caught)"))
        passed += caught
        failed += not caught
    print(f"template_test self-test: {passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


def main(argv: list[str]) -> int:
    args = [a for a in argv if not a.startswith("--")]
    path = Path(args[0]) if args else ROOT / "template.yaml"
    if "--self-test" in argv:
        return self_test(path)
    tpl, text = load(path)
    results = run_checks(tpl, text)
    failed = sum(1 for r in results.values() if r is not None)
    print(f"template_test: {len(results) - failed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
