#!/usr/bin/env bash
# The Debian packages the agents need beside the Python environment: Tesseract OCR with its English
# data (taylor reads images and scanned PDF pages with it through pytesseract). Idempotent: does
# nothing when `tesseract` is already on PATH. Needs root (or sudo) and apt on Debian/Ubuntu.
set -euo pipefail

if command -v tesseract >/dev/null 2>&1; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "tesseract is missing and there is no apt-get here: install Tesseract OCR (with English data) yourself" >&2
  exit 1
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  if ! command -v sudo >/dev/null 2>&1; then
    echo "tesseract is missing: run this script as root (apt-get install tesseract-ocr tesseract-ocr-eng)" >&2
    exit 1
  fi
  sudo="sudo"
fi
echo "installing tesseract-ocr"
export DEBIAN_FRONTEND=noninteractive
# Another apt run on the machine holds the lock for a while: wait for it rather than fail.
$sudo apt-get -o DPkg::Lock::Timeout=300 update -qq
$sudo apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends tesseract-ocr tesseract-ocr-eng >/dev/null
tesseract --version | head -n 1
