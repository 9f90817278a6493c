#!/usr/bin/env bash
# The load generators `make bench` drives, from Debian's packages: wrk (throughput against the
# framework's ceiling) and hey (a steady request rate). Idempotent; needs root (or sudo) and apt.
# Without them the benchmark still runs, with its own Python client only.
set -euo pipefail

missing=()
for tool in wrk hey; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if ! command -v apt-get >/dev/null 2>&1; then
  echo "no apt-get here: install ${missing[*]} yourself for the benchmark's wrk and hey phases" >&2
  exit 0
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "run as root to install ${missing[*]}" >&2; exit 0; }
  sudo="sudo"
fi
echo "installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get -o DPkg::Lock::Timeout=300 update -qq
$sudo apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
