#!/bin/sh
# make demo: two ewpd nodes on loopback that know each other through a
# file:// Registry catalogue, sharing one throwaway PostgreSQL cluster (one
# database each), then node 1 syncs node 2's institution and units.
#
#   node 1 "hei"      our HEI, demo.smile-ewp.example, https://localhost:8443
#   node 2 "partner"  a German partner, uni-musterstadt.example, :8445
#
# Each node has its own keys (client + server), TLS certificate (signed by
# a demo CA, demo/ca.pem), configuration and database. Everything lives in
# $DEMO_DIR (default ./demo), removed by `make demo-stop`.
#
#   tests/demo/demo.sh         start the demo (a running one is stopped first)
#   tests/demo/demo.sh stop    stop both nodes and the cluster, remove the dir
#
# Environment: DEMO_DIR, EWP_DEMO_PORT (node 1, 8443), EWP_DEMO_PARTNER_PORT
# (node 2, node 1's + 2), EWP_DEMO_PG_PORT (the cluster's Unix socket, node
# 1's + 1), EWPD / EWPCTL (default build/ewpd, build/ewpctl).
set -eu

top=$(cd "$(dirname "$0")/../.." && pwd)
demo=${DEMO_DIR:-$top/demo}
case $demo in /*) ;; *) demo=$(pwd)/$demo ;; esac
port=${EWP_DEMO_PORT:-8443}
pport=${EWP_DEMO_PARTNER_PORT:-$((port + 2))}
pgport=${EWP_DEMO_PG_PORT:-$((port + 1))}
abspath() { case $1 in /*) echo "$1" ;; *) echo "$top/$1" ;; esac; }
ewpd=$(abspath "${EWPD:-build/ewpd}")
ewpctl=$(abspath "${EWPCTL:-build/ewpctl}")

HEI=demo.smile-ewp.example
PARTNER=uni-musterstadt.example
MARK=.ewp-demo # marks a directory this script made (and may remove)

# Is PID a live process (a zombie is not)?
alive() {
	kill -0 "$1" 2>/dev/null || return 1
	! grep -q '^[0-9]* ([^)]*) Z' "/proc/$1/stat" 2>/dev/null
}

# Stops every ewpd whose supervisor PID is in one of the files given: TERM
# to each supervisor (its workers drain and exit with it), then waits for
# the supervisors and their workers; what is left after 15 s gets KILL.
# A PID is only signalled while it still names an ewpd process.
is_ewpd() { [ "$(cat "/proc/$1/comm" 2>/dev/null)" = ewpd ]; }
stop_nodes() {
	pids=""
	for f in "$@"; do
		[ -f "$f" ] || continue
		pid=$(cat "$f")
		if [ -n "$pid" ] && is_ewpd "$pid"; then
			pids="$pids $pid $(cat "/proc/$pid/task/$pid/children" 2>/dev/null || true)"
			kill "$pid" 2>/dev/null || true
		fi
		rm -f "$f"
	done
	i=0
	while [ $i -lt 150 ]; do
		left=""
		for pid in $pids; do alive "$pid" && left="$left $pid"; done
		[ -z "$left" ] && return 0
		sleep 0.1
		i=$((i + 1))
	done
	for pid in $left; do
		if is_ewpd "$pid"; then
			echo "ewpd $pid still running after 15 s: killed" >&2
			kill -KILL "$pid" 2>/dev/null || true
		fi
	done
}

stop() {
	[ -d "$demo" ] || return 0
	if [ ! -f "$demo/$MARK" ] && [ -n "$(ls -A "$demo")" ]; then
		echo "$demo was not made by tests/demo/demo.sh: not touching it" >&2
		exit 1
	fi
	# ewpd first (by the supervisors' PIDs; workers exit with them), then
	# the cluster (pg_ctl stop, by the postmaster's PID file). demo/ewpd.pid
	# is where the one-node demo of earlier versions kept its PID.
	stop_nodes "$demo/ewpd.pid" "$demo"/*/ewpd.pid
	[ -d "$demo/pg" ] && "$top/tests/pg/pg.sh" stop "$demo/pg"
	rm -rf "$demo"
}

