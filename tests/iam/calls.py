#!/usr/bin/env python3
"""The product's AWS calls, as recorded by tests/iam/record_moto.py in every
integration suite, turned into IAM requests as AWS would evaluate them: the
action and resource ARNs the Service Authorization Reference gives for each
operation, the context keys the policies read (the resource's tags as they
stood at the call, aws:RequestedRegion, aws:RequestTag/..., ec2:CreateAction,
aws:ResourceAccount, aws:ResourceOrgID), the principal that made the call
(the responder's role, the webhook's, or the member role in the account whose
credentials signed it) and that principal's policies, rendered from
infra/template.yaml and infra/member-role.yaml as a deployment would have
them. tests/iam/evaluate.mjs runs each through @cloud-copilot/iam-simulate.

Which calls are the product's: its clients name the app in their user agent
(`app/first-responder`, the webhook `app/first-responder-webhook`); the
harness's seeding and read-back do not. An operation of the product's that
the table below does not know is an error, so a new call cannot slip past.

Usage: calls.py RECORDING_DIR > simulations.json"""
import base64
import json
import pathlib
import re
import sys
import urllib.parse
import xml.etree.ElementTree as ET

import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
HOME = "123456789012"  # moto's default account: the deployment's own
HOME_REGION = "us-east-1"
# The deployment the suites stand for: AllowedAccounts as their configs
# allow (the storm's third account included), the member roles' external id.
PARAMS = {
    "OptInTagValue": "enabled",
    "MemberRoleName": "first-responder-member",
    "AllowedAccounts": "222222222222,333333333333",
    "AllowedOrgId": "",
    # The suites act in us-east-1 and us-west-2.
    "Regions": "us-east-1,us-west-2",
}
ORG = {HOME: "o-firstresp01", "222222222222": "o-firstresp01"}  # 333333333333: none
RESPONDER_ROLE = f"arn:aws:iam::{HOME}:role/first-responder-responder"
WEBHOOK_ROLE = f"arn:aws:iam::{HOME}:role/first-responder-webhook"
ASG_UUID = "00000000-0000-4000-8000-000000000000"


# ---------------------------------------------------------------- templates

# The templates' tags (`!Ref`, `!Sub`, …) read as infra/iam/generate.py reads them.
sys.path.insert(0, str(ROOT / "infra/iam"))
from generate import Loader  # noqa: E402

NOVALUE = object()


def resolve(v, refs, conditions):
    """CloudFormation's intrinsic functions, as the stack would resolve them."""
    if isinstance(v, list):
        out = [resolve(x, refs, conditions) for x in v]
        return [x for x in out if x is not NOVALUE]
    if isinstance(v, dict) and len(v) == 1:
        (k, x), = v.items()
        if k == "!Ref":
            if x == "AWS::NoValue":
                return NOVALUE
            return refs[x]
        if k == "!Sub":
            text = x if isinstance(x, str) else x[0]
            return re.sub(r"\$\{([^}]+)\}", lambda m: refs[m.group(1).replace(".", "")], text)
        if k == "!GetAtt":
            return refs[x.replace(".", "")]
        if k == "!If":
            cond, yes, no = x
            return resolve(yes if conditions[cond] else no, refs, conditions)
        if k == "!Split":
            sep, what = x
            return [p for p in resolve(what, refs, conditions).split(sep) if p]
    if isinstance(v, dict):
        out = {k: resolve(x, refs, conditions) for k, x in v.items()}
        return {k: x for k, x in out.items() if x is not NOVALUE}
    return v


TEMPLATE = yaml.load((ROOT / "infra/template.yaml").read_text(), Loader=Loader)
MEMBER = yaml.load((ROOT / "infra/member-role.yaml").read_text(), Loader=Loader)


def stack_conditions(refs):
    c = {
        "HasOrg": refs.get("AllowedOrgId", "") != "",
        "HasAllowedAccounts": refs.get("AllowedAccounts", "") != "",
        "HasExternalId": refs.get("ExternalId", "") != "",
        "IsRoleRegion": refs.get("AWS::Region") == refs.get("RoleRegion"),
        "HasRegions": refs.get("Regions", "") != "",
        "HasChat": refs.get("ChatTopicArn", "") != "",
        "HasPagerDuty": refs.get("PagerDutyRoutingKeyParameter", "") != "",
    }
    return c


