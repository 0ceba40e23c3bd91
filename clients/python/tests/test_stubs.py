"""The checked-in vtask.v1 stubs are exactly what generate.sh makes from
proto/vtask/v1 with the pinned grpcio-tools: regenerate them into a
temporary directory and compare byte for byte."""

import filecmp
import os
import subprocess
import sys
from pathlib import Path

import vtask

HERE = Path(__file__).resolve().parent
CLIENT = HERE.parent
CHECKED_IN = CLIENT / "src" / "vtask" / "v1"


def test_generated_stubs_are_up_to_date(tmp_path: Path) -> None:
    subprocess.run(
        ["sh", str(CLIENT / "generate.sh"), str(tmp_path)],
        check=True,
        env=dict(os.environ, PYTHON=sys.executable),
    )
    fresh = tmp_path / "vtask" / "v1"
    made = sorted(p.name for p in fresh.iterdir())
    have = sorted(p.name for p in CHECKED_IN.iterdir() if p.is_file() and p.suffix in (".py", ".pyi"))
    assert made == have, "the set of generated files changed: run sh clients/python/generate.sh"
    stale = [name for name in made if not filecmp.cmp(fresh / name, CHECKED_IN / name, shallow=False)]
    assert not stale, f"stale stubs {stale}: run sh clients/python/generate.sh and commit the result"


def test_the_package_uses_its_own_stubs() -> None:
    from vtask.v1 import task_info_pb2

    assert Path(task_info_pb2.__file__).parent == Path(vtask.__file__).parent / "v1"
    assert task_info_pb2.DESCRIPTOR.package == "vtask.v1"
