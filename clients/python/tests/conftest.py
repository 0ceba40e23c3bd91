"""A real three-node vtask cluster for the tests: TLS and bearer tokens.

The session fixture ``cluster`` starts three ``vtaskd`` processes on free
loopback ports, the way ``scripts/dev.sh`` starts the dev cluster:
certificates from ``scripts/certs.sh DIR 3``, tokens from ``vtaskd
new-token``, their hashes from ``vtaskd hash-token``, the users file from
``scripts/users.sh`` plus two more users:

* ``admin``    (role admin: Task.Create, Task.Update, Global.CancelTask, System.View)
* ``viewer``   (role viewer: System.View only)
* ``reporter`` (Task.Create, Task.Update, System.View: no Global.CancelTask)

Every user also has a password (``cluster.passwords``, hashed with ``vtaskd
hash-password``) for the vSphere SOAP door's Login, and the nodes share one
``--session-key-file``, so a SOAP session is valid on every node
(tests/soap uses this cluster too).

It waits until every node's ``/health`` answers and a leader is known, and
stops the nodes at the end (SIGTERM, then SIGKILL). Tests that kill a node
restart it before they return (``cluster.restart``), so every test starts
with three nodes.

The binaries are ``$VTASKD`` / ``$VTASK_BIN_DIR/vtaskd``, else
``$CARGO_TARGET_DIR/debug/vtaskd``, else ``target/debug/vtaskd`` of the
repository; scripts/python-test.sh builds them first.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Iterator, Optional

import pytest

import vtask

REPO = Path(__file__).resolve().parents[3]
START_TIMEOUT = 60.0


def _binary(name: str) -> Path:
    env = os.environ
    candidates = []
    if name == "vtaskd" and env.get("VTASKD"):
        candidates.append(Path(env["VTASKD"]))
    if env.get("VTASK_BIN_DIR"):
        candidates.append(Path(env["VTASK_BIN_DIR"]) / name)
    candidates.append(Path(env.get("CARGO_TARGET_DIR", REPO / "target")) / "debug" / name)
    candidates.append(REPO / "target" / "debug" / name)
    for path in candidates:
        if path.is_file() and os.access(path, os.X_OK):
            return path
    raise RuntimeError(
        f"no {name} binary (looked at {', '.join(map(str, candidates))}); "
        "build it with `cargo build --workspace --all-targets` or run scripts/python-test.sh"
    )


def _free_ports(count: int) -> list[int]:
    """Ports the kernel hands out now; bound at once and released together,
    so no two are the same."""
    with contextlib.ExitStack() as stack:
        socks = []
        for _ in range(count):
            s = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]


def _run(*args: str, stdin: Optional[str] = None) -> str:
    return subprocess.run(
        args, input=stdin, capture_output=True, text=True, check=True, cwd=REPO
    ).stdout.strip()


class Node:
    def __init__(self, node_id: int, grpc_port: int, http_port: int, dir: Path) -> None:
        self.id = node_id
        self.endpoint = f"127.0.0.1:{grpc_port}"
        self.http = f"127.0.0.1:{http_port}"
        self.data = dir / f"node-{node_id}"
        self.log = dir / f"node-{node_id}.log"
        self.proc: Optional[subprocess.Popen] = None

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://{self.http}/health", timeout=1) as r:
                return r.status == 200
        except (urllib.error.URLError, OSError):
            return False


class Cluster:
    """Three vtaskd processes with TLS and a users file."""

    def __init__(self, dir: Path) -> None:
        self.dir = dir
        self.vtaskd = _binary("vtaskd")
        certs = dir / "certs"
        _run("bash", str(REPO / "scripts/certs.sh"), str(certs), "3")
        self.ca = certs / "ca.pem"
        self.certs = certs
        self.tokens = {name: _run(str(self.vtaskd), "new-token") for name in ("admin", "viewer", "reporter")}
        hashes = {
            name: _run(str(self.vtaskd), "hash-token", stdin=token + "\n")
            for name, token in self.tokens.items()
        }
        self.passwords = {name: f"{name}'s password {os.urandom(4).hex()}" for name in self.tokens}
        password_hashes = {
            name: _run(str(self.vtaskd), "hash-password", stdin=password + "\n")
            for name, password in self.passwords.items()
        }
        self.session_key = dir / "session.key"
        self.session_key.write_text(_run(str(self.vtaskd), "new-token") + "\n")
        users = _run(
            "bash", str(REPO / "scripts/users.sh"), hashes["admin"], "clients/python/tests/conftest.py"
        )
        # Add a role to the [roles] table scripts/users.sh wrote, then the users.
        viewer_role = 'viewer = ["System.View"]\n'
        assert viewer_role in users, f"scripts/users.sh no longer defines {viewer_role!r}:\n{users}"
        users = users.replace(
            viewer_role, viewer_role + 'reporter = ["Task.Create", "Task.Update", "System.View"]\n', 1
        )
        admin_token = f'token_sha256 = "{hashes["admin"]}"\n'
        assert admin_token in users, f"scripts/users.sh no longer writes {admin_token!r}:\n{users}"
        users = users.replace(admin_token, admin_token + f'password_hash = "{password_hashes["admin"]}"\n', 1)
        users += f"""

[[users]]
name = "viewer"
token_sha256 = "{hashes["viewer"]}"
password_hash = "{password_hashes["viewer"]}"
roles = ["viewer"]

