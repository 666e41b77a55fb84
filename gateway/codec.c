/* codec.c - base64, hex, SHA-256, IMF-fixdate dates and UUIDs. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#include "codec.h"
#include "log.h"
#include "xmalloc.h"

static const char codec_b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static const char *const codec_days[7] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
static const char *const codec_months[12] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                             "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

char *
codec_base64_encode(const void *data, size_t len)
{
	const unsigned char *p = data;
	char *out, *o;
	size_t i;

	if (len > (SIZE_MAX - 5) / 4 * 3)
		fatalx("base64: input too large (%zu bytes)", len);
	out = o = xmalloc((len + 2) / 3 * 4 + 1);
	for (i = 0; i + 3 <= len; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];

		*o++ = codec_b64_alphabet[v >> 18 & 0x3f];
		*o++ = codec_b64_alphabet[v >> 12 & 0x3f];
		*o++ = codec_b64_alphabet[v >> 6 & 0x3f];
		*o++ = codec_b64_alphabet[v & 0x3f];
	}
	if (len - i == 1) {
		*o++ = codec_b64_alphabet[p[i] >> 2];
		*o++ = codec_b64_alphabet[(p[i] & 0x03) << 4];
		*o++ = '=';
		*o++ = '=';
	} else if (len - i == 2) {
		*o++ = codec_b64_alphabet[p[i] >> 2];
		*o++ = codec_b64_alphabet[(p[i] & 0x03) << 4 | p[i + 1] >> 4];
		*o++ = codec_b64_alphabet[(p[i + 1] & 0x0f) << 2];
		*o++ = '=';
	}
	*o = '\0';
	return out;
}

static int
codec_b64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

static bool
codec_is_space(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

/* Bytes of one complete quantum of which the last `pad` sextets were '='. */
static int
codec_b64_flush(const int q[4], int pad, unsigned char *o)
{
	/* Non-zero unused bits mean a non-canonical encoding: refuse it. */
	if ((pad == 2 && (q[1] & 0x0f)) || (pad == 1 && (q[2] & 0x03)))
		return -1;
	o[0] = (unsigned char)(q[0] << 2 | q[1] >> 4);
	o[1] = (unsigned char)((q[1] & 0x0f) << 4 | q[2] >> 2);
	o[2] = (unsigned char)((q[2] & 0x03) << 6 | q[3]);
	return 3 - pad;
}

int
codec_base64_decode(const char *in, size_t inlen, unsigned char **out, size_t *outlen)
{
	unsigned char *res = xmalloc(inlen / 4 * 3 + 4);
	int q[4], nq = 0, pad = 0, n;
	bool done = false;
	size_t len = 0;

	*out = NULL;
	*outlen = 0;
	for (size_t i = 0; i < inlen; i++) {
		unsigned char c = (unsigned char)in[i];

		if (codec_is_space(c))
			continue;
		if (done)
			goto fail; /* anything after the padded final quantum */
		if (c == '=') {
			if (nq < 2)
				goto fail;
			pad++;
			q[nq++] = 0;
		} else {
			if (pad || (q[nq] = codec_b64_value(c)) < 0)
				goto fail;
			nq++;
		}
		if (nq < 4)
			continue;
		if ((n = codec_b64_flush(q, pad, res + len)) < 0)
			goto fail;
		len += (size_t)n;
		done = pad > 0;
		nq = 0;
	}
	if (nq != 0)
		goto fail; /* truncated quantum or missing padding */
	res[len] = '\0';
	*out = res;
	*outlen = len;
	return 0;
fail:
	free(res);
	return -1;
}

void
codec_sha256(const void *data, size_t len, unsigned char out[CODEC_SHA256_LEN])
{
	unsigned int n = 0;

	if (!EVP_Digest(data ? data : "", len, out, &n, EVP_sha256(), NULL) ||
	    n != CODEC_SHA256_LEN)
		fatalx("SHA-256 failed in OpenSSL");
}

void
codec_hex(const unsigned char *data, size_t len, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < len; i++) {
		out[2 * i] = digits[data[i] >> 4];
		out[2 * i + 1] = digits[data[i] & 0x0f];
	}
	out[2 * len] = '\0';
}

