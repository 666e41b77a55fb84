// A test double of another vendor's EWP node: an HTTPS server on
// 127.0.0.1 with its own TLS certificate and its own server signing key
// (to be listed in the catalogue as that host's server key). It reads the
// signed requests ewpctl sends (and checks their signature with the
// caller's key when given one), and answers what the test asks for,
// signed as EWP servers sign responses (ewp-notes 2.4): Date, Digest,
// X-Request-Id echoed, X-Request-Signature, and a `Signature:` header over
// them. Every part of that answer can be bent, one at a time, to play a
// partner with one fault.
//
//   const p = await PartnerDouble.start({ dir, clientKey });
//   p.handle((req) => p.reply(req, { body: xml }));          // a correct answer
//   p.handle((req) => p.reply(req, { body: xml, digestOf: 'other bytes' }));
//   p.hangConnections = true;   // accept TCP, never start TLS
//   ...
//   await p.close();
//
// Every request is recorded in p.requests ({ api, path, requestId, form,
// signatureOk, ... }) so that a test can tell which exchanges took place.
import crypto from 'node:crypto';
import fs from 'node:fs';
import https from 'node:https';
import net from 'node:net';
import path from 'node:path';

import { makeTlsCert } from './daemon.mjs';
import { digestHeader, httpDate, makeKey, parseSignatureParams, signingString } from './sign.mjs';

export class PartnerDouble {
  /*
   * dir: a directory for the TLS files; clientKey: the caller's key
   * ({ publicKey }) to check request signatures with (optional).
   */
  static async start({ dir, clientKey } = {}) {
    const p = new PartnerDouble();
    fs.mkdirSync(dir, { recursive: true });
    p.tlsFiles = makeTlsCert(dir);
    p.serverKey = makeKey();
    p.clientKey = clientKey;
    p.requests = [];
    p.hangConnections = false;
    p._handler = (req) => p.reply(req, { status: 404, body: '' });
    p._sockets = new Set();
    p.https = https.createServer({ cert: fs.readFileSync(p.tlsFiles.cert), key: fs.readFileSync(p.tlsFiles.key) },
      (req, res) => p._onRequest(req, res));
    p.https.on('tlsClientError', () => { /* the client gave up: nothing to do */ });
    // A plain TCP front: hands the connection to the TLS server, or holds it
    // without a byte (a partner that accepts and never answers).
    p.front = net.createServer((sock) => {
      p._sockets.add(sock);
      sock.on('close', () => p._sockets.delete(sock));
      sock.on('error', () => {});
      if (p.hangConnections) return;
      p.https.emit('connection', sock);
    });
    await new Promise((resolve, reject) => {
      p.front.once('error', reject);
      p.front.listen(0, '127.0.0.1', resolve);
    });
    p.port = p.front.address().port;
    p.baseUrl = `https://localhost:${p.port}`;
    return p;
  }

  // fn(req) => nothing (the double never answers) or a reply() call.
  handle(fn) {
    this._handler = fn;
  }

  async _onRequest(msg, res) {
    res.on('error', () => {});
    msg.on('error', () => {});
    const chunks = [];
    for await (const c of msg) chunks.push(c);
    const body = Buffer.concat(chunks);
    const headers = [];
    for (let i = 0; i < msg.rawHeaders.length; i += 2) headers.push([msg.rawHeaders[i], msg.rawHeaders[i + 1]]);
    const get = (n) => headers.filter(([k]) => k.toLowerCase() === n).map(([, v]) => v);
    const auth = get('authorization')[0] || '';
    const params = auth.startsWith('Signature ') ? parseSignatureParams(auth.slice(10)) : {};
    const req = {
      method: msg.method,
      path: msg.url,
      api: msg.url.split('?')[0].split('/').pop(),
      headers,
      body,
      form: new URLSearchParams(msg.method === 'POST' ? body.toString('utf8') : msg.url.split('?')[1] || ''),
      requestId: get('x-request-id')[0],
      signature: params.signature,
      keyId: params.keyId,
      signatureOk: this._checkRequest(headers, body, params, msg),
      res,
    };
    this.requests.push(req);
    try {
      this._handler(req);
    } catch (e) {
      res.destroy(e);
    }
  }

  // Did the caller sign this request with clientKey, over a right Digest?
  _checkRequest(headers, body, params, msg) {
    if (!this.clientKey || !params.signature || !params.headers) return false;
    if (params.keyId !== this.clientKey.keyId) return false;
    const names = params.headers.toLowerCase().split(/\s+/).filter(Boolean);
    const sstr = signingString(names, headers, { method: msg.method, path: msg.url });
    const dig = headers.find(([n]) => n.toLowerCase() === 'digest');
    return crypto.verify('sha256', Buffer.from(sstr, 'utf8'), this.clientKey.publicKey, Buffer.from(params.signature, 'base64')) &&
      !!dig && dig[1] === digestHeader(body) && names.includes('digest');
  }

  /*
   * Sends a signed answer to req. Options (each bends one thing):
   *   status (200), body (string|Buffer), contentType ('text/xml; charset=utf-8'),
   *   key (signing key, default this.serverKey), digestOf (bytes the Digest is
   *   computed over instead of body), requestId (value sent, default the
   *   request's; null: no X-Request-Id), requestSignature (default the
   *   request's signature; null: none), chunked (no Content-Length),
   *   contentLength (announced length, the body is still sent as is).
   */
  reply(req, o = {}) {
    const res = req.res;
    const body = Buffer.from(o.body ?? '');
    const key = o.key || this.serverKey;
    const h = [['Content-Type', o.contentType || 'text/xml; charset=utf-8'], ['Date', httpDate()],
      ['Digest', digestHeader(o.digestOf === undefined ? body : Buffer.from(o.digestOf))]];
    const rid = o.requestId === undefined ? req.requestId : o.requestId;
    if (rid !== null && rid !== undefined) h.push(['X-Request-Id', rid]);
    const rs = o.requestSignature === undefined ? req.signature : o.requestSignature;
    if (rs !== null && rs !== undefined) h.push(['X-Request-Signature', rs]);
    const names = h.slice(1).map(([n]) => n.toLowerCase());
    const sstr = signingString(names, h, { method: req.method, path: req.path });
    const sig = crypto.sign('sha256', Buffer.from(sstr, 'utf8'), key.privateKey).toString('base64');
    h.push(['Signature', `keyId="${key.keyId}",algorithm="rsa-sha256",headers="${names.join(' ')}",signature="${sig}"`]);
    res.sendDate = false;
    if (!o.chunked) h.push(['Content-Length', String(o.contentLength ?? body.length)]);
    res.statusCode = o.status || 200;
    for (const [n, v] of h) res.setHeader(n, v);
    // big bodies go out in pieces, stopping if the client hangs up
    let off = 0;
    const step = 1 << 16;
    const pump = () => {
      while (off < body.length && !res.destroyed) {
        const piece = body.subarray(off, off + step);
        off += piece.length;
        if (!res.write(piece)) { res.once('drain', pump); return; }
      }
      if (!res.destroyed) res.end();
    };
    pump();
  }

  // Requests received since `from` (an index into this.requests).
  since(from) {
    return this.requests.slice(from).map(({ res, ...r }) => r);
  }

  async close() {
    for (const s of this._sockets) s.destroy();
    await new Promise((resolve) => this.front.close(() => resolve()));
    this.https.close();
  }
}

// PEM bundle of several certificates, for `--cacert` of a client that
// talks to several of them.
export function writeCaBundle(file, pems) {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, pems.map((p) => p.trim()).join('\n') + '\n');
  return file;
}
