#!/usr/bin/env bash
# Times one download by our peers against nginx -> curl and scp (AES-128-GCM)
# on loopback: the same sparse file, the same destination disk, each copy
# fsynced before its clock stops (our peer syncs before committing too).
#
#   bench/compare.sh                      # 2 GiB, release binary
#   SIZE_MIB=512 DIR=/data/tmp bench/compare.sh
#
# Needs nginx, sshd, curl and scp; as root it installs the missing ones with
# apt-get. Figures taken while the machine is busy are noise: check `uptime`.
set -euo pipefail

SIZE_MIB=${SIZE_MIB:-2048}
BIN=${BIN:-$(dirname "$0")/../target/release/lanspread-checker}
BASE=${DIR:-/var/tmp}
HTTP_PORT=${HTTP_PORT:-18080}
SSH_PORT=${SSH_PORT:-12222}

[ -x "$BIN" ] || { echo "no peer binary at $BIN (cargo build --release)" >&2; exit 2; }

need=()
command -v nginx >/dev/null || need+=(nginx)
[ -x /usr/sbin/sshd ] || need+=(openssh-server)
command -v curl >/dev/null || need+=(curl)
command -v scp >/dev/null || need+=(openssh-client)
if [ ${#need[@]} -gt 0 ]; then
	[ "$(id -u)" = 0 ] || { echo "missing: ${need[*]} (install them, or run as root)" >&2; exit 2; }
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

WORK=$(mktemp -d "$BASE/lanspread-compare.XXXXXX")
# nginx workers run as an unprivileged user; they must reach the file.
chmod 755 "$WORK"
NGINX_PID=""
SSHD_PID=""
cleanup() {
	# Only the servers this script started.
	[ -n "$NGINX_PID" ] && kill "$NGINX_PID" 2>/dev/null || true
	[ -n "$SSHD_PID" ] && kill "$SSHD_PID" 2>/dev/null || true
	[ "${KEEP:-0}" = 1 ] || rm -rf "$WORK"
}
trap cleanup EXIT

mkdir -p "$WORK/src" "$WORK/dst" "$WORK/nginx/logs" "$WORK/ssh"
truncate -s "${SIZE_MIB}M" "$WORK/src/bf1942.eti"

now() { date +%s.%N; }
# MiB/s for SIZE_MIB over the seconds between two `now`s.
rate() { awk -v m="$SIZE_MIB" -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", m / (b - a) }'; }

# nginx serving the source folder, in the foreground of its own process.
cat > "$WORK/nginx/nginx.conf" <<CONF
daemon off;
worker_processes 1;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/logs/error.log;
events { worker_connections 64; }
http {
	access_log off;
	sendfile on;
	tcp_nopush on;
	server { listen 127.0.0.1:$HTTP_PORT; root $WORK/src; }
}
CONF
nginx -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" &
NGINX_PID=$!

# sshd on loopback with throw-away keys.
ssh-keygen -q -t ed25519 -N "" -f "$WORK/ssh/host_key"
ssh-keygen -q -t ed25519 -N "" -f "$WORK/ssh/user_key"
cp "$WORK/ssh/user_key.pub" "$WORK/ssh/authorized_keys"
mkdir -p /run/sshd
cat > "$WORK/ssh/sshd_config" <<CONF
ListenAddress 127.0.0.1
Port $SSH_PORT
HostKey $WORK/ssh/host_key
AuthorizedKeysFile $WORK/ssh/authorized_keys
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
StrictModes no
UsePAM no
PidFile $WORK/ssh/sshd.pid
Subsystem sftp internal-sftp
CONF
/usr/sbin/sshd -D -e -f "$WORK/ssh/sshd_config" 2>"$WORK/ssh/sshd.log" &
SSHD_PID=$!
sleep 1

echo "file: ${SIZE_MIB} MiB sparse; destination: $WORK/dst; load: $(cut -d' ' -f1-3 /proc/loadavg)"

t0=$(now)
curl -fsS -o "$WORK/dst/curl.eti" "http://127.0.0.1:$HTTP_PORT/bf1942.eti"
sync "$WORK/dst/curl.eti"
t1=$(now)
[ "$(stat -c %s "$WORK/dst/curl.eti")" = $((SIZE_MIB << 20)) ] || { echo "curl got a short file" >&2; exit 3; }
NGINX=$(rate "$t0" "$t1")
rm -f "$WORK/dst/curl.eti"

t0=$(now)
scp -q -c aes128-gcm@openssh.com -P "$SSH_PORT" -i "$WORK/ssh/user_key" \
	-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR \
	"$(id -un)@127.0.0.1:$WORK/src/bf1942.eti" "$WORK/dst/scp.eti"
sync "$WORK/dst/scp.eti"
t1=$(now)
[ "$(stat -c %s "$WORK/dst/scp.eti")" = $((SIZE_MIB << 20)) ] || { echo "scp got a short file" >&2; exit 3; }
SCP=$(rate "$t0" "$t1")
rm -f "$WORK/dst/scp.eti"

ours() {
	"$BIN" bench transfer --size "${SIZE_MIB}MiB" --sources "$1" --dir "$WORK/dst" | tee -a "$WORK/ours.log" |
		sed -n 's/^result mib_per_s=\([0-9.]*\) .*max_peak_rss_kib=\([0-9]*\)$/\1 \2/p'
}
read -r ONE RSS1 < <(ours 1)
read -r TWO RSS2 < <(ours 2)

sed 's/^/  /' "$WORK/ours.log"
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
echo
printf '%-28s %10s\n' "transfer" "MiB/s"
printf '%-28s %10s\n' "nginx -> curl" "$NGINX"
printf '%-28s %10s\n' "scp aes128-gcm" "$SCP"
printf '%-28s %10s  (peak RSS %s KiB)\n' "lanspread, 1 source" "$ONE" "$RSS1"
printf '%-28s %10s  (peak RSS %s KiB)\n' "lanspread, 2 sources" "$TWO" "$RSS2"
echo
echo "1 source / nginx->curl: $(ratio "$ONE" "$NGINX")  (target >= 1.00)"
echo "1 source / scp:         $(ratio "$ONE" "$SCP")  (target >= 1.30)"
echo "2 sources / 1 source:   $(ratio "$TWO" "$ONE")  (target >= 0.95)"
echo "peak RSS per peer:      max $(( (RSS1 > RSS2 ? RSS1 : RSS2) / 1024 )) MiB  (target <= 64)"
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