[[users]]
name = "reporter"
token_sha256 = "{hashes["reporter"]}"
password_hash = "{password_hashes["reporter"]}"
roles = ["reporter"]
"""
        self.users_file = dir / "users.toml"
        self.users_file.write_text(users)
        ports = _free_ports(6)
        self.nodes = [Node(i + 1, ports[i], ports[3 + i], dir) for i in range(3)]
        self.initial_cluster = ",".join(f"{n.id}={n.endpoint}" for n in self.nodes)
        self.endpoints = [n.endpoint for n in self.nodes]

    # -- processes

    def start(self, node: Node) -> None:
        assert not node.running
        env = dict(os.environ, VTASKD_WORKER_THREADS=os.environ.get("VTASKD_WORKER_THREADS", "1"))
        args = [
            str(self.vtaskd),
            "--auth-file", str(self.users_file),
            "--session-key-file", str(self.session_key),
            "--tls-cert", str(self.certs / f"node-{node.id}.pem"),
            "--tls-key", str(self.certs / f"node-{node.id}-key.pem"),
            "--tls-ca", str(self.ca),
            "--node-id", str(node.id),
            "--listen", node.endpoint,
            "--http", node.http,
            "--data-dir", str(node.data),
            "--initial-cluster", self.initial_cluster,
        ]  # fmt: skip
        log = open(node.log, "ab")
        node.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=env)
        log.close()

    def start_all(self) -> None:
        for node in self.nodes:
            self.start(node)
        self.wait_ready()

    def wait_ready(self, timeout: float = START_TIMEOUT) -> None:
        """Until every running node's /health answers 200 (it knows a leader)
        and a leader answers Cluster.Status as leader."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for node in self.nodes:
                if node.proc is not None and node.proc.poll() is not None:
                    raise RuntimeError(
                        f"vtaskd node {node.id} exited with {node.proc.returncode}:\n{self.log_tail(node)}"
                    )
            if all(n.healthy() for n in self.nodes if n.running) and self.leader() is not None:
                return
            time.sleep(0.1)
        raise RuntimeError(f"the cluster did not become ready in {timeout}s\n{self.logs()}")

    def kill(self, node: Node) -> None:
        """SIGKILL: the node dies at once, as in a crash."""
        assert node.proc is not None
        node.proc.send_signal(signal.SIGKILL)
        node.proc.wait(10)

    def restart(self, node: Node) -> None:
        """Starts a killed node again on its data and waits for the cluster."""
        if not node.running:
            self.start(node)
        self.wait_ready()

    def stop(self, node: Node) -> None:
        """SIGTERM, then SIGKILL after 5 s."""
        if node.proc is None or node.proc.poll() is not None:
            return
        node.proc.send_signal(signal.SIGTERM)
        try:
            node.proc.wait(5)
        except subprocess.TimeoutExpired:
            node.proc.kill()
            node.proc.wait(5)

    def stop_all(self) -> None:
        for node in self.nodes:
            if node.running:
                node.proc.send_signal(signal.SIGTERM)
        for node in self.nodes:
            self.stop(node)

    # -- who is who

    def leader(self) -> Optional[Node]:
        """The node that says it leads (asked directly over Cluster.Status)."""
        with self.client(retry_for=1, timeout=2) as client:
            for node in self.nodes:
                if not node.running:
                    continue
                try:
                    status = client.cluster_status(node.endpoint)
                except Exception:
                    continue
                if status.HasField("leader_id") and status.leader_id == node.id:
                    return node
        return None

    def node(self, endpoint: str) -> Node:
        return next(n for n in self.nodes if n.endpoint == endpoint)

    def client(self, user: str = "admin", **kwargs) -> vtask.Client:
        kwargs.setdefault("ca", str(self.ca))
        kwargs.setdefault("token", self.tokens[user])
        return vtask.Client(self.endpoints, **kwargs)

    # -- diagnostics

    def log_tail(self, node: Node, lines: int = 40) -> str:
        try:
            text = node.log.read_text(errors="replace").splitlines()
        except FileNotFoundError:
            return "(no log)"
        return "\n".join(text[-lines:])

    def logs(self) -> str:
        return "\n".join(f"--- node {n.id} ({n.log}):\n{self.log_tail(n)}" for n in self.nodes)


def pytest_runtest_makereport(item, call):  # noqa: ARG001
    if call.excinfo is not None and call.when == "call":
        item.session.vtask_failed = True


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Iterator[Cluster]:
    if shutil.which("openssl") is None:
        raise RuntimeError("openssl is needed for scripts/certs.sh (sh scripts/setup.sh installs it)")
    c = Cluster(tmp_path_factory.mktemp("vtask-cluster"))
    try:
        c.start_all()
        yield c
    finally:
        c.stop_all()
        if getattr(request.session, "vtask_failed", False):
            print(f"\nvtaskd logs (in {c.dir}):\n{c.logs()}")


@pytest.fixture
def client(cluster: Cluster) -> Iterator[vtask.Client]:
    """An admin client of all three nodes."""
    with cluster.client() as c:
        yield c


@pytest.fixture
def all_nodes(cluster: Cluster) -> Iterator[Cluster]:
    """The cluster, with every node running again after the test."""
    try:
        yield cluster
    finally:
        for node in cluster.nodes:
            if not node.running:
                cluster.start(node)
        cluster.wait_ready()
