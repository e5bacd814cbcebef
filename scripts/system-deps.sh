#!/usr/bin/env bash
# Install the Debian packages whisper-tune uses, or say clearly what is missing.
#   espeak-ng          offline speech synthesis (synthetic corpus voices)
#   chromium, chromium-driver   the headless browser test of the web page
#   g++ (+gcc), python3-dev     DeepSpeed JIT-builds its CPU ops (deepspeed_shm_comm, cpu_adam) on
#                               first use with the C++ compiler and the interpreter's Python.h
#   asterisk-core-sounds-en-wav, codec2-examples, alsa-utils
#                               real human recordings for the real-speech guard set
#                               (`whisper-tune data guard`; src/whisper_tune/data/guard_sources.json)
set -u
need=()
command -v espeak-ng >/dev/null 2>&1 || need+=(espeak-ng)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v chromedriver >/dev/null 2>&1 || need+=(chromium-driver)
command -v g++ >/dev/null 2>&1 || need+=(g++)
command -v gcc >/dev/null 2>&1 || need+=(gcc)
guard=()
[ -f /usr/share/asterisk/sounds/en_US_f_Allison/activated.wav ] || guard+=(asterisk-core-sounds-en-wav)
[ -f /usr/share/codec2/raw/hts1.raw ] || guard+=(codec2-examples)
[ -f /usr/share/sounds/alsa/Front_Center.wav ] || guard+=(alsa-utils)
need+=("${guard[@]}")
# Python.h of the interpreter the venv uses ($PYTHON, else python3); only a Debian-packaged
# interpreter (headers under /usr/include) can get them from apt.
py_inc=$("${PYTHON:-python3}" -c 'import sysconfig; print(sysconfig.get_paths()["include"])' 2>/dev/null || true)
if [ -n "$py_inc" ] && [ ! -f "$py_inc/Python.h" ]; then
  case "$py_inc" in
    /usr/include/*) need+=("$(basename "$py_inc")-dev") ;;
    *) echo "warning: $py_inc/Python.h is missing: install your Python's development headers (DeepSpeed builds CPU ops with them)" ;;
  esac
fi
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing Debian packages: ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null 2>&1 || echo "warning: apt-get update failed"
  if ! apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null 2>&1; then
    # one unavailable package must not block the others
    failed=()
    for p in "${need[@]}"; do
      apt-get install -y -qq --no-install-recommends "$p" >/dev/null 2>&1 || failed+=("$p")
    done
    if [ ${#failed[@]} -gt 0 ]; then
      echo "warning: could not install ${failed[*]}; espeak-ng voices and the browser test will be skipped with a message,"
      echo "         DeepSpeed cannot build its CPU ops without a compiler and Python headers, and without the"
      echo "         guard packages the real-speech guard cannot be built (set data.guard to your own manifest or none)"
    fi
  fi
else
  echo "warning: missing ${need[*]} and no root apt-get; install them with your package manager"
  echo "         (without espeak-ng only the Piper voice synthesizes; without chromium the browser test is skipped;"
  echo "         without ${guard[*]:-the guard packages} the real-speech guard cannot be built)"
fi
exit 0