def role_policies(doc, role, refs):
    props = doc["Resources"][role]["Properties"]
    cond = stack_conditions(refs)
    pols = [{"name": p["PolicyName"], "policy": resolve(p["PolicyDocument"], refs, cond)}
            for p in props.get("Policies", [])]
    trust = resolve(props["AssumeRolePolicyDocument"], refs, cond)
    return pols, trust


def central_refs(bind):
    refs = {
        "AWS::Partition": "aws", "AWS::Region": HOME_REGION, "AWS::AccountId": HOME,
        "AWS::StackName": "first-responder",
        "KillSwitchParameter": "/first-responder/kill-switch",
        "ApprovalKeyParameter": "/first-responder/approval-key",
        "WebhookTokenParameter": "/first-responder/webhook-token",
        "NotifyTopic": f"arn:aws:sns:{HOME_REGION}:{HOME}:first-responder",
        "StateTableArn": f"arn:aws:dynamodb:{HOME_REGION}:{HOME}:table/first-responder-state",
        "VerifyQueueArn": f"arn:aws:sqs:{HOME_REGION}:{HOME}:first-responder-verify",
        "DeadLetterQueueArn": f"arn:aws:sqs:{HOME_REGION}:{HOME}:first-responder-dlq",
        "KeyArn": f"arn:aws:kms:{HOME_REGION}:{HOME}:key/00000000-0000-0000-0000-000000000000",
        **PARAMS,
    }
    refs.update(bind)
    return refs


def member_refs(account, external_id, params=None):
    refs = {
        "AWS::Partition": "aws", "AWS::Region": HOME_REGION, "AWS::AccountId": account,
        "RoleName": PARAMS["MemberRoleName"], "RoleRegion": HOME_REGION,
        "CentralRoleArn": RESPONDER_ROLE, "ExternalId": external_id or "",
        "CentralEventBusArn": f"arn:aws:events:{HOME_REGION}:{HOME}:event-bus/default",
        **PARAMS,
    }
    refs.update(params or {})
    return refs


# The ready-made policies for the command-line tool and the backtest, with
# their placeholders filled as a person deploying them would.
READY_MADE = {
    "first-responder-cli": "responder-policy.json",
    "first-responder-backtest": "backtest-policy.json",
}


def ready_made(app, bind):
    refs = central_refs(bind)
    fill = {
        "Region": HOME_REGION, "Account": HOME, "NotifyTopicArn": refs["NotifyTopic"],
        "StateTableArn": refs["StateTableArn"], "VerifyQueueArn": refs["VerifyQueueArn"],
        "DeadLetterQueueArn": refs["DeadLetterQueueArn"], "KeyArn": refs["KeyArn"],
        "OrgId": ORG[HOME], "AllowedAccount": PARAMS["AllowedAccounts"].split(",")[0],
        # The chat channel's topic, as a person deploying would name it.
        "ChatTopicArn": refs.get("ChatTopicArn") or f"arn:aws:sns:{HOME_REGION}:{HOME}:first-responder-chat",
    }
    text = (ROOT / "infra/iam" / READY_MADE[app]).read_text()
    text = re.sub(r"\$\{(\w+)\}", lambda m: fill[m.group(1)], text)
    return [{"name": READY_MADE[app], "policy": json.loads(text)}]


# ---------------------------------------------------------------- recordings

def entries(directory):
    for path in sorted(pathlib.Path(directory).glob("*.jsonl")):
        for n, line in enumerate(path.read_text().splitlines()):
            if not line.strip():
                continue
            e = json.loads(line)
            e["where"] = f"{path.name}:{n + 1}"
            e["body"] = base64.b64decode(e["body"])
            e["answer"] = base64.b64decode(e["answer"])
            yield path.name, e


def scope(e):
    """(access key, region, signing service) from the SigV4 credential scope."""
    m = re.search(r"Credential=([^/]+)/\d+/([^/]+)/([^/]+)/", e["headers"].get("authorization", ""))
    return m.groups() if m else (None, None, None)


