#!/usr/bin/env bash
# Runs ferhub's test suite on a fresh machine: a headless Chromium for the browser tests (Debian packages),
# ferhub with its test, train and convert extras in .venv, ruff, then pytest (which fails when no test is collected) in two
# worker processes: a test that dies of a native crash is reported as failed and the rest still run.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium chromium-driver >/dev/null
fi

[ -x .venv/bin/python ] || python3 -m venv .venv
# shellcheck disable=SC1091
. .venv/bin/activate
python -m pip install -q --disable-pip-version-check -e ".[test,train,convert]"

ruff check .
ruff format --check .
python -m pytest -n 2 "$@"
