#!/bin/bash
# Installs (or upgrades to) the Signet appliance version named in
# /etc/signet/node.env, using only the node's managed identity:
#   1. token from the instance metadata service (IMDS) for the node's identity
#   2. download the versioned artifact blob, verify its SHA-256
#   3. unpack to /opt/signet/<version>, switch /opt/signet/current atomically
#      (old versions stay for a rollback; the stack's unit drop-in runs current)
#   4. fetch the node's TLS certificate and key from Key Vault into /etc/signet/tls
#      and check it is the certificate the stack registered for this node
#   5. install the package's systemd unit and service user, restart, and wait
#      until the node is healthy
# Idempotent and serialized: cloud-init (first boot) and Run Command
# (upgrades) both call it. A node that was ready before an upgrade must be
# ready again before this script succeeds, so a rolling upgrade stops at the
# first node that does not come back.
set -euo pipefail
umask 022

# Overridable only so the script can be exercised against local stand-ins
# (a scratch root, a fake metadata service, a stub systemctl); a node uses the defaults.
R=${SIGNET_ROOT:-}
IMDS=${SIGNET_IMDS_ENDPOINT:-http://169.254.169.254}
SYSTEMCTL=${SIGNET_SYSTEMCTL:-systemctl}
SYSUSERS=${SIGNET_SYSUSERS:-systemd-sysusers}
SERVICE_USER=${SIGNET_SERVICE_USER:-signet}   # created by the package's systemd/signet.sysusers.conf
WAIT_SECONDS=${SIGNET_WAIT_SECONDS:-300}
RETRY_SECONDS=${SIGNET_RETRY_SECONDS:-15}
# Traffic Manager probes every 30 s and takes a node out after its third failed probe; resolvers
# keep its answer for the 30 s TTL: a node that leaves gets no new sessions after about 120 s.
LEAVE_SECONDS=${SIGNET_LEAVE_SECONDS:-120}
RBAC_WAIT_SECONDS=${SIGNET_RBAC_WAIT_SECONDS:-900}

ENV_FILE=${SIGNET_NODE_ENV:-$R/etc/signet/node.env}
# shellcheck source=/dev/null
. "$ENV_FILE"
: "${SIGNET_VERSION:?}" "${SIGNET_ARTIFACT_URL:?}" "${SIGNET_ARTIFACT_SHA256:?}" "${SIGNET_IDENTITY_CLIENT_ID:?}"
: "${SIGNET_VAULT_URI:?}" "${SIGNET_TLS_SECRET:?}" "${SIGNET_HTTP_PORT:?}"

mkdir -p "$R/run"
exec 9>"$R/run/signet-install.lock"
flock 9

# To stderr: functions whose stdout is captured (imds_token's token) log too, and a log line
# in the captured value would corrupt it.
log() { echo "signet-install: $*" >&2; logger -t signet-install -- "$*" 2>/dev/null || true; }
fail() { log "ERROR: $*"; exit 1; }

# curl with a bearer token read from stdin (--config -), not from the command
# line: any local process can read another's arguments in /proc/*/cmdline.
curl_bearer() {
  local token=$1
  shift
  printf 'header = "Authorization: Bearer %s"\n' "$token" | curl --config - "$@"
}

# GET url into file with a bearer token. The stack grants the node's roles just before the VM
# boots, and Azure RBAC takes minutes to reach Storage and Key Vault: until then they answer
# 403. Those answers (and only those) are retried for up to RBAC_WAIT_SECONDS; curl's own
# --retry covers transient errors. Prints nothing; returns non-zero on failure.
fetch_authorized() {
  local token=$1 url=$2 out=$3 status deadline=$((SECONDS + RBAC_WAIT_SECONDS))
  shift 3
  while :; do
    status=$(curl_bearer "$token" -sS --retry 5 --retry-delay 5 -o "$out" -w '%{http_code}' "$@" "$url") || status=000
    case "$status" in
      2??) return 0 ;;
      401|403)
        if [ "$SECONDS" -ge "$deadline" ]; then
          log "access to ${url%%\?*} still denied (HTTP ${status}) after ${RBAC_WAIT_SECONDS}s: $(head -c 500 "$out" 2>/dev/null)"
          return 1
        fi
        log "access to ${url%%\?*} denied (HTTP ${status}); role assignments can take minutes to apply, retrying"
        sleep "$RETRY_SECONDS" ;;
      *)
        log "HTTP ${status} from ${url%%\?*}: $(head -c 500 "$out" 2>/dev/null)"
        return 1 ;;
    esac
  done
}