if [ "${1:-}" = stop ]; then
	stop
	echo "demo stopped"
	exit 0
fi

for b in "$ewpd" "$ewpctl"; do
	[ -x "$b" ] || {
		echo "$b not found: run make first" >&2
		exit 1
	}
done
if [ -d "$demo" ]; then
	echo "== a demo is already in $demo: stopping it first"
	stop
fi
# Both ports must be free (curl exits with 7 when nothing listens).
for p in "$port" "$pport"; do
	rc=0
	curl -s -o /dev/null --max-time 2 "http://127.0.0.1:$p/" || rc=$?
	if [ $rc -ne 7 ]; then
		echo "port $p is in use (a demo of another checkout?): choose others with" \
			"EWP_DEMO_PORT and EWP_DEMO_PARTNER_PORT" >&2
		exit 1
	fi
done
mkdir -p "$demo"
touch "$demo/$MARK"
trap '[ $? -eq 0 ] || echo "demo: failed; its files are in $demo, tests/demo/demo.sh stop (make demo-stop) cleans up" >&2' EXIT
chmod 755 "$demo" # the cluster may run as user postgres

# How the printed commands name files: relative to the repository root
# when the demo is in ./demo.
if [ "$demo" = "$top/demo" ]; then d=demo; else d=$demo; fi
case $ewpctl in "$top"/*) ctl=${ewpctl#"$top"/} ;; *) ctl=$ewpctl ;; esac

# ---- PostgreSQL: one throwaway cluster (Unix socket only), one database
# per node, each migrated and seeded with what its SMILE would hold.
pgbase=$("$top/tests/pg/pg.sh" start "$demo/pg" "$pgport")
pgbase=${pgbase% dbname=postgres}
db_hei="$pgbase dbname=ewpd_hei"
db_partner="$pgbase dbname=ewpd_partner"
psql "$pgbase dbname=postgres" -q -v ON_ERROR_STOP=1 \
	-c 'CREATE DATABASE ewpd_hei' -c 'CREATE DATABASE ewpd_partner'
for n in hei partner; do
	case $n in hei) conninfo=$db_hei ;; *) conninfo=$db_partner ;; esac
	echo "== node $n: database $conninfo"
	out=$("$ewpctl" migrate --dir "$top/sql" --conninfo "$conninfo")
	printf '%s\n' "$out" | sed 's/^/   /'
	psql "$conninfo" -q -v ON_ERROR_STOP=1 -f "$top/tests/demo/$n-data.sql"
done

# ---- TLS: a demo CA signs a localhost certificate for each node; every
# client (curl, ewpctl call, ewpctl sync) is given demo/ca.pem.
mkdir -p "$demo/ca"
chmod 700 "$demo/ca"
openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=SMILE EWP demo CA" \
	-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \
	-keyout "$demo/ca/ca.key" -out "$demo/ca.pem" 2>/dev/null
printf '%s\n' "subjectAltName=DNS:localhost,IP:127.0.0.1" "basicConstraints=CA:FALSE" \
	"keyUsage=critical,digitalSignature,keyEncipherment" "extendedKeyUsage=serverAuth" \
	>"$demo/ca/leaf.ext"
serial=1
for n in hei partner; do
	mkdir -p "$demo/$n/keys" "$demo/$n/tls"
	chmod 700 "$demo/$n/keys" "$demo/$n/tls"
	openssl req -newkey rsa:2048 -nodes -subj /CN=localhost \
		-keyout "$demo/$n/tls/key.pem" -out "$demo/ca/$n.csr" 2>/dev/null
	openssl x509 -req -in "$demo/ca/$n.csr" -CA "$demo/ca.pem" -CAkey "$demo/ca/ca.key" \
		-set_serial $serial -days 30 -extfile "$demo/ca/leaf.ext" \
		-out "$demo/$n/tls/cert.pem" 2>/dev/null
	serial=$((serial + 1))
	# ---- EWP keys: each node signs requests with client.pem and
	# responses with server.pem.
	for k in client server; do
		"$ewpctl" keys generate --dir "$demo/$n/keys" "$k" >/dev/null
	done
done

# ---- Configurations (see conf/ewpd.conf.example for every key).
# conf NODE PORT HEI NAME LANG NAME_EN ERASMUS CONNINFO
conf() {
	cat <<CONF
; Demo node "$1": see conf/ewpd.conf.example for every key.
[server]
listen = 127.0.0.1:$2
tls = on
tls_cert = tls/cert.pem
tls_key = tls/key.pem
workers = 2
; idle keep-alive clients (a browser on /metrics) hold a stop this long at most
drain_timeout = 2s
public_url = https://localhost:$2
[log]
level = info
[ewp]
hei_id = $3
hei_name = $4
hei_name_lang = $5
hei_name_en = $6
erasmus_code = $7
admin_email = ewp-admin@$3
admin_provider = SMILE EWP gateway (UNICAEN, UNISTRA)
; the repository's schemas (the demo is not installed)
schema_dir = $top/ewp-schemas
[portal]
; the repository's interface strings (the demo is not installed)
strings = $top/conf/portal
[keys]
keys_dir = keys
client_key = client.pem
server_key = server.pem
[registry]
url = file://$demo/catalogue.xml
refresh = 15m
cache = catalogue.cache.xml
; the demo CA: partners' TLS certificates (ewpctl sync without --cacert)
ca_file = ../ca.pem
[database]
conninfo = $8
[jobs]
; CNRs, fetches and decisions to the other node: the demo CA
ca_file = ../ca.pem
CONF
}
conf hei "$port" "$HEI" "Université de démonstration SMILE" fr "SMILE Demo University" \
	"F DEMO01" "$db_hei" >"$demo/hei/ewpd.conf"
conf partner "$pport" "$PARTNER" "Universität Musterstadt" de "University of Musterstadt" \
	"D MUSTERS01" "$db_partner" >"$demo/partner/ewpd.conf"
# ---- Node 1 also syncs its partners by itself (a child of ewpd, a minute
# after start, then every hour) and publishes a Mobility Factsheet.
sed "s|<hei-id>example.edu</hei-id>|<hei-id>$HEI</hei-id>|" "$top/conf/factsheet.example.xml" \
	>"$demo/hei/factsheet.xml"
sed -i "s|^schema_dir = .*|&\nfactsheet = factsheet.xml|" "$demo/hei/ewpd.conf"
cat >>"$demo/hei/ewpd.conf" <<CONF
[sync]
interval = 1h
ca_file = ../ca.pem
CONF

# ---- The catalogue the EWP Registry would publish for the two hosts (it
# builds it from their manifests: see /ewp/manifest.xml of each node).
der64() { openssl pkey -pubin -in "$demo/$1/keys/$2.pem.pub" -outform DER | base64 -w0; }
keyid() { openssl pkey -pubin -in "$demo/$1/keys/$2.pem.pub" -outform DER | sha256sum | cut -d' ' -f1; }

# host NODE HEI: one <host>, listing the APIs the node's manifest declares
# (ewpd -m prints the manifest a configuration serves, as the Registry
# would fetch it from /ewp/manifest.xml)
host() {
	apis=$("$ewpd" -m -c "$demo/$1/ewpd.conf" | tr -d '\n' |
		sed -n 's|.*<r:apis-implemented>\(.*\)</r:apis-implemented>.*|\1|p')
	if [ -z "$apis" ]; then
		echo "ewpd -m printed no apis-implemented for node $1" >&2
		exit 1
	fi
	cat <<XML
  <host>
    <ewp:admin-email>ewp-admin@$2</ewp:admin-email>
    <apis-implemented>$apis</apis-implemented>
    <institutions-covered><hei-id>$2</hei-id></institutions-covered>
    <client-credentials-in-use><rsa-public-key sha-256="$(keyid "$1" client)"/></client-credentials-in-use>
    <server-credentials-in-use><rsa-public-key sha-256="$(keyid "$1" server)"/></server-credentials-in-use>
  </host>
XML
}

gh=https://github.com/erasmus-without-paper
cat >"$demo/catalogue.xml" <<XML
<?xml version="1.0" encoding="UTF-8"?>
<catalogue xmlns="$gh/ewp-specs-api-registry/tree/stable-v1"
    xmlns:ewp="$gh/ewp-specs-architecture/blob/stable-v1/common-types.xsd"
    xmlns:sec="$gh/ewp-specs-sec-intro/tree/stable-v2"
    xmlns:sec-A2="$gh/ewp-specs-sec-cliauth-httpsig/tree/stable-v1"
    xmlns:sec-B1="$gh/ewp-specs-sec-srvauth-tlscert/tree/stable-v1"
    xmlns:sec-B2="$gh/ewp-specs-sec-srvauth-httpsig/tree/stable-v1">
$(host hei "$HEI")
$(host partner "$PARTNER")
  <institutions>
    <hei id="$HEI">
      <other-id type="erasmus">F  DEMO01</other-id>
      <name xml:lang="fr">Université de démonstration SMILE</name>
      <name xml:lang="en">SMILE Demo University</name>
    </hei>
    <hei id="$PARTNER">
      <other-id type="erasmus">D  MUSTERS01</other-id>
      <name xml:lang="de">Universität Musterstadt</name>
      <name xml:lang="en">University of Musterstadt</name>
    </hei>
  </institutions>
  <binaries>
$(for n in hei partner; do
	for k in client server; do
		printf '    <rsa-public-key sha-256="%s">%s</rsa-public-key>\n' \
			"$(keyid $n $k)" "$(der64 $n $k)"
	done
done)
  </binaries>
</catalogue>
XML

# ---- Start both nodes and wait for /healthz.
for n in hei partner; do
	"$ewpd" -n -c "$demo/$n/ewpd.conf" >/dev/null
	"$ewpd" -c "$demo/$n/ewpd.conf" >"$demo/$n/ewpd.log" 2>&1 &
	echo $! >"$demo/$n/ewpd.pid"
done
for n in hei:$port partner:$pport; do
	p=${n#*:}
	n=${n%:*}
	i=0
	until curl -sf --max-time 2 --cacert "$demo/ca.pem" "https://localhost:$p/healthz" \
		>/dev/null 2>&1; do
		i=$((i + 1))
		if [ $i -gt 100 ] || ! alive "$(cat "$demo/$n/ewpd.pid")" ||
			grep -q 'Address already in use' "$demo/$n/ewpd.log"; then
			echo "ewpd (node $n, port $p) did not start; its log:" >&2
			cat "$demo/$n/ewpd.log" >&2
			exit 1
		fi
		sleep 0.1
	done
done
echo "== both nodes answer: https://localhost:$port (hei) https://localhost:$pport (partner)"

# ---- Signed calls, each way: the caller signs with its client key, the
# callee checks it against the catalogue and signs its response with its
# server key, which the caller checks in turn.
echo
echo "== Echo from the partner to node 1 (the partner's client key, node 1's server key):"
out=$("$ewpctl" -c "$demo/partner/ewpd.conf" call --cacert "$demo/ca.pem" \
	"https://localhost:$port/ewp/echo?echo=bonjour&echo=hallo")
printf '%s\n' "$out" | sed 's/^/   /'

# call NODE URL: a signed call as NODE; the status, the start of the
# body (indented, the root's namespaces left out) and the signature verdict
call() {
	echo "   \$ $ctl -c $d/$1/ewpd.conf call --cacert $d/ca.pem '$2'"
	out=$("$ewpctl" -c "$demo/$1/ewpd.conf" call --cacert "$demo/ca.pem" "$2") || {
		printf '%s\n' "$out" >&2
		exit 1
	}
	printf '%s\n' "$out" | sed -n 1p | sed 's/^/   /'
	printf '%s\n' "$out" | sed -n '/^</p' | xmllint --format - | sed -e 1d -e '2s/ xmlns[^>]*//' |
		awk 'NR <= 14 { print "   " $0 } NR == 15 { print "   ..." }'
	printf '%s\n' "$out" | sed -n '/^response signature/p' | sed 's/^/   /'
}
echo
echo "== Institutions and OUnits of the partner, asked by node 1:"
call hei "https://localhost:$pport/ewp/institutions?hei_id=$PARTNER"
call hei "https://localhost:$pport/ewp/ounits?hei_id=$PARTNER&ounit_code=MN"
echo
echo "== Institutions and OUnits of node 1, asked by the partner:"
call partner "https://localhost:$port/ewp/institutions?hei_id=$HEI"
call partner "https://localhost:$port/ewp/ounits?hei_id=$HEI&ounit_code=SCI"

