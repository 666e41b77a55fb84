#!/bin/bash
# bench/run.sh - `make bench`: performance figures of ewpd, as ratios measured
# in ONE run (these shared machines drift by up to 1.8x over minutes, so only
# figures taken together mean anything). See bench/README.md.
#
#   1. RSA-2048 sign/verify rate (openssl speed), x cores = signing ceiling
#   2. signed Echo (Accept-Signature: rsa-sha256) req/s vs that ceiling
#   3. verify-only Echo req/s vs nginx serving a static file of the same size
#   4. Institutions get, 10 hei_id per signed GET, signed response, from
#      PostgreSQL on 127.0.0.1: req/s vs the signing ceiling and vs signed
#      Echo, p50/p99, worker RSS, PostgreSQL CPU
#   5. peak RSS (VmHWM) of the ewpd master and of each worker
#   6. load + index time of a synthetic 5,000-HEI catalogue
#   7. `ewpctl sync institutions` of 1,000 partners served by a local ewpd
#      (TLS) from a synthetic catalogue: wall time, signed exchanges/s vs
#      the signing ceiling, where the time goes, row counts checked
#   8. nominations between two ewpd nodes (bench/mobility-bench.mjs):
#      CNR -> get -> store throughput of BENCH_MOBILITIES (2000) mobilities,
#      CPU of each ewpd and PostgreSQL, vs the signing ceiling; the drain of
#      BENCH_BACKLOG (10000) CNRs queued while the partner was down (short
#      backoff; default backoff + ewpctl jobs retry --partner)
#   9. the staff portal, on the bench node and its database with
#      BENCH_STUDENTS (10000) incoming students stored through
#      ewp.omobility_store() (bench/seed-portal.sql) and a gestionnaire
#      signed in: dashboard and student file req/s, p50/p99 (vs signed
#      Echo), PostgreSQL CPU per page, the CSV export of all students, and
#      sign-ins/s (bench/portal-logins.mjs) vs scrypt measured alone
# p50/p99 latency is given for every wrk run. ewpd serves with that
# synthetic catalogue plus the bench's own two hosts (when
# bench/gen-catalogue.mjs is present), so its memory is realistic.
#
# Loopback only; starts its own ewpd, nginx and PostgreSQL and stops them by
# PID; all files live in a temp dir removed at exit. A failing step is
# reported and the others still run; the script exits 1 when any step
# FAILED (a wrong status or body in a wrk run, a sync that left rows
# behind...). Tunables (environment): BENCH_DURATION (5s, signed run),
# BENCH_VERIFY_DURATION (3s, verify-only and nginx runs: each request must
# be signed beforehand, and 5 s would need ~300,000 of them),
# BENCH_INST_DURATION (5s), BENCH_THREADS (2), BENCH_CONNS (50),
# BENCH_SIGNED_REQS (40000), BENCH_VERIFY_REQS (200000), BENCH_INST_REQS
# (20000), BENCH_INSTITUTIONS (1000: seeded, asked for and synced),
# BENCH_SYNC_HOSTS (10), BENCH_HEIS (5000), BENCH_MOBILITIES (2000),
# BENCH_BACKLOG (10000: 0 skips the backlog runs), BENCH_STUDENTS (10000),
# BENCH_PORTAL_DURATION (5s), BENCH_PORTAL_CONNS (10), BENCH_LOGINS (100),
# BUILD (build).
set -u

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top" || exit 1
# Everything printed is kept in bench/out/bench-<UTC time>.log (bench/out/
# is git-ignored), and the headline figures in results-<UTC time>.tsv.
if [ -z "${BENCH_LOG:-}" ]; then
	mkdir -p bench/out
	stamp=$(date -u +%Y%m%dT%H%M%SZ)
	export BENCH_LOG="$top/bench/out/bench-$stamp.log" BENCH_RESULTS="$top/bench/out/results-$stamp.tsv"
	"$top/bench/run.sh" "$@" 2>&1 | tee "$BENCH_LOG"
	rc=${PIPESTATUS[0]}
	printf '(output kept in %s; figures in %s)\n' "${BENCH_LOG#"$top"/}" "${BENCH_RESULTS#"$top"/}"
	exit "$rc"
fi
BUILD=${BUILD:-build}
ewpd="$top/$BUILD/ewpd"
ewpctl="$top/$BUILD/ewpctl"
NPROC=$(nproc)
DUR=${BENCH_DURATION:-5s}
DUR_VERIFY=${BENCH_VERIFY_DURATION:-3s}
THREADS=${BENCH_THREADS:-2}
CONNS=${BENCH_CONNS:-50}
N_SIGNED=${BENCH_SIGNED_REQS:-40000}
N_VERIFY=${BENCH_VERIFY_REQS:-200000}
N_HEIS=${BENCH_HEIS:-5000}
DUR_INST=${BENCH_INST_DURATION:-5s}
N_INST_REQS=${BENCH_INST_REQS:-20000}
N_INST=${BENCH_INSTITUTIONS:-1000}
SYNC_HOSTS=${BENCH_SYNC_HOSTS:-10}
HZ=$(getconf CLK_TCK)
START=$(date +%s)

tmp=$(mktemp -d /tmp/ewpd-bench.XXXXXX) || exit 1
started=() # PIDs of the daemons this script started, and only those
pgpid=     # the postmaster this script started (pg_ctl daemonises it)
FAILS=0    # steps that FAILED: the exit status is 1 when any did

