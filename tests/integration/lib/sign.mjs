// The suite's own EWP HTTP Signature client (ewp-notes 2.1, 2.2) and
// response verifier (2.5), written from the notes with Node's crypto only.
// Every knob a negative test needs is an option.
import crypto from 'node:crypto';

export function sha256b64(bytes) {
  return crypto.createHash('sha256').update(bytes).digest('base64');
}

export function digestHeader(bytes) {
  return `SHA-256=${sha256b64(bytes)}`;
}

// RFC 2616 / RFC 1123 date: "Sun, 05 Jan 2014 21:31:40 GMT".
export function httpDate(d = new Date()) {
  return d.toUTCString();
}

// A test client key generated in Node: keyId = hex SHA-256 of DER SPKI.
export function makeKey() {
  const { privateKey, publicKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  return keyFromObjects(privateKey, publicKey);
}

export function keyFromObjects(privateKey, publicKey) {
  const der = publicKey.export({ type: 'spki', format: 'der' });
  return {
    privateKey,
    publicKey,
    der,
    b64: der.toString('base64'),
    keyId: crypto.createHash('sha256').update(der).digest('hex'),
    privatePem: privateKey ? privateKey.export({ type: 'pkcs8', format: 'pem' }) : undefined,
    publicPem: publicKey.export({ type: 'spki', format: 'pem' }),
  };
}

// Builds the signing string (2.1) from a list of names and a header list.
// target = { method, path } for (request-target).
export function signingString(names, headers, target) {
  const lines = [];
  for (const name of names) {
    const l = name.toLowerCase();
    if (l === '(request-target)') {
      lines.push(`(request-target): ${target.method.toLowerCase()} ${target.path}`);
    } else {
      const vals = headers.filter(([n]) => n.toLowerCase() === l).map(([, v]) => v);
      lines.push(`${l}: ${vals.join(', ')}`);
    }
  }
  return lines.join('\n');
}

export function parseSignatureParams(v) {
  const out = {};
  const re = /\s*([A-Za-z]+)="([^"]*)"\s*(?:,|$)/y;
  let m;
  let pos = 0;
  re.lastIndex = 0;
  while (pos < v.length && (m = re.exec(v))) {
    out[m[1]] = m[2];
    pos = re.lastIndex;
  }
  return out;
}

const DEFAULT_SIGNED = ['(request-target)', 'host', 'date', 'digest', 'x-request-id'];

/*
 * Builds a signed EWP request. Options:
 *   method, path (with query), host (Host value), body (string|Buffer),
 *   key (from makeKey or ewpctl), keyId (default key.keyId),
 *   contentType, date (Date) | dateValue (string) | noDate,
 *   originalDate (Date: adds Original-Date), requestId (string) | noRequestId,
 *   digest (string value) | noDigest, signed (names for headers=""),
 *   algorithm ('rsa-sha256'), hash ('sha256'), acceptSignature,
 *   extra ([[n, v]] sent and available to sign), corrupt (flip a signature byte),
 *   bodySent (bytes actually sent instead of body), contentLength (override),
 *   scheme ('Signature'), omitAuthorization.
 * Returns { method, target, headers: [[n, v]], body, signature, requestId, signingString }.
 */
export function signRequest(o) {
  const method = o.method || 'GET';
  const path = o.path || '/';
  const body = o.body === undefined ? Buffer.alloc(0) : Buffer.from(o.body);
  const bodySent = o.bodySent === undefined ? body : Buffer.from(o.bodySent);
  const headers = [['Host', o.host]];
  if (!o.noDate) headers.push(['Date', o.dateValue || httpDate(o.date || new Date())]);
  if (o.originalDate) headers.push(['Original-Date', httpDate(o.originalDate)]);
  if (!o.noDigest) headers.push(['Digest', o.digest || digestHeader(body)]);
  const requestId = o.requestId || crypto.randomUUID();
  if (!o.noRequestId) {
    for (const id of Array.isArray(requestId) ? requestId : [requestId]) headers.push(['X-Request-Id', id]);
  }
  if (o.contentType) headers.push(['Content-Type', o.contentType]);
  if (o.acceptSignature) headers.push(['Accept-Signature', o.acceptSignature]);
  for (const h of o.extra || []) headers.push(h);
  let signed = o.signed || [...DEFAULT_SIGNED];
  if (!o.signed && o.noDate && o.originalDate) signed = signed.map((n) => (n === 'date' ? 'original-date' : n));
  const sstr = signingString(signed, headers, { method, path });
  const algorithm = o.algorithm || 'rsa-sha256';
  let sig = crypto.sign(o.hash || 'sha256', Buffer.from(sstr, 'utf8'), o.key.privateKey);
  if (o.corrupt) {
    sig = Buffer.from(sig);
    sig[sig.length >> 1] ^= 0x5a;
  }
  const signature = sig.toString('base64');
  if (!o.omitAuthorization) {
    const keyId = o.keyId || o.key.keyId;
    headers.push(['Authorization', `${o.scheme || 'Signature'} keyId="${keyId}",algorithm="${algorithm}",` +
      `headers="${signed.join(' ')}",signature="${signature}"`]);
  }
  if (method !== 'GET' && method !== 'HEAD' || bodySent.length) {
    headers.push(['Content-Length', String(o.contentLength ?? bodySent.length)]);
  }
  return { method, target: path, headers, body: bodySent, signature, requestId, signingString: sstr };
}

