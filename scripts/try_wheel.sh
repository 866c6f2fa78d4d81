#!/bin/sh
# The built wheel as a Kometa user installs it: a fresh virtual environment of PYTHON (Kometa's image's),
# binary wheels only (no compiler in Kometa's container), beside Kometa's own ruamel.yaml pin; then the
# command, its metadata and the demo.   sh scripts/try_wheel.sh PYTHON DIST
set -eu
python="$1"
dist="$2"
wheel=$(ls "$dist"/malcapture-*.whl)
ls "$dist"/malcapture-*.tar.gz >/dev/null
place=$(mktemp -d)
trap 'rm -rf "$place"' EXIT
"$python" -m venv "$place/venv"
"$place/venv/bin/python" -m pip install --quiet --disable-pip-version-check --only-binary=:all: "$wheel" "ruamel.yaml==0.19.1"
echo "== $("$place/venv/bin/python" --version) in a fresh venv: $("$place/venv/bin/malcapture" --version)"
"$place/venv/bin/python" - <<'PY'
from importlib.metadata import metadata
meta = metadata("malcapture")
classifiers = meta.get_all("Classifier") or []
assert any("Windows" in c for c in classifiers) and any("MacOS" in c for c in classifiers), classifiers
assert "malcapture" in (meta["Description"] or ""), "the README is the long description"
print("metadata:", meta["Summary"])
PY
cd "$place"
env -u DISPLAY -u WAYLAND_DISPLAY "$place/venv/bin/malcapture" demo 2>"$place/demo.log" || { cat "$place/demo.log"; exit 1; }
grep -c " — saved to " "$place/demo.log" | sed 's/^/demo logins saved: /'
