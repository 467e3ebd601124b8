#!/usr/bin/env bash
# Times one download by our peers against nginx -> curl and scp (AES-128-GCM)
# on loopback: the same sparse file, the same destination disk, each copy
# fsynced before its clock stops (our peer syncs before committing too).
# Our peer writes around the page cache (O_DIRECT); a fifth copy with
# --buffered-writes shows what that is worth.
#
#   bench/compare.sh                      # 2 GiB, release binary, 3 rounds
#   SIZE_MIB=512 DIR=/data/tmp ROUNDS=5 bench/compare.sh
#
# MODE=files races a tree of many small files instead: rsync -a over ssh
# (AES-128-GCM) plus a syncfs of the destination, against one download by
# our peers (which syncs the file system once before it commits).
#
#   MODE=files bench/compare.sh                   # 8000 x 16 KiB
#   MODE=files FILES=100000 FILE_KIB=4 bench/compare.sh
#
# BIN_B=other/lanspread-checker (files mode) also times a second build of
# ours in each round (the two swap places every round), for a before/after
# ratio from one run: between separate runs, this disk's state moves every
# figure by a fifth or more.
#
# Needs nginx, sshd, curl and scp (files mode: sshd and rsync); as root it
# installs the missing ones with apt-get. Figures taken while the machine is busy are noise: check `uptime`.
set -euo pipefail

SIZE_MIB=${SIZE_MIB:-2048}
BIN=${BIN:-$(dirname "$0")/../target/release/lanspread-checker}
BASE=${DIR:-/var/tmp}
HTTP_PORT=${HTTP_PORT:-18080}
SSH_PORT=${SSH_PORT:-12222}

[ -x "$BIN" ] || { echo "no peer binary at $BIN (cargo build --release)" >&2; exit 2; }

MODE=${MODE:-file}
case $MODE in file | files) ;; *) echo "MODE is file or files, not $MODE" >&2; exit 2 ;; esac
BIN_B=${BIN_B:-}
if [ -n "$BIN_B" ]; then
	[ "$MODE" = files ] || { echo "BIN_B races a second build in MODE=files only" >&2; exit 2; }
	[ -x "$BIN_B" ] || { echo "no peer binary at BIN_B=$BIN_B" >&2; exit 2; }
fi
need=()
[ -x /usr/sbin/sshd ] || need+=(openssh-server)
command -v scp >/dev/null || need+=(openssh-client)
if [ "$MODE" = files ]; then
	command -v rsync >/dev/null || need+=(rsync)
else
	command -v nginx >/dev/null || need+=(nginx)
	command -v curl >/dev/null || need+=(curl)
fi
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
[ "$MODE" = files ] || truncate -s "${SIZE_MIB}M" "$WORK/src/bf1942.eti"

