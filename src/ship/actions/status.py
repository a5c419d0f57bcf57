"""What runs where, read through the AWS APIs (the same calls locally and on AWS)."""

from __future__ import annotations

import json

from ship.aws import Session
from ship.config import Environment
from ship.domain import family_revision
from ship.queries import current_service, service_url, target_of, task_definition


def collect(env: Environment, session: Session | None = None) -> dict:
    session = session or Session(env)
    target = target_of(env)
    svc = current_service(session, target)
    td = task_definition(session, svc.task_definition)
    arns = session.ecs.list_tasks(target.cluster, target.service)
    tasks = []
    for t in session.ecs.describe_tasks(target.cluster, arns):
        address = None
        for att in t.get("attachments", []):
            for d in att.get("details", []):
                if d.get("name") == "privateIPv4Address":
                    address = d.get("value")
        tasks.append({
            "id": t["taskArn"].rsplit("/", 1)[-1],
            "task_definition": family_revision(t.get("taskDefinitionArn", "")),
            "last_status": t.get("lastStatus"),
            "desired_status": t.get("desiredStatus"),
            "health": t.get("healthStatus", "UNKNOWN"),
            "address": address,
            "started_at": str(t.get("startedAt", "") or ""),
        })
    targets = []
    for tg in svc.target_group_arns:
        for h in session.elbv2.target_health(tg):
            targets.append({
                "id": h["Target"]["Id"], "port": h["Target"].get("Port"),
                "health": h["TargetHealth"]["State"], "reason": h["TargetHealth"].get("Reason"),
                "description": h["TargetHealth"].get("Description"),
            })
    return {
        "environment": env.name,
        "cluster": target.cluster,
        "service": target.service,
        "status": svc.raw.get("status"),
        "url": service_url(env, session, svc.target_group_arns),
        "task_definition": td.label,
        "image": td.image(svc.container_name),
        "desired": svc.desired,
        "running": svc.running,
        "pending": svc.pending,
        "deployments": [{
            "id": d.id, "status": d.status, "task_definition": family_revision(d.task_definition),
            "rollout_state": d.rollout_state, "reason": d.reason,
            "desired": d.counts[0], "running": d.counts[1], "pending": d.counts[2], "failed": d.counts[3],
        } for d in svc.deployments],
        "tasks": tasks,
        "targets": targets,
        "events": [e.get("message") for e in svc.raw.get("events", [])[:5]],
    }


def _table(headers: list[str], rows: list[list]) -> str:
    cells = [headers] + [["" if v is None else str(v) for v in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def render(info: dict, as_json: bool = False) -> str:
    if as_json:
        return json.dumps(info, indent=2, default=str)
    out = [
        f"environment  {info['environment']}",
        f"service      {info['service']} ({info['status']}) in cluster {info['cluster']}",
        f"url          {info['url'] or '-'}",
        f"revision     {info['task_definition']}  image {info['image']}",
        f"tasks        {info['running']} running / {info['desired']} desired / {info['pending']} pending",
        "",
        _table(["DEPLOYMENT", "STATUS", "REVISION", "ROLLOUT", "RUNNING", "PENDING", "FAILED"],
               [[d["id"], d["status"], d["task_definition"], d["rollout_state"], d["running"], d["pending"],
                 d["failed"]] for d in info["deployments"]]),
        "",
        _table(["TASK", "REVISION", "LAST STATUS", "HEALTH", "ADDRESS"],
               [[t["id"], t["task_definition"], t["last_status"], t["health"], t["address"]] for t in info["tasks"]]),
        "",
        _table(["TARGET", "HEALTH", "REASON"],
               [[f"{t['id']}:{t['port']}", t["health"], t["reason"]] for t in info["targets"]]),
    ]
    if info.get("events"):
        out += ["", "recent events:"] + [f"  {e}" for e in info["events"]]
    return "\n".join(out)
