#!/usr/bin/env python3
"""Reads infra/template.yaml and prints, as JSON on stdout, what a test harness
needs to create the same storage on an AWS-compatible server (moto):

    {"tables":  [{"logical_id", "env", "create_table": {...}, "ttl_attribute"}],
     "buckets": [{"logical_id", "env", "lifecycle_rules": [...]}],
     "secrets": [{"logical_id", "env", "generate": {...}}],
     "queues":  [{"logical_id", "env", "attributes": {...}, "max_receive_count"}]}

- "create_table" is a DynamoDB CreateTable input without TableName (the
  harness names each table itself, so that tests never share one).
- "lifecycle_rules" are in the shape of S3's PutBucketLifecycleConfiguration.
- "generate" is the secret's GenerateSecretString, in the parameter names of
  Secrets Manager's GetRandomPassword plus the template and key.
- "attributes" are a queue's CreateQueue attributes (VisibilityTimeout...);
  a redrive policy is left out (the harness makes no dead-letter queue), but
  its "max_receive_count" is given (the builder must know it).
- "env" is the environment variable that names the resource to the functions
  (from Globals.Function.Environment.Variables or a function's own
  Environment), or null.

The template is the one source of truth: nothing here or in the harness
repeats a table definition. Only the properties that matter for local
resources are read; anything this script cannot resolve is an error, never
silently dropped.

Usage: python infra/local_resources.py [path/to/template.yaml] > resources.json
"""

import json
import os
import sys

import yaml


class TemplateLoader(yaml.SafeLoader):
    """A SafeLoader that accepts CloudFormation's short-form tags (!Ref,
    !Sub, !GetAtt...), turning each into its long form ({"Ref": ...},
    {"Fn::Sub": ...}) instead of failing on an unknown tag."""


def _short_form(loader, tag_suffix, node):
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    if tag_suffix == "Ref":
        return {"Ref": value}
    if tag_suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {"Fn::" + tag_suffix: value}


TemplateLoader.add_multi_constructor("!", _short_form)


class TemplateError(Exception):
    pass


def load(path):
    with open(path, encoding="utf-8") as f:
        return yaml.load(f, Loader=TemplateLoader)


def literal(value, where):
    """A value that must be written out in the template, not computed."""
    if isinstance(value, dict) and any(k == "Ref" or k.startswith("Fn::") for k in value):
        raise TemplateError(f"{where}: expected a literal value, found {value!r}")
    return value


def resolve_parameter(template, value, where):
    """A literal, or a !Ref to a parameter with a default."""
    if isinstance(value, dict) and set(value) == {"Ref"}:
        param = template.get("Parameters", {}).get(value["Ref"])
        if param is None or "Default" not in param:
            raise TemplateError(f"{where}: {value['Ref']} is not a parameter with a default")
        return param["Default"]
    return literal(value, where)


def env_names(template):
    """Which environment variable names which resource: {logical id: variable},
    from the Globals and from each function's own Environment (a secret is
    named only to the functions that may read it)."""
    sources = [template.get("Globals", {}).get("Function", {})]
    for resource in (template.get("Resources") or {}).values():
        if resource.get("Type") == "AWS::Serverless::Function":
            sources.append(resource.get("Properties") or {})
    names = {}
    for source in sources:
        variables = (source.get("Environment") or {}).get("Variables") or {}
        for var, value in variables.items():
            if isinstance(value, dict) and set(value) == {"Ref"}:
                if names.get(value["Ref"], var) != var:
                    raise TemplateError(f"{value['Ref']} is named by both {names[value['Ref']]} and {var}")
                names[value["Ref"]] = var
    return names


def key_schema(schema, where):
    return [
        {"AttributeName": literal(k["AttributeName"], where), "KeyType": literal(k["KeyType"], where)}
        for k in schema
    ]


def projection(p, where):
    out = {"ProjectionType": literal(p.get("ProjectionType", "ALL"), where)}
    if "NonKeyAttributes" in p:
        out["NonKeyAttributes"] = [literal(a, where) for a in p["NonKeyAttributes"]]
    return out


def table(logical_id, props, env):
    where = f"{logical_id}.Properties"
    billing = literal(props.get("BillingMode", "PROVISIONED"), f"{where}.BillingMode")
    provisioned = billing == "PROVISIONED"

    def throughput(p, w):
        t = literal(p.get("ProvisionedThroughput"), w)
        if provisioned and t is None:
            raise TemplateError(f"{w}: PROVISIONED billing needs ProvisionedThroughput")
        return (
            {"ProvisionedThroughput": {k: int(v) for k, v in t.items()}} if provisioned else {}
        )

    create = {
        "AttributeDefinitions": [
            {"AttributeName": literal(a["AttributeName"], where), "AttributeType": literal(a["AttributeType"], where)}
            for a in props["AttributeDefinitions"]
        ],
        "KeySchema": key_schema(props["KeySchema"], f"{where}.KeySchema"),
        "BillingMode": billing,
    }
    create.update(throughput(props, where))
    gsis = []
    for i, g in enumerate(props.get("GlobalSecondaryIndexes", [])):
        w = f"{where}.GlobalSecondaryIndexes[{i}]"
        index = {
            "IndexName": literal(g["IndexName"], w),
            "KeySchema": key_schema(g["KeySchema"], w),
            "Projection": projection(g.get("Projection", {}), w),
        }
        index.update(throughput(g, w))
        gsis.append(index)
    if gsis:
        create["GlobalSecondaryIndexes"] = gsis
    lsis = []
    for i, l in enumerate(props.get("LocalSecondaryIndexes", [])):
        w = f"{where}.LocalSecondaryIndexes[{i}]"
        lsis.append(
            {
                "IndexName": literal(l["IndexName"], w),
                "KeySchema": key_schema(l["KeySchema"], w),
                "Projection": projection(l.get("Projection", {}), w),
            }
        )
    if lsis:
        create["LocalSecondaryIndexes"] = lsis
    stream = props.get("StreamSpecification")
    if stream is not None:
        create["StreamSpecification"] = {
            "StreamEnabled": True,
            "StreamViewType": literal(stream["StreamViewType"], f"{where}.StreamSpecification"),
        }
    ttl = props.get("TimeToLiveSpecification")
    ttl_attribute = None
    if ttl is not None and literal(ttl.get("Enabled", False), f"{where}.TimeToLiveSpecification"):
        ttl_attribute = literal(ttl["AttributeName"], f"{where}.TimeToLiveSpecification")
    return {"logical_id": logical_id, "env": env, "create_table": create, "ttl_attribute": ttl_attribute}