stop_pid() { # PID: SIGTERM, wait up to 5 s, then SIGKILL
	local pid=$1 i=0 keep=() p
	# forget it first, so that cleanup never signals a recycled PID
	for p in "${started[@]+"${started[@]}"}"; do [ "$p" = "$pid" ] || keep+=("$p"); done
	started=("${keep[@]+"${keep[@]}"}")
	kill -0 "$pid" 2>/dev/null || return 0
	kill -TERM "$pid" 2>/dev/null
	while kill -0 "$pid" 2>/dev/null && [ $i -lt 50 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	if kill -0 "$pid" 2>/dev/null; then
		echo "  (pid $pid ignored SIGTERM for 5 s: SIGKILL)"
		kill -KILL "$pid" 2>/dev/null
	fi
	wait "$pid" 2>/dev/null
	return 0
}

# The postmaster is no child of ours: SIGINT (fast shutdown), wait up to
# 10 s, then SIGQUIT (immediate shutdown).
pg_stop() {
	local pid=$pgpid i=0
	[ -n "$pid" ] || return 0
	pgpid=
	kill -INT "$pid" 2>/dev/null
	while kill -0 "$pid" 2>/dev/null && [ $i -lt 100 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	if kill -0 "$pid" 2>/dev/null; then
		echo "  (postmaster $pid still up after 10 s: SIGQUIT)"
		kill -QUIT "$pid" 2>/dev/null
	fi
	return 0
}

cleanup() {
	local pid
	for pid in "${started[@]+"${started[@]}"}"; do
		stop_pid "$pid"
	done
	pg_stop
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say() { printf '%s\n' "$*"; }
na() { echo "${1:-n/a}"; }
hdr() { printf '\n== %s\n' "$*"; }
fail() {
	printf '  FAILED: %s\n' "$*"
	FAILS=$((FAILS + 1))
}
# awk arithmetic on possibly missing values: prints n/a when any arg is empty.
calc() { # FORMAT EXPR VAR=VALUE...
	local fmt=$1 expr=$2
	shift 2
	local v
	for v in "$@"; do
		case ${v#*=} in '' | n/a) { echo n/a; return; } ;; esac
	done
	local args=(-v "fmt=$fmt")
	for v in "$@"; do args+=(-v "$v"); done
	awk "${args[@]}" "BEGIN { x = $expr; if (x != x) print \"n/a\"; else printf fmt \"\\n\", x }" 2>/dev/null || echo n/a
}
free_port() {
	node -e "const s=require('net').createServer().listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})"
}
wait_http() { # URL [SECONDS [CURL_ARGS...]]: until it answers 200 (default 10 s)
	local url=$1 i=0 max=$((${2:-10} * 10))
	shift
	[ $# -gt 0 ] && shift
	until curl -sf -o /dev/null "$@" "$url"; do
		i=$((i + 1))
		[ $i -gt $max ] && return 1
		sleep 0.1
	done
}
# Sum of utime+stime (ticks) of the given PIDs (fields 14, 15 of stat).
cpu_ticks() {
	local pid sum=0 f
	for pid in "$@"; do
		f=$(sed 's/^.*) //' "/proc/$pid/stat" 2>/dev/null) || continue
		set -- $f
		sum=$((sum + ${12} + ${13}))
	done
	echo $sum
}
# CPU ticks of this shell's waited-for children (cutime + cstime).
child_ticks() {
	local f
	f=$(sed 's/^.*) //' /proc/$$/stat)
	set -- $f
	echo $((${14} + ${15}))
}
children_of() { cat "/proc/$1/task/$1/children" 2>/dev/null; }
# Busy and total ticks of the whole machine (/proc/stat "cpu" line).
machine_ticks() { awk '$1 == "cpu" { t = 0; for (i = 2; i <= 9; i++) t += $i; print t - $5 - $6, t; exit }' /proc/stat; }
now() { date +%s.%N; }

# ---------------------------------------------------------------- tools
hdr "tools"
missing=()
command -v wrk >/dev/null || missing+=(wrk)
command -v nginx >/dev/null || missing+=(nginx-light)
if [ ${#missing[@]} -gt 0 ]; then
	if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
		say "installing ${missing[*]}"
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >"$tmp/apt.log" 2>&1 ||
			{ apt-get update -q >>"$tmp/apt.log" 2>&1 &&
				DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >>"$tmp/apt.log" 2>&1; } ||
			{ fail "apt-get install ${missing[*]}:"; tail -5 "$tmp/apt.log"; }
	else
		say "not root (or no apt-get): cannot install ${missing[*]}; the parts needing them are skipped"
	fi
fi
have_wrk=no have_nginx=no
command -v wrk >/dev/null && have_wrk=yes
command -v nginx >/dev/null && have_nginx=yes
say "cores: $NPROC; wrk: $have_wrk; nginx: $have_nginx; node: $(node --version 2>/dev/null || echo missing)"
say "load: wrk -t$THREADS -c$CONNS, keep-alive, loopback, -d$DUR (signed) / -d$DUR_VERIFY (verify-only, nginx);"
say "      wrk shares the $NPROC cores with the server"

# ---------------------------------------------------------------- 1. RSA
hdr "1. RSA-2048 (openssl speed -seconds 3 rsa2048, one core)"
rsa_sign='' rsa_verify=''
if openssl speed -seconds 3 rsa2048 >"$tmp/speed.out" 2>&1; then
	read -r rsa_sign rsa_verify < <(awk '/^rsa 2048 bits/ { print $6, $7; exit }' "$tmp/speed.out")
fi
if [ -n "$rsa_sign" ]; then
	ceiling=$(calc '%.0f' 's * n' s="$rsa_sign" n="$NPROC")
	say "  sign/s: $rsa_sign  verify/s: $rsa_verify  (one core)"
	say "  signing ceiling: $rsa_sign x $NPROC cores = $ceiling signed responses/s"
else
	ceiling=
	fail "no 'rsa 2048 bits' line from openssl speed:"
	tail -5 "$tmp/speed.out"
fi

# ---------------------------------------------------------------- catalogue
bigcat=
hdr "synthetic catalogue ($N_HEIS HEIs)"
if [ -f bench/gen-catalogue.mjs ]; then
	if node bench/gen-catalogue.mjs "$N_HEIS" "$tmp/catalogue-$N_HEIS.xml" >"$tmp/gen.log" 2>&1; then
		bigcat="$tmp/catalogue-$N_HEIS.xml"
		sed 's/^/  /' "$tmp/gen.log"
	else
		fail "gen-catalogue.mjs:"
		tail -5 "$tmp/gen.log"
	fi
else
	say "  not available: bench/gen-catalogue.mjs is missing (ewpd gets a 2-host catalogue)"
fi

# ---------------------------------------------------------------- database
# One throwaway cluster on 127.0.0.1 (TCP, as a database on another host
# would be reached; fsync off as in the tests): database "bench" holds the
# synthetic partners, served by the bench node (step 4) and by the partner
# node of the sync (step 7); database "syncer" is the syncing side's.
hdr "PostgreSQL: throwaway cluster on 127.0.0.1, $N_INST synthetic institutions"
pg_ok=no pgci=
pgbin=
for d in /usr/lib/postgresql/*/bin; do [ -x "$d/initdb" ] && pgbin=$d; done
as_pg() { # initdb refuses root: the cluster runs as postgres then
	if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
# CPU ticks of the cluster: the postmaster with its reaped children (a
# backend that ended in between) and its live children.
pg_ticks() {
	[ -n "$pgpid" ] || return 0
	local f kids
	f=$(sed 's/^.*) //' "/proc/$pgpid/stat" 2>/dev/null) || return 0
	kids=$(children_of "$pgpid")
	set -- $f
	# shellcheck disable=SC2086 # one PID per word
	echo $((${12} + ${13} + ${14} + ${15} + $(cpu_ticks $kids)))
}
pgsql() { # DB SQL...: psql, unaligned, tuples only, stop at the first error
	local db=$1
	shift
	psql "$pgci dbname=$db" -X -q -A -t -v ON_ERROR_STOP=1 "$@"
}
if [ -z "$pgbin" ] || ! command -v psql >/dev/null; then
	say "  skipped: PostgreSQL server binaries or psql not found (apt-get install postgresql):"
	say "  steps 4 and 7 are skipped"
elif [ ! -x "$ewpctl" ]; then
	fail "$ewpctl not built: no database steps"
else
	chmod 755 "$tmp" # the postgres user must reach its directory
	pgdir="$tmp/pg"
	mkdir -p "$pgdir"
	[ "$(id -u)" = 0 ] && chown postgres "$pgdir"
	pgport=$(free_port)
	t0=$(now)
	if ! as_pg "$pgbin/initdb" -D "$pgdir/data" -A trust -U postgres --no-sync -E UTF8 --locale=C \
		>"$tmp/initdb.log" 2>&1; then
		fail "initdb:"
		tail -5 "$tmp/initdb.log"
	elif ! as_pg "$pgbin/pg_ctl" -D "$pgdir/data" -w -l "$pgdir/server.log" \
		-o "-k $pgdir -p $pgport -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off" \
		start >/dev/null 2>&1; then
		fail "pg_ctl start:"
		tail -5 "$pgdir/server.log"
		pgpid=$(head -1 "$pgdir/data/postmaster.pid" 2>/dev/null)
	else
		pgpid=$(head -1 "$pgdir/data/postmaster.pid")
		pgci="hostaddr=127.0.0.1 port=$pgport user=postgres"
		if pgsql postgres -c 'CREATE DATABASE bench' -c 'CREATE DATABASE syncer' &&
			"$ewpctl" migrate --dir sql --conninfo "$pgci dbname=bench" >"$tmp/migrate.log" 2>&1 &&
			"$ewpctl" migrate --dir sql --conninfo "$pgci dbname=syncer" >>"$tmp/migrate.log" 2>&1 &&
			pgsql bench -v n="$N_INST" -f bench/seed-institutions.sql >"$tmp/seed.log" 2>&1; then
			read -r n_e n_u n_a n_c < <(pgsql bench -F ' ' -c "
				SELECT (SELECT count(*) FROM smile.etablissement),
				       (SELECT count(*) FROM smile.composante),
				       (SELECT count(*) FROM smile.address),
				       (SELECT count(*) FROM smile.contact)")
			say "  postmaster pid $pgpid, 127.0.0.1:$pgport; databases bench and syncer migrated"
			say "  bench: $n_e institutions, $n_u units, $n_a addresses, $n_c contacts (bench/seed-institutions.sql);"
			say "  ready after $(calc '%.1f' 'b - a' a="$t0" b="$(now)") s"
			if [ "$n_e" = "$N_INST" ]; then
				pg_ok=yes
			else
				fail "the seed made $n_e institutions instead of $N_INST"
			fi
		else
			fail "creating, migrating or seeding the databases:"
			cat "$tmp/migrate.log" "$tmp/seed.log" 2>/dev/null | tail -10
		fi
	fi
fi

# ---------------------------------------------------------------- ewpd node
hdr "ewpd node (workers = $NPROC, tls = off, log level warn)"
node_ok=no
master=
port=$(free_port)
mkdir -p "$tmp/node/keys" && chmod 700 "$tmp/node/keys"
genkey() { # NAME: KEY.pem (0600) and KEY.pem.pub, with ewpctl when it works
	local k="$tmp/node/keys/$1.pem"
	if [ -x "$ewpctl" ] && "$ewpctl" keys generate --dir "$tmp/node/keys" "$1" >/dev/null 2>&1; then
		return 0
	fi
	rm -f "$k" "$k.pub"
	(umask 077 && openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$k" 2>/dev/null) &&
		openssl pkey -in "$k" -pubout -out "$k.pub" 2>/dev/null
}
keyid() { openssl pkey -pubin -in "$tmp/node/keys/$1.pem.pub" -outform DER | sha256sum | cut -d' ' -f1; }
der64() { openssl pkey -pubin -in "$tmp/node/keys/$1.pem.pub" -outform DER | base64 -w0; }
[ -x "$ewpctl" ] || say "  ($ewpctl missing: keys made with openssl genpkey instead)"
keys_ok=yes
for k in client server partner; do
	genkey $k || { keys_ok=no; fail "cannot generate key $k"; }
done
if [ ! -x "$ewpd" ]; then
	fail "$ewpd not built (make all): every ewpd figure is skipped"
elif [ $keys_ok = yes ]; then
	cat >"$tmp/node/catalogue.small.xml" <<XML
<?xml version="1.0" encoding="UTF-8"?>
<catalogue xmlns="https://github.com/erasmus-without-paper/ewp-specs-api-registry/tree/stable-v1">
  <host>
    <apis-implemented>
      <echo xmlns="https://github.com/erasmus-without-paper/ewp-specs-api-echo/blob/stable-v2/manifest-entry.xsd" version="2.0.1">
        <url>http://127.0.0.1:$port/ewp/echo</url>
      </echo>
    </apis-implemented>
    <institutions-covered><hei-id>bench.smile-ewp.example</hei-id></institutions-covered>
    <client-credentials-in-use><rsa-public-key sha-256="$(keyid client)"/></client-credentials-in-use>
    <server-credentials-in-use><rsa-public-key sha-256="$(keyid server)"/></server-credentials-in-use>
  </host>
  <host>
    <institutions-covered><hei-id>partner.bench.example</hei-id></institutions-covered>
    <client-credentials-in-use><rsa-public-key sha-256="$(keyid partner)"/></client-credentials-in-use>
  </host>
  <institutions>
    <hei id="bench.smile-ewp.example"><name xml:lang="en">SMILE Bench University</name></hei>
    <hei id="partner.bench.example"><name xml:lang="en">Bench Partner University</name></hei>
  </institutions>
  <binaries>
$(for k in client server partner; do
		printf '    <rsa-public-key sha-256="%s">%s</rsa-public-key>\n' "$(keyid $k)" "$(der64 $k)"
	done)
  </binaries>
</catalogue>
XML
	# With the synthetic catalogue: our hosts, HEIs and keys spliced into it.
	if [ -n "$bigcat" ]; then
		awk -v small="$tmp/node/catalogue.small.xml" '
			BEGIN {
				while ((getline l < small) > 0) {
					if (l ~ /^  <host>/) part = "host"
					else if (l ~ /^  <institutions>/) { part = "inst"; continue }
					else if (l ~ /^  <binaries>/) { part = "bin"; continue }
					else if (l ~ /^  <\/(institutions|binaries|catalogue)>/) { part = ""; continue }
					if (part != "") add[part] = add[part] l "\n"
				}
			}
			!h && /^[ \t]*<host>/ { printf "%s", add["host"]; h = 1 }
			{ print }
			!i && /^[ \t]*<institutions>/ { printf "%s", add["inst"]; i = 1 }
			!b && /^[ \t]*<binaries>/ { printf "%s", add["bin"]; b = 1 }
			END { if (!(h && i && b)) exit 1 }
		' "$bigcat" >"$tmp/node/catalogue.xml" ||
			{ fail "cannot splice the bench hosts into $bigcat: ewpd gets a 2-host catalogue"; bigcat=; }
	fi
	[ -n "$bigcat" ] || cp "$tmp/node/catalogue.small.xml" "$tmp/node/catalogue.xml"
	say "  catalogue: $(grep -c '<host>' "$tmp/node/catalogue.xml") hosts, $(du -m "$tmp/node/catalogue.xml" | cut -f1) MB"
	cat >"$tmp/node/ewpd.conf" <<CONF
[server]
listen = 127.0.0.1:$port
tls = off
workers = $NPROC
public_url = http://127.0.0.1:$port
metrics = on
[log]
level = warn
[ewp]
hei_id = bench.smile-ewp.example
hei_name = SMILE Bench University
hei_name_lang = en
admin_email = ewp-admin@bench.smile-ewp.example
[keys]
keys_dir = keys
client_key = client.pem
server_key = server.pem
[registry]
url = file://$tmp/node/catalogue.xml
refresh = 3h
cache = catalogue.cache.xml
[portal]
strings = $top/conf/portal
CONF
	[ $pg_ok = yes ] && printf '[database]\nconninfo = %s dbname=bench\n' "$pgci" >>"$tmp/node/ewpd.conf"
	if ! "$ewpd" -n -c "$tmp/node/ewpd.conf" >"$tmp/node/check.log" 2>&1; then
		fail "ewpd -n rejects the bench configuration:"
		cat "$tmp/node/check.log"
	else
		t0=$(now)
		"$ewpd" -c "$tmp/node/ewpd.conf" >"$tmp/node/ewpd.log" 2>&1 &
		master=$!
		started+=("$master")
		if wait_http "http://127.0.0.1:$port/healthz" 60; then
			say "  first /healthz 200 after $(calc '%.1f' 'b - a' a="$t0" b="$(now)") s"
			# every worker up: as many distinct 200s as workers, or 10 s
			i=0
			while [ "$(children_of "$master" | wc -w)" -lt "$NPROC" ] && [ $i -lt 100 ]; do
				sleep 0.1
				i=$((i + 1))
			done
			sleep 0.5
			say "  ewpd master pid $master, workers: $(children_of "$master" | xargs), port $port"
			node_ok=yes
		else
			fail "ewpd did not answer /healthz within 60 s; its log:"
			cat "$tmp/node/ewpd.log"
		fi
	fi
fi

hwm() { awk -v k="$2:" '$1 == k { printf "%.1f\n", $2 / 1024 }' "/proc/$1/status" 2>/dev/null; } # PID VmHWM|VmRSS: MB
probe() { # extra signreqs args...
	node bench/signreqs.mjs probe --key "$tmp/node/keys/partner.pem" --host "127.0.0.1:$port" "$@"
}
body_bytes=
if [ $node_ok = yes ]; then
	if p=$(probe --body-out "$tmp/echo-body.xml"); then
		body_bytes=$(wc -c <"$tmp/echo-body.xml")
		say "  probe, verify-only: $p"
	else
		node_ok=no
		fail "a signed Echo request is refused ($p); ewpd figures skipped"
	fi
	if [ $node_ok = yes ]; then
		p=$(probe --accept-signature) && say "  probe, signed response: $p" ||
			fail "a signed Echo request with Accept-Signature is refused ($p)"
		case $p in *signature_header=no*) fail "no Signature header on the response: the signed run would not measure signing" ;; esac
	fi
fi

metrics_snap() { # FILE: the counters worth diffing
	curl -sf "http://127.0.0.1:$port/metrics" |
		grep -E '^ewpd_(requests_total|signature_failures_total|signed_responses|message_log_)' >"$1" 2>/dev/null
}
metrics_diff() { # BEFORE AFTER: the counters that moved
	awk 'NR == FNR { b[$1] = $2; next } { d = $2 - b[$1]; if (d != 0) printf "    %s +%d\n", $1, d }' "$1" "$2"
}

# ---------------------------------------------------------------- wrk runs
# run_wrk NAME DURATION URL "PREFIX [OPTION...]" SERVER_PIDS...: sets W_<NAME>_{rps,
# p50,p99,non2xx,errors,overflow,wall,srv_cpu,wrk_cpu,pg_cpu,busy,other,statuses}.
# OPTIONs are wrk-replay.lua's (cycle, expect=S:N). Every response must be
# a 200 (and, with expect=, every body checked must match): else FAILED.
run_wrk() {
	local name=$1 dur=$2 url=$3 sargs=$4
	shift 4
	local out="$tmp/wrk-$name.out" t0 t1 c0 c1 s0 s1 m0 m1 g0 g1
	c0=$(child_ticks)
	s0=$(cpu_ticks "$@")
	g0=$(pg_ticks)
	m0=$(machine_ticks)
	t0=$(now)
	# shellcheck disable=SC2086
	wrk -t"$THREADS" -c"$CONNS" -d"$dur" --latency -s bench/wrk-replay.lua "$url" -- $sargs >"$out" 2>&1
	local rc=$?
	t1=$(now)
	m1=$(machine_ticks)
	g1=$(pg_ticks)
	s1=$(cpu_ticks "$@")
	c1=$(child_ticks)
	sed 's/^/    /' "$out"
	[ $rc -eq 0 ] || fail "wrk exited with status $rc"
	# the status of every response, and the bodies sampled (wrk-replay.lua)
	local stline statuses checked badbody
	stline=$(sed -n 's/^STATUS //p' "$out")
	statuses=${stline% checked=*}
	checked=$(sed -n 's/.* checked=\([0-9]*\).*/\1/p' <<<"$stline")
	badbody=$(sed -n 's/.* badbody=\([0-9]*\).*/\1/p' <<<"$stline")
	printf -v "W_${name}_statuses" '%s' "$statuses"
	if [ -z "$stline" ]; then
		fail "no STATUS line from wrk-replay.lua: the statuses were not counted"
	elif [ -n "$(tr ' ' '\n' <<<"$statuses" | grep -v '^200=' | grep .)" ] || [ -z "$statuses" ]; then
		fail "not every response was a 200 (status=count: ${statuses:-none}): this run measured errors"
	fi
	case " $sargs " in
	*" expect="*)
		if [ "${checked:-0}" = 0 ] || [ "${badbody:-1}" != 0 ]; then
			fail "bodies checked: ${checked:-0}, of which ${badbody:-?} without the expected content (${sargs##* })"
		else
			say "  statuses: $statuses; $checked bodies checked (every 50th), all with ${sargs##* }"
		fi
		;;
	*) say "  statuses: $statuses" ;;
	esac
	local rps p50 p99 non2xx errors used avail overflow
	rps=$(awk '/^Requests\/sec:/ { print $2 }' "$out")
	# Latency Distribution lines: "50%  812.00us" -> milliseconds
	tolat() { awk -v q="$1" '$1 == q && NF == 2 { v = $2; u = v; sub(/[0-9.]+/, "", u); sub(/[a-z]+$/, "", v);
		m = (u == "us") ? 0.001 : (u == "ms") ? 1 : (u == "s") ? 1000 : (u == "m") ? 60000 : 0;
		if (m) printf "%.2f\n", v * m; exit }' "$out"; }
	p50=$(tolat 50%)
	p99=$(tolat 99%)
	non2xx=$(awk '/Non-2xx or 3xx responses:/ { print $NF }' "$out")
	errors=$(awk '/Socket errors:/ { gsub(/,/, ""); print "connect " $4 ", read " $6 ", write " $8 ", timeout " $10 }' "$out")
	read -r used avail overflow < <(sed -n 's/^REPLAY used=\([0-9]*\) available=\([0-9]*\) overflow=\([0-9]*\)$/\1 \2 \3/p' "$out")
	printf -v "W_${name}_rps" '%s' "${rps:-}"
	printf -v "W_${name}_p50" '%s' "${p50:-}"
	printf -v "W_${name}_p99" '%s' "${p99:-}"
	printf -v "W_${name}_non2xx" '%s' "${non2xx:-0}"
	printf -v "W_${name}_errors" '%s' "${errors:-none}"
	printf -v "W_${name}_overflow" '%s' "${overflow:-}"
	local wall srv wrkc pgc=0
	wall=$(calc '%.3f' 'b - a' a="$t0" b="$t1")
	srv=$(calc '%.2f' '(b - a) / hz' a="$s0" b="$s1" hz="$HZ")
	wrkc=$(calc '%.2f' '(b - a) / hz' a="$c0" b="$c1" hz="$HZ")
	[ -n "$g0" ] && [ -n "$g1" ] && pgc=$(calc '%.2f' '(b - a) / hz' a="$g0" b="$g1" hz="$HZ")
	printf -v "W_${name}_wall" '%s' "$wall"
	printf -v "W_${name}_srv_cpu" '%s' "$srv"
	printf -v "W_${name}_wrk_cpu" '%s' "$wrkc"
	printf -v "W_${name}_pg_cpu" '%s' "$pgc"
	say "  replayed: ${used:-?} of ${avail:-?} pre-signed requests handed out, overflow ${overflow:-?}"
	if [ "${overflow:-0}" != 0 ]; then
		fail "wrk needed more requests than were generated (${overflow} fell back to GET /healthz): req/s is mixed and not reported; raise the request count or shorten the run"
		printf -v "W_${name}_rps" '%s' "" # ratios built on it become n/a
		printf -v "W_${name}_overflowed" '%s' yes
	fi
	local busy other
	busy=$(calc '%.0f' '100 * (b1 - b0) / (t1 - t0)' b0="${m0% *}" t0="${m0#* }" b1="${m1% *}" t1="${m1#* }")
	other=$(calc '%.0f' '(b - 100 * (s + w + g) / (wa * n) > 0.5) ? b - 100 * (s + w + g) / (wa * n) : 0' b="$busy" s="$srv" w="$wrkc" g="$pgc" wa="$wall" n="$NPROC")
	printf -v "W_${name}_busy" '%s' "$busy"
	printf -v "W_${name}_other" '%s' "$other"
	local pgsay=
	[ "$pgc" != 0 ] && [ "$pgc" != 0.00 ] && pgsay=", PostgreSQL $pgc s ($(calc '%.0f%%' '100 * s / (w * n)' s="$pgc" w="$wall" n="$NPROC"))"
	say "  CPU over ${wall}s wall x $NPROC cores: server $srv s ($(calc '%.0f%%' '100 * s / (w * n)' s="$srv" w="$wall" n="$NPROC")), wrk $wrkc s ($(calc '%.0f%%' '100 * s / (w * n)' s="$wrkc" w="$wall" n="$NPROC"))$pgsay; machine busy ${busy}%, of which other processes ~${other}%"
	case $other in n/a) ;; *) [ "$other" -gt 10 ] && say "  NOTE: other processes took ${other}% of the machine during this run: the figures are depressed" ;; esac
	[ -n "$rps" ] || fail "no Requests/sec in wrk's output"
}

ewpd_pids() { echo "$master" "$(children_of "$master" | xargs)"; }

# WRK_OPTS: extra wrk-replay.lua options (expect=S:N) for the next run.
ewpd_run() { # NAME LABEL DURATION COUNT [signreqs.mjs gen options...]
	local name=$1 label=$2 dur=$3 count=$4
	shift 4
	[ -n "$label" ] && hdr "$label"
	if [ $node_ok != yes ] || [ $have_wrk != yes ]; then
		say "  skipped (ewpd not serving or wrk missing)"
		return
	fi
	if ! node bench/signreqs.mjs gen --key "$tmp/node/keys/partner.pem" --host "127.0.0.1:$port" \
		--count "$count" --slices "$THREADS" --out "$tmp/reqs-$name" "$@" >"$tmp/gen-$name.log" 2>&1; then
		fail "signreqs.mjs gen:"
		sed "s/^/    /" "$tmp/gen-$name.log"
		return
	fi
	sed "s/^/  /" "$tmp/gen-$name.log"
	metrics_snap "$tmp/m0"
	# shellcheck disable=SC2046 # one PID per word
	run_wrk "$name" "$dur" "http://127.0.0.1:$port/" "$tmp/reqs-$name${WRK_OPTS:+ $WRK_OPTS}" $(ewpd_pids)
	rm -f "$tmp/reqs-$name".*
	metrics_snap "$tmp/m1"
	say "  ewpd counters that moved (/metrics):"
	metrics_diff "$tmp/m0" "$tmp/m1"
	local n
	n="W_${name}_non2xx"
	n=${!n:-0}
	if [ "$n" != 0 ]; then
		fail "$n responses were not 2xx/3xx; ewpd's log (warnings and errors, last 20):"
		tail -20 "$tmp/node/ewpd.log" | sed 's/^/    /'
	fi
	if ! kill -0 "$master" 2>/dev/null; then
		fail "the ewpd master died during the run; its log:"
		tail -20 "$tmp/node/ewpd.log" | sed 's/^/    /'
		node_ok=no
	fi
}

ewpd_run signed "2. signed Echo: Accept-Signature: rsa-sha256 (each response RSA-signed)" "$DUR" "$N_SIGNED" --accept-signature
ewpd_run verify "3a. verify-only Echo (no Accept-Signature)" "$DUR_VERIFY" "$N_VERIFY"

# ---------------------------------------------------------------- nginx
hdr "3b. nginx static file of the same size as ewpd's Echo response body (${body_bytes:-?} bytes)"
if [ $have_nginx != yes ] || [ $have_wrk != yes ]; then
	say "  skipped (nginx or wrk missing)"
elif [ -z "$body_bytes" ]; then
	say "  skipped (no Echo body from ewpd to size the file)"
else
	ng="$tmp/nginx"
	nport=$(free_port)
	mkdir -p "$ng/www" "$ng/tmp" "$ng/logs"
	cp "$tmp/echo-body.xml" "$ng/www/echo.xml"
	chmod 755 "$tmp" "$ng" "$ng/www" && chmod 644 "$ng/www/echo.xml" # workers may run as nobody
	userline=
	[ "$(id -u)" = 0 ] && userline="user nobody nogroup;"
	cat >"$ng/nginx.conf" <<NGINX
$userline
worker_processes $NPROC;
daemon off;
pid $ng/nginx.pid;
error_log $ng/logs/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $ng/tmp/body;
    proxy_temp_path $ng/tmp/proxy;
    fastcgi_temp_path $ng/tmp/fastcgi;
    uwsgi_temp_path $ng/tmp/uwsgi;
    scgi_temp_path $ng/tmp/scgi;
    keepalive_requests 1000000;
    keepalive_timeout 60s;
    types { text/xml xml; }
    server {
        listen 127.0.0.1:$nport;
        root $ng/www;
    }
}
NGINX
	nginx -c "$ng/nginx.conf" -p "$ng" >"$ng/logs/stderr.log" 2>&1 &
	npid=$!
	started+=("$npid")
	if ! wait_http "http://127.0.0.1:$nport/echo.xml"; then
		fail "nginx did not serve the file within 10 s:"
		cat "$ng/logs/stderr.log" "$ng/logs/error.log" 2>/dev/null | tail -10
	else
		nbytes=$(curl -s "http://127.0.0.1:$nport/echo.xml" | wc -c)
		say "  nginx pid $npid, workers: $(children_of "$npid" | xargs), port $nport, body $nbytes bytes"
		# The same replay script and request sizes as ewpd's runs, so wrk's
		# own cost per request is the same; signatures are random bytes.
		# nginx checks no signature: 2,000 requests replayed in a cycle.
		node bench/signreqs.mjs gen --fake --path /echo.xml --host "127.0.0.1:$nport" \
			--count 2000 --slices "$THREADS" --out "$tmp/reqs-nginx" | sed 's/^/  /'
		# shellcheck disable=SC2046 # one PID per word
		run_wrk nginx "$DUR_VERIFY" "http://127.0.0.1:$nport/" "$tmp/reqs-nginx cycle" "$npid" $(children_of "$npid")
		rm -f "$tmp/reqs-nginx".*
	fi
	stop_pid "$npid"
fi

# ---------------------------------------------------------------- 4. Institutions
hdr "4. Institutions get: 10 hei_id per signed GET, signed response, PostgreSQL on 127.0.0.1"
inst_rss_max=
if [ $pg_ok != yes ]; then
	say "  skipped (no database: see above)"
elif [ $node_ok != yes ] || [ $have_wrk != yes ]; then
	say "  skipped (ewpd not serving or wrk missing)"
else
	inst_gen=(--path /ewp/institutions --hei-ids "$N_INST" --per-request 10 --accept-signature)
	if p=$(probe "${inst_gen[@]}" --expect '<hei>:10' --body-out "$tmp/inst-body.xml"); then
		say "  probe: $p (10 <hei> elements)"
		say "  each request asks for 10 consecutive ids of the $N_INST (p1..p$N_INST.partners.bench.example);"
		say "  each HEI: 2 names, 2 addresses, 2 contacts, 3 units; answer ~$(wc -c <"$tmp/inst-body.xml") bytes"
		declare -A rss0=()
		for w in $(children_of "$master"); do rss0[$w]=$(hwm "$w" VmRSS); done
		WRK_OPTS="expect=<hei>:10"
		ewpd_run inst "" "$DUR_INST" "$N_INST_REQS" "${inst_gen[@]}"
		WRK_OPTS=
		for w in $(children_of "$master"); do
			r=$(hwm "$w" VmRSS)
			say "  worker $w: RSS ${rss0[$w]:-?} MB before the run, $r MB after (peak $(hwm "$w" VmHWM) MB)"
			inst_rss_max=$(calc '%.1f' '(a > b) ? a : b' a="${inst_rss_max:-0}" b="$r")
		done
	else
		fail "a signed Institutions request is refused or incomplete ($p)"
	fi
fi

# ---------------------------------------------------------------- 5. RSS
# every exchange of the runs above went to ewp.message_log: written or dropped
sleep 1
ml_rows=$(curl -sf "http://127.0.0.1:$port/metrics" | awk '$1 == "ewpd_message_log_rows_total" { print $2 }')
ml_dropped=$(curl -sf "http://127.0.0.1:$port/metrics" | awk '$1 == "ewpd_message_log_dropped_total" { print $2 }')
hdr "5. peak RSS (VmHWM) after the runs"
say "  message log: ${ml_rows:-?} rows written, ${ml_dropped:-?} dropped (the database could not keep up)"
rss_master='' rss_worker_max=''
if [ -n "$master" ] && kill -0 "$master" 2>/dev/null; then
	rss_master=$(hwm "$master" VmHWM)
	say "  master $master: peak ${rss_master} MB (now $(hwm "$master" VmRSS) MB)"
	for w in $(children_of "$master"); do
		r=$(hwm "$w" VmHWM)
		say "  worker $w: peak ${r} MB (now $(hwm "$w" VmRSS) MB)"
		rss_worker_max=$(calc '%.1f' '(a > b) ? a : b' a="${rss_worker_max:-0}" b="$r")
	done
	[ -n "$rss_worker_max" ] || fail "no worker found under /proc/$master/task/$master/children"
	say "  (VmHWM counts pages shared with the master since fork as well; catalogue:"
	say "   $(grep -c '<host>' "$tmp/node/catalogue.xml") hosts)"
	stop_pid "$master"
	if grep -qiE 'error|fatal|warn' "$tmp/node/ewpd.log"; then
		say "  ewpd log, warnings and errors (last 10):"
		grep -iE 'error|fatal|warn' "$tmp/node/ewpd.log" | tail -10 | sed 's/^/    /'
	fi
else
	say "  skipped (ewpd not running)"
fi

# ---------------------------------------------------------------- 6. catalogue
hdr "6. catalogue: load + index a synthetic $N_HEIS-HEI catalogue"
cat_ms=
if [ ! -f bench/gen-catalogue.mjs ] || [ ! -f bench/bench-registry.c ]; then
	say "  not available: bench/gen-catalogue.mjs and bench/bench-registry.c are needed"
else
	objs=()
	for m in log xmalloc buf codec keys xml registry registry_map registry_load registry_elems; do
		objs+=("$BUILD/gateway/$m.o")
	done
	stale=
	for o in "${objs[@]}"; do [ "$o" -nt "$BUILD/bench-registry" ] && stale=1; done
	if [ ! -x "$BUILD/bench-registry" ] || [ bench/bench-registry.c -nt "$BUILD/bench-registry" ] ||
		[ -n "$stale" ]; then
		# shellcheck disable=SC2046
		cc -std=c17 -D_GNU_SOURCE -O2 -Igateway $(pkg-config --cflags libxml-2.0 openssl) \
			-o "$BUILD/bench-registry" bench/bench-registry.c "${objs[@]}" \
			$(pkg-config --libs libxml-2.0 openssl) >"$tmp/cc.log" 2>&1 ||
			{ fail "cannot build bench-registry:"; tail -10 "$tmp/cc.log"; rm -f "$BUILD/bench-registry"; }
	fi
	if [ -x "$BUILD/bench-registry" ] && [ -n "$bigcat" ]; then
		"$BUILD/bench-registry" "$bigcat" >"$tmp/breg.out" 2>&1 ||
			fail "bench-registry exited with status $?"
		sed 's/^/  /' "$tmp/breg.out"
		cat_ms=$(sed -n 's/^load+index.*median \([0-9.]*\) ms.*/\1/p' "$tmp/breg.out")
	elif [ -x "$BUILD/bench-registry" ]; then
		say "  not available: no synthetic catalogue (see above)"
	else
		say "  not available: bench-registry could not be built"
	fi
fi

# ---------------------------------------------------------------- 7. sync
# A partner node (ewpd, TLS on, the "bench" database) answers Institutions
# and OUnits for every HEI of the synthetic catalogue; the syncing side is
# `ewpctl sync institutions` with its own keys and the "syncer" database.
hdr "7. institution sync: $N_INST partners served by a local ewpd (TLS), $SYNC_HOSTS hosts in the catalogue"
sync_wall='' sync_exch='' sync_ok=''
if [ $pg_ok != yes ]; then
	say "  skipped (no database: see above)"
elif [ ! -x "$ewpd" ] || [ ! -x "$ewpctl" ]; then
	fail "$ewpd or $ewpctl not built"
else
	sd="$tmp/sync"
	mkdir -p "$sd/keys" "$sd/tls" && chmod 700 "$sd/keys"
	pport=$(free_port)
	sync_setup=yes
	for k in syncer-client syncer-server partner-client partner-server; do
		"$ewpctl" keys generate --dir "$sd/keys" "$k" >/dev/null 2>&1 || { sync_setup=no; fail "ewpctl keys generate $k"; }
	done
	openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=localhost \
		-addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
		-keyout "$sd/tls/key.pem" -out "$sd/tls/cert.pem" 2>/dev/null || { sync_setup=no; fail "openssl req (TLS certificate)"; }
	if [ $sync_setup = yes ]; then
		if node bench/sync-catalogue.mjs --heis "$N_INST" --hosts "$SYNC_HOSTS" \
			--base "https://localhost:$pport" --partner-server-key "$sd/keys/partner-server.pem.pub" \
			--syncer-client-key "$sd/keys/syncer-client.pem.pub" --syncer-hei sync.bench.example \
			--out "$sd/catalogue.xml" >"$sd/gen.log" 2>&1; then
			sed 's/^/  /' "$sd/gen.log"
		else
			sync_setup=no
			fail "sync-catalogue.mjs:"
			tail -5 "$sd/gen.log"
		fi
	fi
	cat >"$sd/partner.conf" <<CONF
[server]
listen = 127.0.0.1:$pport
tls = on
tls_cert = tls/cert.pem
tls_key = tls/key.pem
workers = $NPROC
public_url = https://localhost:$pport
metrics = on
[log]
level = warn
[ewp]
hei_id = partners.bench.example
hei_name = Bench partner node
hei_name_lang = en
admin_email = ewp-admin@partners.bench.example
[keys]
keys_dir = keys
client_key = partner-client.pem
server_key = partner-server.pem
[registry]
url = file://$sd/catalogue.xml
refresh = 3h
cache = partner-catalogue.cache.xml
[database]
conninfo = $pgci dbname=bench
CONF
	# the syncing node: reads the catalogue from its cache file
	cat >"$sd/syncer.conf" <<CONF
[server]
tls = off
public_url = https://sync.bench.example
[ewp]
hei_id = sync.bench.example
hei_name = SMILE Bench University
hei_name_lang = en
admin_email = ewp-admin@sync.bench.example
[keys]
keys_dir = keys
client_key = syncer-client.pem
server_key = syncer-server.pem
[registry]
url = file://$sd/catalogue.xml
cache = catalogue.xml
[database]
conninfo = $pgci dbname=syncer
CONF
	pmaster=
	if [ $sync_setup != yes ]; then
		:
	elif ! "$ewpd" -n -c "$sd/partner.conf" >"$sd/check.log" 2>&1; then
		fail "ewpd -n rejects the partner configuration:"
		cat "$sd/check.log"
	else
		"$ewpd" -c "$sd/partner.conf" >"$sd/partner.log" 2>&1 &
		pmaster=$!
		started+=("$pmaster")
		i=0
		if ! wait_http "https://localhost:$pport/healthz" 60 --cacert "$sd/tls/cert.pem"; then
			fail "the partner ewpd did not answer /healthz within 60 s; its log:"
			tail -20 "$sd/partner.log"
			pmaster=
		else
			while [ "$(children_of "$pmaster" | wc -w)" -lt "$NPROC" ] && [ $i -lt 100 ]; do
				sleep 0.1
				i=$((i + 1))
			done
			say "  partner ewpd pid $pmaster, workers: $(children_of "$pmaster" | xargs), https://localhost:$pport"
		fi
	fi
	if [ -n "$pmaster" ]; then
		pgsql syncer -c "INSERT INTO smile.etablissement (schac_id, names, is_local)
			VALUES ('sync.bench.example', '[{\"lang\":\"en\",\"name\":\"SMILE Bench University\"}]', true)"
		# /metrics lines of the two APIs: counts by status, handler time
		pmetrics() {
			curl -sf --cacert "$sd/tls/cert.pem" "https://localhost:$pport/metrics" |
				grep -E '^ewpd_(requests_total|request_duration_seconds_sum)\{api="(institutions|ounits)"' >"$1"
		}
		pmetrics "$sd/m0"
		# the partner's own PostgreSQL backends (its pool), to split the
		# cluster's CPU between the partner's queries and the syncing side
		bench_backends() { pgsql postgres -c "SELECT pid FROM pg_stat_activity WHERE datname = 'bench' AND pid <> pg_backend_pid()"; }
		declare -A pb0=()
		for b in $(bench_backends); do pb0[$b]=$(cpu_ticks "$b"); done
		# shellcheck disable=SC2046 # one PID per word
		{
			p0=$(cpu_ticks "$pmaster" $(children_of "$pmaster"))
			g0=$(pg_ticks)
			c0=$(child_ticks)
			m0=$(machine_ticks)
		}
		t0=$(now)
		"$ewpctl" -c "$sd/syncer.conf" sync institutions --cacert "$sd/tls/cert.pem" \
			--schemas "$top/ewp-schemas" --timeout 30 >"$sd/sync.out" 2>"$sd/sync.err"
		src=$?
		t1=$(now)
		# shellcheck disable=SC2046
		{
			m1=$(machine_ticks)
			c1=$(child_ticks)
			g1=$(pg_ticks)
			p1=$(cpu_ticks "$pmaster" $(children_of "$pmaster"))
		}
		pmetrics "$sd/m1"
		pbt=0
		for b in $(bench_backends); do pbt=$((pbt + $(cpu_ticks "$b") - ${pb0[$b]:-0})); done
		sync_wall=$(calc '%.2f' 'b - a' a="$t0" b="$t1")
		sync_ok=$(grep -cE '^[^ ]+ +ok ' "$sd/sync.out")
		nfailed=$(grep -cE '^[^ ]+ +failed ' "$sd/sync.out")
		say "  ewpctl sync institutions: exit $src after $sync_wall s; partners ok $sync_ok, failed $nfailed"
		if [ "$src" != 0 ] || [ "$sync_ok" != "$N_INST" ]; then
			fail "the sync did not copy all $N_INST partners (exit $src); first failures and stderr:"
			grep -E ' failed ' "$sd/sync.out" | head -5 | sed 's/^/    /'
			head -5 "$sd/sync.err" | sed 's/^/    /'
			tail -5 "$sd/partner.log" | sed 's/^/    /'
		fi
		# what the partner served: exchanges by API and status, handler time
		mdelta() { # REGEX: sum of the deltas of the matching lines
			awk -v re="$1" 'NR == FNR { b[$1] = $2; next } $1 ~ re { d += $2 - b[$1] } END { printf "%.6f\n", d }' "$sd/m0" "$sd/m1"
		}
		n_inst=$(calc '%.0f' 'x' x="$(mdelta 'requests_total\\{api="institutions",status="200"')")
		n_ou=$(calc '%.0f' 'x' x="$(mdelta 'requests_total\\{api="ounits",status="200"')")
		n_all=$(calc '%.0f' 'x' x="$(mdelta 'requests_total')")
		h_sum=$(mdelta 'request_duration_seconds_sum')
		sync_exch=$n_all
		say "  signed exchanges (partner /metrics): $n_all = Institutions $n_inst + OUnits $n_ou (status 200);"
		say "  each: request signed by ewpctl, verified by the partner; response signed by the partner,"
		say "  verified and schema-validated by ewpctl"
		[ "$n_all" = "$((n_inst + n_ou))" ] || fail "the partner answered $((n_all - n_inst - n_ou)) requests with another status than 200"
		[ "$n_inst" = "$N_INST" ] || fail "$n_inst Institutions requests for $N_INST partners"
		# the rows: the syncing database must hold what the partner serves
		count_rows() { # DB: institutions, units, addresses, contacts of the synthetic partners
			pgsql "$1" -F ' ' -c "
				WITH e AS (SELECT id FROM smile.etablissement WHERE schac_id LIKE '%.partners.bench.example'),
				     c AS (SELECT c.id FROM smile.composante c JOIN e ON e.id = c.etablissement_id)
				SELECT (SELECT count(*) FROM e), (SELECT count(*) FROM c),
				       (SELECT count(*) FROM smile.address
				         WHERE etablissement_id IN (SELECT id FROM e) OR composante_id IN (SELECT id FROM c)),
				       (SELECT count(*) FROM smile.contact
				         WHERE etablissement_id IN (SELECT id FROM e) OR composante_id IN (SELECT id FROM c))"
		}
		want=$(count_rows bench)
		got=$(count_rows syncer)
		say "  partner database: institutions, units, addresses, contacts = ${want// /, }"
		say "  syncing database:                                          ${got// /, }"
		if [ -z "$got" ] || [ "$got" != "$want" ] || [ "${got%% *}" != "$N_INST" ]; then
			fail "the syncing database does not hold the $N_INST partners with all their units, addresses and contacts"
		fi
		ewpctl_cpu=$(calc '%.2f' '(b - a) / hz' a="$c0" b="$c1" hz="$HZ")
		partner_cpu=$(calc '%.2f' '(b - a) / hz' a="$p0" b="$p1" hz="$HZ")
		sync_pg_cpu=$(calc '%.2f' '(b - a) / hz' a="$g0" b="$g1" hz="$HZ")
		pg_partner=$(calc '%.2f' 'x / hz' x="$pbt" hz="$HZ")
		pg_syncer=$(calc '%.2f' 'a - b' a="$sync_pg_cpu" b="$pg_partner")
		busy=$(calc '%.0f' '100 * (b1 - b0) / (t1 - t0)' b0="${m0% *}" t0="${m0#* }" b1="${m1% *}" t1="${m1#* }")
		sync_rate=$(calc '%.1f' 'n / w' n="$sync_exch" w="$sync_wall")
		per_ms=$(calc '%.2f' '1000 * w / n' n="$sync_exch" w="$sync_wall")
		say "  $sync_rate exchanges/s, $per_ms ms per exchange, $(calc '%.1f' '1000 * w / n' n="$N_INST" w="$sync_wall") ms per partner"
		say "  where the wall time goes (one exchange at a time, so the parts add up):"
		rest=$(calc '%.2f' 'w - h - c - g' w="$sync_wall" h="$h_sum" c="$ewpctl_cpu" g="$pg_syncer")
		part() { say "    $(printf '%-58s %7s s %5s' "$1" "$2" "($(calc '%.0f%%' '100 * x / w' x="$2" w="$sync_wall"))")"; }
		part "partner ewpd in its handlers (/metrics duration sums)" "$(calc '%.2f' 'x' x="$h_sum")"
		part "ewpctl CPU (signing, TLS, verifying, XSD, SQL)" "$ewpctl_cpu"
		part "PostgreSQL CPU of the syncing database (its transactions)" "$pg_syncer"
		part "the rest: waiting (loopback, TCP, scheduling)" "$rest"
		say "    (PostgreSQL CPU of the partner's own queries, inside its handlers: $pg_partner s;"
		say "     partner ewpd CPU $partner_cpu s; machine busy ${busy}% of $NPROC cores)"
		sync_rest=$rest
		wait_ms=$(calc '%.0f' '1000 * r / n' r="$rest" n="$sync_exch")
		if [ "$wait_ms" != n/a ] && [ "$wait_ms" -ge 30 ]; then
			say "  NOTE: ~$wait_ms ms of waiting per exchange with every CPU idle: the mark of Nagle's"
			say "  algorithm meeting a delayed ACK (a response written in several pieces on a socket"
			say "  without TCP_NODELAY waits ~40 ms for the ACK of the first piece)"
		fi
	fi
	[ -n "$pmaster" ] && stop_pid "$pmaster"
	if [ -f "$sd/partner.log" ] && grep -qiE 'error|fatal|warn' "$sd/partner.log"; then
		say "  partner ewpd log, warnings and errors (last 10):"
		grep -iE 'error|fatal|warn' "$sd/partner.log" | tail -10 | sed 's/^/    /'
	fi
fi

# ---------------------------------------------------------------- 8. mobilities
# Two real ewpd nodes (tests/integration/lib/two-nodes.mjs: TLS, keys,
# one PostgreSQL each under $tmp/mob): the nomination flow's throughput
# and the drain of a backlog. bench/mobility-bench.mjs does the work and
# prints "RESULT name value" lines, copied into the results TSV.
N_MOB=${BENCH_MOBILITIES:-2000}
N_BACKLOG=${BENCH_BACKLOG:-10000}
hdr "8. nominations between two ewpd nodes: CNR -> get -> store of $N_MOB mobilities; a backlog of $N_BACKLOG CNRs"
declare -A MOB=()
if [ -z "$pgbin" ] || ! command -v psql >/dev/null; then
	say "  skipped: PostgreSQL server binaries or psql not found"
elif [ ! -x "$ewpd" ] || [ ! -x "$ewpctl" ]; then
	fail "$ewpd or $ewpctl not built"
else
	if [ ! -d tests/integration/node_modules/http-signature ]; then
		(cd tests/integration && npm ci --no-audit --no-fund --loglevel=error >/dev/null 2>&1)
	fi
	mkdir -p "$tmp/mob" && chmod 755 "$tmp" "$tmp/mob" # the clusters run as postgres
	TMPDIR="$tmp/mob" EWPD="$ewpd" EWPCTL="$ewpctl" node bench/mobility-bench.mjs \
		--n "$N_MOB" --backlog "$N_BACKLOG" --cores "$NPROC" ${rsa_sign:+--rsa-sign "$rsa_sign"} >"$tmp/mob.out" 2>&1
	mrc=$?
	grep -v '^RESULT ' "$tmp/mob.out"
	while read -r _ k v; do MOB[$k]=$v; done < <(grep '^RESULT ' "$tmp/mob.out")
	[ "$mrc" = 0 ] || fail "mobility-bench.mjs exited $mrc (see FAILED above)"
fi

# ---------------------------------------------------------------- 9. portal
# The staff portal (gateway/portal/) of the bench node, started again from
# its ewpd.conf on the "bench" database of the cluster above, once
# BENCH_STUDENTS incoming students are stored there by the core's own
# functions (bench/seed-portal.sql). One gestionnaire signs in once; wrk
# replays GETs with that session's cookie (wrk-replay.lua "cycle": every
# status counted, bodies sampled, so a run of redirects to the sign-in
# page FAILS). Sign-ins are made by bench/portal-logins.mjs.
N_STUDENTS=${BENCH_STUDENTS:-10000}
DUR_PORTAL=${BENCH_PORTAL_DURATION:-5s}
N_LOGINS=${BENCH_LOGINS:-100}
PORTAL_CONNS=${BENCH_PORTAL_CONNS:-10}
[ "$PORTAL_CONNS" -ge "$THREADS" ] || PORTAL_CONNS=$THREADS # wrk needs a connection per thread
hdr "9. staff portal: $N_STUDENTS incoming students, a gestionnaire's dashboard, file, export and sign-ins"
declare -A PL=()
portal_rss_max='' portal_hwm_max='' scrypt_all='' csv_s='' csv_bytes='' csv_rows='' student_id='' portal_ok=no
# Until ewpd has answered what wrk sent before it stopped (requests wait
# for a database connection: ~1 s of them at 10 connections) and no query
# of the bench database runs, so the next run measures only its own.
portal_drain() {
	local t0 i=0 a b
	t0=$(now)
	portal_count() { curl -sf "http://127.0.0.1:$port/metrics" | awk '/^ewpd_requests_total\{api="portal"/ { n += $2 } END { print n + 0 }'; }
	b=$(portal_count)
	while [ $i -lt 300 ]; do
		sleep 0.2
		a=$b
		b=$(portal_count)
		[ "$a" = "$b" ] && [ "$(pgsql bench -c "SELECT count(*) FROM pg_stat_activity
			WHERE datname = 'bench' AND state = 'active' AND pid <> pg_backend_pid()")" = 0 ] && break
		i=$((i + 1))
	done
	say "  ewpd and PostgreSQL idle $(calc '%.1f' 'b - a' a="$t0" b="$(now)") s after wrk stopped"
}
# portal_wrk NAME PATH EXPECT: wrk on one GET with the session cookie
portal_wrk() {
	local name=$1 path=$2 expect=$3 i
	for ((i = 0; i < THREADS; i++)); do
		printf 'GET %s HTTP/1.1\r\nHost: 127.0.0.1:%s\r\nCookie: %s\r\n\r\n\0' "$path" "$port" "$session" >"$tmp/reqs-$name.$i"
	done
	metrics_snap "$tmp/m0"
	# shellcheck disable=SC2046 # one PID per word
	CONNS=$PORTAL_CONNS run_wrk "$name" "$DUR_PORTAL" "http://127.0.0.1:$port/" "$tmp/reqs-$name cycle expect=$expect" $(ewpd_pids)
	rm -f "$tmp/reqs-$name".*
	portal_drain
	metrics_snap "$tmp/m1"
	say "  ewpd counters that moved (/metrics):"
	metrics_diff "$tmp/m0" "$tmp/m1"
	i="W_${name}_non2xx"
	if [ "${!i:-0}" != 0 ]; then
		fail "${!i} responses were not 2xx/3xx; ewpd's log (last 20):"
		tail -20 "$tmp/node/ewpd.log" | sed 's/^/    /'
	fi
}
if [ $pg_ok != yes ]; then
	say "  skipped (no database: see above)"
elif [ ! -x "$ewpd" ] || [ ! -x "$ewpctl" ] || [ ! -f "$tmp/node/ewpd.conf" ]; then
	fail "no ewpd, ewpctl or bench node configuration (see above)"
elif [ $have_wrk != yes ]; then
	say "  skipped (wrk missing)"
else
	pd="$tmp/portal"
	mkdir -p "$pd" && chmod 700 "$pd"
	t0=$(now)
	if ! pgsql bench -v n="$N_STUDENTS" -v partners="$N_INST" -v hei=bench.smile-ewp.example \
		-f bench/seed-portal.sql >"$pd/seed.out" 2>&1; then
		fail "bench/seed-portal.sql:"
		tail -5 "$pd/seed.out" | sed 's/^/    /'
	else
		read -r n_nom n_la < <(xargs <"$pd/seed.out")
		read -r n_in n_insc n_steps n_lav < <(pgsql bench -F ' ' -c "
			SELECT (SELECT count(*) FROM smile.mobility WHERE NOT is_outgoing),
			       (SELECT count(*) FROM smile.inscription),
			       (SELECT count(DISTINCT step_id) FROM smile.inscription),
			       (SELECT count(*) FROM smile.la_version)" 2>/dev/null)
		say "  seeded in $(calc '%.1f' 'b - a' a="$t0" b="$(now)") s (one ewp.omobility_store() statement, then smile.la_store_incoming(), ANALYZE):"
		say "  $n_nom nominations created, $n_la learning agreements stored; the core holds ${n_in:-?} incoming"
		say "  mobilities, ${n_insc:-?} registrations in ${n_steps:-?} workflow steps, ${n_lav:-?} LA versions; ${N_INST} partners, 8 composantes"
		if [ "$n_nom" != "$N_STUDENTS" ] || [ "${n_in:-}" != "$N_STUDENTS" ]; then
			fail "$n_nom nominations stored, ${n_in:-?} incoming mobilities, for $N_STUDENTS students"
		else
			portal_ok=yes
		fi
	fi
	pw=$(openssl rand -hex 16)
	if [ $portal_ok = yes ] && ! printf '%s\n' "$pw" | "$ewpctl" user add bench.gest --name "Bench Gestionnaire" \
		--role gestionnaire --password-stdin --conninfo "$pgci dbname=bench" >"$pd/user.out" 2>&1; then
		portal_ok=no
		fail "ewpctl user add:"
		sed 's/^/    /' "$pd/user.out"
	fi
	master=
	if [ $portal_ok = yes ]; then
		"$ewpd" -c "$tmp/node/ewpd.conf" >>"$tmp/node/ewpd.log" 2>&1 &
		master=$!
		started+=("$master")
		if wait_http "http://127.0.0.1:$port/healthz" 60; then
			i=0
			while [ "$(children_of "$master" | wc -w)" -lt "$NPROC" ] && [ $i -lt 100 ]; do
				sleep 0.1
				i=$((i + 1))
			done
			sleep 0.5
			say "  bench node started again: ewpd master pid $master, workers: $(children_of "$master" | xargs)"
		else
			portal_ok=no
			fail "ewpd did not answer /healthz within 60 s; its log:"
			tail -20 "$tmp/node/ewpd.log" | sed 's/^/    /'
		fi
	fi
	# one sign-in, as a browser: the form's pre-session cookie and token
	session=
	if [ $portal_ok = yes ]; then
		printf '%s' "$pw" >"$pd/pw"
		curl -s -c "$pd/jar" -o "$pd/login.html" "http://127.0.0.1:$port/portal/login"
		csrf=$(sed -n 's/.*name="csrf" value="\([0-9a-f]*\)".*/\1/p' "$pd/login.html" | head -1)
		code=$(curl -s -b "$pd/jar" -c "$pd/jar" -o /dev/null -w '%{http_code} %{redirect_url}' \
			--data-urlencode "csrf=$csrf" --data-urlencode username=bench.gest --data-urlencode "password@$pd/pw" \
			"http://127.0.0.1:$port/portal/login")
		session=$(awk -F'\t' '$6 == "ewp-session" { print $6 "=" $7 }' "$pd/jar")
		if [ "${code%% *}" != 303 ] || [ -z "$session" ]; then
			portal_ok=no
			fail "sign-in of bench.gest: status $code, session cookie ${session:+yes}${session:-none}"
		else
			say "  bench.gest (gestionnaire, ewpctl user add) signed in: 303 to ${code#* }, session cookie kept"
		fi
	fi
	if [ $portal_ok = yes ]; then
		student_id=$(pgsql bench -c "SELECT id FROM smile.mobility WHERE omobility_id = 'bench-110'")
		hdr "9a. GET /portal/dashboard (counts, lists to handle, first page of 100 of the $N_STUDENTS)"
		say "  $(curl -s -o "$pd/dash.html" -w '%{http_code}, %{size_download} bytes' -H "Cookie: $session" \
			"http://127.0.0.1:$port/portal/dashboard"); rows of the list: $(grep -o '<tr id="student-' "$pd/dash.html" | wc -l)"
		portal_wrk dash /portal/dashboard 'id="student-:101'
		dash_pg=$(calc '%.2f' '1000 * g / (r * w)' g="${W_dash_pg_cpu:-}" r="${W_dash_rps:-}" w="${W_dash_wall:-}")
		dash_ewpd=$(calc '%.2f' '1000 * s / (r * w)' s="${W_dash_srv_cpu:-}" r="${W_dash_rps:-}" w="${W_dash_wall:-}")
		say "  per request: PostgreSQL ${dash_pg} CPU-ms, ewpd ${dash_ewpd} CPU-ms"
		hdr "9b. GET /portal/students/$student_id (nomination, registration, learning agreement with a proposal waiting)"
		say "  $(curl -s -o "$pd/student.html" -w '%{http_code}, %{size_download} bytes' -H "Cookie: $session" \
			"http://127.0.0.1:$port/portal/students/$student_id")"
		portal_wrk student "/portal/students/$student_id" 'id="student-name":1'
		student_pg=$(calc '%.2f' '1000 * g / (r * w)' g="${W_student_pg_cpu:-}" r="${W_student_rps:-}" w="${W_student_wall:-}")
		student_ewpd=$(calc '%.2f' '1000 * s / (r * w)' s="${W_student_srv_cpu:-}" r="${W_student_rps:-}" w="${W_student_wall:-}")
		say "  per request: PostgreSQL ${student_pg} CPU-ms, ewpd ${student_ewpd} CPU-ms"
		hdr "9c. GET /portal/dashboard?format=csv: export of all $N_STUDENTS students, one download"
		read -r code csv_s csv_bytes < <(curl -s -o "$pd/export.csv" -w '%{http_code} %{time_total} %{size_download}\n' \
			-H "Cookie: $session" "http://127.0.0.1:$port/portal/dashboard?format=csv")
		csv_rows=$(($(wc -l <"$pd/export.csv") - 1))
		csv_s=$(calc '%.2f' 'x' x="$csv_s")
		say "  status $code, $csv_s s, $csv_bytes bytes, $csv_rows rows after the header ($(calc '%.0f' 'b / r' b="$csv_bytes" r="$csv_rows") bytes a row)"
		if [ "$code" != 200 ] || [ "$csv_rows" != "$N_STUDENTS" ]; then
			fail "the export answered $code with $csv_rows rows for $N_STUDENTS students"
			csv_s='' csv_bytes=''
		fi
		hdr "9d. sign-ins: scrypt (N=2^15, r=8, p=1) per password check, at most 2 at once per worker, 503 beyond"
		# alone: one process per core at once (the cores may share caches
		# and memory bandwidth: scrypt uses 32 MB a check)
		spids=()
		for ((i = 0; i < NPROC; i++)); do
			node bench/portal-logins.mjs scrypt --seconds 3 >"$pd/scrypt.$i.out" 2>&1 &
			spids+=($!)
		done
		wait "${spids[@]}" # only these: ewpd is a child too
		sed '/^RESULT /d; s/^/  /' "$pd"/scrypt.*.out
		scrypt_all=$(cat "$pd"/scrypt.*.out | awk '/^RESULT scrypt_per_s / { s += $3; n++ } END { if (n) printf "%.1f\n", s }')
		scrypt_rate=$(calc '%.1f' 's / n' s="$scrypt_all" n="$NPROC")
		[ -n "$scrypt_all" ] || fail "no scrypt rate measured"
		BENCH_PORTAL_PASSWORD=$pw node bench/portal-logins.mjs signins --url "http://127.0.0.1:$port" --user bench.gest \
			--burst "$N_LOGINS" --sustained "$N_LOGINS" --concurrency $((2 * NPROC)) >"$pd/signins.out" 2>&1
		lrc=$?
		sed '/^RESULT /d; s/^/  /' "$pd/signins.out"
		while read -r _ k v; do PL[$k]=$v; done < <(grep '^RESULT ' "$pd/signins.out")
		[ "$lrc" = 0 ] || fail "portal-logins.mjs exited $lrc (see above)"
		say "  scrypt ceiling, $NPROC processes at once: $(na "$scrypt_all") password checks/s ($(na "$scrypt_rate")/s a core)"
		[ "${PL[burst_503]:-0}" = 0 ] &&
			say "  NOTE: no 503 in the burst of $N_LOGINS: the cap of 2 checks a worker did not show (or the requests trickled in)"
		hdr "9e. ewpd after the portal runs"
		for w in $(children_of "$master"); do
			r=$(hwm "$w" VmRSS)
			h=$(hwm "$w" VmHWM)
			say "  worker $w: RSS $r MB (peak $h MB: a password check holds 32 MB while it runs)"
			portal_rss_max=$(calc '%.1f' '(a > b) ? a : b' a="${portal_rss_max:-0}" b="$r")
			portal_hwm_max=$(calc '%.1f' '(a > b) ? a : b' a="${portal_hwm_max:-0}" b="$h")
		done
		say "  sessions in ewp.portal_sessions: $(pgsql bench -c 'SELECT count(*) FROM ewp.portal_sessions')"
	fi
	if [ -n "$master" ]; then
		kill -0 "$master" 2>/dev/null || fail "the ewpd master died during the portal runs"
		stop_pid "$master"
	fi
	rm -f "$pd/pw"
fi

# ---------------------------------------------------------------- summary
r_signed=$(calc '%.2f' 'r / (s * n)' r="${W_signed_rps:-}" s="$rsa_sign" n="$NPROC")
# The server's own CPU: req/s per core actually used by ewpd, vs the RSA rate of one core.
r_signed_cpu=$(calc '%.2f' '(r * w / c) / s' r="${W_signed_rps:-}" w="${W_signed_wall:-}" c="${W_signed_srv_cpu:-}" s="$rsa_sign")
r_nginx=$(calc '%.2f' 'a / b' a="${W_verify_rps:-}" b="${W_nginx_rps:-}")
r_nginx_cpu=$(calc '%.2f' '(a / ac) / (b / bc)' a="${W_verify_rps:-}" ac="${W_verify_srv_cpu:-}" b="${W_nginx_rps:-}" bc="${W_nginx_srv_cpu:-}")
r_inst=$(calc '%.2f' 'r / (s * n)' r="${W_inst_rps:-}" s="$rsa_sign" n="$NPROC")
r_inst_echo=$(calc '%.2f' 'a / b' a="${W_inst_rps:-}" b="${W_signed_rps:-}")
r_inst_cpu=$(calc '%.2f' '(r * w / c) / s' r="${W_inst_rps:-}" w="${W_inst_wall:-}" c="${W_inst_srv_cpu:-}" s="$rsa_sign")
r_inst_pg=$(calc '%.2f' 'g / c' g="${W_inst_pg_cpu:-}" c="${W_inst_srv_cpu:-}")
sync_rate=${sync_rate:-}
r_sync=$(calc '%.3f' 'r / (s * n)' r="$sync_rate" s="$rsa_sign" n="$NPROC")
r_sync_seq=$(calc '%.2f' 'r / (s / 2)' r="$sync_rate" s="$rsa_sign")
share() { calc '%.0f%%' '100 * s / (w * n)' s="$1" w="$2" n="$NPROC"; }
r_dash_echo=$(calc '%.3f' 'a / b' a="${W_dash_rps:-}" b="${W_signed_rps:-}")
r_student_echo=$(calc '%.3f' 'a / b' a="${W_student_rps:-}" b="${W_signed_rps:-}")
r_signins=$(calc '%.2f' 'a / b' a="${PL[signins_per_s]:-}" b="${scrypt_all:-}")

hdr "summary (one run; compare ratios, not absolute figures)"
printf '  %-34s %10s %9s %9s %8s %7s %7s %7s %7s\n' "run" "req/s" "p50 ms" "p99 ms" "non-2xx" "server" "wrk" "pg" "other"
for n in signed verify nginx inst dash student; do
	case $n in
	signed) label="ewpd Echo, signed response" ;;
	verify) label="ewpd Echo, verify only" ;;
	nginx) label="nginx static, ${body_bytes:-?} bytes" ;;
	inst) label="ewpd Institutions, 10 ids, signed" ;;
	dash) label="portal dashboard, 1st page" ;;
	student) label="portal student file" ;;
	esac
	v() { local x="W_${n}_$1"; echo "${!x:-}"; }
	rps=$(v rps)
	[ "$(v overflowed)" = yes ] && rps=overflow
	p50=$(v p50) p99=$(v p99) nx=$(v non2xx) wall=$(v wall) sc=$(v srv_cpu) wc=$(v wrk_cpu) gc=$(v pg_cpu) ot=$(v other)
	printf '  %-34s %10s %9s %9s %8s %7s %7s %7s %7s\n' "$label" "$(na "$rps")" "$(na "$p50")" "$(na "$p99")" "$(na "$nx")" \
		"$(share "$sc" "$wall")" "$(share "$wc" "$wall")" "$(share "$gc" "$wall")" "$(na "$ot")%"
