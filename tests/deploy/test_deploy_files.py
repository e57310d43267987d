"""The deployment files, checked by parsing (no container engine here): the probes point at
routes the service has, and the settings they set are ones it reads."""

from __future__ import annotations

import configparser
import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"


def test_kubernetes_probes_point_at_liveness_and_readiness(client):
    documents = list(yaml.safe_load_all((DEPLOY / "k8s" / "deployment.yaml").read_text()))
    deployment = next(d for d in documents if d and d.get("kind") == "Deployment")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["livenessProbe"]["httpGet"]["path"] == "/livez"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    for path in ("/livez", "/readyz"):
        assert client.get(path, headers={"Authorization": ""}).status_code == 200  # no key needed


def test_compose_parses_and_every_ledger_setting_it_sets_is_documented():
    compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    documented = (DEPLOY / "README.md").read_text()
    for name, service in compose["services"].items():
        environment = service.get("environment") or {}
        names = environment if isinstance(environment, dict) else [e.split("=")[0] for e in environment]
        for variable in names:
            if variable.startswith("LEDGER_"):
                assert f"| {variable} |" in documented or variable in documented, (name, variable)


def test_the_image_holds_every_package_the_project_installs():
    setup = configparser.ConfigParser()
    setup.read(ROOT / "setup.cfg")
    packages = {p.strip().rstrip("*") for p in setup["options.packages.find"]["include"].split() if p}
    copied = set(re.findall(r"^COPY (\w+)/ \1/$", (ROOT / "deploy" / "Dockerfile").read_text(), re.M))
    sent = set(re.findall(r"^!(\w+)/$", (ROOT / "deploy" / "Dockerfile.dockerignore").read_text(), re.M))
    assert copied == sent == packages


def test_every_cronjob_runs_a_command_the_cli_has():
    from entrypoints.cli import main

    jobs = sorted((DEPLOY / "k8s").glob("cronjob-*.yaml"))
    assert {j.stem for j in jobs} >= {"cronjob-expire-reservations", "cronjob-close-cycles",
                                      "cronjob-renew-subscriptions"}
    for job in jobs:
        spec = yaml.safe_load(job.read_text())["spec"]
        [container] = spec["jobTemplate"]["spec"]["template"]["spec"]["containers"]
        program, command = container["args"][:2]
        assert program == "ledger" and command in main.commands, (job.name, container["args"])
        assert spec["concurrencyPolicy"] == "Forbid", job.name