# ---- Node 1 syncs its partners (here: node 2) into its SMILE database.
echo
echo "== node 1 syncs its partners' institutions and units:"
echo "   $ctl -c $d/hei/ewpd.conf sync institutions --cacert $d/ca.pem --schemas ewp-schemas"
rc=0
out=$("$ewpctl" -c "$demo/hei/ewpd.conf" sync institutions --cacert "$demo/ca.pem" \
	--schemas "$top/ewp-schemas" --timeout 10) || rc=$?
printf '%s\n' "$out" | sed 's/^/   /'
if [ $rc -ne 0 ]; then
	echo "the sync failed (exit $rc); node 2's log is $d/partner/ewpd.log" >&2
	exit 1
fi

echo
echo "== what landed in node 1's database ($db_hei):"
psql "$db_hei" -X -q -v ON_ERROR_STOP=1 -P footer=off <<SQL
SELECT e.schac_id, e.erasmus_code, e.abbreviation AS abbr, e.website_url,
       (SELECT string_agg(n->>'lang' || ': ' || (n->>'name'), ' | ')
        FROM jsonb_array_elements(e.names) n) AS names
FROM smile.etablissement e WHERE e.schac_id = '$PARTNER';
SELECT c.ounit_id, c.code, coalesce(p.code, '-') AS parent,
       (SELECT n->>'name' FROM jsonb_array_elements(c.names) n
        ORDER BY n->>'lang' = 'en' DESC LIMIT 1) AS name, c.source
