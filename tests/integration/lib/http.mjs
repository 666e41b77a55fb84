// A raw HTTP/1.1 client over net / tls sockets. Node's http module
// normalises headers (order, case, duplicates, Host, framing); EWP tests
// need every byte under control, so requests are written by hand and
// responses parsed here, keeping header order, case and duplicates.
import net from 'node:net';
import tls from 'node:tls';

export class HttpResponse {
  constructor(status, reason, headers, body, raw) {
    this.status = status;
    this.reason = reason;
    this.headers = headers; // [[name, value]] as received
    this.body = body; // Buffer
    this.rawHead = raw;
  }

  // First value of a header (case-insensitive), or undefined.
  header(name) {
    const l = name.toLowerCase();
    const h = this.headers.find(([n]) => n.toLowerCase() === l);
    return h ? h[1] : undefined;
  }

  headerAll(name) {
    const l = name.toLowerCase();
    return this.headers.filter(([n]) => n.toLowerCase() === l).map(([, v]) => v);
  }

  get text() {
    return this.body.toString('utf8');
  }

  describe(max = 1500) {
    const b = this.text;
    return `${this.rawHead}\r\n\r\n${b.length > max ? b.slice(0, max) + '[...]' : b}`;
  }
}

export function serializeRequest({ method = 'GET', target = '/', headers = [], body } = {}) {
  let head = `${method} ${target} HTTP/1.1\r\n`;
  for (const [n, v] of headers) head += `${n}: ${v}\r\n`;
  head += '\r\n';
  const b = body === undefined || body === null ? Buffer.alloc(0) : Buffer.from(body);
  return Buffer.concat([Buffer.from(head, 'latin1'), b]);
}

// Incremental parser of responses on one connection.
class ResponseParser {
  constructor() {
    this.buf = Buffer.alloc(0);
    this.state = 'head';
    this.cur = null;
    this.isHead = false;
  }

  push(data) {
    this.buf = this.buf.length ? Buffer.concat([this.buf, data]) : data;
  }

  // Returns a complete HttpResponse or null (needs more data).
  // `eof`: the peer closed; a body delimited by close is then complete.
  next(eof = false) {
    for (;;) {
      if (this.state === 'head') {
        const e = this.buf.indexOf('\r\n\r\n');
        if (e < 0) return null;
        const raw = this.buf.subarray(0, e).toString('latin1');
        this.buf = this.buf.subarray(e + 4);
        const lines = raw.split('\r\n');
        const m = /^HTTP\/1\.[01] (\d{3})(?: (.*))?$/.exec(lines[0]);
        if (!m) throw new Error(`malformed status line: ${JSON.stringify(lines[0])}`);
        const headers = [];
        for (const l of lines.slice(1)) {
          const c = l.indexOf(':');
          if (c <= 0) throw new Error(`malformed response header line: ${JSON.stringify(l)}`);
          headers.push([l.slice(0, c), l.slice(c + 1).trim()]);
        }
        const status = Number(m[1]);
        if (status >= 100 && status < 200) continue; // interim response
        this.cur = { status, reason: m[2] || '', headers, raw, chunks: [] };
        const get = (n) => headers.filter(([k]) => k.toLowerCase() === n).map(([, v]) => v);
        const te = get('transfer-encoding').join(',').toLowerCase();
        const cl = get('content-length');
        if (this.isHead || status === 204 || status === 304) {
          this.state = 'done';
        } else if (te.includes('chunked')) {
          this.state = 'chunk-size';
        } else if (cl.length) {
          if (cl.length > 1 && new Set(cl).size > 1) throw new Error(`response has conflicting Content-Length: ${cl}`);
          this.cur.remaining = Number(cl[0]);
          this.state = 'length';
        } else {
          this.state = 'close';
        }
      }
      if (this.state === 'length') {
        const take = Math.min(this.cur.remaining, this.buf.length);
        if (take) {
          this.cur.chunks.push(this.buf.subarray(0, take));
          this.buf = this.buf.subarray(take);
          this.cur.remaining -= take;
        }
        if (this.cur.remaining > 0) return null;
        this.state = 'done';
      }
      if (this.state === 'chunk-size') {
        const e = this.buf.indexOf('\r\n');
        if (e < 0) return null;
        const size = parseInt(this.buf.subarray(0, e).toString('latin1').split(';')[0], 16);
        if (Number.isNaN(size)) throw new Error('malformed chunk size');
        this.buf = this.buf.subarray(e + 2);
        if (size === 0) { this.state = 'trailer'; } else { this.cur.remaining = size; this.state = 'chunk-data'; }
      }
      if (this.state === 'chunk-data') {
        if (this.buf.length < this.cur.remaining + 2) return null;
        this.cur.chunks.push(this.buf.subarray(0, this.cur.remaining));
        this.buf = this.buf.subarray(this.cur.remaining + 2);
        this.state = 'chunk-size';
        continue;
      }
      if (this.state === 'trailer') {
        const e = this.buf.indexOf('\r\n');
        if (e < 0) return null;
        const line = this.buf.subarray(0, e);
        this.buf = this.buf.subarray(e + 2);
        if (line.length === 0) this.state = 'done';
        continue;
      }
      if (this.state === 'close') {
        if (this.buf.length) { this.cur.chunks.push(this.buf); this.buf = Buffer.alloc(0); }
        if (!eof) return null;
        this.state = 'done';
      }
      if (this.state === 'done') {
        const c = this.cur;
        this.cur = null;
        this.state = 'head';
        return new HttpResponse(c.status, c.reason, c.headers, Buffer.concat(c.chunks), c.raw);
      }
      return null;
    }
  }

