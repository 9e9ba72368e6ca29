"""The AMP alert manager definition, checked and made runnable locally.

    check.py                      the embedded template is first_responder.tmpl, the
                                  config passes `amtool check-config`, and the template
                                  renders Alertmanager's example data as JSON
    check.py --local DIR --topic-arn ARN --api-url URL
                                  writes DIR/alertmanager.yml (the definition's config,
                                  its SNS receiver pointed at URL with static test keys)
                                  and DIR/first_responder.tmpl, for the real Alertmanager
                                  in the tests: the same text AMP would run
"""
import argparse
import json
import pathlib
import subprocess
import sys
import tempfile

import yaml

HERE = pathlib.Path(__file__).resolve().parent
TEMPLATE = "first_responder.tmpl"


def definition():
    d = yaml.safe_load((HERE / "alertmanager-definition.yaml").read_text())
    if d["template_files"][TEMPLATE] != (HERE / TEMPLATE).read_text():
        sys.exit(f"alertmanager-definition.yaml embeds a {TEMPLATE} that differs from {TEMPLATE}")
    return d


def write(out, config):
    out.mkdir(parents=True, exist_ok=True)
    (out / TEMPLATE).write_text((HERE / TEMPLATE).read_text())
    # Templates are found next to the config, as AMP finds template_files by name.
    config = dict(config, templates=[str(out / TEMPLATE)])
    (out / "alertmanager.yml").write_text(yaml.safe_dump(config, sort_keys=False))
    return out / "alertmanager.yml"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--local")
    ap.add_argument("--topic-arn")
    ap.add_argument("--api-url")
    args = ap.parse_args()
    d = definition()
    config = yaml.safe_load(d["alertmanager_config"])
    if args.local:
        for r in config["receivers"]:
            for sns in r.get("sns_configs", []):
                sns["topic_arn"] = args.topic_arn
                sns["api_url"] = args.api_url
                sns["sigv4"] = dict(sns.get("sigv4", {}), access_key="test", secret_key="test")
        # Deliver at once (the definition's waits are for production).
        config["route"].update(group_wait="1s", group_interval="2s")
        print(write(pathlib.Path(args.local), config))
        return
    with tempfile.TemporaryDirectory() as tmp:
        path = write(pathlib.Path(tmp), config)
        subprocess.run(["amtool", "check-config", str(path)], check=True)
        out = subprocess.run(
            ["amtool", "template", "render", f"--template.glob={pathlib.Path(tmp) / TEMPLATE}",
             '--template.text={{ template "first_responder.webhook" . }}'],
            check=True, capture_output=True, text=True).stdout
        body = json.loads(out)
        assert body["version"] == "4" and len(body["alerts"]) == 2, body
        print(f"{TEMPLATE} renders Alertmanager's example data as a webhook body of "
              f"{len(body['alerts'])} alerts")


if __name__ == "__main__":
    main()