FROM smile.composante c JOIN smile.etablissement e ON e.id = c.etablissement_id
LEFT JOIN smile.composante p ON p.id = c.parent_id
WHERE e.schac_id = '$PARTNER' ORDER BY coalesce(p.code, c.code), p.code IS NOT NULL, c.code;
SELECT coalesce(e.schac_id, c.ounit_id) AS owner, 'address' AS what,
       concat_ws(', ', a.kind, nullif(array_to_string(a.lines, ' / '), ''), a.street_name, a.building_number,
                 a.postal_code, a.locality, a.country) AS detail
FROM smile.address a LEFT JOIN smile.etablissement e ON e.id = a.etablissement_id
LEFT JOIN smile.composante c ON c.id = a.composante_id
WHERE coalesce(e.schac_id, (SELECT schac_id FROM smile.etablissement WHERE id = c.etablissement_id)) = '$PARTNER'
UNION ALL
SELECT coalesce(e.schac_id, c.ounit_id), 'contact',
       concat_ws(', ', t.names->0->>'name', t.given_names, t.family_name,
                 nullif(array_to_string(t.emails, ' '), ''),
                 nullif(array_to_string(t.phones, ' '), ''))
FROM smile.contact t LEFT JOIN smile.etablissement e ON e.id = t.etablissement_id
LEFT JOIN smile.composante c ON c.id = t.composante_id
WHERE coalesce(e.schac_id, (SELECT schac_id FROM smile.etablissement WHERE id = c.etablissement_id)) = '$PARTNER'
ORDER BY 1, 2, 3;
SELECT hei_id, to_char(last_success_at, 'HH24:MI:SS') AS last_success,
       coalesce(last_error, '-') AS last_error, consecutive_failures AS failures
