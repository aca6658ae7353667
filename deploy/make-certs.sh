#!/usr/bin/env bash
# A private CA and certificates for the broker's TLS listener, with OpenSSL only. The tests use it.
#
#   deploy/make-certs.sh DIR NAME [NAME ...]    server certificate for the names clients connect to
#                                               (DNS names or IP addresses; in compose also 'mosquitto')
#   deploy/make-certs.sh DIR --client ACCOUNT   a client certificate, for brokers that require one
#
# DIR gets ca.crt (every client needs it: TOWER_MQTT_CA_FILE), ca.key (signs; keep it offline),
# server.crt and server.key (the broker's), ACCOUNT.crt and ACCOUNT.key. The CA is made on the first
# run and reused afterwards. Where the operator has a CA of their own, use it instead and skip this.
set -euo pipefail

if [ $# -lt 2 ]; then
  echo "usage: $0 DIR NAME [NAME ...] | $0 DIR --client ACCOUNT" >&2
  exit 2
fi
command -v openssl >/dev/null || { echo "$0: openssl not found: install openssl" >&2; exit 2; }
dir=$1
shift
days=${CERT_DAYS:-825}
mkdir -p "$dir"
cd "$dir"
umask 077  # keys readable by their owner only

if [ ! -f ca.key ]; then
  openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -sha256 -days "$days" \
    -keyout ca.key -out ca.crt -subj "/CN=Control Tower private CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
fi

sign() {  # sign NAME USAGE ALT_NAMES: NAME.key and NAME.crt, signed by the CA
  local extensions
  extensions=$(mktemp)
  printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=%s\n' "$2" >"$extensions"
  printf 'subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n' >>"$extensions"
  [ -n "$3" ] && printf 'subjectAltName=%s\n' "$3" >>"$extensions"
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -sha256 \
    -keyout "$1.key" -out "$1.csr" -subj "/CN=$4" 2>/dev/null
  openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -sha256 -days "$days" \
    -extfile "$extensions" -out "$1.crt" 2>/dev/null
  rm -f "$1.csr" "$extensions"
  chmod 644 "$1.crt"
}

chmod 644 ca.crt
if [ "$1" = "--client" ]; then
  sign "$2" clientAuth "" "$2"
  echo "$dir/$2.crt and $dir/$2.key: TOWER_MQTT_CERT_FILE and TOWER_MQTT_KEY_FILE for account $2"
else
  names=()
  for name in "$@"; do
    if [[ $name =~ ^[0-9.]+$ || $name == *:* ]]; then names+=("IP:$name"); else names+=("DNS:$name"); fi
  done
  sign server serverAuth "$(IFS=,; echo "${names[*]}")" "$1"
  echo "$dir/server.crt and $dir/server.key for $*; clients verify them with $dir/ca.crt"
fi
