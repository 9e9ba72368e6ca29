#!/usr/bin/env python3
"""Translates infra/template.yaml with the pinned aws-sam-translator (what
CloudFormation's SAM transform runs) and checks the CloudFormation it turns
into, where cfn-lint and `sam validate --lint` cannot see: SAM drops keys it
does not know silently (a rule's `DeadLetterConfig.Destination` once made
four unencrypted queues). Run by `make infra-check` from .venv-sam."""
import json
import os
import pathlib
import sys

os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
from samtranslator.translator.transform import transform  # noqa: E402
from samtranslator.yaml_helper import yaml_parse  # noqa: E402

TEMPLATE = pathlib.Path(__file__).resolve().parents[1] / "template.yaml"
OPT_IN_KEYS = ("aws:ResourceTag/first-responder", "ssm:resourceTag/first-responder")
# Changes to the fleet: each must be scoped by the opt-in tag (or, for
# snapshots, be the creation of a resource tagged as first-responder's own).
FLEET_CHANGES = (
    "ec2:CreateSnapshot", "ec2:CreateSnapshots", "ec2:ModifyVolume", "ec2:RebootInstances",
    "ec2:StopInstances", "ec2:StartInstances",
    "ec2:CreateTags", "autoscaling:SetDesiredCapacity", "autoscaling:SetInstanceHealth",
    "ssm:SendCommand",
)


class NoManagedPolicies:
    """The template names managed policies by ARN only; a name to look up
    would need IAM, which a check that runs offline must not reach."""

    def load(self):
        raise AssertionError("the template must name managed policies by ARN")


def cond_keys(statement):
    keys = set()
    for op in (statement.get("Condition") or {}).values():
        keys.update(op.keys())
    return keys


def resources(statement):
    r = statement.get("Resource", [])
    return r if isinstance(r, list) else [r]


def text(v):
    return json.dumps(v, sort_keys=True)


