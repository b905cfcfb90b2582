#!/bin/sh
# Creates the secrets docker-compose.yml mounts (deploy/secrets/, kept out of git and out of the
# images): random passwords and keys, and a self-signed TLS certificate for the public host.
# Existing files are kept, so running it again changes nothing. Needs openssl.
#
#   deploy/secrets.sh [public host, default tansu.localhost]
set -eu
host="${1:-${TANSU_PUBLIC_HOST:-tansu.localhost}}"
dir="$(dirname "$0")/secrets"
mkdir -p "$dir"
chmod 700 "$dir"
umask 022   # the files are bind-mounted for the containers' non-root users; the folder guards them

new() { # name, command printing the value
  [ -s "$dir/$1" ] || sh -c "$2" | tr -d '\n' > "$dir/$1"
}
rand() { echo "openssl rand -hex $1"; }

new postgres_password "$(rand 24)"
new master_key "openssl rand -base64 32"
new storage_master_key "openssl rand -base64 32"
new dev_client_secret "$(rand 24)"
new admin_password "$(rand 12)"
new s3_access_key "echo tansu"
new s3_secret_key "$(rand 24)"
# Connection URLs (they carry the database password): one per service store.
pw="$(cat "$dir/postgres_password")"
for db in identity database storage; do
  new "${db}_database_url" "echo postgres://tansu:$pw@postgres:5432/tansu_$db"
done
# database-svc creates each tenant's database and role on this server.
new tenants_postgres_url "echo postgres://tansu:$pw@postgres:5432/tansu"
if [ ! -s "$dir/tls_cert" ] || [ ! -s "$dir/tls_key" ]; then
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 825 \
    -subj "/CN=$host" -addext "subjectAltName=DNS:$host,DNS:localhost,IP:127.0.0.1" \
    -addext "basicConstraints=critical,CA:FALSE" -addext "extendedKeyUsage=serverAuth" \
    -keyout "$dir/tls_key" -out "$dir/tls_cert" 2>/dev/null
  chmod 644 "$dir/tls_key"
fi
echo "secrets in $dir (the platform admin's password: $dir/admin_password)"
