"""pyVmomi's tests run against the cluster of the Python client's tests
(clients/python/tests/conftest.py): three real vtaskd processes with TLS, a
users file with tokens and Argon2 passwords, and one session key shared by
every node. It is loaded from there, not copied."""

import importlib.util
from pathlib import Path

_path = Path(__file__).resolve().parents[2] / "clients/python/tests/conftest.py"
_spec = importlib.util.spec_from_file_location("vtask_test_cluster", _path)
_cluster = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_cluster)

Cluster = _cluster.Cluster
cluster = _cluster.cluster
all_nodes = _cluster.all_nodes
pytest_runtest_makereport = _cluster.pytest_runtest_makereport
