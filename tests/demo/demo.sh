#!/bin/sh
# make demo: a throwaway ewpd node on loopback, with generated keys, a
# self-signed TLS certificate, a demo partner and a file:// catalogue listing
# both, and a throwaway PostgreSQL cluster with the migrations applied.
# Everything lives in ./demo (removed by `make demo-stop`).
#
#   tests/demo/demo.sh         start (or restart) the demo node
#   tests/demo/demo.sh stop    stop it and remove ./demo
set -eu

top=$(cd "$(dirname "$0")/../.." && pwd)
demo="$top/demo"
port=${EWP_DEMO_PORT:-8443}
ewpd="$top/build/ewpd"
ewpctl="$top/build/ewpctl"

stop() {
	[ -d "$demo/pg" ] && "$top/tests/pg/pg.sh" stop "$demo/pg"
	if [ -f "$demo/ewpd.pid" ]; then
		pid=$(cat "$demo/ewpd.pid")
		if kill "$pid" 2>/dev/null; then
			i=0
			while kill -0 "$pid" 2>/dev/null && [ $i -lt 100 ]; do
				sleep 0.1
				i=$((i + 1))
			done
		fi
		rm -f "$demo/ewpd.pid"
	fi
}

if [ "${1:-}" = stop ]; then
	stop
	rm -rf "$demo"
	echo "demo stopped"
	exit 0
fi

stop
rm -rf "$demo"
mkdir -p "$demo/keys" "$demo/tls"
chmod 700 "$demo/keys"
chmod 755 "$demo"

# A throwaway PostgreSQL cluster in demo/pg (Unix socket only), migrated.
pgport=${EWP_DEMO_PG_PORT:-$((port + 1))}
conninfo=$("$top/tests/pg/pg.sh" start "$demo/pg" "$pgport")

# Keys: ours (client + server) and the demo partner's (client + server).
for k in client server partner-client partner-server; do
	"$ewpctl" keys generate --dir "$demo/keys" "$k" >/dev/null
done

# A self-signed certificate for localhost (partners would need a CA-signed one).
openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj /CN=localhost \
	-addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
	-keyout "$demo/tls/key.pem" -out "$demo/tls/cert.pem" 2>/dev/null
chmod 600 "$demo/tls/key.pem"

der64() { openssl pkey -pubin -in "$demo/keys/$1.pem.pub" -outform DER | base64 -w0; }
keyid() { openssl pkey -pubin -in "$demo/keys/$1.pem.pub" -outform DER | sha256sum | cut -d' ' -f1; }

# The catalogue the EWP Registry would publish for these two hosts.
cat >"$demo/catalogue.xml" <<XML
<?xml version="1.0" encoding="UTF-8"?>
<catalogue xmlns="https://github.com/erasmus-without-paper/ewp-specs-api-registry/tree/stable-v1">
  <host>
    <apis-implemented>
      <echo xmlns="https://github.com/erasmus-without-paper/ewp-specs-api-echo/blob/stable-v2/manifest-entry.xsd" version="2.0.1">
        <url>https://localhost:$port/ewp/echo</url>
      </echo>
      <institutions xmlns="https://github.com/erasmus-without-paper/ewp-specs-api-institutions/blob/stable-v2/manifest-entry.xsd" version="2.2.0">
        <url>https://localhost:$port/ewp/institutions</url>
        <max-hei-ids>10</max-hei-ids>
      </institutions>
      <organizational-units xmlns="https://github.com/erasmus-without-paper/ewp-specs-api-ounits/blob/stable-v2/manifest-entry.xsd" version="2.1.1">
        <url>https://localhost:$port/ewp/ounits</url>
        <max-ounit-ids>10</max-ounit-ids>
        <max-ounit-codes>10</max-ounit-codes>
      </organizational-units>
    </apis-implemented>
    <institutions-covered><hei-id>demo.smile-ewp.example</hei-id></institutions-covered>
    <client-credentials-in-use><rsa-public-key sha-256="$(keyid client)"/></client-credentials-in-use>
    <server-credentials-in-use><rsa-public-key sha-256="$(keyid server)"/></server-credentials-in-use>
  </host>
  <host>
    <institutions-covered><hei-id>partner.demo.example</hei-id></institutions-covered>
    <client-credentials-in-use><rsa-public-key sha-256="$(keyid partner-client)"/></client-credentials-in-use>
    <server-credentials-in-use><rsa-public-key sha-256="$(keyid partner-server)"/></server-credentials-in-use>
  </host>
  <institutions>
    <hei id="demo.smile-ewp.example">
      <other-id type="erasmus">F DEMO01</other-id>
      <name xml:lang="fr">Université de démonstration SMILE</name>
      <name xml:lang="en">SMILE Demo University</name>
    </hei>
    <hei id="partner.demo.example">
      <other-id type="erasmus">D PARTNER01</other-id>
      <name xml:lang="en">Demo Partner University</name>
    </hei>
  </institutions>
  <binaries>