def operation(e, service):
    target = e["headers"].get("x-amz-target")
    if target:
        return target.rsplit(".", 1)[-1], json.loads(e["body"] or b"{}")
    if service == "lambda":
        m = re.match(r"/2015-03-31/functions/([^/]+)/invocations", urllib.parse.unquote(e["path"]))
        return ("Invoke", {"FunctionName": m.group(1)}) if m else (None, {})
    form = urllib.parse.parse_qs(e["body"].decode(errors="replace") or e["query"], keep_blank_values=True)
    params = {k: v[0] for k, v in form.items()}
    return params.get("Action"), params


def strip_ns(root):
    for el in root.iter():
        if "}" in el.tag:
            el.tag = el.tag.split("}", 1)[1]
    return root


def xml(answer):
    try:
        return strip_ns(ET.fromstring(answer))
    except ET.ParseError:
        return None


def listed(params, prefix):
    """Query-protocol lists: Prefix.1, Prefix.2, ... (or Prefix.member.N)."""
    out = []
    for k, v in params.items():
        if re.fullmatch(re.escape(prefix) + r"(\.member)?\.\d+", k):
            out.append((int(k.rsplit(".", 1)[1]), v))
    return [v for _, v in sorted(out)]


class Tags:
    """Every resource's tags as the recording shows them, at each moment."""

    def __init__(self):
        self.by = {}

    def seen(self, key, tags):
        self.by.setdefault(key, {}).update(tags)

    def of(self, key):
        return dict(self.by.get(key, {}))

    def learn(self, account, region, op, params, answer):
        if op == "CreateTags" and "ResourceId.1" in params:
            tags = {}
            for k, v in params.items():
                m = re.fullmatch(r"Tag\.(\d+)\.Key", k)
                if m:
                    tags[v] = params.get(f"Tag.{m.group(1)}.Value", "")
            for rid in listed(params, "ResourceId"):
                self.seen((account, region, rid), tags)
        if op in ("CreateAutoScalingGroup", "CreateOrUpdateTags"):
            keys = {}
            for k, v in params.items():
                m = re.fullmatch(r"Tags\.member\.(\d+)\.(Key|Value|ResourceId)", k)
                if m:
                    keys.setdefault(m.group(1), {})[m.group(2)] = v
            for t in keys.values():
                name = t.get("ResourceId") or params.get("AutoScalingGroupName")
                if name and "Key" in t:
                    self.seen((account, region, name), {t["Key"]: t.get("Value", "")})
        root = xml(answer) if answer[:1] == b"<" else None
        if root is None:
            return
        for item in root.iter("item"):
            rid = None
            for child in item:
                if child.tag in ("instanceId", "volumeId") and child.text:
                    rid = child.text
            ts = item.find("tagSet")
            if rid and ts is not None:
                self.seen((account, region, rid),
                          {i.findtext("key"): i.findtext("value") or "" for i in ts.findall("item")})
        for g in root.iter("member"):
            name = g.findtext("AutoScalingGroupName")
            tags = g.find("Tags")
            if name and tags is not None and g.find("MinSize") is not None:
                self.seen((account, region, name),
                          {t.findtext("Key"): t.findtext("Value") or "" for t in tags.findall("member")})
            iid = g.findtext("InstanceId")
            group = g.findtext("AutoScalingGroupName")
            if iid and group:
                self.seen((account, region, iid), {"aws:autoscaling:groupName": group})


# ---------------------------------------------------------------- the table

def ec2(r, a, kind, rid):
    return f"arn:aws:ec2:{r}:{a}:{kind}/{rid}"


def tag_ctx(tags, prefix="aws:ResourceTag/"):
    return {f"{prefix}{k}": v for k, v in tags.items() if not k.startswith("aws:")}


