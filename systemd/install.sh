#!/usr/bin/env bash
# Install cosmo-edge as a systemd service (docs/operations.md, "Install").
#
#   sudo systemd/install.sh [--prefix /opt/cosmo-edge] [--config FILE] [--system-site-packages] [--start]
#
# Steps, each idempotent (re-running upgrades the package and the unit, keeps local settings):
#   1. system user and group "cosmo-edge"; groups dialout, video, plugdev created when missing
#   2. virtual environment PREFIX/venv with this checkout installed (pip install .)
#   3. /etc/cosmo-edge/: cosmo-edge.env and config.yaml, only when absent (never overwritten)
#   4. the unit, with ExecStart= pointing at PREFIX, to /etc/systemd/system/; the udev rules to
#      /etc/udev/rules.d/; then udevadm reload + trigger, systemctl daemon-reload + enable
#
# --destdir DIR writes every file under DIR and skips steps that change the running system
# (user, udevadm, systemctl): for packaging and for tests.
set -euo pipefail

SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PREFIX=/opt/cosmo-edge
CONFIG_SRC="$SRC/cosmo_edge/configs/jetson.yaml"
DESTDIR=""
SERVICE_USER=cosmo-edge
DO_USER=1
DO_VENV=1
DO_SYSTEM=1
START=0
VENV_ARGS=()
DEFAULT_PREFIX=/opt/cosmo-edge

usage() {
  sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'
  cat <<'EOF'
Options:
  --prefix DIR             install root; the venv goes to DIR/venv (default /opt/cosmo-edge)
  --config FILE            config copied to /etc/cosmo-edge/config.yaml when absent
                           (default: cosmo_edge/configs/jetson.yaml)
  --system-site-packages   let the venv see system packages (Jetson: torch, TensorRT bindings)
  --destdir DIR            stage files under DIR; no user, venv, udevadm or systemctl changes
  --no-user                do not create the service user
  --no-venv                do not create or update the virtual environment
  --no-systemctl           do not run udevadm or systemctl
  --start                  (re)start the service at the end
EOF
}

log() { printf 'install.sh: %s\n' "$*"; }
die() { printf 'install.sh: error: %s\n' "$*" >&2; exit 1; }

while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) PREFIX="${2:?--prefix needs a directory}"; shift 2 ;;
    --config) CONFIG_SRC="${2:?--config needs a file}"; shift 2 ;;
    --destdir) DESTDIR="${2:?--destdir needs a directory}"; DO_USER=0; DO_VENV=0; DO_SYSTEM=0; shift 2 ;;
    --system-site-packages) VENV_ARGS+=(--system-site-packages); shift ;;
    --no-user) DO_USER=0; shift ;;
    --no-venv) DO_VENV=0; shift ;;
    --no-systemctl) DO_SYSTEM=0; shift ;;
    --start) START=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) die "unknown option $1 (see --help)" ;;
  esac
done

case "$PREFIX" in /*) ;; *) die "--prefix must be an absolute path, got $PREFIX" ;; esac
[ -f "$CONFIG_SRC" ] || die "config $CONFIG_SRC does not exist"
if [ -z "$DESTDIR" ] && [ "$(id -u)" -ne 0 ]; then
  die "run as root (or use --destdir DIR to stage the files)"
fi

ETC="$DESTDIR/etc/cosmo-edge"
UNIT_DIR="$DESTDIR/etc/systemd/system"
RULES_DIR="$DESTDIR/etc/udev/rules.d"

create_user() {
  local group
  for group in dialout video plugdev; do
    getent group "$group" >/dev/null || { log "creating group $group"; groupadd --system "$group"; }
  done
  if ! getent passwd "$SERVICE_USER" >/dev/null; then
    log "creating system user $SERVICE_USER"
    useradd --system --user-group --home-dir /var/lib/cosmo-edge --no-create-home \
      --shell /usr/sbin/nologin --comment "cosmo-edge daemon" "$SERVICE_USER"
  fi
}

install_venv() {
  log "installing the package into $PREFIX/venv"
  mkdir -p "$PREFIX"
  [ -x "$PREFIX/venv/bin/python" ] || python3 -m venv ${VENV_ARGS[@]+"${VENV_ARGS[@]}"} "$PREFIX/venv"
  "$PREFIX/venv/bin/pip" install --quiet --upgrade pip
  "$PREFIX/venv/bin/pip" install --quiet "$SRC"
  "$PREFIX/venv/bin/cosmo-edge" --version
}

install_files() {
  install -d -m 0755 "$UNIT_DIR" "$RULES_DIR" "$DESTDIR$PREFIX/docs"
  install -d -m 0750 "$ETC" "$ETC/curve"
  if [ -e "$ETC/cosmo-edge.env" ]; then
    log "keeping $ETC/cosmo-edge.env"
  else
    install -m 0640 "$SRC/systemd/cosmo-edge.env" "$ETC/cosmo-edge.env"
  fi
  if [ -e "$ETC/config.yaml" ]; then
    log "keeping $ETC/config.yaml"
  else
    install -m 0640 "$CONFIG_SRC" "$ETC/config.yaml"
  fi
  # The service reads its settings through its group; root keeps ownership.
  if [ -z "$DESTDIR" ] && getent group "$SERVICE_USER" >/dev/null; then
    chgrp -R "$SERVICE_USER" "$ETC"
  fi
  install -m 0644 "$SRC/docs/operations.md" "$DESTDIR$PREFIX/docs/operations.md"
  # The unit names the default prefix; point ExecStart= and Documentation= at the real one.
  sed -e "s#$DEFAULT_PREFIX/#$PREFIX/#g" "$SRC/systemd/cosmo-edge.service" >"$UNIT_DIR/cosmo-edge.service"
  chmod 0644 "$UNIT_DIR/cosmo-edge.service"
  install -m 0644 "$SRC/systemd/99-cosmo-edge.rules" "$RULES_DIR/99-cosmo-edge.rules"
  log "installed $UNIT_DIR/cosmo-edge.service and $RULES_DIR/99-cosmo-edge.rules"
}

activate() {
  if command -v udevadm >/dev/null; then
    udevadm control --reload-rules
    udevadm trigger --action=add --subsystem-match=tty --subsystem-match=usb --subsystem-match=video4linux
  fi
  if command -v systemd-analyze >/dev/null; then
    systemd-analyze verify "$UNIT_DIR/cosmo-edge.service" || log "systemd-analyze verify reported problems (above)"
  fi
  systemctl daemon-reload
  systemctl enable cosmo-edge.service
  if [ "$START" = 1 ]; then
    systemctl restart cosmo-edge.service
    log "started; follow it with: journalctl -u cosmo-edge -f"
  else
    log "enabled; start it with: systemctl start cosmo-edge (config: /etc/cosmo-edge/config.yaml)"
  fi
}

if [ "$DO_USER" = 1 ]; then create_user; fi
if [ "$DO_VENV" = 1 ]; then install_venv; fi
install_files
if [ "$DO_SYSTEM" = 1 ]; then activate; fi
log "done"