$(for k in client server partner-client partner-server; do
	printf '    <rsa-public-key sha-256="%s">%s</rsa-public-key>\n' "$(keyid $k)" "$(der64 $k)"
done)
  </binaries>
</catalogue>
XML

cat >"$demo/ewpd.conf" <<CONF
; Demo node: see conf/ewpd.conf.example for every key.
[server]
listen = 127.0.0.1:$port
tls = on
tls_cert = tls/cert.pem
tls_key = tls/key.pem
workers = 2
public_url = https://localhost:$port
[log]
level = info
[ewp]
hei_id = demo.smile-ewp.example
hei_name = Université de démonstration SMILE
hei_name_lang = fr
hei_name_en = SMILE Demo University
erasmus_code = F DEMO01
admin_email = ewp-admin@demo.smile-ewp.example
admin_provider = SMILE EWP gateway (UNICAEN, UNISTRA)
[keys]
keys_dir = keys
client_key = client.pem
server_key = server.pem
[registry]
url = file://$demo/catalogue.xml
refresh = 15m
cache = catalogue.cache.xml
[database]
conninfo = $conninfo
CONF

# The demo partner's view, for `ewpctl call` as that partner.
cat >"$demo/partner.conf" <<CONF
[server]
tls = off
public_url = https://partner.demo.example
[ewp]
hei_id = partner.demo.example
hei_name = Demo Partner University
hei_name_lang = en
admin_email = ewp-admin@partner.demo.example
[keys]
keys_dir = keys
client_key = partner-client.pem
server_key = partner-server.pem
[registry]
url = file://$demo/catalogue.xml
cache = catalogue.xml
CONF

echo "== database: $conninfo"
"$ewpctl" -c "$demo/ewpd.conf" migrate --dir "$top/sql"
psql "$conninfo" -q -v ON_ERROR_STOP=1 -f "$top/tests/demo/demo-data.sql"
"$ewpd" -n -c "$demo/ewpd.conf" >/dev/null
"$ewpd" -c "$demo/ewpd.conf" >"$demo/ewpd.log" 2>&1 &
echo $! >"$demo/ewpd.pid"

i=0
until curl -sf --cacert "$demo/tls/cert.pem" "https://localhost:$port/healthz" >/dev/null 2>&1; do
	i=$((i + 1))
	if [ $i -gt 50 ]; then
		echo "ewpd did not start; its log:" >&2
		cat "$demo/ewpd.log" >&2
		exit 1
	fi
	sleep 0.1
done

echo "== a signed Echo call from the demo partner, response signature verified:"
"$ewpctl" -c "$demo/partner.conf" call --cacert "$demo/tls/cert.pem" \
	"https://localhost:$port/ewp/echo?echo=bonjour&echo=hello"

cat <<TXT

The demo node is running (pid $(cat "$demo/ewpd.pid"), log: demo/ewpd.log).

  Manifest (register this URL with the EWP Registry in real life):
    curl --cacert demo/tls/cert.pem https://localhost:$port/ewp/manifest.xml

  Echo, signed as the demo partner (key demo/keys/partner-client.pem):
    build/ewpctl -c demo/partner.conf call --cacert demo/tls/cert.pem \\
        'https://localhost:$port/ewp/echo?echo=hello'
    build/ewpctl -c demo/partner.conf call --cacert demo/tls/cert.pem \\
        -d 'echo=a&echo=b' https://localhost:$port/ewp/echo

  Institutions and faculties, served from the database:
    build/ewpctl -c demo/partner.conf call --cacert demo/tls/cert.pem \\
        'https://localhost:$port/ewp/institutions?hei_id=demo.smile-ewp.example'
    build/ewpctl -c demo/partner.conf call --cacert demo/tls/cert.pem \\
        'https://localhost:$port/ewp/ounits?hei_id=demo.smile-ewp.example&ounit_code=SCI'

  An unsigned call is refused with 401 and an EWP error-response:
    curl -i --cacert demo/tls/cert.pem https://localhost:$port/ewp/echo

  Health and metrics:
    curl --cacert demo/tls/cert.pem https://localhost:$port/healthz
    curl --cacert demo/tls/cert.pem https://localhost:$port/metrics

  The database (SMILE core and gateway state, migrated):
    psql '$conninfo'

  Reload (config, keys, TLS, catalogue) / stop:
    kill -HUP $(cat "$demo/ewpd.pid")
    make demo-stop
TXT
