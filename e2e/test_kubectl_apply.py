"""kubectl apply (client-side and server-side), get, diff and delete against a real server."""

from __future__ import annotations

import json
import textwrap

import pytest
import yaml

from e2e.cluster import SDK_BIN, Kubectl


def manifest(ns: str, *, image: str = "nginx:1.25", env: dict[str, str] | None = None) -> str:
    env = {"FOO": "1", "BAR": "2"} if env is None else env
    env_yaml = "".join(f"\n                - name: {k}\n                  value: \"{v}\"" for k, v in env.items())
    return textwrap.dedent(f"""\
        apiVersion: v1
        kind: Namespace
        metadata:
          name: {ns}
        ---
        apiVersion: v1
        kind: ConfigMap
        metadata:
          name: settings
          namespace: {ns}
        data:
          mode: fast
        ---
        apiVersion: v1
        kind: Secret
        metadata:
          name: creds
          namespace: {ns}
        stringData:
          password: hunter2
        ---
        apiVersion: apps/v1
        kind: Deployment
        metadata:
          name: web
          namespace: {ns}
          labels:
            app: web
        spec:
          replicas: 2
          selector:
            matchLabels:
              app: web
          template:
            metadata:
              labels:
                app: web
            spec:
              containers:
              - name: nginx
                image: {image}
                ports:
                - containerPort: 80
                env:{env_yaml or " []"}
        ---
        apiVersion: v1
        kind: Service
        metadata:
          name: web
          namespace: {ns}
        spec:
          selector:
            app: web
          ports:
          - port: 80
            targetPort: 80
        """)


@pytest.fixture
def ns_name(kubectl: Kubectl):
    import uuid

    name = f"apply-{uuid.uuid4().hex[:6]}"
    yield name
    kubectl.run("delete", "namespace", name, "--wait=false", check=False)


