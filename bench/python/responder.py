"""BASELINE FOR BENCHMARKS ONLY, not part of first-responder.

A Python port of the runbook's `IncidentResponder` (chapter 14.4), written
from its description: boto3 clients created at init, the playbooks' steps
called one after another, as the runbook does. Methods the runbook names but
does not define (create_snapshot, get_auto_scaling_group, cleanup_temp_files,
archive_old_logs, expand_ebs_volume, notify_team) are written the plain way.
Run under the AWS Lambda Python runtime interface client (awslambdaric), it
is the "(c)" of the cold-start benchmark and the Python side of time to
mitigate.
"""

import json
import os

import boto3


class IncidentResponder:
    def __init__(self):
        self.ec2 = boto3.client("ec2")
        self.sns = boto3.client("sns")
        self.ssm = boto3.client("ssm")
        self.autoscaling = boto3.client("autoscaling")
        self.topic = os.environ.get("NOTIFY_TOPIC_ARN", "")

    def respond_to_high_cpu(self, instance_id, cpu_usage):
        self.create_snapshot(instance_id)
        process_info = self.collect_process_info(instance_id)
        if cpu_usage > 90:
            self.scale_horizontally(instance_id)
        self.notify_team(
            f"High CPU Alert: {instance_id}",
            f"CPU: {cpu_usage}%\nTop processes:\n{process_info}",
        )

    def respond_to_disk_full(self, instance_id, disk_usage):
        self.cleanup_temp_files(instance_id)
        self.archive_old_logs(instance_id)
        if disk_usage > 95:
            self.expand_ebs_volume(instance_id)
        self.notify_team(f"Disk Full Alert: {instance_id}", f"Disk: {disk_usage}%")

    def create_snapshot(self, instance_id):
        volumes = self.ec2.describe_volumes(
            Filters=[{"Name": "attachment.instance-id", "Values": [instance_id]}]
        )["Volumes"]
        for v in volumes:
            self.ec2.create_snapshot(
                VolumeId=v["VolumeId"], Description=f"Incident evidence for {instance_id}"
            )

    def collect_process_info(self, instance_id):
        response = self.ssm.send_command(
            InstanceIds=[instance_id],
            DocumentName="AWS-RunShellScript",
            Parameters={"commands": ["ps aux --sort=-%cpu | head -10", "free -m", "df -h"]},
        )
        command_id = response["Command"]["CommandId"]
        output = self.ssm.get_command_invocation(CommandId=command_id, InstanceId=instance_id)
        return output["StandardOutputContent"]

    def get_auto_scaling_group(self, instance_id):
        found = self.autoscaling.describe_auto_scaling_instances(InstanceIds=[instance_id])
        if not found["AutoScalingInstances"]:
            return None
        name = found["AutoScalingInstances"][0]["AutoScalingGroupName"]
        return self.autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[name])[
            "AutoScalingGroups"
        ][0]

    def scale_horizontally(self, instance_id):
        asg = self.get_auto_scaling_group(instance_id)
        if asg:
            current_capacity = asg["DesiredCapacity"]
            new_capacity = min(current_capacity + 1, asg["MaxSize"])
            self.autoscaling.set_desired_capacity(
                AutoScalingGroupName=asg["AutoScalingGroupName"], DesiredCapacity=new_capacity
            )

    def cleanup_temp_files(self, instance_id):
        self.ssm.send_command(
            InstanceIds=[instance_id],
            DocumentName="AWS-RunShellScript",
            Parameters={"commands": ["find /tmp -type f -mtime +7 -delete"]},
        )

    def archive_old_logs(self, instance_id):
        self.ssm.send_command(
            InstanceIds=[instance_id],
            DocumentName="AWS-RunShellScript",
            Parameters={"commands": ["find /var/log -name '*.log.*' -mtime +7 -exec gzip {} \\;"]},
        )

    def expand_ebs_volume(self, instance_id):
        volumes = self.ec2.describe_volumes(
            Filters=[{"Name": "attachment.instance-id", "Values": [instance_id]}]
        )["Volumes"]
        # The data volume (the largest), grown by 20%.
        v = max(volumes, key=lambda v: v["Size"])
        self.ec2.modify_volume(VolumeId=v["VolumeId"], Size=int(v["Size"] * 1.2) + 1)

    def notify_team(self, subject, message):
        self.sns.publish(TopicArn=self.topic, Subject=subject, Message=message)


responder = IncidentResponder()


def handler(event, context):
    detail = event.get("detail", {})
    if detail.get("state", {}).get("value") != "ALARM":
        return {"handled": False}
    metric = detail["configuration"]["metrics"][0]["metricStat"]["metric"]
    instance_id = metric["dimensions"]["InstanceId"]
    value = json.loads(detail["state"]["reasonData"])["recentDatapoints"][-1]
    if metric["name"] == "CPUUtilization":
        responder.respond_to_high_cpu(instance_id, value)
    elif metric["name"] == "disk_used_percent":
        responder.respond_to_disk_full(instance_id, value)
    return {"handled": True}
