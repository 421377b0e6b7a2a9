"""deploy/kubernetes/: every manifest valid against the Kubernetes JSON schemas that
kubernetes-validate ships (strict: unknown fields are errors), the OpenShift Route against the
fields of route.openshift.io/v1 written out below, and what the manifests must say for fmn."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from tests.deploy.commands import parse_fmn
from tests.deploy.conftest import DEPLOY
from tests.deploy.settings_env import setting_exists

K8S = DEPLOY / "kubernetes"
# The oldest Kubernetes still supported by OpenShift 4.14 and the newest the schemas know.
VERSIONS = ("1.27", kubernetes_validate.utils.latest_version())
NOT_RESOURCES = {"kustomization.yaml"}

# route.openshift.io/v1 Route (github.com/openshift/api route/v1/types.go), the fields used.
ROUTE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "additionalProperties": False,
    "properties": {
        "apiVersion": {"const": "route.openshift.io/v1"},
        "kind": {"const": "Route"},
        "metadata": {"type": "object", "required": ["name"]},
        "spec": {
            "type": "object",
            "required": ["to"],
            "additionalProperties": False,
            "properties": {
                "host": {"type": "string"},
                "path": {"type": "string"},
                "to": {
                    "type": "object",
                    "required": ["kind", "name"],
                    "additionalProperties": False,
                    "properties": {
                        "kind": {"const": "Service"},
                        "name": {"type": "string"},
                        "weight": {"type": "integer", "minimum": 0, "maximum": 256},
                    },
                },
                "port": {
                    "type": "object",
                    "required": ["targetPort"],
                    "additionalProperties": False,
                    "properties": {"targetPort": {"type": ["string", "integer"]}},
                },
                "tls": {
                    "type": "object",
                    "required": ["termination"],
                    "additionalProperties": False,
                    "properties": {
                        "termination": {"enum": ["edge", "passthrough", "reencrypt"]},
                        "insecureEdgeTerminationPolicy": {"enum": ["Allow", "None", "Redirect"]},
                        "certificate": {"type": "string"},
                        "key": {"type": "string"},
                        "caCertificate": {"type": "string"},
                        "destinationCACertificate": {"type": "string"},
                    },
                },
                "wildcardPolicy": {"enum": ["None", "Subdomain"]},
            },
        },
    },
}


def documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def manifests() -> list[tuple[str, dict[str, Any]]]:
    return [
        (f"{path.name}:{doc['kind']}/{doc['metadata']['name']}", doc)
        for path in sorted(K8S.glob("*.yaml"))
        if path.name not in NOT_RESOURCES
        for doc in documents(path)
    ]


def by_kind(kind: str) -> dict[str, dict[str, Any]]:
    return {doc["metadata"]["name"]: doc for _, doc in manifests() if doc["kind"] == kind}


def containers() -> list[tuple[str, dict[str, Any]]]:
    found = []
    for kind in ("Deployment", "Job"):
        for name, doc in by_kind(kind).items():
            for container in doc["spec"]["template"]["spec"]["containers"]:
                found.append((name, container))
    return found


def validate(doc: dict[str, Any], version: str) -> None:
    if doc["kind"] == "Route":
        jsonschema.validate(doc, ROUTE_SCHEMA)
    else:
        kubernetes_validate.validate(doc, version, strict=True)


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize(("name", "doc"), manifests(), ids=[n for n, _ in manifests()])
def test_manifest_is_valid(name: str, doc: dict[str, Any], version: str) -> None:
    validate(doc, version)


def test_the_validation_is_strict() -> None:
    deployment = by_kind("Deployment")["fmn-consumer"]
    deployment["spec"]["replica"] = 2
    with pytest.raises(kubernetes_validate.ValidationError):
        validate(deployment, VERSIONS[-1])
    route = by_kind("Route")["fmn"]
    route["spec"]["tls"]["termination"] = "Edge"
    with pytest.raises(jsonschema.ValidationError):
        validate(route, VERSIONS[-1])


def test_kustomization_lists_the_resources() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    listed = set(kustomization["resources"])
    for resource in listed:
        assert (K8S / resource).is_file(), resource
    # Examples and alternatives are left out on purpose; everything else is deployed.
    optional = {"secret.example.yaml", "route.yaml"}
    assert listed == {p.name for p in K8S.glob("*.yaml")} - NOT_RESOURCES - optional
    images = {image["name"] for image in kustomization["images"]}
    assert {container["image"] for _, container in containers()} <= images


@pytest.mark.parametrize(("name", "container"), containers(), ids=[n for n, _ in containers()])
def test_containers_run_fmn_with_real_settings(name: str, container: dict[str, Any]) -> None:
    parse_fmn(container["args"])
    secret = by_kind("Secret")["fmn-secrets"]
    for variable in container.get("env", ()):
        assert setting_exists(variable["name"]), variable["name"]
        ref = variable.get("valueFrom", {}).get("secretKeyRef")
        if ref is not None:
            assert ref["name"] == "fmn-secrets"
            assert ref["key"] in secret["stringData"], ref["key"]
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    assert mounts["/etc/fmn"] == "config"
    assert container["securityContext"]["readOnlyRootFilesystem"] is True


def test_every_process_that_checks_the_signing_key_gets_it() -> None:
    """`fmn api`, `fmn consumer` and `fmn sender` refuse to start without api.secret_keys."""
    for name, container in containers():
        if container["args"][0] in ("api", "consumer", "sender"):
            secrets = {
                v["name"]: v["valueFrom"]["secretKeyRef"]["key"]
                for v in container.get("env", ())
                if "valueFrom" in v
            }
            assert secrets.get("FMN_API__SECRET_KEY") == "api-secret-key", name


def test_processes() -> None:
    deployments = by_kind("Deployment")
    commands = {
        name: d["spec"]["template"]["spec"]["containers"][0]["args"]
        for name, d in deployments.items()
    }
    assert commands == {
        "fmn-api": ["api"],
        "fmn-consumer": ["consumer"],
        "fmn-sender-email": ["sender", "email"],
        "fmn-sender-irc": ["sender", "irc"],
        "fmn-sender-matrix": ["sender", "matrix"],
        "fmn-sender-web": ["sender", "web"],
    }
    job = by_kind("Job")["fmn-db-upgrade"]
    assert job["spec"]["template"]["spec"]["containers"][0]["args"] == ["db", "upgrade"]


def test_scaling() -> None:
    deployments = by_kind("Deployment")
    # The consumer scales out, by hand or by the autoscaler.
    assert deployments["fmn-consumer"]["spec"]["replicas"] >= 2
    autoscaler = by_kind("HorizontalPodAutoscaler")["fmn-consumer"]
    assert autoscaler["spec"]["scaleTargetRef"]["name"] == "fmn-consumer"
    assert autoscaler["spec"]["minReplicas"] >= 2
    assert deployments["fmn-sender-email"]["spec"]["replicas"] > 1
    assert deployments["fmn-sender-web"]["spec"]["replicas"] > 1
    # One IRC and one Matrix sender, never two at once (Recreate: the old pod stops first).
    for name in ("fmn-sender-irc", "fmn-sender-matrix"):
        assert deployments[name]["spec"]["replicas"] == 1
        assert deployments[name]["spec"]["strategy"]["type"] == "Recreate"


def test_api_probes_service_and_ingress() -> None:
    api = by_kind("Deployment")["fmn-api"]
    container = api["spec"]["template"]["spec"]["containers"][0]
    assert container["livenessProbe"]["httpGet"]["path"] == "/api/v1/healthz/live"
    assert container["readinessProbe"]["httpGet"]["path"] == "/api/v1/healthz/ready"
    service = by_kind("Service")["fmn-api"]
    pod_labels = api["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    port_names = {p["name"] for p in container["ports"]}
    assert {p["targetPort"] for p in service["spec"]["ports"]} <= port_names
    ingress = by_kind("Ingress")["fmn"]
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend["name"] == "fmn-api"
    assert by_kind("Route")["fmn"]["spec"]["to"]["name"] == "fmn-api"


def test_metrics_ports_match_the_configuration() -> None:
    config = tomllib.loads(by_kind("ConfigMap")["fmn-config"]["data"]["fmn.toml"])
    consumer = by_kind("Deployment")["fmn-consumer"]["spec"]["template"]
    ports = {p["name"]: p["containerPort"] for p in consumer["spec"]["containers"][0]["ports"]}
    assert ports["metrics"] == config["consumer"]["metrics_port"]
    assert consumer["metadata"]["annotations"]["prometheus.io/port"] == str(ports["metrics"])
    api = by_kind("Deployment")["fmn-api"]["spec"]["template"]
    # The API's metrics on their own port, which the Service (and so the Ingress) never routes.
    assert config["api"]["metrics_port"] != config["api"]["port"]
    assert config["api"].get("metrics_public", False) is False
    api_ports = {p["name"]: p["containerPort"] for p in api["spec"]["containers"][0]["ports"]}
    assert api_ports["metrics"] == config["api"]["metrics_port"]
    assert api["metadata"]["annotations"]["prometheus.io/port"] == str(api_ports["metrics"])
    service = by_kind("Service")["fmn-api"]
    assert {p["targetPort"] for p in service["spec"]["ports"]} == {"http"}
    for rule in by_kind("Ingress")["fmn"]["spec"]["rules"]:
        for path in rule["http"]["paths"]:
            assert path["backend"]["service"]["port"]["name"] == "http"