def requests_for(op, service, p, account, region, tags):
    """[(action, resource ARN, resource account, context)] for one call;
    None for an operation the table does not know."""
    t = lambda rid: tags.of((account, region, rid))  # noqa: E731
    star = lambda action: [(action, "*", account, {})]  # noqa: E731
    reads = {
        "ec2": {"DescribeInstances", "DescribeVolumes", "DescribeSnapshots", "DescribeVolumesModifications",
                "DescribeInstanceStatus", "DescribeVpcs"},
        "autoscaling": {"DescribeAutoScalingInstances", "DescribeAutoScalingGroups"},
        "ssm": {"DescribeInstanceInformation", "GetCommandInvocation", "GetCalendarState"},
        "monitoring": {"GetMetricData", "ListMetrics"},
    }
    prefix = {"monitoring": "cloudwatch"}.get(service, service)
    if op in reads.get(service, set()):
        return star(f"{prefix}:{op}")
    if service == "ec2" and op in ("GetConsoleOutput", "RebootInstances", "StopInstances", "StartInstances"):
        ids = [p["InstanceId"]] if "InstanceId" in p else listed(p, "InstanceId")
        return [(f"ec2:{op}", ec2(region, account, "instance", i), account, tag_ctx(t(i))) for i in ids]
    if service == "ec2" and op == "ModifyVolume":
        v = p["VolumeId"]
        return [("ec2:ModifyVolume", ec2(region, account, "volume", v), account, tag_ctx(t(v)))]
    if service == "ec2" and op in ("CreateSnapshot", "CreateSnapshots"):
        req_tags = {}
        for k, v in p.items():
            m = re.fullmatch(r"TagSpecification\.\d+\.Tag\.(\d+)\.Key", k)
            if m:
                req_tags[v] = p.get(k[:-3] + "Value", "")
        rtag = {f"aws:RequestTag/{k}": v for k, v in req_tags.items()}
        rtag["aws:TagKeys"] = sorted(req_tags)
        snap = f"arn:aws:ec2:{region}::snapshot/*"
        out = [(f"ec2:{op}", snap, account, rtag),
               ("ec2:CreateTags", snap, account, {**rtag, "ec2:CreateAction": op})]
        if op == "CreateSnapshot":
            v = p["VolumeId"]
            out.insert(0, ("ec2:CreateSnapshot", ec2(region, account, "volume", v), account, tag_ctx(t(v))))
        else:
            i = p["InstanceSpecification.InstanceId"]
            out.insert(0, ("ec2:CreateSnapshots", ec2(region, account, "instance", i), account, tag_ctx(t(i))))
            out.insert(1, ("ec2:CreateSnapshots", ec2(region, account, "volume", "vol-*"), account, {}))
        return out
    if service == "autoscaling" and op in ("SetDesiredCapacity", "SetInstanceHealth",
                                           "TerminateInstanceInAutoScalingGroup"):
        group = p.get("AutoScalingGroupName") or t(p.get("InstanceId", "")).get("aws:autoscaling:groupName")
        if not group:
            return [(f"autoscaling:{op}", "(no group known for the instance)", account, {})]
        arn = f"arn:aws:autoscaling:{region}:{account}:autoScalingGroup:{ASG_UUID}:autoScalingGroupName/{group}"
        ctx = tag_ctx(t(group))
        ctx.update(tag_ctx(t(group), "autoscaling:ResourceTag/"))
        return [(f"autoscaling:{op}", arn, account, ctx)]
    if service == "ssm" and op == "SendCommand":
        # An AWS-owned document's ARN has no account (AWS sends
        # arn:aws:ssm:REGION::document/AWS-RunShellScript); the evaluator
        # cannot take an empty account, so the caller's stands in for it,
        # which the statement's `*` account covers as it covers AWS's.
        out = [("ssm:SendCommand", f"arn:aws:ssm:{region}:{account}:document/{p['DocumentName']}", account, {})]
        for i in p.get("InstanceIds", []):
            ctx = tag_ctx(t(i))
            ctx.update(tag_ctx(t(i), "ssm:resourceTag/"))
            out.append(("ssm:SendCommand", ec2(region, account, "instance", i), account, ctx))
        return out
    if service == "ssm" and op == "GetParameter":
        name = p["Name"] if p["Name"].startswith("/") else "/" + p["Name"]
        return [("ssm:GetParameter", f"arn:aws:ssm:{region}:{account}:parameter{name}", account, {})]
    if service == "monitoring" and op == "DescribeAlarms":
        names = p.get("AlarmNames") or ["*"]
        return [("cloudwatch:DescribeAlarms", f"arn:aws:cloudwatch:{region}:{account}:alarm:{n}", account, {})
                for n in names]
    if service == "sns" and op == "Publish":
        arn = p["TopicArn"]
        return [("sns:Publish", arn, arn.split(":")[4], {})]
    if service == "sqs" and op in ("SendMessage", "ReceiveMessage", "DeleteMessage", "GetQueueAttributes"):
        url = p.get("QueueUrl", "")
        owner, name = url.rstrip("/").split("/")[-2:]
        return [(f"sqs:{op}", f"arn:aws:sqs:{region}:{owner}:{name}", owner, {})]
    if service == "dynamodb" and op in ("GetItem", "PutItem", "UpdateItem", "DeleteItem", "Query", "Scan"):
        return [(f"dynamodb:{op}", f"arn:aws:dynamodb:{region}:{account}:table/{p['TableName']}", account, {})]
    if service == "sts" and op == "AssumeRole":
        role = p["RoleArn"]
        owner = role.split(":")[4]
        ctx = {"aws:ResourceAccount": owner}
        if owner in ORG:
            ctx["aws:ResourceOrgID"] = ORG[owner]
        if p.get("ExternalId"):
            ctx["sts:ExternalId"] = p["ExternalId"]
        return [("sts:AssumeRole", role, owner, ctx)]
    if service == "sts" and op == "GetCallerIdentity":
        return []  # needs no permission
    if service == "lambda" and op == "Invoke":
        fn = p["FunctionName"]
        arn = fn if fn.startswith("arn:") else f"arn:aws:lambda:{region}:{account}:function:{fn}"
        return [("lambda:InvokeFunction", arn, arn.split(":")[4], {})]
    return None


