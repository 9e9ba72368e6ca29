#!/usr/bin/env python3
"""The IAM policies of infra/template.yaml as plain JSON, for deploying with
`cargo lambda deploy` (attach them to the roles you pass with --iam-role).
`--check` fails if the committed files no longer match the template."""
import json
import pathlib
import sys

import yaml  # installed with cfn-lint

HERE = pathlib.Path(__file__).resolve().parent
TEMPLATE = HERE.parent / "template.yaml"


class Loader(yaml.SafeLoader):
    pass


def tagged(loader, suffix, node):
    if isinstance(node, yaml.ScalarNode):
        return {"!" + suffix: loader.construct_scalar(node)}
    if isinstance(node, yaml.SequenceNode):
        return {"!" + suffix: loader.construct_sequence(node, deep=True)}
    return {"!" + suffix: loader.construct_mapping(node, deep=True)}


Loader.add_multi_constructor("!", tagged)

REFS = {
    "AWS::AccountId": "${Account}",
    "OptInTagValue": "enabled",
    "NotifyTopic": "${NotifyTopicArn}",
    "KillSwitchParameter": "/first-responder/kill-switch",
    "ApprovalKeyParameter": "/first-responder/approval-key",
    "MemberRoleName": "first-responder-member",
    "AllowedOrgId": "${OrgId}",
    "AllowedAccounts": "${AllowedAccount}",
}


def flat(v):
    if isinstance(v, list):
        # A statement under a condition (`!If [Cond, statement, NoValue]`)
        # is kept, with the parameter it depends on left to fill in.
        return [flat(x["!If"][1]) if isinstance(x, dict) and "!If" in x else flat(x)
                for x in v]
    if isinstance(v, dict) and len(v) == 1:
        (k, x), = v.items()
        if k == "!Split":
            return [flat(x[1])]
        if k == "!If":
            # A value under a condition (the Regions list): its default,
            # with the parameter it depends on left to fill in.
            return flat(x[2])
        if k == "!Sub":
            return x if isinstance(x, str) else x[0]
        if k == "!Ref":
            return REFS.get(x, "${" + x + "}")
        if k == "!GetAtt":
            return "${" + x.replace(".", "") + "}"
    if isinstance(v, dict):
        return {k: flat(x) for k, x in v.items()}
    if isinstance(v, list):
        return [flat(x) for x in v]
    return v


# The command-line tool uses the responder's policy (it runs the same code
# path) and, for `first-responder trust`, scans the track record; the
# functions never scan, so the template does not grant it.
CLI_EXTRA = {
    "ResponderRole": [{
        "Sid": "TrackRecordForTheCommandLine",
        "Effect": "Allow",
        "Action": "dynamodb:Scan",
        "Resource": "${StateTableArn}",
    }],
}


def render(role):
    t = yaml.load(TEMPLATE.read_text(), Loader=Loader)
    doc = flat(t["Resources"][role]["Properties"]["Policies"][0]["PolicyDocument"])
    doc["Statement"] += CLI_EXTRA.get(role, [])
    s = json.dumps(doc, indent=2) + "\n"
    for a, b in [
        ("${AWS::Partition}", "aws"),
        ("${AWS::Region}", "${Region}"),
        ("${AWS::AccountId}", "${Account}"),
        ("${KillSwitchParameter}", "/first-responder/kill-switch"),
        ("${WebhookTokenParameter}", "/first-responder/webhook-token"),
        ("${ApprovalKeyParameter}", "/first-responder/approval-key"),
        ("${PagerDutyRoutingKeyParameter}", "/first-responder/pagerduty-routing-key"),
        ("${MemberRoleName}", "first-responder-member"),
        # `cargo lambda deploy` names the function itself: responder.
        ("${AWS::StackName}-responder", "responder"),
    ]:
        s = s.replace(a, b)
    return s


MEMBER = HERE.parent / "member-role.yaml"
BEGIN, END = "# BEGIN fleet statements", "# END fleet statements"


def between(text, name):
    """The lines strictly between the markers (the BEGIN line may go on)."""
    lines = text.split("\n")
    try:
        start = next(i for i, l in enumerate(lines) if l.strip().startswith(BEGIN))
        end = next(i for i, l in enumerate(lines) if l.strip() == END)
    except StopIteration:
        sys.exit(f"infra/iam: {name} has no {BEGIN!r} ... {END!r} markers")
    return lines, start, end


def member_role():
    """infra/member-role.yaml with the template's fleet statements copied in."""
    tl, ts, te = between(TEMPLATE.read_text(), "infra/template.yaml")
    ml, ms, me = between(MEMBER.read_text(), "infra/member-role.yaml")
    return "\n".join(ml[: ms + 1] + tl[ts + 1 : te] + ml[me:])


def main():
    check = "--check" in sys.argv
    stale = []
    member = member_role()
    if check:
        if MEMBER.read_text() != member:
            stale.append("../member-role.yaml")
    else:
        MEMBER.write_text(member)
    for role, name in [("ResponderRole", "responder"), ("WebhookRole", "webhook")]:
        path = HERE / f"{name}-policy.json"
        text = render(role)
        if check:
            if not path.exists() or path.read_text() != text:
                stale.append(path.name)
        else:
            path.write_text(text)
    if stale:
        sys.exit(f"infra/iam: {', '.join(stale)} differ from the template; run python3 infra/iam/generate.py")
    if check:
        print("infra/iam: policies match the template")


if __name__ == "__main__":
    main()