def lifecycle_rule(template, rule, where):
    """One rule of AWS::S3::Bucket's LifecycleConfiguration, in S3 API shape."""
    out = {
        "ID": literal(rule.get("Id", ""), where),
        "Status": literal(rule["Status"], where),
        "Filter": {"Prefix": literal(rule.get("Prefix", ""), where)},
    }
    if "ExpirationInDays" in rule:
        out["Expiration"] = {"Days": int(resolve_parameter(template, rule["ExpirationInDays"], where))}
    if "AbortIncompleteMultipartUpload" in rule:
        days = rule["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"]
        out["AbortIncompleteMultipartUpload"] = {"DaysAfterInitiation": int(resolve_parameter(template, days, where))}
    if "NoncurrentVersionExpiration" in rule:
        days = rule["NoncurrentVersionExpiration"]["NoncurrentDays"]
        out["NoncurrentVersionExpiration"] = {"NoncurrentDays": int(resolve_parameter(template, days, where))}
    unknown = set(rule) - {
        "Id",
        "Status",
        "Prefix",
        "ExpirationInDays",
        "AbortIncompleteMultipartUpload",
        "NoncurrentVersionExpiration",
    }
    if unknown:
        raise TemplateError(f"{where}: lifecycle properties not supported here: {sorted(unknown)}")
    return out


def bucket(template, logical_id, props, env):
    rules = (props.get("LifecycleConfiguration") or {}).get("Rules", [])
    where = f"{logical_id}.Properties.LifecycleConfiguration"
    return {
        "logical_id": logical_id,
        "env": env,
        "lifecycle_rules": [lifecycle_rule(template, r, f"{where}.Rules[{i}]") for i, r in enumerate(rules)],
    }


def secret(logical_id, props, env):
    where = f"{logical_id}.Properties"
    out = {"logical_id": logical_id, "env": env, "generate": None}
    gen = props.get("GenerateSecretString")
    if gen is not None:
        gen = literal(gen, f"{where}.GenerateSecretString")
        out["generate"] = {
            "SecretStringTemplate": gen.get("SecretStringTemplate"),
            "GenerateStringKey": gen.get("GenerateStringKey"),
            "PasswordLength": int(gen.get("PasswordLength", 32)),
            "ExcludeCharacters": gen.get("ExcludeCharacters", ""),
            "ExcludeNumbers": bool(gen.get("ExcludeNumbers", False)),
            "ExcludePunctuation": bool(gen.get("ExcludePunctuation", False)),
            "ExcludeUppercase": bool(gen.get("ExcludeUppercase", False)),
            "ExcludeLowercase": bool(gen.get("ExcludeLowercase", False)),
            "IncludeSpace": bool(gen.get("IncludeSpace", False)),
            "RequireEachIncludedType": bool(gen.get("RequireEachIncludedType", True)),
        }
    return out


def queue(logical_id, props, env):
    where = f"{logical_id}.Properties"
    attributes = {}
    for name in ("VisibilityTimeout", "MessageRetentionPeriod", "ReceiveMessageWaitTimeSeconds"):
        if name in props:
            attributes[name] = str(int(literal(props[name], f"{where}.{name}")))
    out = {"logical_id": logical_id, "env": env, "attributes": attributes}
    if "RedrivePolicy" in props:
        redrive = literal(props["RedrivePolicy"], f"{where}.RedrivePolicy")
        out["max_receive_count"] = int(literal(redrive["maxReceiveCount"], f"{where}.RedrivePolicy.maxReceiveCount"))
    return out


def resources(template):
    envs = env_names(template)
    out = {"tables": [], "buckets": [], "secrets": [], "queues": []}
    for logical_id, resource in (template.get("Resources") or {}).items():
        kind = resource.get("Type")
        props = resource.get("Properties") or {}
        env = envs.get(logical_id)
        if kind == "AWS::DynamoDB::Table":
            out["tables"].append(table(logical_id, props, env))
        elif kind == "AWS::S3::Bucket" and env is not None:
            out["buckets"].append(bucket(template, logical_id, props, env))
        elif kind == "AWS::SecretsManager::Secret":
            out["secrets"].append(secret(logical_id, props, env))
        elif kind == "AWS::SQS::Queue" and env is not None:
            out["queues"].append(queue(logical_id, props, env))
    return out


def main(argv):
    path = argv[1] if len(argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "template.yaml")
    try:
        result = resources(load(path))
    except (OSError, yaml.YAMLError, KeyError, TypeError, ValueError, TemplateError) as e:
        print(f"local_resources.py: cannot read {path}: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    json.dump(result, sys.stdout, indent=2, sort_keys=True)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