/*
 * Checks a signed response as a careful EWP client would (ewp-notes 2.5).
 * requireRequestSignature: false accepts a response without
 * X-Request-Signature (error responses); when present it must still match.
 * Returns { params, signingString, signed: [names] }; throws an Error
 * telling exactly what is wrong. `req` is the object signRequest returned.
 * Verification is done with Node's crypto.verify.
 */
export function verifyResponse(res, req, serverKey, { maxSkew = 300, requireRequestSignature = true } = {}) {
  const sigHeaders = res.headerAll('Signature');
  if (sigHeaders.length !== 1) {
    throw new Error(`expected exactly one Signature header in the response, got ${sigHeaders.length}:\n${res.rawHead}`);
  }
  const params = parseSignatureParams(sigHeaders[0]);
  for (const p of ['keyId', 'algorithm', 'headers', 'signature']) {
    if (!params[p]) throw new Error(`response Signature header lacks ${p}: ${sigHeaders[0]}`);
  }
  if (params.algorithm.toLowerCase() !== 'rsa-sha256') throw new Error(`response signature algorithm is ${params.algorithm}, expected rsa-sha256`);
  if (params.keyId !== serverKey.keyId) {
    throw new Error(`response signed with keyId ${params.keyId}, expected ewpd's server key ${serverKey.keyId}`);
  }
  const signed = params.headers.toLowerCase().split(/\s+/).filter(Boolean);
  const need = ['digest', 'x-request-id'];
  const wantRS = req.signature && (requireRequestSignature || res.headerAll('X-Request-Signature').length > 0);
  if (wantRS) need.push('x-request-signature');
  for (const n of need) {
    if (!signed.includes(n)) throw new Error(`response headers="${params.headers}" does not include ${n}`);
  }
  if (!signed.includes('date') && !signed.includes('original-date')) {
    throw new Error(`response headers="${params.headers}" includes neither date nor original-date`);
  }
  for (const n of signed) {
    if (n !== '(request-target)' && res.headerAll(n).length === 0) {
      throw new Error(`response signs header "${n}" but does not carry it`);
    }
  }
  const rid = res.headerAll('X-Request-Id');
  if (rid.length !== 1 || rid[0] !== req.requestId) {
    throw new Error(`response X-Request-Id ${JSON.stringify(rid)} does not echo ours (${req.requestId})`);
  }
  if (wantRS) {
    const rs = res.headerAll('X-Request-Signature');
    if (rs.length !== 1 || rs[0] !== req.signature) {
      throw new Error(`response X-Request-Signature ${JSON.stringify(rs)} is not our request's signature ${req.signature}`);
    }
  }
  for (const dn of ['date', 'original-date']) {
    const v = res.header(dn);
    if (v === undefined) continue;
    const t = Date.parse(v);
    if (Number.isNaN(t)) throw new Error(`response ${dn} does not parse: ${v}`);
    if (Math.abs(Date.now() - t) > maxSkew * 1000) throw new Error(`response ${dn} ${v} is more than ${maxSkew}s off`);
  }
  const sstr = signingString(signed, res.headers, { method: req.method, path: req.target });
  const ok = crypto.verify('sha256', Buffer.from(sstr, 'utf8'), serverKey.publicKey,
    Buffer.from(params.signature, 'base64'));
  if (!ok) {
    throw new Error(`response signature does not verify with ewpd's server key (Node crypto).\nSigning string rebuilt:\n${sstr}\n` +
      `Signature: ${sigHeaders[0]}`);
  }
  const dig = res.header('Digest');
  const want = sha256b64(res.body);
  const got = (dig || '').split(',').map((s) => s.trim()).find((s) => /^sha-256=/i.test(s));
  if (!got || got.slice(8) !== want) {
    throw new Error(`response Digest ${JSON.stringify(dig)} does not match SHA-256 of the ${res.body.length} body bytes received (${want})`);
  }
  return { params, signingString: sstr, signed };
}
