#!/bin/bash
# The floor for `siteops add-site`: the same steps as a plain shell script run
# as root on the host in one SSH session, nothing checked twice, nothing
# idempotent. Usage (on the host): floor.sh SITE BLOCK DOMAIN
set -euo pipefail
site=$1 block=$2 domain=$3
port=$((3100 + 10 * block))
root=/srv/sites/$site
useradd --system --user-group --shell /usr/sbin/nologin --home-dir "$root" --no-create-home "$site"
install -d -o "$site" -g "$site" -m 0750 "$root" "$root/releases" "$root/shared" "$root/shared/logs" \
  "$root/shared/uploads" "$root/releases/r1"
printf 'python floor %s\n' "$site" >"$root/releases/r1/index.html"
cat >"$root/releases/r1/app.py" <<'PY'
import http.server, os
http.server.ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), http.server.SimpleHTTPRequestHandler).serve_forever()
PY
ln -sfn releases/r1 "$root/current"
password=$(head -c 24 /dev/urandom | base64 | tr -dc 'A-Za-z0-9')
printf 'PORT=%s\nHOST=127.0.0.1\nDATABASE_URL=postgresql://%s:%s@127.0.0.1/%s\n' "$port" "$site" "$password" "$site" >"$root/shared/.env"
chown "$site:$site" "$root/shared/.env"; chmod 0600 "$root/shared/.env"
cat >"/etc/systemd/system/$site-frontend.service" <<UNIT
[Service]
User=$site
WorkingDirectory=$root/current
EnvironmentFile=$root/shared/.env
ExecStart=/usr/bin/python3 app.py
Restart=always
UNIT
systemctl daemon-reload
systemctl enable --now "$site-frontend.service" >/dev/null 2>&1
runuser -u postgres -- psql -X -q -c "CREATE ROLE \"$site\" LOGIN PASSWORD '$password'" -c "CREATE DATABASE \"$site\" OWNER \"$site\""
cat >"/etc/nginx/sites-available/$site.conf" <<NGINX
server {
    listen 80;
    server_name $domain;
    location / { proxy_pass http://127.0.0.1:$port; }
}
NGINX
ln -sfn "../sites-available/$site.conf" "/etc/nginx/sites-enabled/$site.conf"
nginx -t -q
systemctl reload nginx