def main():
    sam = yaml_parse(TEMPLATE.read_text())
    # `sam package` uploads each function's build and puts its S3 location in
    # CodeUri before CloudFormation runs the transform: the same here.
    for r in sam["Resources"].values():
        if r["Type"] == "AWS::Serverless::Function":
            r["Properties"]["CodeUri"] = "s3://first-responder-artifacts/build.zip"
    cfn = transform(sam, {}, NoManagedPolicies())
    res = cfn["Resources"]
    problems = []
    by_type = {}
    for name, r in res.items():
        by_type.setdefault(r["Type"], []).append(name)

    # Every rule's dead-letter target is the one encrypted queue.
    dlq = {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]}
    rules = by_type.get("AWS::Events::Rule", [])
    if len(rules) < 5:
        problems.append(f"expected the 5 alarm rules, found {rules}")
    for name in rules:
        for t in res[name]["Properties"].get("Targets", []):
            got = t.get("DeadLetterConfig", {}).get("Arn")
            if got != dlq:
                problems.append(f"rule {name}: dead-letter target {text(got)}, not the DeadLetterQueue")

    # No queue or topic without a KMS key, and no queue but ours.
    for name in by_type.get("AWS::SQS::Queue", []):
        if "KmsMasterKeyId" not in res[name]["Properties"]:
            problems.append(f"queue {name} has no KMS key")
    # The dead letters and the check after a fix; no queue SAM made up.
    if sorted(by_type.get("AWS::SQS::Queue", [])) != ["DeadLetterQueue", "VerifyQueue"]:
        problems.append(f"queues: {by_type.get('AWS::SQS::Queue')}, expected DeadLetterQueue and VerifyQueue")
    # The check reaches the responder through an SQS event source mapping.
    maps = [r["Properties"] for r in res.values() if r["Type"] == "AWS::Lambda::EventSourceMapping"]
    if not any(m.get("EventSourceArn") == {"Fn::GetAtt": ["VerifyQueue", "Arn"]} for m in maps):
        problems.append(f"no event source mapping from VerifyQueue: {maps}")
    for name in by_type.get("AWS::SNS::Topic", []):
        if "KmsMasterKeyId" not in res[name]["Properties"]:
            problems.append(f"topic {name} has no KMS key")

    # Every function on arm64.
    for name in by_type.get("AWS::Lambda::Function", []):
        arch = res[name]["Properties"].get("Architectures")
        if arch != ["arm64"]:
            problems.append(f"function {name}: architectures {arch}, expected [arm64]")

    # Member roles are assumed only where IAM says the account is allowed:
    # in the organization (aws:ResourceOrgID) or in AllowedAccounts
    # (aws:ResourceAccount), each statement only when its parameter is set.
    assume = {}
    for name in by_type.get("AWS::IAM::Role", []):
        for policy in res[name]["Properties"].get("Policies", []):
            for st in policy["PolicyDocument"]["Statement"]:
                if isinstance(st, dict) and "Fn::If" in st:
                    cond, st, other = st["Fn::If"]
                    if other != {"Ref": "AWS::NoValue"}:
                        problems.append(f"{name}: a conditional statement with an else branch: {text(other)}")
                else:
                    cond = None
                if "sts:AssumeRole" in (st["Action"] if isinstance(st["Action"], list) else [st["Action"]]):
                    assume[st.get("Sid")] = (cond, (st.get("Condition") or {}).get("StringEquals", {}))
    want = {
        "AssumeMemberRolesInTheOrganization": ("HasOrg", {"aws:ResourceOrgID": {"Ref": "AllowedOrgId"}}),
        "AssumeMemberRolesOfAllowedAccounts": (
            "HasAllowedAccounts",
            {"aws:ResourceAccount": {"Fn::Split": [",", {"Ref": "AllowedAccounts"}]}}),
    }
    if assume != want:
        problems.append(f"sts:AssumeRole statements {text(assume)}, expected {text(want)}")

    # Every IAM statement that changes the fleet is scoped by the opt-in tag,
    # or creates first-responder's own tagged snapshots.
    statements = 0
    for name in by_type.get("AWS::IAM::Role", []):
        all_statements = [st for p in res[name]["Properties"].get("Policies", [])
                          for st in p["PolicyDocument"]["Statement"] if "Fn::If" not in st]
        # CreateSnapshots is authorized against the instance *and* each of its
        # volumes: the volumes' statement needs no tag when the instance's has it.
        instance_scoped = any(
            "ec2:CreateSnapshots" in (st["Action"] if isinstance(st["Action"], list) else [st["Action"]])
            and ":instance/" in text(resources(st)) and cond_keys(st) & set(OPT_IN_KEYS)
            for st in all_statements)
        for policy in res[name]["Properties"].get("Policies", []):
            for st in policy["PolicyDocument"]["Statement"]:
                if "Fn::If" in st:
                    st = st["Fn::If"][1]
                actions = st["Action"] if isinstance(st["Action"], list) else [st["Action"]]
                changes = [a for a in actions if a in FLEET_CHANGES]
                if not changes:
                    continue
                statements += 1
                keys = cond_keys(st)
                on = text(resources(st))
                ours = (":snapshot/" in on and ("aws:RequestTag/created-by" in keys or "ec2:CreateAction" in keys))
                document = ":document/AWS-RunShellScript" in on and changes == ["ssm:SendCommand"]
                volumes_of_instance = changes == ["ec2:CreateSnapshots"] and ":volume/" in on and instance_scoped
                if not (keys & set(OPT_IN_KEYS) or ours or document or volumes_of_instance):
                    problems.append(f"{name} statement {st.get('Sid')}: {changes} on {on} is not scoped by the opt-in tag")
    # The fleet statements serve every region in Regions (default: the
    # stack's own), by aws:RequestedRegion, not by the region in the ARN.
    region_only = {"Fn::If": ["HasRegions", {"Fn::Split": [",", {"Ref": "Regions"}]}, {"Ref": "AWS::Region"}]}
    fleet = [st for p in res["ResponderRole"]["Properties"]["Policies"]
             for st in p["PolicyDocument"]["Statement"] if "Fn::If" not in st
             and st.get("Sid") not in ("ReadTheKillSwitch", "DecryptTheKillSwitch", "ReadTheApprovalKey",
                                       "DecryptTheApprovalKey", "Notify", "State", "EncryptedTopicTableAndQueue",
                                       "DeadLetters", "VerifyAfterTheFix")]
    for st in fleet:
        got = (st.get("Condition") or {}).get("StringEquals", {}).get("aws:RequestedRegion")
        if got != region_only:
            problems.append(f"ResponderRole statement {st.get('Sid')}: aws:RequestedRegion is {text(got)}, "
                            f"expected the Regions parameter")
        if "${AWS::Region}" in text(resources(st)):
            problems.append(f"ResponderRole statement {st.get('Sid')}: its ARN names the stack's region")
    if len(fleet) < 10:
        problems.append(f"found only {len(fleet)} fleet statements")
    if statements < 5:
        problems.append(f"found only {statements} statements that change the fleet: the check looks at the wrong place")

    if problems:
        print("translated template:", *problems, sep="\n  ")
        sys.exit(1)
    print(f"translated template: {len(res)} resources; {len(rules)} rules dead-letter to the encrypted queue; "
          f"{len(by_type.get('AWS::Lambda::Function', []))} functions on arm64; {statements} fleet-changing IAM statements scoped; "
          f"member roles assumed only under aws:ResourceOrgID or aws:ResourceAccount; "
          f"{len(fleet)} fleet statements serve the Regions parameter")


if __name__ == "__main__":
    main()
