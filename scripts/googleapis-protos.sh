#!/usr/bin/env bash
# Copies the google.longrunning API and what it imports into proto/google/
# from Google's own `googleapis-common-protos` package on PyPI, at the version
# pinned below, so the server is compiled from the files Google ships, not
# from a hand-written copy. `just test` runs the check below, so the files
# here stay byte for byte those of the pinned release.
#
#   scripts/googleapis-protos.sh          refresh proto/google/ from the wheel
#   scripts/googleapis-protos.sh --check  exit 1 if proto/google/ differs from it
#
# The package names the Operations file `operations_proto.proto` (its
# Python module cannot be `operations_pb2`); its imports and package are
# those of googleapis' google/longrunning/operations.proto, which is the
# name every other proto file uses for it, so it is stored under that name.
set -euo pipefail
cd "$(dirname "$0")/.."

version="${GOOGLEAPIS_COMMON_PROTOS_VERSION:-1.76.0}"
files=(
    google/api/annotations.proto
    google/api/client.proto
    google/api/field_behavior.proto
    google/api/http.proto
    google/api/launch_stage.proto
    google/rpc/status.proto
    google/longrunning/operations_proto.proto
)

# The project's venv (sh scripts/setup.sh python) has pip; Debian's python3 may not.
python="${VTASK_VENV:-.venv}/bin/python"
[ -x "$python" ] || python=python3

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$python" -m pip download --quiet --no-deps --dest "$work" "googleapis-common-protos==$version"
wheel=$(ls "$work"/googleapis_common_protos-*.whl)
"$python" - "$wheel" "$work/out" "${files[@]}" <<'EOF'
import pathlib, sys, zipfile
wheel, out, names = sys.argv[1], pathlib.Path(sys.argv[2]), sys.argv[3:]
with zipfile.ZipFile(wheel) as z:
    for name in names:
        target = out / name.replace("operations_proto.proto", "operations.proto")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(z.read(name))
    (out / "google" / "LICENSE").write_bytes(
        z.read(next(n for n in z.namelist() if n.endswith("licenses/LICENSE")))
    )
EOF
printf 'googleapis-common-protos %s (PyPI), by scripts/googleapis-protos.sh\n' "$version" \
    >"$work/out/google/VERSION"

if [ "${1:-}" = --check ]; then
    diff -r "$work/out/google" proto/google
    echo "proto/google/ is googleapis-common-protos $version"
else
    rm -rf proto/google
    cp -r "$work/out/google" proto/google
    echo "proto/google/ refreshed from googleapis-common-protos $version"
fi