# ---------------------------------------------------------------- principals

def binding(action, resource):
    """The deployment's own resources as the suites name them: the topic,
    table, queue, parameter and function a call reaches play the template's
    (same account and region as the deployment; only the name is the test's)."""
    name = resource.rsplit("/", 1)[-1].rsplit(":", 1)[-1]
    b = {}
    if action == "sns:Publish":
        # The notification topic or the chat channel's: each publish is
        # evaluated with the topic it reached as both.
        b["NotifyTopic"] = b["ChatTopicArn"] = f"arn:aws:sns:{HOME_REGION}:{HOME}:{name}"
    elif action.startswith("dynamodb:"):
        b["StateTableArn"] = f"arn:aws:dynamodb:{HOME_REGION}:{HOME}:table/{name}"
    elif action.startswith("sqs:"):
        b["VerifyQueueArn"] = f"arn:aws:sqs:{HOME_REGION}:{HOME}:{name}"
    elif action == "ssm:GetParameter" and ":parameter" in resource:
        param = resource.split(":parameter", 1)[1]
        b["KillSwitchParameter"] = b["ApprovalKeyParameter"] = b["WebhookTokenParameter"] = param
        b["PagerDutyRoutingKeyParameter"] = param
    elif action == "lambda:InvokeFunction":
        b["AWS::StackName"] = name[: -len("-responder")] if name.endswith("-responder") else name
    return b


# What AWS refuses and moto accepts, for the parameters the product sends:
# moto ignores DescribeSnapshots' OwnerIds, so a wrong owner found everything
# there and nothing in AWS.
OWNERS = re.compile(r"^(self|amazon|aws-marketplace|aws-backup-vault|\d{12})$")


def refused_by_aws(op, params):
    """Why AWS would refuse or misread this request, or None."""
    if op in ("DescribeSnapshots", "DescribeImages"):
        bad = [v for k, v in params.items() if re.match(r"^Owner(Id)?\.\d+$", k) and not OWNERS.match(v)]
        if bad:
            return f"owner {bad} is not self, amazon, aws-marketplace, aws-backup-vault or an account id"
    return None