now() { date +%s.%N; }
# MiB/s for SIZE_MIB over the seconds between two `now`s.
rate() { awk -v m="$SIZE_MIB" -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", m / (b - a) }'; }
# The middle one of its arguments, and a / b to two places.
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

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
if [ "$MODE" = file ]; then
	nginx -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" &
	NGINX_PID=$!
fi

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

# Files mode: one tree of FILES random files of FILE_KIB KiB, 500 a folder,
# copied by rsync over ssh and by our peers in turns, ROUNDS times.
if [ "$MODE" = files ]; then
	FILES=${FILES:-8000}
	FILE_KIB=${FILE_KIB:-16}
	per=500
	tree="$WORK/src/tree"
	for ((d = 0; d * per < FILES; d++)); do
		n=$((FILES - d * per < per ? FILES - d * per : per))
		mkdir -p "$tree/d$d"
		head -c $((n * FILE_KIB * 1024)) /dev/urandom | split -b "${FILE_KIB}K" -a 3 -d - "$tree/d$d/f"
	done
	[ "$(find "$tree" -type f | wc -l)" = "$FILES" ] || { echo "built a tree of the wrong size" >&2; exit 3; }
	find "$tree" -type f -exec cat {} + >/dev/null
	MIB=$(awk -v f="$FILES" -v k="$FILE_KIB" 'BEGIN { printf "%.1f", f * k / 1024 }')
	echo "tree: $FILES files x $FILE_KIB KiB ($MIB MiB) in $tree; destination: $WORK/dst; load: $(cut -d' ' -f1-3 /proc/loadavg)"
	SSH="ssh -c aes128-gcm@openssh.com -p $SSH_PORT -i $WORK/ssh/user_key -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR"
	# Seconds from starting rsync to the destination file system synced.
	# Each copy goes to its own folder and all are deleted at the end: ext4
	# creating files just after tens of thousands were deleted scans for
	# inodes not recently freed (`recently_deleted` in `ext4_create`, 60 %
	# of a profile), which made every round slower than the one before.
	copy_rsync() {
		local t0 t1 dst="$WORK/dst/rsync$1"
		t0=$(now)
		rsync -a -e "$SSH" "$(id -un)@127.0.0.1:$tree/" "$dst/"
		sync -f "$WORK/dst"
		t1=$(now)
		[ "$(find "$dst" -type f | wc -l)" = "$FILES" ] || { echo "rsync copied the wrong number of files" >&2; exit 3; }
		awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }'
	}
	# Seconds from the download command to download-finished (synced).
	# $1 names the copy's folder, $2 is the build (default BIN).
	ours_tree() {
		mkdir -p "$WORK/dst/ours$1"
		"${2:-$BIN}" bench transfer --tree "$tree" --dir "$WORK/dst/ours$1" --keep |
			tee -a "$WORK/ours.log" |
			sed -n 's/^result .*wall_ms=\([0-9]*\) .*max_peak_rss_kib=\([0-9]*\)$/\1 \2/p' |
			awk '{ printf "%.3f %s\n", $1 / 1000, $2 }'
	}
	ROUNDS=${ROUNDS:-3}
	A_RSYNC=() A_OURS=() A_B=() RSS=0
	# One copy by our build $1 ("" is BIN, b is BIN_B) into round $2's folder,
	# its seconds appended to A_OURS or A_B.
	ours_round() {
		local v r bin=$BIN
		[ -z "$1" ] || bin=$BIN_B
		read -r v r < <(ours_tree "$1$2" "$bin") || true
		[ -n "${v:-}" ] || { echo "our bench ${1:+of BIN_B }failed (KEEP=1 keeps $WORK/ours.log)" >&2; exit 3; }
		if [ -z "$1" ]; then A_OURS+=("$v"); else A_B+=("$v"); fi
		RSS=$((r > RSS ? r : RSS))
	}
	for round in $(seq "$ROUNDS"); do
		A_RSYNC+=("$(copy_rsync "$round")")
		# BIN and BIN_B swap places every round: each copy leaves its files
		# on the disk, and a fuller disk is a slower one.
		if [ -n "$BIN_B" ] && ((round % 2 == 0)); then
			ours_round b "$round"
			ours_round "" "$round"
		else
			ours_round "" "$round"
			[ -z "$BIN_B" ] || ours_round b "$round"
		fi
		line="round $round: rsync ${A_RSYNC[-1]} s, lanspread ${A_OURS[-1]} s"
		[ -z "$BIN_B" ] || line+=", BIN_B ${A_B[-1]} s"
		echo "$line; load $(cut -d' ' -f1 /proc/loadavg)"
	done
	RSYNC=$(median "${A_RSYNC[@]}")
	OURS=$(median "${A_OURS[@]}")
	echo
	printf '%-28s %8s   %s\n' "copy of the tree (median)" "seconds" "every round"
	printf '%-28s %8s   %s\n' "rsync -a over ssh + syncfs" "$RSYNC" "${A_RSYNC[*]}"
	printf '%-28s %8s   %s\n' "lanspread, 1 source" "$OURS" "${A_OURS[*]}"
	[ -z "$BIN_B" ] || printf '%-28s %8s   %s\n' "lanspread BIN_B, 1 source" "$(median "${A_B[@]}")" "${A_B[*]}"
	echo
	echo "lanspread speed / rsync: $(ratio "$RSYNC" "$OURS")  (target >= 1.00 for 8000 x 16 KiB, >= 1.30 for 100000 x 4 KiB)"
	if [ -n "$BIN_B" ]; then
		echo "BIN_B speed / rsync:     $(ratio "$RSYNC" "$(median "${A_B[@]}")")"
		echo "BIN speed / BIN_B:       $(ratio "$(median "${A_B[@]}")" "$OURS")  (> 1: BIN is faster)"
	fi
	echo "peak RSS per peer:       max $((RSS / 1024)) MiB  (target <= 64${BIN_B:+; BIN and BIN_B})"
	echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
	exit 0
fi

# Every copy reads this one file, from a warm page cache: a cold sparse
# file costs its first reader ~as much CPU (zero-filling the cache) as the
# transfer itself, which would favour whichever tool comes second.
cat "$WORK/src/bf1942.eti" >/dev/null
echo "file: ${SIZE_MIB} MiB sparse; destination: $WORK/dst; load: $(cut -d' ' -f1-3 /proc/loadavg)"