FROM ewp.partner_syncs ORDER BY hei_id;
SQL

# ---- The story of one incoming student (the same as
# tests/integration/mobility-flow.test.mjs): node 2 nominates Lena Schäfer
# for node 1, node 1 approves her, her learning agreement goes through the
# twelve steps of the official OLA scenario, node 1 enters her arrival and
# departure dates. Each step is a command on one node; the other node
# learns it by CNR and fetches it, and the demo waits until it has.
docs=$top/tests/demo/mobility
ref=$PARTNER:ums-2026-0042
hctl() { "$ewpctl" -c "$demo/hei/ewpd.conf" "$@"; }
pctl() { "$ewpctl" -c "$demo/partner/ewpd.conf" "$@"; }
# step NODE ARGS...: print and run an ewpctl command on NODE (hei|partner)
step() {
	n=$1
	shift
	line=
	for a in "$@"; do
		case $a in *" "*) line="$line '$a'" ;; *) line="$line $a" ;; esac
	done
	echo "   \$ $ctl -c $d/$n/ewpd.conf$line" | sed "s|$top/||g"
	out=$("$ewpctl" -c "$demo/$n/ewpd.conf" "$@") || {
		printf '%s\n' "$out" >&2
		echo "demo: ewpctl $* failed on node $n" >&2
		exit 1
	}
	[ -z "$out" ] || printf '%s\n' "$out" | sed 's/^/     /'
}
# wait_db NODE WHAT SQL: until SQL (a boolean) is true in NODE's database
wait_db() {
	case $1 in hei) c=$db_hei ;; *) c=$db_partner ;; esac
	i=0
	until [ "$(psql "$c" -XAtq -c "$3" 2>/dev/null)" = t ]; do
		i=$((i + 1))
		if [ $i -gt 300 ]; then
			echo "demo: $2 did not happen within 30 s; see $d/hei/ewpd.log, $d/partner/ewpd.log and" \
				"$ctl -c $d/hei/ewpd.conf jobs list" >&2
			exit 1
		fi
		sleep 0.1
	done
	echo "     -> $2"
}
mob="FROM smile.mobility WHERE omobility_id = 'ums-2026-0042'"
la_cur() { # KIND: the current version of that kind has this proposal id (or exists)
	echo "EXISTS (SELECT 1 FROM smile.la_version v JOIN smile.learning_agreement l ON l.id = v.learning_agreement_id
	  JOIN smile.mobility m ON m.id = l.mobility_id WHERE m.omobility_id = 'ums-2026-0042'
	  AND v.kind = '$1' AND v.state = 'current'${2:+ AND v.proposal_id = '$2'})"
}
cur_proposal() { # NODE: id of the current changes proposal
	case $1 in hei) c=$db_hei ;; *) c=$db_partner ;; esac
	psql "$c" -XAtq -c "SELECT v.proposal_id FROM smile.la_version v JOIN smile.learning_agreement l
	  ON l.id = v.learning_agreement_id JOIN smile.mobility m ON m.id = l.mobility_id
	  WHERE m.omobility_id = 'ums-2026-0042' AND v.kind = 'changes-proposal' AND v.state = 'current'"
}
# signer approve|comment ARGS...: node 1's decision on the LA, signed by Claire Martin
signer() {
	sub=$1
	shift
	step hei la "$sub" "$ref" "$@" --signer-name 'Claire Martin' \
		--signer-position 'Coordinatrice Erasmus' --signer-email "relations-internationales@$HEI"
}

