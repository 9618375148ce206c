#!/bin/bash
# Run Pebble, a test ACME CA, inside a test host (run as root in the host):
#
#   pebble.sh NAME...   register NAMEs in Pebble's DNS and the host's /etc/hosts
#   pebble.sh           Pebble's DNS answers 127.0.0.1 for every name (the sandbox)
#
# Pebble listens on 127.0.0.1:14000 (ACME directory https://127.0.0.1:14000/dir,
# its listener certificate signed by /etc/pebble/ca.pem, so certbot runs with
# REQUESTS_CA_BUNDLE=/etc/pebble/ca.pem) and validates HTTP-01 on port 80 of
# this host. The host trusts the certificates Pebble issues (its root and
# intermediate are in the system trust store); the root is printed on stdout.
# Safe to run again; Pebble keeps running (a restart makes a new root and
# forgets every account).
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

missing=()
for pkg in pebble openssl curl ca-certificates; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

mkdir -p /etc/pebble
cd /etc/pebble
if [ ! -s pebble.pem ]; then
  # Key usage on the CA: Python 3.13 (Debian 13) verifies strictly.
  openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj /CN=siteops-test-listener-ca \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \
    -keyout ca.key -out ca.pem 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -subj /CN=localhost -keyout pebble.key -out pebble.csr 2>/dev/null
  printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' >san.ext
  openssl x509 -req -in pebble.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 3650 \
    -extfile san.ext -out pebble.pem 2>/dev/null
fi
cat >pebble-config.json <<'JSON'
{"pebble": {"listenAddress": "127.0.0.1:14000", "managementListenAddress": "127.0.0.1:15000",
            "certificate": "/etc/pebble/pebble.pem", "privateKey": "/etc/pebble/pebble.key",
            "httpPort": 80, "tlsPort": 5001, "ocspResponderURL": "",
            "externalAccountBindingRequired": false}}
JSON

# Without names, every name resolves to this host in Pebble's DNS.
default_ip=""
[ $# -gt 0 ] || default_ip=127.0.0.1
# Pebble 2.6 (Debian 13) also serves DNS over HTTPS unless told not to; 2.4 has no such option.
no_doh=""
if /usr/bin/pebble-challtestsrv -h 2>&1 | grep -q -- '-doh '; then no_doh='-doh ""'; fi
unit() { # name command
  cat >"/etc/systemd/system/$1.service" <<UNIT
[Unit]
Description=test ACME $1
[Service]
Environment=PEBBLE_VA_NOSLEEP=1 PEBBLE_WFE_NONCEREJECT=0
ExecStart=$2
[Install]
WantedBy=multi-user.target
UNIT
}
unit pebble-challtestsrv "/usr/bin/pebble-challtestsrv -defaultIPv4 \"$default_ip\" -defaultIPv6 \"\" -dns01 127.0.0.1:8053 -management 127.0.0.1:8055 -http01 \"\" -https01 \"\" -tlsalpn01 \"\" $no_doh"
unit pebble "/usr/bin/pebble -config /etc/pebble/pebble-config.json -dnsserver 127.0.0.1:8053"
systemctl daemon-reload
systemctl enable --now pebble-challtestsrv pebble >/dev/null 2>&1

for _ in $(seq 1 40); do
  curl -fsS -o /dev/null --cacert /etc/pebble/ca.pem https://127.0.0.1:14000/dir && break
  sleep 0.5
done
curl -fsS -o /dev/null --cacert /etc/pebble/ca.pem https://127.0.0.1:14000/dir

for name in "$@"; do
  curl -fsS -o /dev/null -X POST -d "{\"host\": \"$name.\", \"addresses\": [\"127.0.0.1\"]}" \
    http://127.0.0.1:8055/add-a
  # Docker bind-mounts /etc/hosts: append in place, never replace the file.
  grep -qE "^127\.0\.0\.1 $name\$" /etc/hosts || printf '127.0.0.1 %s\n' "$name" >>/etc/hosts
done

changed=0
for kind in roots intermediates; do
  pem=$(curl -fsS --cacert /etc/pebble/ca.pem "https://127.0.0.1:15000/$kind/0")
  target=/usr/local/share/ca-certificates/pebble-$kind.crt
  if [ "$(cat "$target" 2>/dev/null)" != "$pem" ]; then
    printf '%s\n' "$pem" >"$target"
    changed=1
  fi
done
[ "$changed" = 0 ] || update-ca-certificates >/dev/null 2>&1
cat /usr/local/share/ca-certificates/pebble-roots.crt
