#!/usr/bin/env python3
"""Checks the rules infra/template.yaml must keep, offline (scripts/test.sh
runs it; cfn-lint checks the syntax, this checks what publinks promises):

- every function has its own log group (kept LogRetentionDays), reserved
  concurrency, an errors alarm and a throttles alarm to the alarm topic;
- every HTTP API is throttled per stage and has a 5xx-rate alarm;
- every queue that collects failures has an alarm;
- a function reads only the secrets its own environment names, and
  public-api never the dashboard functions' secret;
- no function writes (put, delete, abort) to a whole bucket: only to prefixes;
- the event-driven functions consume only their own stream or queue, and
  a queue one message at a time (the message its handler holds);
- CloudFront sends public-api the origin header the code checks, its value
  from the origin secret, and caches no 5xx; the WAF and the custom domain
  are optional.

Prints every broken rule and exits 1 if there is one.

Usage: python infra/template_rules.py [path/to/template.yaml]
"""

import os
import re
import sys

from local_resources import load

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WRITE_ACTIONS = {"s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload", "s3:*"}


def refs(value):
    """Every logical id a value refers to (Ref, GetAtt, ${...} in Sub)."""
    found = set()
    if isinstance(value, dict):
        for key, inner in value.items():
            if key == "Ref" and isinstance(inner, str):
                found.add(inner)
            elif key == "Fn::GetAtt":
                found.add(inner[0] if isinstance(inner, list) else inner.split(".")[0])
            elif key == "Fn::Sub":
                text = inner[0] if isinstance(inner, list) else inner
                found.update(name.split(".")[0] for name in re.findall(r"\$\{([^}!]+)\}", text))
                if isinstance(inner, list):
                    found.update(refs(inner[1]))
            else:
                found.update(refs(inner))
    elif isinstance(value, list):
        for inner in value:
            found.update(refs(inner))
    return found


def as_list(value):
    return value if isinstance(value, list) else [value]


def statements(template, logical_id, props):
    """The policy statements a function's role holds: its Policies, or its own Role's."""
    out = []
    for policy in props.get("Policies") or []:
        if isinstance(policy, dict):
            out.extend(policy.get("Statement") or [])
    role = props.get("Role")
    if role is not None:
        role_id = next(iter(refs(role)))
        for policy in template["Resources"][role_id]["Properties"].get("Policies") or []:
            out.extend(policy["PolicyDocument"]["Statement"])
    return out