imds_token() {
  local resource=$1 attempt body
  for attempt in 1 2 3 4 5 6 7 8 9 10; do
    if body=$(curl -fsS --max-time 10 -H 'Metadata: true' \
      "${IMDS}/metadata/identity/oauth2/token?api-version=2018-02-01&resource=${resource}&client_id=${SIGNET_IDENTITY_CLIENT_ID}"); then
      printf '%s' "$body" | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])'
      return 0
    fi
    log "identity token for ${resource} not available yet (attempt ${attempt}); role assignments can take minutes to apply"
    sleep "$RETRY_SECONDS"
  done
  fail "no managed identity token for ${resource}: is identity ${SIGNET_IDENTITY_CLIENT_ID} assigned to this VM?"
}

was_ready=no
if curl -fsS --max-time 5 "http://127.0.0.1:${SIGNET_HTTP_PORT}/readyz" >/dev/null 2>&1; then was_ready=yes; fi

# 1-3. the artifact
target=$R/opt/signet/${SIGNET_VERSION}
if [ ! -f "${target}/.signet-sha256" ] || [ "$(cat "${target}/.signet-sha256")" != "${SIGNET_ARTIFACT_SHA256}" ]; then
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  storage_token=$(imds_token 'https://storage.azure.com/')
  log "downloading ${SIGNET_ARTIFACT_URL}"
  fetch_authorized "$storage_token" "${SIGNET_ARTIFACT_URL}" "${work}/artifact.tar.gz" --max-time 600 \
    -H 'x-ms-version: 2023-11-03' || fail "cannot download ${SIGNET_ARTIFACT_URL}"
  echo "${SIGNET_ARTIFACT_SHA256}  ${work}/artifact.tar.gz" | sha256sum --check --status \
    || fail "artifact checksum mismatch for ${SIGNET_ARTIFACT_URL}: expected ${SIGNET_ARTIFACT_SHA256}, got $(sha256sum "${work}/artifact.tar.gz" | cut -d' ' -f1)"
  # The tarball may wrap its content in one top-level folder; strip it if so.
  # (listed once into a variable: `tar | grep -q` would kill tar with SIGPIPE and, under pipefail, fail at random)
  listing=$(tar -tzf "${work}/artifact.tar.gz")
  strip=0
  if [ "$(printf '%s\n' "$listing" | cut -d/ -f1 | sort -u | wc -l)" = 1 ] && [[ "$listing" == */* ]]; then strip=1; fi
  rm -rf "${target}.partial"
  mkdir -p "${target}.partial"
  tar -xzf "${work}/artifact.tar.gz" -C "${target}.partial" --strip-components="${strip}" --no-same-owner
  echo "${SIGNET_ARTIFACT_SHA256}" > "${target}.partial/.signet-sha256"
  rm -rf "${target}"
  mv "${target}.partial" "${target}"
  chown -R root:root "${target}"
  chmod -R go-w "${target}"
fi
[ -x "${target}/bin/signet" ] || fail "${target}/bin/signet missing: the artifact is not a packaged appliance"
[ -f "${target}/systemd/signet.service" ] || fail "${target}/systemd/signet.service missing: the artifact is not a packaged appliance"
install -d -m 0755 "$R/usr/lib/sysusers.d"
install -m 0644 "${target}/systemd/signet.sysusers.conf" "$R/usr/lib/sysusers.d/signet.conf"
"$SYSUSERS" "$R/usr/lib/sysusers.d/signet.conf"
id -u "$SERVICE_USER" >/dev/null 2>&1 || fail "service user ${SERVICE_USER} was not created"
ln -sfn "${target}" "$R/opt/signet/current.new"
mv -T "$R/opt/signet/current.new" "$R/opt/signet/current"
# From here on the new files are in use: a converge that fails later keeps them (see renderConvergeScript).
touch "$R/run/signet-install.switched"

# Config readable by the service group only (the unit's ConfigurationDirectoryMode is 0750).
chown root:"$SERVICE_USER" "$R/etc/signet" "$R/etc/signet/relay.yaml"
chmod 0750 "$R/etc/signet"
chmod 0640 "$R/etc/signet/relay.yaml"

# 4. the node's certificate: PEM chain + key from its Key Vault secret
vault_token=$(imds_token 'https://vault.azure.net')
TLS=$R/etc/signet/tls
install -d -m 0750 -o root -g "$SERVICE_USER" "$TLS"
secret_file=$(mktemp "$TLS/.secret.XXXXXX") # 0600, in the root:signet 0750 folder
fetch_authorized "$vault_token" "${SIGNET_VAULT_URI%/}/secrets/${SIGNET_TLS_SECRET}?api-version=7.4" "$secret_file" --max-time 30 \
  || { rm -f "$secret_file"; fail "cannot read secret ${SIGNET_TLS_SECRET} from ${SIGNET_VAULT_URI}"; }
pem=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["value"])' "$secret_file")
rm -f "$secret_file"
(
  umask 077
  printf '%s\n' "$pem" | awk '/-----BEGIN CERTIFICATE-----/{p=1} p{print} /-----END CERTIFICATE-----/{p=0}' > "$TLS"/node.crt.new
  printf '%s\n' "$pem" | awk '/-----BEGIN .*PRIVATE KEY-----/{p=1} p{print} /-----END .*PRIVATE KEY-----/{p=0}' > "$TLS"/node.key.new
)
grep -q 'BEGIN CERTIFICATE' "$TLS"/node.crt.new || fail "secret ${SIGNET_TLS_SECRET} holds no PEM certificate"
grep -q 'PRIVATE KEY' "$TLS"/node.key.new || fail "secret ${SIGNET_TLS_SECRET} holds no PEM private key"
# The certificate must be the one the stack registered for this node (its published thumbprint).
if [ -n "${SIGNET_TLS_THUMBPRINT:-}" ]; then
  got=$(openssl x509 -noout -fingerprint -sha1 -in "$TLS"/node.crt.new | cut -d= -f2 | tr -d ':' | tr 'a-f' 'A-F')
  [ "$got" = "${SIGNET_TLS_THUMBPRINT}" ] || { rm -f "$TLS"/node.*.new; fail "secret ${SIGNET_TLS_SECRET} holds certificate ${got}, but the stack registered ${SIGNET_TLS_THUMBPRINT} for this node"; }
fi
chown "$SERVICE_USER:$SERVICE_USER" "$TLS"/node.crt.new "$TLS"/node.key.new
chmod 0600 "$TLS"/node.crt.new "$TLS"/node.key.new
mv "$TLS"/node.crt.new "$TLS"/node.crt
mv "$TLS"/node.key.new "$TLS"/node.key
unset pem vault_token

# 5. the unit, then wait
install -d -m 0755 "$R/etc/systemd/system"
install -m 0644 "${target}/systemd/signet.service" "$R/etc/systemd/system/signet.service"
"$SYSTEMCTL" daemon-reload
"$SYSTEMCTL" enable signet.service >/dev/null
# A node in rotation leaves it first: /readyz 503 while it still serves every session, until health
# routing sends new sessions elsewhere; then the restart's drain has no 421 to give. (A version
# without POST /leave answers 404: it restarts at once, as before.)
if [ "$was_ready" = yes ] && curl -fsS --max-time 5 -X POST "http://127.0.0.1:${SIGNET_HTTP_PORT}/leave" >/dev/null 2>&1; then
  log "leaving rotation: waiting ${LEAVE_SECONDS}s for health routing to send new sessions to the other nodes"
  sleep "$LEAVE_SECONDS"
fi
log "starting signet ${SIGNET_VERSION}"
"$SYSTEMCTL" restart signet.service   # SIGTERM drains the old process: in-flight transactions finish, 421 to new sessions

want=healthz
[ "$was_ready" = yes ] && want=readyz
deadline=$((SECONDS + WAIT_SECONDS))
until curl -fsS --max-time 5 "http://127.0.0.1:${SIGNET_HTTP_PORT}/${want}" >/dev/null 2>&1; do
  if [ "$SECONDS" -ge "$deadline" ]; then
    log "/readyz says: $(curl -sS --max-time 5 "http://127.0.0.1:${SIGNET_HTTP_PORT}/readyz" 2>&1 | head -c 2000)"
    fail "signet ${SIGNET_VERSION} did not pass /${want} within ${WAIT_SECONDS}s (journalctl -u signet)"
  fi
  sleep 5
done
log "signet ${SIGNET_VERSION} installed and passing /${want}"
if [ "$want" = healthz ] && ! curl -fsS --max-time 5 "http://127.0.0.1:${SIGNET_HTTP_PORT}/readyz" >/dev/null 2>&1; then
  log "not ready yet: $(curl -sS --max-time 5 "http://127.0.0.1:${SIGNET_HTTP_PORT}/readyz" 2>&1 | head -c 2000)"
fi
