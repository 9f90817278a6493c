#!/usr/bin/env bash
# The Debian packages the project needs beside the Python environment, each installed only when missing:
# - Tesseract OCR with its English data (taylor reads images and scanned PDF pages with it through pytesseract);
# - FFmpeg (maya decodes mp3/mp4/wav to 16 kHz PCM with it before PocketSphinx, a PyPI package with its own
#   English model, recognises the speech; Debian's build also has the Flite voice the tests speak their
#   recordings with);
# - DejaVu Sans (sam's PDF report embeds it, so that names in any Latin, Greek or Cyrillic script print;
#   without it the report falls back to the standard Helvetica, which holds Latin-1 only);
# - Chromium (tests/e2e/test_docs_browser.py opens /docs and /redoc in it, headless, through Playwright's
#   Python package: Debian's browser, so no browser build is downloaded);
# - Node.js and npm (tests/e2e/test_sdk_typescript.py builds the TypeScript SDK in sdks/typescript with tsc and
#   runs its `node --test` suite). The SDK needs Node 20 or later: Debian 13 ships it; Debian 12's nodejs is 18,
#   so there install Node 20+ otherwise (e.g. NodeSource's packages) and this script leaves it alone;
# - Go (Debian's golang-go: tests/e2e/test_sdk_go.py runs the Go SDK's `go test` in sdks/go; the SDK uses the
#   standard library only and builds with Debian 12's Go 1.19).
# `--runtime` (the Dockerfile's): only what the service itself needs, Tesseract, FFmpeg and the font, not the test browser,
# Node or Go.
# Idempotent: does nothing when they are already there. Needs root (or sudo) and apt on Debian/Ubuntu.
set -euo pipefail

runtime_only=false
if [ "${1:-}" = "--runtime" ]; then
  runtime_only=true
fi
packages=()
if ! command -v tesseract >/dev/null 2>&1; then
  packages+=(tesseract-ocr tesseract-ocr-eng)
fi
if ! command -v ffmpeg >/dev/null 2>&1 || ! command -v ffprobe >/dev/null 2>&1; then
  packages+=(ffmpeg)
fi
if [ ! -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ]; then
  packages+=(fonts-dejavu-core)
fi
if [ "$runtime_only" = false ] && [ ! -x /usr/bin/chromium ]; then
  packages+=(chromium)
fi
if [ "$runtime_only" = false ]; then
  command -v node >/dev/null 2>&1 || packages+=(nodejs)
  command -v npm >/dev/null 2>&1 || packages+=(npm)
  command -v go >/dev/null 2>&1 || packages+=(golang-go)
fi
if [ ${#packages[@]} -eq 0 ]; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "missing and there is no apt-get here: install ${packages[*]} yourself" >&2
  exit 1
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  if ! command -v sudo >/dev/null 2>&1; then
    echo "missing: run this script as root (apt-get install ${packages[*]})" >&2
    exit 1
  fi
  sudo="sudo"
fi
echo "installing ${packages[*]}"
export DEBIAN_FRONTEND=noninteractive
# Another apt run on the machine holds the lock for a while: wait for it rather than fail.
$sudo apt-get -o DPkg::Lock::Timeout=300 update -qq
$sudo apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
if command -v tesseract >/dev/null 2>&1; then tesseract --version | head -n 1; fi
if command -v ffmpeg >/dev/null 2>&1; then ffmpeg -version | head -n 1; fi
if [ -x /usr/bin/chromium ]; then /usr/bin/chromium --version 2>/dev/null | head -n 1; fi
if command -v go >/dev/null 2>&1; then go version; fi
if command -v node >/dev/null 2>&1; then
  node_major=$(node -p 'process.versions.node.split(".")[0]')
  echo "node $(node --version)"
  if [ "$node_major" -lt 20 ]; then
    echo "warning: the TypeScript SDK's tests need Node 20 or later; this is $(node --version)" >&2
  fi
fi