echo
echo "== An incoming student: node 2 nominates Lena Schäfer for node 1"
step partner mobility nominate "$docs/nomination.xml"
wait_db hei "node 1 received the nomination (CNR, then a signed get) and registered her" \
	"SELECT inscription_id IS NOT NULL $mob"
step hei mobility list --incoming
echo
echo "== Node 1 approves the nomination; node 2 sees it approved"
step hei mobility approve "$ref" --by claire.martin
wait_db partner "node 2: nomination approved" "SELECT status = 'approved' $mob"
wait_db hei "node 1: approved copy, registration status Inscrit" \
	"SELECT m.status = 'approved' AND i.status = 2 FROM smile.mobility m JOIN smile.inscription i ON i.id = m.inscription_id WHERE m.omobility_id = 'ums-2026-0042'"

echo
echo "== Her learning agreement, the twelve steps of the official OLA scenario"
echo "   1. node 2: the student and her home university propose the first version"
step partner la create ums-2026-0042 "$docs/la-header.xml"
step partner la propose ums-2026-0042 "$docs/proposal-1.xml"
wait_db hei "node 1 holds the proposal" "SELECT $(la_cur changes-proposal "$(cur_proposal partner)")"
echo "   2. node 1 comments: a course is not open to exchange students"
signer comment --comment "Apprentissage automatique is closed to exchange students in the first semester: please choose Statistique inférentielle."
wait_db partner "node 2 sees the comment" \
	"SELECT EXISTS (SELECT 1 FROM smile.la_version WHERE state = 'commented')"