done
say "  (server / wrk / pg / other: share of the ${NPROC} cores used during the run by the server, by wrk,"
say "   by PostgreSQL and by every other process on the machine)"
printf '  %-34s %s\n' "RSA-2048 sign/s, verify/s (1 core)" "$(na "$rsa_sign") / $(na "$rsa_verify")"
printf '  %-34s %s\n' "ewpd peak RSS master / worker" "$(na "$rss_master") MB / $(na "$rss_worker_max") MB (max)"
printf '  %-34s %s\n' "ewpd worker RSS after Institutions" "$(na "$inst_rss_max") MB (max)"
printf '  %-34s %s\n' "catalogue $N_HEIS HEIs load+index" "$(na "$cat_ms") ms (median)"
printf '  %-34s %s\n' "sync of $N_INST partners" "$(na "$sync_wall") s wall, $(na "$sync_exch") signed exchanges, $(na "$sync_rate") exchanges/s"
printf '  %-34s %s\n' "$N_MOB nominations CNR->get->store" "$(na "${MOB[mob_per_s]:-}") mobilities/s, $(na "${MOB[mob_exchanges_per_s]:-}") exchanges/s, $(na "${MOB[mob_cpu_ms_per_mobility]:-}") CPU-ms each"
printf '  %-34s %s\n' "portal export, $N_STUDENTS students" "$(na "$csv_s") s, $(na "$csv_bytes") bytes (CSV, one download)"
printf '  %-34s %s\n' "portal sign-ins" "$(na "${PL[signins_per_s]:-}")/s sustained (scrypt alone, $NPROC at once: $(na "${scrypt_all:-}")/s); burst of $N_LOGINS: $(na "${PL[burst_303]:-}") x 303, $(na "${PL[burst_503]:-}") x 503"
printf '  %-34s %s\n' "ewpd worker RSS after the portal" "$(na "$portal_rss_max") MB (max; peak $(na "$portal_hwm_max") MB)"
printf '  %-34s %s\n' "backlog of $N_BACKLOG CNRs drained" "$(na "${MOB[backlog_short_backoff_drain_s]:-}") s (short backoff), $(na "${MOB[backlog_retry_partner_drain_s]:-}") s (jobs retry --partner)"
say ""
say "  wrk runs on the same $NPROC cores as the server, so the ratios against the"
say "  signing ceiling are pessimistic: ewpd got only the server share above. Per"
say "  ewpd CPU-second: signed echo = $(na "$r_signed_cpu") x one core's RSA sign rate;"
say "  Institutions = $(na "$r_inst_cpu") x (PostgreSQL adds $(na "$r_inst_pg") CPU-s per ewpd CPU-s);"
say "  verify-only echo = $(na "$r_nginx_cpu") x nginx's requests per CPU-second."
say "  The sync makes one exchange at a time: each needs two RSA signatures in"
say "  turn (ewpctl's request, the partner's response), so one sequential"
say "  stream cannot pass sign/s / 2 = $(calc '%.0f' 's / 2' s="$rsa_sign") exchanges/s."
say ""
say "signed echo / RSA sign ceiling: $(na "$r_signed") (target >= 0.9)"
say "verify-only echo / nginx: $(na "$r_nginx") (target >= 0.5)"
say "Institutions 10 ids / RSA sign ceiling: $(na "$r_inst"); / signed echo: $(na "$r_inst_echo")"
say "sync exchanges/s / RSA sign ceiling ($NPROC cores): $(na "$r_sync"); / sequential ceiling (sign/s / 2): $(na "$r_sync_seq")"
say "RSS per worker: $(na "$rss_worker_max") MB (target < 30)"
say "nominations stored/s: $(na "${MOB[mob_per_s]:-}") (target >= 500); / RSA sign ceiling: $(na "${MOB[mob_over_sign_ceiling]:-}"); on $NPROC dedicated cores at the measured CPU cost: $(na "${MOB[mob_per_s_dedicated_cores]:-}")"
say "portal dashboard ($N_STUDENTS students) / signed echo: $(na "$r_dash_echo"); student file / signed echo: $(na "$r_student_echo"); PostgreSQL CPU-ms per dashboard: $(na "${dash_pg:-}")"
say "portal sign-ins/s / scrypt alone ($NPROC processes: $(na "${scrypt_all:-}")/s): $(na "$r_signins"); CSV export of $N_STUDENTS: $(na "$csv_s") s"
say "message log during the runs: ${ml_rows:-?} rows written, ${ml_dropped:-?} dropped"
say "(bench took $(($(date +%s) - START)) s)"
# headline figures, one "name<TAB>value" a line, for scripts
{
	printf 'cores\t%s\nrsa_sign_per_s\t%s\nrsa_verify_per_s\t%s\n' "$NPROC" "$(na "$rsa_sign")" "$(na "$rsa_verify")"
	for n in signed verify nginx inst dash student; do
		for f in rps p50 p99 srv_cpu wrk_cpu pg_cpu wall statuses; do
			x="W_${n}_$f"
			printf '%s_%s\t%s\n' "$n" "$f" "$(na "${!x:-}")"
		done
	done
	printf 'signed_over_ceiling\t%s\nverify_over_nginx\t%s\n' "$(na "$r_signed")" "$(na "$r_nginx")"
	printf 'inst_over_ceiling\t%s\ninst_over_signed_echo\t%s\n' "$(na "$r_inst")" "$(na "$r_inst_echo")"
	printf 'inst_worker_rss_mb\t%s\nrss_master_mb\t%s\nrss_worker_mb\t%s\n' "$(na "$inst_rss_max")" "$(na "$rss_master")" "$(na "$rss_worker_max")"
	printf 'catalogue_load_ms\t%s\n' "$(na "$cat_ms")"
	printf 'sync_partners\t%s\nsync_ok\t%s\nsync_wall_s\t%s\nsync_exchanges\t%s\n' "$N_INST" "$(na "$sync_ok")" "$(na "$sync_wall")" "$(na "$sync_exch")"
	printf 'sync_exchanges_per_s\t%s\nsync_over_ceiling\t%s\nsync_over_sequential_ceiling\t%s\n' "$(na "$sync_rate")" "$(na "$r_sync")" "$(na "$r_sync_seq")"
	printf 'sync_partner_handlers_s\t%s\nsync_ewpctl_cpu_s\t%s\nsync_pg_syncer_cpu_s\t%s\nsync_waiting_s\t%s\n' \
		"$(calc '%.2f' 'x' x="${h_sum:-}")" "$(na "${ewpctl_cpu:-}")" "$(na "${pg_syncer:-}")" "$(na "${sync_rest:-}")"
	printf 'portal_students\t%s\nportal_dash_over_signed_echo\t%s\nportal_student_over_signed_echo\t%s\n' "$N_STUDENTS" "$(na "$r_dash_echo")" "$(na "$r_student_echo")"
	printf 'portal_dash_pg_cpu_ms\t%s\nportal_dash_ewpd_cpu_ms\t%s\nportal_student_pg_cpu_ms\t%s\nportal_student_ewpd_cpu_ms\t%s\n' \
		"$(na "${dash_pg:-}")" "$(na "${dash_ewpd:-}")" "$(na "${student_pg:-}")" "$(na "${student_ewpd:-}")"
	printf 'portal_csv_s\t%s\nportal_csv_bytes\t%s\nportal_worker_rss_mb\t%s\nportal_worker_peak_mb\t%s\n' \
		"$(na "$csv_s")" "$(na "$csv_bytes")" "$(na "$portal_rss_max")" "$(na "$portal_hwm_max")"
	printf 'portal_scrypt_per_s_one_core\t%s\nportal_scrypt_per_s_all_cores\t%s\n' "$(na "${scrypt_rate:-}")" "$(na "${scrypt_all:-}")"
	for k in "${!PL[@]}"; do printf 'portal_%s\t%s\n' "$k" "${PL[$k]}"; done | sort
	printf 'portal_signins_over_scrypt_ceiling\t%s\n' "$(na "$r_signins")"
	for k in "${!MOB[@]}"; do printf '%s\t%s\n' "$k" "${MOB[$k]}"; done | sort
	printf 'failed_steps\t%s\n' "$FAILS"
} >"${BENCH_RESULTS:-/dev/null}"
if [ "$FAILS" -gt 0 ]; then
	say "bench: $FAILS step(s) FAILED (see FAILED above): the figures they concern are not valid"
	exit 1
fi