  get inResponse() {
    return this.cur !== null;
  }
}

export class HttpError extends Error {
  constructor(message, { code, partial } = {}) {
    super(message);
    this.code = code;
    this.partial = partial; // true when response headers had been received
  }
}

// One client connection; requests are sent one after the other
// (keep-alive). `endpoint`: { port, host = '127.0.0.1', tls: { ca, servername } }.
export class Connection {
  static async open(endpoint, { timeout = 10000 } = {}) {
    const c = new Connection(endpoint, timeout);
    await c._connect();
    return c;
  }

  constructor(endpoint, timeout) {
    this.endpoint = endpoint;
    this.timeout = timeout;
    this.closed = false; // peer closed (EOF) or error
    this.error = null;
    this.parser = new ResponseParser();
    this.waiter = null;
  }

  _connect() {
    // localAddress: the source address (e.g. 127.0.0.2, a trusted proxy)
    const { port, host = '127.0.0.1', localAddress } = this.endpoint;
    return new Promise((resolve, reject) => {
      let s;
      const onErr = (e) => reject(new HttpError(`connect to ${host}:${port} failed: ${e.message}`, { code: e.code }));
      if (this.endpoint.tls) {
        s = tls.connect({ host, port, localAddress, ca: this.endpoint.tls.ca, servername: this.endpoint.tls.servername,
          rejectUnauthorized: this.endpoint.tls.rejectUnauthorized !== false }, () => { s.off('error', onErr); resolve(); });
      } else {
        s = net.connect({ host, port, localAddress }, () => { s.off('error', onErr); resolve(); });
      }
      s.once('error', onErr);
      this.sock = s;
      s.on('data', (d) => { this.parser.push(d); this._pump(false); });
      s.on('end', () => { this.closed = true; this._pump(true); });
      s.on('close', () => { this.closed = true; this._pump(true); });
      s.on('error', (e) => { this.error = e; this.closed = true; this._pump(true); });
    });
  }

  _pump(eof) {
    if (!this.waiter) return;
    let res;
    try {
      res = this.parser.next(eof);
    } catch (e) {
      const w = this.waiter; this.waiter = null; clearTimeout(w.timer);
      w.reject(new HttpError(`bad response: ${e.message}`, { code: 'EPARSE', partial: true }));
      return;
    }
    if (res) {
      const w = this.waiter; this.waiter = null; clearTimeout(w.timer);
      w.resolve(res);
    } else if (eof) {
      const w = this.waiter; this.waiter = null; clearTimeout(w.timer);
      const partial = this.parser.inResponse;
      const why = this.error ? `${this.error.code || ''} ${this.error.message}` : 'connection closed by peer';
      w.reject(new HttpError(`${partial ? 'truncated response' : 'no response'}: ${why}`,
        { code: this.error?.code || 'EOF', partial }));
    }
  }

  // Sends raw bytes (a whole request, or a part of one) and, unless
  // noResponse, waits for the next response.
  send(bytes, { isHead = false, timeout = this.timeout } = {}) {
    if (this.waiter) throw new Error('a request is already pending on this connection');
    this.parser.isHead = isHead;
    const p = new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiter = null;
        reject(new HttpError(`no complete response within ${timeout} ms`, { code: 'ETIMEOUT', partial: this.parser.inResponse }));
      }, timeout);
      this.waiter = { resolve, reject, timer };
    });
    if (bytes && bytes.length) this.sock.write(bytes, () => {});
    this._pump(this.closed);
    return p;
  }

  write(bytes) {
    return new Promise((resolve) => this.sock.write(bytes, () => resolve()));
  }

  request(req) {
    return this.send(serializeRequest(req), { isHead: req.method === 'HEAD', timeout: req.timeout });
  }

  close() {
    this.closed = true;
    if (this.sock) this.sock.destroy();
  }
}

// One request on a fresh connection, closed afterwards.
export async function request(endpoint, req) {
  const c = await Connection.open(endpoint, { timeout: req.timeout || 10000 });
  try {
    return await c.request(req);
  } finally {
    c.close();
  }
}

// Sends raw bytes on a fresh connection and waits for one response.
export async function rawExchange(endpoint, bytes, { timeout = 10000 } = {}) {
  const c = await Connection.open(endpoint, { timeout });
  try {
    return await c.send(bytes, { timeout });
  } finally {
    c.close();
  }
}

// Is something accepting TCP connections on this port?
export function portOpen(port, host = '127.0.0.1') {
  return new Promise((resolve) => {
    const s = net.connect({ host, port });
    s.once('connect', () => { s.destroy(); resolve(true); });
    s.once('error', () => resolve(false));
    s.setTimeout(2000, () => { s.destroy(); resolve(false); });
  });
}

export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}
