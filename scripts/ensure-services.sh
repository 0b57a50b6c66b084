#!/usr/bin/env bash
# Make sure the real services the test suite talks to are installed and running.
# Safe to run repeatedly: it only installs or starts what is missing.
set -euo pipefail

log() { printf 'services: %s\n' "$*"; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_port() {
  local port=$1 name=$2
  for _ in $(seq 1 60); do
    port_open "$port" && return 0
    sleep 0.5
  done
  log "$name did not start listening on 127.0.0.1:$port"
  return 1
}

apt_updated=0
apt_install() {
  if [ "$apt_updated" = 0 ]; then
    log "apt-get update"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    apt_updated=1
  fi
  log "installing $*"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

ensure_postgres() {
  command -v pg_ctlcluster >/dev/null || apt_install postgresql
  if ! port_open 5432; then
    log "starting PostgreSQL"
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start
    wait_port 5432 PostgreSQL
  fi
}

ensure_nats() {
  command -v nats-server >/dev/null || [ -x /usr/sbin/nats-server ] || apt_install nats-server
  if ! port_open 4222; then
    log "starting NATS with JetStream"
    mkdir -p /var/lib/nats-server
    start-stop-daemon --start --oknodo --background --exec /usr/sbin/nats-server -- \
      -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server -l /var/log/nats-server.log
    wait_port 4222 NATS
  fi
}

ensure_mosquitto() {
  # Tests start their own mosquitto on a free port; the binary must exist.
  command -v mosquitto >/dev/null || [ -x /usr/sbin/mosquitto ] || apt_install mosquitto mosquitto-clients
}

ensure_mosquitto_dev() {
  # The publisher plugin is compiled on this machine against Mosquitto's plugin headers,
  # and the tests create the dynamic-security file with mosquitto_ctrl.
  if [ ! -f /usr/include/mosquitto_broker.h ] || [ ! -f /usr/include/mosquitto.h ]; then
    apt_install mosquitto-dev libmosquitto-dev
  fi
  command -v gcc >/dev/null || apt_install gcc libc6-dev
  command -v mosquitto_ctrl >/dev/null || apt_install mosquitto-clients
}

ensure_influxdb() {
  # Debian's package ships no running init here, so influxd is started detached by hand.
  [ -x /usr/bin/influxd ] || apt_install influxdb
  if ! port_open 8086; then
    log "starting InfluxDB"
    mkdir -p /var/lib/influxdb /var/log/influxdb
    chown -R influxdb: /var/lib/influxdb /var/log/influxdb
    # The package's config listens on every interface; the tests need loopback only.
    INFLUXDB_HTTP_BIND_ADDRESS=127.0.0.1:8086 \
      start-stop-daemon --start --oknodo --background --no-close --chuid influxdb \
      --exec /usr/bin/influxd -- -config /etc/influxdb/influxdb.conf \
      >>/var/log/influxdb/influxd.log 2>&1
  fi
  # An open port is not enough: InfluxDB answers /ping with 204 only once it serves queries.
  local status=""
  for _ in $(seq 1 60); do
    status=$( (exec 3<>/dev/tcp/127.0.0.1/8086 &&
      printf 'GET /ping HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&3 && head -n1 <&3) 2>/dev/null || true)
    case "$status" in *" 204 "*) return 0 ;; esac
    sleep 0.5
  done
  log "InfluxDB did not answer /ping on 127.0.0.1:8086"
  return 1
}

ensure_cfssl() {
  # The certificate tests start their own `cfssl serve` on a free port; the binary must exist.
  command -v cfssl >/dev/null || apt_install golang-cfssl
}

ensure_postgres
ensure_nats
ensure_mosquitto
ensure_mosquitto_dev
ensure_influxdb
ensure_cfssl
log "ready"