def test_apply_creates_updates_and_prunes_fields(kubectl: Kubectl, ns_name: str, tmp_path):
    path = tmp_path / "app.yaml"
    path.write_text(manifest(ns_name))
    out = kubectl("apply", "-f", str(path))
    for line in (f"namespace/{ns_name} created", "configmap/settings created", "secret/creds created",
                 "deployment.apps/web created", "service/web created"):
        assert line in out

    table = kubectl("get", "deploy", "-n", ns_name)
    assert table.split("\n")[0].split() == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
    assert table.split("\n")[1].split()[:2] == ["web", "0/2"]
    svc = kubectl("get", "svc", "web", "-n", ns_name)
    assert svc.split("\n")[0].split() == ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"]
    assert "ClusterIP" in svc and "80/TCP" in svc

    deploy = json.loads(kubectl("get", "deploy", "web", "-n", ns_name, "-o", "json"))
    assert deploy["metadata"]["generation"] == 1
    assert deploy["spec"]["strategy"]["type"] == "RollingUpdate"
    secret = yaml.safe_load(kubectl("get", "secret", "creds", "-n", ns_name, "-o", "yaml"))
    assert secret["data"] == {"password": "aHVudGVyMg=="} and "stringData" not in secret

    # the -o yaml output round-trips through replace
    cm_yaml = kubectl("get", "configmap", "settings", "-n", ns_name, "-o", "yaml")
    assert "replaced" in kubectl("replace", "-f", "-", input=cm_yaml)

    path.write_text(manifest(ns_name, image="nginx:1.26"))
    out = kubectl("apply", "-f", str(path))
    assert "deployment.apps/web configured" in out and "service/web unchanged" in out
    updated = json.loads(kubectl("get", "deploy", "web", "-n", ns_name, "-o", "json"))
    container = updated["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "nginx:1.26"
    assert [e["name"] for e in container["env"]] == ["FOO", "BAR"]
    assert updated["metadata"]["generation"] == 2
    assert updated["metadata"]["uid"] == deploy["metadata"]["uid"]

    path.write_text(manifest(ns_name, image="nginx:1.26", env={"BAR": "2"}))
    kubectl("apply", "-f", str(path))
    pruned = json.loads(kubectl("get", "deploy", "web", "-n", ns_name, "-o", "json"))
    assert [e["name"] for e in pruned["spec"]["template"]["spec"]["containers"][0]["env"]] == ["BAR"]
    assert pruned["metadata"]["generation"] == 3


def test_server_side_apply(kubectl: Kubectl, namespace: str, tmp_path):
    path = tmp_path / "cm.yaml"
    path.write_text(f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ssa\n  namespace: {namespace}\n"
                    "data:\n  a: '1'\n  b: '2'\n")
    assert "configmap/ssa serverside-applied" in kubectl("apply", "--server-side", "-f", str(path))
    path.write_text(f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ssa\n  namespace: {namespace}\n"
                    "data:\n  a: '3'\n")
    kubectl("apply", "--server-side", "-f", str(path))
    cm = json.loads(kubectl("get", "cm", "ssa", "-n", namespace, "-o", "json", "--show-managed-fields"))
    assert cm["data"] == {"a": "3"}
    managers = {m["manager"]: m for m in cm["metadata"]["managedFields"]}
    assert managers["kubectl"]["operation"] == "Apply"
    # another manager changes a field kubectl owns: a conflict, unless forced
    kubectl("patch", "cm", "ssa", "-n", namespace, "--type=merge", "-p", '{"data":{"a":"9"}}')
    result = kubectl.run("apply", "--server-side", "-f", str(path), check=False)
    assert result.returncode != 0 and "conflict" in result.stderr.lower()
    kubectl("apply", "--server-side", "--force-conflicts", "-f", str(path))
    assert json.loads(kubectl("get", "cm", "ssa", "-n", namespace, "-o", "json"))["data"] == {"a": "3"}


def test_diff_uses_dry_run_and_persists_nothing(kubectl: Kubectl, namespace: str, tmp_path):
    path = tmp_path / "cm.yaml"
    path.write_text(f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: d\n  namespace: {namespace}\n"
                    "data:\n  k: one\n")
    kubectl("apply", "-f", str(path))
    path.write_text(path.read_text().replace("one", "two"))
    result = kubectl.run("diff", "-f", str(path), check=False)
    assert result.returncode == 1, result.stderr  # 1 = differences found
    assert "-  k: one" in result.stdout and "+  k: two" in result.stdout
    assert json.loads(kubectl("get", "cm", "d", "-n", namespace, "-o", "json"))["data"] == {"k": "one"}


def test_delete_namespace_removes_its_contents(kubectl: Kubectl, tmp_path):
    import uuid

    ns = f"gone-{uuid.uuid4().hex[:6]}"
    path = tmp_path / "app.yaml"
    path.write_text(manifest(ns))
    kubectl("apply", "-f", str(path))
    out = kubectl("delete", "namespace", ns, "--timeout=60s")
    assert f'namespace "{ns}" deleted' in out
    missing = kubectl.run("get", "namespace", ns, check=False)
    assert missing.returncode == 1 and "NotFound" in missing.stderr
    assert "No resources found" in kubectl.run("get", "cm", "-n", ns).stderr


@pytest.mark.parametrize("binary", ["kubectl.1.33", "kubectl.1.27"])
def test_version_skew(kubectl: Kubectl, binary: str, tmp_path):
    path = SDK_BIN / binary
    if not path.exists():
        pytest.skip(f"{path} is not installed on this machine")
    import uuid

    skewed = Kubectl(kubectl.kubeconfig, kubectl.home, binary=str(path))
    ns = f"skew-{uuid.uuid4().hex[:6]}"
    manifest_path = tmp_path / "app.yaml"
    manifest_path.write_text(manifest(ns))
    try:
        assert "deployment.apps/web created" in skewed("apply", "-f", str(manifest_path))
        assert "scaled" in skewed("scale", "deploy/web", "-n", ns, "--replicas=3")
        assert skewed("get", "deploy", "web", "-n", ns, "-o", "jsonpath={.spec.replicas}") == "3"
        assert "configmap/c2 created" in skewed("create", "configmap", "c2", "-n", ns, "--from-literal=a=b")
        assert "web" in skewed("get", "all", "-n", ns)
    finally:
        skewed.run("delete", "namespace", ns, "--wait=false", check=False)