def check(template):
    errors = []
    resources = template["Resources"]
    by_type = {}
    for logical_id, resource in resources.items():
        by_type.setdefault(resource["Type"], []).append(logical_id)
    functions = by_type.get("AWS::Serverless::Function", [])
    alarms = {a: resources[a]["Properties"] for a in by_type.get("AWS::CloudWatch::Alarm", [])}
    secrets = set(by_type.get("AWS::SecretsManager::Secret", []))

    def alarm_on(metric, target):
        for props in alarms.values():
            dims = props.get("Dimensions") or []
            stats = [m["MetricStat"]["Metric"] for m in props.get("Metrics") or [] if "MetricStat" in m]
            for source in [{"MetricName": props.get("MetricName"), "Dimensions": dims}] + stats:
                if source.get("MetricName") == metric and target in refs(source.get("Dimensions")):
                    if "AlarmTopic" in refs(props.get("AlarmActions")):
                        return True
        return False

    for f in functions:
        props = resources[f]["Properties"]
        log_group = refs((props.get("LoggingConfig") or {}).get("LogGroup"))
        if len(log_group) != 1 or resources.get(next(iter(log_group)), {}).get("Type") != "AWS::Logs::LogGroup":
            errors.append(f"{f}: no LoggingConfig.LogGroup of its own")
        else:
            group = resources[next(iter(log_group))]["Properties"]
            if refs(group.get("RetentionInDays")) != {"LogRetentionDays"}:
                errors.append(f"{f}: its log group is not kept LogRetentionDays")
        if "ReservedConcurrentExecutions" not in props:
            errors.append(f"{f}: no ReservedConcurrentExecutions")
        for metric in ("Errors", "Throttles"):
            if not alarm_on(metric, f):
                errors.append(f"{f}: no {metric} alarm to AlarmTopic")

        env = (props.get("Environment") or {}).get("Variables") or {}
        named = {r for v in env.values() for r in refs(v)} & secrets
        readable = set()
        for st in statements(template, f, props):
            if st.get("Effect") != "Allow":
                continue
            actions = set(as_list(st["Action"]))
            if "secretsmanager:GetSecretValue" in actions:
                readable.update(refs(st["Resource"]))
            if actions & WRITE_ACTIONS:
                for resource in as_list(st["Resource"]):
                    text = resource.get("Fn::Sub") if isinstance(resource, dict) else resource
                    if isinstance(text, str) and re.fullmatch(r"\$\{\w+\.Arn\}/\*", text):
                        errors.append(f"{f}: {sorted(actions & WRITE_ACTIONS)} on a whole bucket ({text})")
            if "Role" in props and any(a.startswith(("sqs:Receive", "dynamodb:GetRecords")) for a in actions):
                if any(r == "*" for r in as_list(st["Resource"])):
                    errors.append(f"{f}: consumes every queue or stream of the account")
        if readable != named:
            errors.append(f"{f}: may read the secrets {sorted(readable)} but its environment names {sorted(named)}")
        if f == "PublicApiFunction" and "SigningKeysSecret" in readable:
            errors.append("PublicApiFunction: may read the dashboard functions' secret")
        if f == "PublicApiFunction" and not {"VisitorKeysSecret", "OriginSecret"} <= named:
            errors.append("PublicApiFunction: does not get its key and the origin secret")
        events = (props.get("Events") or {}).values()
        if any(e["Type"] in ("SQS", "DynamoDB", "Kinesis") for e in events) and "Role" not in props:
            errors.append(f"{f}: SAM's managed policy lets it consume every queue or stream; give it a role")
        # The handlers hold the one message they work on (ReceivedMessages::holding):
        # the others of a bigger batch would wait out the queue's long visibility timeout.
        for event in events:
            if event["Type"] == "SQS" and event["Properties"].get("BatchSize") != 1:
                errors.append(f"{f}: its SQS batches are not of one message (BatchSize 1)")

    for api in by_type.get("AWS::Serverless::HttpApi", []):
        settings = resources[api]["Properties"].get("DefaultRouteSettings") or {}
        if "ThrottlingRateLimit" not in settings or "ThrottlingBurstLimit" not in settings:
            errors.append(f"{api}: no stage throttling (DefaultRouteSettings)")
        if not alarm_on("5xx", api):
            errors.append(f"{api}: no 5xx alarm to AlarmTopic")

    failure_queues = set()
    for logical_id in by_type.get("AWS::SQS::Queue", []):
        failure_queues.update(refs((resources[logical_id]["Properties"].get("RedrivePolicy") or {})))
    for f in functions:
        for event in (resources[f]["Properties"].get("Events") or {}).values():
            failure_queues.update(refs(((event["Properties"].get("DestinationConfig") or {}).get("OnFailure"))))
    for queue in sorted(failure_queues):
        if not alarm_on("ApproximateNumberOfMessagesVisible", queue):
            errors.append(f"{queue}: failures land there, but no alarm watches it")

    if not any(resources[s]["Properties"].get("Protocol") == "email" for s in by_type.get("AWS::SNS::Subscription", [])):
        errors.append("no e-mail subscription to the alarm topic (AlarmEmail)")

    origin_rs = open(os.path.join(ROOT, "crates/http/src/origin.rs"), encoding="utf-8").read()
    header = re.search(r'pub const ORIGIN_HEADER: &str = "([^"]+)";', origin_rs).group(1)
    for dist in by_type.get("AWS::CloudFront::Distribution", []):
        config = resources[dist]["Properties"]["DistributionConfig"]
        for origin in config["Origins"]:
            # The origin header is public-api's; the dashboard's files (S3,
            # origin access control) and API (a JWT on every call) need none.
            if "PublicApi" not in refs(origin.get("DomainName")):
                continue
            custom = origin.get("OriginCustomHeaders") or []
            sent = [h for h in custom if h["HeaderName"].lower() == header]
            if len(sent) != 1:
                errors.append(f"{dist}: origin {origin['Id']} does not send {header}")
            elif "OriginSecret" not in refs(sent[0]["HeaderValue"]) or "resolve:secretsmanager" not in str(sent[0]):
                errors.append(f"{dist}: {header} is not read from OriginSecret")
        for key in ("WebACLId", "Aliases", "ViewerCertificate"):
            if "Fn::If" not in (config.get(key) or {}):
                errors.append(f"{dist}: {key} is not optional (a parameter's condition)")
        # API Gateway's own 5xx carry no Cache-Control (a function that
        # panicked, was throttled or timed out): CloudFront keeps none.
        kept = {r.get("ErrorCode"): r.get("ErrorCachingMinTTL") for r in config.get("CustomErrorResponses") or []}
        for code in (500, 502, 503, 504):
            if kept.get(code) != 0:
                errors.append(f"{dist}: a {code} may be cached (ErrorCachingMinTTL is not 0)")
    for acl in by_type.get("AWS::WAFv2::WebACL", []):
        if resources[acl].get("Condition") != "UseWaf":
            errors.append(f"{acl}: not behind EnableWaf")
        rules = resources[acl]["Properties"]["Rules"]
        if not any("RateBasedStatement" in r["Statement"] for r in rules):
            errors.append(f"{acl}: no rate-based rule")
    if not by_type.get("AWS::WAFv2::WebACL"):
        errors.append("no WAF web ACL (optional, EnableWaf)")
    return errors


def main(argv):
    path = argv[1] if len(argv) > 1 else os.path.join(ROOT, "infra", "template.yaml")
    errors = check(load(path))
    for e in errors:
        print(f"template_rules.py: {e}", file=sys.stderr)
    if not errors:
        print(f"template_rules.py: {path} keeps every rule")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
