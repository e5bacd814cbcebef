#!/usr/bin/env bash
# Install the Debian packages whisper-tune uses, or say clearly what is missing.
#   espeak-ng          offline speech synthesis (synthetic corpus voices)
#   chromium, chromium-driver   the headless browser test of the web page
set -u
need=()
command -v espeak-ng >/dev/null 2>&1 || need+=(espeak-ng)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v chromedriver >/dev/null 2>&1 || need+=(chromium-driver)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing Debian packages: ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null 2>&1 || echo "warning: apt-get update failed"
  if ! apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null 2>&1; then
    echo "warning: could not install ${need[*]}; espeak-ng voices and the browser test will be skipped with a message"
  fi
else
  echo "warning: missing ${need[*]} and no root apt-get; install them with your package manager"
  echo "         (without espeak-ng only the Piper voice synthesizes; without chromium the browser test is skipped)"
fi
exit 0
