#!/usr/bin/env bash
# Try convcalc at the floors of its dependencies (pyproject.toml), in a fresh virtual environment: every command's
# exit code on success, on usage errors (bare `convcalc`, an unknown command, a missing argument, a bad option) and
# the CLI tests that need no torch. Run it after changing a floor:  bash scripts/floors.sh [CLICK_VERSION]
# (default: the floor of click, then the newest click). Needs the package registry; takes a minute or two.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
venv=$(mktemp -d)/venv
python -m venv "$venv"
floors=$(python - <<'PY'
import re, tomllib
deps = tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]
print(" ".join(re.sub(r">=", "==", d.split(";")[0].strip()) for d in deps if ">=" in d and ";" not in d))
PY
)
"$venv/bin/pip" install -q $floors pytest hypothesis
"$venv/bin/pip" install -q --no-deps -e .
clicks=${1:-"$(echo "$floors" | grep -o 'click==[0-9.]*' | cut -d= -f3) newest"}
failed=0
for click in $clicks; do
  if [ "$click" = newest ]; then "$venv/bin/pip" install -q --upgrade click; else "$venv/bin/pip" install -q "click==$click"; fi
  echo "with $("$venv/bin/pip" list 2>/dev/null | grep -iE '^(typer|click|rich|numpy|pyyaml|pillow) ' | tr -s ' ' | tr '\n' ' ')"
  check() {  # expected-exit-code  args...
    local want=$1; shift
    local out; out=$(cd /tmp && "$venv/bin/convcalc" "$@" 2>&1) && rc=0 || rc=$?
    if [ "$rc" != "$want" ] || grep -q Traceback <<<"$out"; then
      echo "  FAIL: convcalc $* exited $rc (want $want)$(grep -q Traceback <<<"$out" && echo ', with a traceback')"
      failed=1
    fi
  }
  check 2; check 2 frobnicate; check 2 analyze; check 2 analyze "$root/specs/tiny.yaml" --format nope
  check 0 --version; check 0 --help; check 0 analyze --help; check 0 analyze "$root/specs/tiny.yaml"
  check 0 lint "$root/specs"; check 0 run "$root/specs/tiny.yaml"; check 0 rf "$root/specs/tiny.yaml"
  "$venv/bin/python" -m pytest -q -p no:cacheprovider -o addopts="" tests/test_cli.py tests/test_lint_cli.py \
    tests/test_layout.py tests/test_hostile_cli.py | tail -1 || failed=1
done
[ $failed = 0 ] && echo "floors: all passed" || { echo "floors: FAILED"; exit 1; }