void
codec_uuid_v4(char out[CODEC_UUID_LEN + 1])
{
	unsigned char r[16];
	char hex[33];

	/* Request ids must be unpredictable; no randomness is a broken host. */
	if (RAND_bytes(r, sizeof(r)) != 1)
		fatalx("RAND_bytes failed: no randomness for a request id");
	r[6] = (unsigned char)((r[6] & 0x0f) | 0x40); /* version 4 */
	r[8] = (unsigned char)((r[8] & 0x3f) | 0x80); /* RFC 4122 variant */
	codec_hex(r, sizeof(r), hex);
	snprintf(out, CODEC_UUID_LEN + 1, "%.8s-%.4s-%.4s-%.4s-%.12s", hex, hex + 8, hex + 12,
	         hex + 16, hex + 20);
}

bool
codec_is_canonical_uuid(const char *s)
{
	for (size_t i = 0; i < CODEC_UUID_LEN; i++) {
		bool dash = i == 8 || i == 13 || i == 18 || i == 23;

		if (dash ? s[i] != '-'
		         : !((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	}
	return s[CODEC_UUID_LEN] == '\0';
}

/* Writes v as n decimal digits (v is in range by construction). */
static void
codec_put_digits(char *p, int v, int n)
{
	for (int i = n - 1; i >= 0; i--) {
		p[i] = (char)('0' + v % 10);
		v /= 10;
	}
}

void
codec_http_date(time_t t, char out[CODEC_HTTP_DATE_LEN + 1])
{
	struct tm tm;

	/* Out of the 4-digit year range cannot be written; say 1970 rather than overflow. */
	if (gmtime_r(&t, &tm) == NULL || tm.tm_year < -1900 || tm.tm_year > 9999 - 1900) {
		t = 0;
		gmtime_r(&t, &tm);
	}
	memcpy(out, "Thu, 01 Jan 1970 00:00:00 GMT", CODEC_HTTP_DATE_LEN + 1);
	memcpy(out, codec_days[tm.tm_wday], 3);
	codec_put_digits(out + 5, tm.tm_mday, 2);
	memcpy(out + 8, codec_months[tm.tm_mon], 3);
	codec_put_digits(out + 12, tm.tm_year + 1900, 4);
	codec_put_digits(out + 17, tm.tm_hour, 2);
	codec_put_digits(out + 20, tm.tm_min, 2);
	codec_put_digits(out + 23, tm.tm_sec, 2);
}

/* Index of the three-letter name at s in names, -1 if none (case-sensitive). */
static int
codec_name_index(const char *const *names, int n, const char *s)
{
	for (int i = 0; i < n; i++)
		if (memcmp(names[i], s, 3) == 0)
			return i;
	return -1;
}

/* Value of n ASCII digits at s, -1 if any is not a digit. */
static int
codec_digits(const char *s, int n)
{
	int v = 0;

	for (int i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v;
}

int
codec_parse_http_date(const char *s, time_t *out)
{
	/* "Sun, 06 Nov 1994 08:49:37 GMT": fixed positions, fixed length. */
	struct tm tm = {0}, want, chk;
	int wday;
	time_t t;

	if (strlen(s) != CODEC_HTTP_DATE_LEN || memcmp(s + 3, ", ", 2) != 0 || s[7] != ' ' ||
	    s[11] != ' ' || s[16] != ' ' || s[19] != ':' || s[22] != ':' ||
	    memcmp(s + 25, " GMT", 4) != 0)
		return -1;
	wday = codec_name_index(codec_days, 7, s);
	tm.tm_mday = codec_digits(s + 5, 2);
	tm.tm_mon = codec_name_index(codec_months, 12, s + 8);
	tm.tm_year = codec_digits(s + 12, 4) - 1900;
	tm.tm_hour = codec_digits(s + 17, 2);
	tm.tm_min = codec_digits(s + 20, 2);
	tm.tm_sec = codec_digits(s + 23, 2);
	if (wday < 0 || tm.tm_mday < 1 || tm.tm_mon < 0 || tm.tm_year < -1900 || tm.tm_hour < 0 ||
	    tm.tm_hour > 23 || tm.tm_min < 0 || tm.tm_min > 59 || tm.tm_sec < 0 || tm.tm_sec > 59)
		return -1;
	want = tm; /* timegm() normalises its argument */
	t = timegm(&tm);
	/* The round trip catches "31 Feb"; the Registry also refuses a wrong weekday. */
	if (gmtime_r(&t, &chk) == NULL || chk.tm_mday != want.tm_mday ||
	    chk.tm_mon != want.tm_mon || chk.tm_year != want.tm_year || chk.tm_wday != wday)
		return -1;
	*out = t;
	return 0;
}