def main():
    out = []
    problems = []
    tags = Tags()
    accounts = {}  # access key -> (account, role ARN, session)
    product = 0
    for _, e in entries(sys.argv[1]):
        key, region, service = scope(e)
        if service is None:
            continue
        op, params = operation(e, service)
        if op is None:
            continue
        account = accounts.get(key, (HOME, None, None))[0]
        tags.learn(account, region, op, params, e["answer"])
        if op == "AssumeRole" and e["status"].startswith("200"):
            root = xml(e["answer"])
            ak = root.findtext(".//AccessKeyId") if root is not None else None
            if ak:
                accounts[ak] = (params["RoleArn"].split(":")[4], params["RoleArn"], params.get("RoleSessionName"))
        ua = e["headers"].get("x-amz-user-agent", "") + " " + e["headers"].get("user-agent", "")
        app = re.search(r"app/(first-responder(?:-webhook|-cli|-backtest)?)\b", ua)
        if not app:
            continue
        product += 1
        refused = refused_by_aws(op, params)
        if refused:
            problems.append(f"{e['where']}: {service} {op}: {refused}")
        mapped = requests_for(op, service, params, account, region, tags)
        if mapped is None:
            problems.append(f"{e['where']}: {service} {op}: the product called it and tests/iam/calls.py "
                            f"does not know its IAM action and resources")
            continue
        assumed = accounts.get(key)
        for action, resource, owner, ctx in mapped:
            ctx = {**ctx, "aws:RequestedRegion": region}
            if assumed:
                role_account, role_arn, session = assumed
                refs = member_refs(role_account, params.get("ExternalId"))
                policies, _ = role_policies(MEMBER, "MemberRole", refs)
                principal = f"arn:aws:iam::{role_account}:role/{PARAMS['MemberRoleName']}"
                who = f"member role in {role_account}"
            elif app.group(1) in READY_MADE:
                policies = ready_made(app.group(1), binding(action, resource))
                principal = f"arn:aws:iam::{HOME}:role/{app.group(1)}"
                who = f"ready-made policy infra/iam/{READY_MADE[app.group(1)]}"
            elif app.group(1) == "first-responder-webhook":
                policies, _ = role_policies(TEMPLATE, "WebhookRole", central_refs(binding(action, resource)))
                principal, who = WEBHOOK_ROLE, "webhook role"
            else:
                policies, _ = role_policies(TEMPLATE, "ResponderRole", central_refs(binding(action, resource)))
                principal, who = RESPONDER_ROLE, "responder role"
            sim = {
                "where": e["where"], "who": who, "call": f"{service}:{op} in {account} {region}",
                "request": {"principal": principal, "action": action,
                            "resource": {"resource": resource, "accountId": owner},
                            "contextVariables": ctx},
                "identityPolicies": policies,
                "expect": "Allowed",
            }
            if action == "sts:AssumeRole":
                _, trust = role_policies(MEMBER, "MemberRole", member_refs(owner, params.get("ExternalId")))
                sim["resourcePolicy"] = trust
                # A deployment with ALLOWED_ORG_ID alone: IAM lets the role
                # be assumed in the organization's accounts and no other.
                org_only = central_refs({"AllowedOrgId": ORG[HOME], "AllowedAccounts": ""})
                pols, _ = role_policies(TEMPLATE, "ResponderRole", org_only)
                out.append({**sim, "identityPolicies": pols,
                            "expect": "Allowed" if owner in ORG else "Denied",
                            "why": f"with AllowedOrgId {ORG[HOME]} alone ({owner} is "
                                   f"{'in' if owner in ORG else 'outside'} it)"})
            out.append(sim)
            # A member role whose stack lists only its own region is refused
            # in another by IAM: kept as a test of the evaluator (this is
            # what every member role did before Regions).
            if assumed and region != HOME_REGION:
                narrow = member_refs(assumed[0], params.get("ExternalId"), {"Regions": ""})
                pols, _ = role_policies(MEMBER, "MemberRole", narrow)
                out.append({**sim, "identityPolicies": pols, "expect": "Denied",
                            "why": "with a member role that lists only its own region"})
            # The opt-in case: the same request on a resource without the
            # tag must be refused by IAM, not only by the code.
            if any(k.endswith("/first-responder") for k in ctx if "ResourceTag" in k or "resourceTag" in k):
                bare = {k: v for k, v in ctx.items() if not k.lower().endswith("tag/first-responder")}
                out.append({**sim, "request": {**sim["request"], "contextVariables": bare},
                            "expect": "Denied", "why": "without the opt-in tag"})
    json.dump({"product_calls": product, "simulations": out, "problems": problems}, sys.stdout)


if __name__ == "__main__":
    main()
