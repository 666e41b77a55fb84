#!/bin/sh
# A throwaway PostgreSQL cluster for tests, under a directory of its own,
# listening only on a Unix socket in that directory (and, if asked, on
# 127.0.0.1). No system service is involved; as root (CI) the server runs
# as the postgres user, since initdb refuses root.
#
#   tests/pg/pg.sh start DIR [PORT]   initdb + start; prints "host=DIR port=PORT"
#   tests/pg/pg.sh stop DIR           stop the server and remove DIR
#   tests/pg/pg.sh halt DIR [MODE]    stop the server (pg_ctl -m MODE, default fast), keep DIR
#   tests/pg/pg.sh resume DIR PORT    start a halted server again
set -eu

bindir=${PG_BINDIR:-}
if [ -z "$bindir" ]; then
	for d in /usr/lib/postgresql/*/bin; do bindir=$d; done
fi
[ -x "$bindir/initdb" ] || {
	echo "pg.sh: PostgreSQL server binaries not found (apt-get install postgresql)" >&2
	exit 1
}

as_owner() {
	if [ "$(id -u)" = 0 ]; then
		runuser -u postgres -- "$@"
	else
		"$@"
	fi
}

cmd=${1:-}
dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || {
	echo "usage: pg.sh start DIR [PORT] | stop DIR | halt DIR [MODE] | resume DIR PORT" >&2
	exit 2
}

# Starts the server of an initialised DIR on PORT (Unix socket only).
pg_start() {
	as_owner "$bindir/pg_ctl" -D "$1/data" -w -l "$1/server.log" \
		-o "-k $1 -p $2 -c listen_addresses= -c fsync=off -c full_page_writes=off" \
		start >/dev/null || {
		cat "$1/server.log" >&2
		exit 1
	}
}

case $cmd in
start)
	port=${3:-$((20000 + $$ % 20000))}
	mkdir -p "$dir"
	if [ "$(id -u)" = 0 ]; then
		chown postgres "$dir"
		runuser -u postgres -- test -w "$dir" || {
			echo "pg.sh: user postgres cannot reach $dir (make its parents o+x)" >&2
			exit 1
		}
	fi
	as_owner "$bindir/initdb" -D "$dir/data" -A trust -U postgres --no-sync \
		-E UTF8 --locale=C >"$dir/initdb.log" 2>&1 || {
		cat "$dir/initdb.log" >&2
		exit 1
	}
	pg_start "$dir" "$port"
	echo "host=$dir port=$port user=postgres dbname=postgres"
	;;
stop)
	if [ -f "$dir/data/postmaster.pid" ]; then
		as_owner "$bindir/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
	fi
	rm -rf "$dir"
	;;
halt)
	mode=${3:-fast}
	case $mode in fast | immediate | smart) ;; *)
		echo "pg.sh: halt mode is fast, immediate or smart" >&2
		exit 2
		;;
	esac
	as_owner "$bindir/pg_ctl" -D "$dir/data" -m "$mode" -w stop >/dev/null
	;;
resume)
	pg_start "$dir" "${3:?port}"
	;;
*)
	echo "usage: pg.sh start DIR [PORT] | stop DIR" >&2
	exit 2
	;;
esac