echo "   3. node 2 proposes again"
step partner la propose ums-2026-0042 "$docs/proposal-3.xml"
wait_db hei "node 1 holds the new proposal" "SELECT $(la_cur changes-proposal "$(cur_proposal partner)")"
echo "   4-5. node 1 approves: it becomes the signed first version on both nodes"
signer approve --by claire.martin
wait_db partner "node 2: first version" "SELECT $(la_cur first-version)"
wait_db hei "node 1: first version" "SELECT $(la_cur first-version)"
echo "   6-7. during the mobility, a timetable conflict: node 2 proposes changes, node 1 approves"
step partner la propose ums-2026-0042 "$docs/proposal-6.xml"
wait_db hei "node 1 holds the changes" "SELECT $(la_cur changes-proposal "$(cur_proposal partner)")"
signer approve
wait_db hei "approved changes on node 1" "SELECT $(la_cur approved-changes) AND NOT $(la_cur changes-proposal)"
echo "   8-9. a second change; node 1 comments it"
step partner la propose ums-2026-0042 "$docs/proposal-8.xml"
p8=$(cur_proposal partner)
wait_db hei "node 1 holds the changes" "SELECT $(la_cur changes-proposal "$p8")"
signer comment --comment "A 9-ECTS project should be recognised for 9 ECTS."
wait_db partner "node 2 sees the comment" \
	"SELECT EXISTS (SELECT 1 FROM smile.la_version WHERE proposal_id = '$p8' AND state = 'commented')"
echo "   10-12. node 2 proposes again, node 1 approves: the final approved changes"
step partner la propose ums-2026-0042 "$docs/proposal-10.xml"
p10=$(cur_proposal partner)
wait_db hei "node 1 holds the changes" "SELECT $(la_cur changes-proposal "$p10")"
signer approve
wait_db partner "node 2: approved changes in place" "SELECT $(la_cur approved-changes) AND NOT $(la_cur changes-proposal)"
wait_db hei "node 1: the same" "SELECT $(la_cur approved-changes) AND NOT $(la_cur changes-proposal)"

echo
echo "== She arrived: node 1 enters the dates, node 2 receives them (IMobility CNR)"
step hei mobility dates "$ref" --arrival 2026-09-07 --departure 2027-01-29
wait_db partner "node 2 has the actual dates" \
	"SELECT actual_arrival_date = '2026-09-07' AND actual_departure_date = '2027-01-29' $mob"
echo
echo "== Node 1's view of her file:"
step hei la show "$ref"

# ---- Staff portal accounts on node 1, one per kind of staff. The
# passwords are the demo's own, printed below: never reuse them.
echo
echo "== Staff portal accounts on node 1 (local passwords, demo only)"
# account USER ROLE NAME EMAIL LABEL: the password is USER-demo-only
accounts=
account() {
	pw="$1-demo-only"
	printf "   \$ printf '%%s\\\\n' '%s' | %s -c %s/hei/ewpd.conf user add %s --name '%s' --email %s --role %s --password-stdin\n" \
		"$pw" "$ctl" "$d" "$1" "$3" "$4" "$2"
	out=$(printf '%s\n' "$pw" | "$ewpctl" -c "$demo/hei/ewpd.conf" user add "$1" --name "$3" --email "$4" \
		--role "$2" --password-stdin) || {
		printf '%s\n' "$out" >&2
		echo "demo: ewpctl user add $1 failed on node 1" >&2
		exit 1
	}
	printf '%s\n' "$out" | sed 's/^/     /'
	accounts="$accounts$(printf '    %-13s %-23s %s' "$1" "$pw" "$5")
"
}
account gestionnaire gestionnaire 'Claire Martin' "relations-internationales@$HEI" Gestionnaire
account fonctionnel admin_fonctionnel 'Fabien Roux' "fabien.roux@$HEI" 'Administrateur fonctionnel'
account technique administrateur 'Thomas Petit' "thomas.petit@$HEI" 'Administrateur technique'
account invite guest 'Inès Moreau' "ines.moreau@$HEI" 'Invité'