# Each copy: the clock runs from starting the client to the file being
# synced. Ours: `bench transfer` times from its `download` command to
# `download-finished`, which the peer prints after syncing every file.
# Runs a copy command that writes $WORK/dst/NAME.eti, syncs the file, checks
# its size and prints the MiB/s from starting the command to the sync.
timed_copy() {
	local name=$1 t0 t1
	shift
	t0=$(now)
	"$@"
	sync "$WORK/dst/$name.eti"
	t1=$(now)
	[ "$(stat -c %s "$WORK/dst/$name.eti")" = $((SIZE_MIB << 20)) ] || { echo "$name got a short file" >&2; exit 3; }
	rm -f "$WORK/dst/$name.eti"
	rate "$t0" "$t1"
}
copy_curl() {
	timed_copy curl curl -fsS -o "$WORK/dst/curl.eti" "http://127.0.0.1:$HTTP_PORT/bf1942.eti"
}
copy_scp() {
	timed_copy scp scp -q -c aes128-gcm@openssh.com -P "$SSH_PORT" -i "$WORK/ssh/user_key" \
		-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR \
		"$(id -un)@127.0.0.1:$WORK/src/bf1942.eti" "$WORK/dst/scp.eti"
}
# Prints "MiB/s peak-RSS-KiB"; $1 sources, then extra `bench transfer` flags.
ours() {
	local n=$1
	shift
	"$BIN" bench transfer --size "${SIZE_MIB}MiB" --sources "$n" --dir "$WORK/dst" --eti "$WORK/src/bf1942.eti" "$@" |
		tee -a "$WORK/ours.log" |
		sed -n 's/^result .*wall_mib_per_s=\([0-9.]*\) .*max_peak_rss_kib=\([0-9]*\)$/\1 \2/p'
}

# The copies take turns, ROUNDS times, so a burst of load elsewhere on the
# machine hits all of them alike; the medians are compared.
ROUNDS=${ROUNDS:-3}
A_NGINX=() A_SCP=() A_ONE=() A_TWO=() A_BUF=() RSS=0
for round in $(seq "$ROUNDS"); do
	v=$(copy_curl)
	A_NGINX+=("$v")
	v=$(copy_scp)
	A_SCP+=("$v")
	for n in 1 2; do
		read -r v r < <(ours "$n") || true
		[ -n "${v:-}" ] || { echo "our bench with $n source(s) failed (KEEP=1 keeps $WORK/ours.log)" >&2; exit 3; }
		if [ "$n" = 1 ]; then A_ONE+=("$v"); else A_TWO+=("$v"); fi
		RSS=$((r > RSS ? r : RSS))
	done
	# For orientation only (no target): one source writing through the page
	# cache like curl and scp do, instead of around it.
	read -r v r < <(ours 1 --buffered-writes) || true
	[ -n "${v:-}" ] || { echo "our bench with --buffered-writes failed" >&2; exit 3; }
	A_BUF+=("$v")
	echo "round $round: nginx->curl ${A_NGINX[-1]}, scp ${A_SCP[-1]}, 1 source ${A_ONE[-1]}, 2 sources ${A_TWO[-1]}, 1 source buffered ${A_BUF[-1]} MiB/s; load $(cut -d' ' -f1 /proc/loadavg)"
done
NGINX=$(median "${A_NGINX[@]}")
SCP=$(median "${A_SCP[@]}")
ONE=$(median "${A_ONE[@]}")
TWO=$(median "${A_TWO[@]}")
BUF=$(median "${A_BUF[@]}")

sed 's/^/  /' "$WORK/ours.log"
echo
printf '%-24s %8s   %s\n' "transfer (median)" "MiB/s" "every round"
printf '%-24s %8s   %s\n' "nginx -> curl" "$NGINX" "${A_NGINX[*]}"
printf '%-24s %8s   %s\n' "scp aes128-gcm" "$SCP" "${A_SCP[*]}"
printf '%-24s %8s   %s\n' "lanspread, 1 source" "$ONE" "${A_ONE[*]}"
printf '%-24s %8s   %s\n' "lanspread, 2 sources" "$TWO" "${A_TWO[*]}"
printf '%-24s %8s   %s\n' "lanspread, 1 src, cache" "$BUF" "${A_BUF[*]}"
echo
echo "1 source / nginx->curl: $(ratio "$ONE" "$NGINX")  (target >= 1.00)"
echo "1 source / scp:         $(ratio "$ONE" "$SCP")  (target >= 1.30)"
echo "2 sources / 1 source:   $(ratio "$TWO" "$ONE")  (target >= 0.95)"
echo "1 source buffered / nginx->curl: $(ratio "$BUF" "$NGINX")  (no target: --buffered-writes)"
echo "peak RSS per peer:      max $((RSS / 1024)) MiB  (target <= 64)"
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