hpid=$(cat "$demo/hei/ewpd.pid")
ppid=$(cat "$demo/partner/ewpd.pid")
cat <<TXT

The demo is running:
  node 1  $HEI   https://localhost:$port   pid $hpid, log $d/hei/ewpd.log
  node 2  $PARTNER  https://localhost:$pport   pid $ppid, log $d/partner/ewpd.log
  PostgreSQL  $pgbase  (databases ewpd_hei, ewpd_partner)
Each node's files are in $d/hei/ and $d/partner/ (ewpd.conf, keys/, tls/);
the catalogue is $d/catalogue.xml, the CA of both certificates $d/ca.pem.

  Manifests (what the EWP Registry would read):
    curl --cacert $d/ca.pem https://localhost:$port/ewp/manifest.xml
    curl --cacert $d/ca.pem https://localhost:$pport/ewp/manifest.xml

  Signed calls as the partner to node 1 (key $d/partner/keys/client.pem):
    $ctl -c $d/partner/ewpd.conf call --cacert $d/ca.pem \\
        'https://localhost:$port/ewp/echo?echo=hello'
    $ctl -c $d/partner/ewpd.conf call --cacert $d/ca.pem \\
        -d 'hei_id=$HEI' https://localhost:$port/ewp/institutions

  Signed calls as node 1 to the partner:
    $ctl -c $d/hei/ewpd.conf call --cacert $d/ca.pem \\
        'https://localhost:$pport/ewp/ounits?hei_id=$PARTNER&ounit_code=PHIL-ROM'

  Node 1's Mobility Factsheet (from $d/hei/factsheet.xml):
    $ctl -c $d/partner/ewpd.conf call --cacert $d/ca.pem \\
        'https://localhost:$port/ewp/factsheet?hei_id=$HEI'

  Sync again (idempotent), or the other way round; node 1 also syncs by
  itself every hour ([sync] interval) and at once on kill -USR1 $hpid:
    $ctl -c $d/hei/ewpd.conf sync institutions --cacert $d/ca.pem --schemas ewp-schemas
    $ctl -c $d/partner/ewpd.conf sync institutions --cacert $d/ca.pem --schemas ewp-schemas
    $ctl -c $d/hei/ewpd.conf sync status

  Lena Schäfer's mobility, seen from node 1 and from node 2:
    $ctl -c $d/hei/ewpd.conf mobility show $PARTNER:ums-2026-0042
    $ctl -c $d/hei/ewpd.conf la show $PARTNER:ums-2026-0042
    $ctl -c $d/partner/ewpd.conf mobility list --outgoing
  A second nomination (edit the omobility-id and the student first):
    $ctl -c $d/partner/ewpd.conf mobility nominate tests/demo/mobility/nomination.xml

  The message log: every exchange of both nodes, in and out:
    $ctl -c $d/hei/ewpd.conf log --limit 10
    $ctl -c $d/hei/ewpd.conf log --failed
    $ctl -c $d/hei/ewpd.conf log show ID

  An unsigned call is refused with 401 and an EWP error-response:
    curl -i --cacert $d/ca.pem https://localhost:$port/ewp/echo

  Health and metrics:
    curl --cacert $d/ca.pem https://localhost:$port/healthz
    curl --cacert $d/ca.pem https://localhost:$port/metrics

  The databases:
    psql '$db_hei'
    psql '$db_partner'

  Reload (config, keys, TLS, catalogue) / stop everything:
    kill -HUP $hpid $ppid
    make demo-stop

  The staff portal of node 1, in a browser (its certificate is signed by
  the demo CA, $d/ca.pem: import that CA or accept the warning):
    https://localhost:$port/portal/
  Demo accounts (demo-only passwords):
    user          password                role
TXT
printf '%s' "$accounts"
