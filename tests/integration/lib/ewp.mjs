// EWP-level assertions shared by the test files.
import assert from 'node:assert/strict';
import { NS, specPath, projectSchema } from './env.mjs';
import { pollUntil } from './poll.mjs';
import { assertValid, parseXml } from './xml.mjs';

function reqLine(req) {
  if (!req) return '';
  const head = req.headers ? req.headers.map(([n, v]) => `${n}: ${v}`).join('\n') : '';
  const body = req.body && req.body.length ? `\n\n${Buffer.from(req.body).toString('utf8').slice(0, 500)}` : '';
  return `\n--- request ---\n${req.method} ${req.target}\n${head}${body}`;
}

// Formats request + response for assertion messages.
export function exchange(req, res) {
  return `${reqLine(req)}\n--- response ---\n${res ? res.describe() : '(none)'}`;
}

export function assertStatus(res, expected, req, what = '') {
  const ok = Array.isArray(expected) ? expected.includes(res.status) : res.status === expected;
  assert.ok(ok, `${what ? what + ': ' : ''}expected HTTP ${expected}, got ${res.status}${exchange(req, res)}`);
}

export function assertXmlContentType(res, req) {
  const ct = res.header('Content-Type') || '';
  assert.match(ct, /^(text|application)\/xml\s*(;|$)/i,
    `Content-Type should be text/xml or application/xml, got ${JSON.stringify(ct)}${exchange(req, res)}`);
}

// Asserts an EWP error-response: status, XML, non-empty developer-message,
// valid against the official common-types.xsd and the project's
// ewp-schemas/common-types.xsd. Returns the message.
export function assertErrorResponse(res, expected, req, what = '') {
  assertStatus(res, expected, req, what);
  assertXmlContentType(res, req);
  let root;
  try {
    root = parseXml(res.body);
  } catch (e) {
    assert.fail(`${what}: error body is not well-formed XML (${e.message})${exchange(req, res)}`);
  }
  assert.equal(root.local, 'error-response', `${what}: root element should be error-response${exchange(req, res)}`);
  assert.equal(root.ns, NS.ewp, `${what}: error-response in the wrong namespace${exchange(req, res)}`);
  const dm = root.elements(NS.ewp, 'developer-message');
  assert.equal(dm.length, 1, `${what}: error-response needs exactly one developer-message${exchange(req, res)}`);
  assert.ok(dm[0].text.trim().length > 0, `${what}: developer-message is empty${exchange(req, res)}`);
  assertValid(res.body, specPath('ewp-specs-architecture', 'common-types.xsd'), `${what} error-response`);
  assertValid(res.body, projectSchema('common-types.xsd'), `${what} error-response (ewp-schemas/common-types.xsd)`);
  return dm[0].text.trim();
}

// Parses an Echo v2 response; returns { heiIds, echoes, root }.
export function parseEcho(res, req) {
  assertXmlContentType(res, req);
  const root = parseXml(res.body);
  assert.equal(root.local, 'response', `echo root element should be <response>${exchange(req, res)}`);
  assert.equal(root.ns, NS.echoResponse, `echo response namespace should be ${NS.echoResponse}${exchange(req, res)}`);
  const kids = root.elements();
  const names = kids.map((k) => k.local);
  // hei-id* then echo*
  const firstEcho = names.indexOf('echo');
  if (firstEcho >= 0) {
    assert.ok(!names.slice(firstEcho).includes('hei-id'), `hei-id elements must come before echo elements: ${names}${exchange(req, res)}`);
  }
  for (const k of kids) {
    assert.equal(k.ns, NS.echoResponse, `child ${k.qname} in the wrong namespace${exchange(req, res)}`);
    assert.ok(['hei-id', 'echo'].includes(k.local), `unexpected child <${k.qname}>${exchange(req, res)}`);
  }
  return {
    root,
    heiIds: kids.filter((k) => k.local === 'hei-id').map((k) => k.text),
    echoes: kids.filter((k) => k.local === 'echo').map((k) => k.text),
  };
}

export function validateEchoOfficial(res) {
  assertValid(res.body, specPath('ewp-specs-api-echo', 'response.xsd'), 'echo response (official response.xsd)');
}

export function validateEchoProject(res) {
  assertValid(res.body, projectSchema('echo-response.xsd'), 'echo response (ewp-schemas/echo-response.xsd)');
}

// Sends node a signed echo of `values` (opts as for node.echoRequest) and
// asserts a 200 echoing exactly them; returns { req, res }.
export async function assertEcho(node, values, what, opts = {}) {
  const req = node.echoRequest(values, opts);
  const res = await node.send(req);
  assertStatus(res, 200, req, what);
  assert.deepEqual(parseEcho(res, req).echoes, values, `${what}: echo values${exchange(req, res)}`);
  return { req, res };
}

// Polls node with a signed echo of `values` (opts as for node.echoRequest)
// until it answers 200, e.g. once a reload has taken effect; returns the
// last { req, res }.
export async function pollEchoOk(node, values, opts, what, timeoutMs = 5000) {
  return pollUntil(async () => {
    const req = node.echoRequest(values, opts);
    const res = await node.send(req);
    return { ok: res.status === 200, req, res, detail: `HTTP ${res.status}${exchange(req, res)}` };
  }, timeoutMs, what);
}

// GET /metrics from node, asserted 200 and well-formed; returns { req, res, samples }.
export async function fetchMetrics(node) {
  const req = { method: 'GET', target: '/metrics', headers: [['Host', node.hostHeader]] };
  const res = await node.send(req);
  assertStatus(res, 200, req, 'GET /metrics');
  try {
    return { req, res, samples: parseMetrics(res.text) };
  } catch (e) {
    assert.fail(`${e.message}${exchange(req, res)}`);
  }
}

// Prometheus text exposition: returns [{ name, labels: {}, value }].
export function parseMetrics(text) {
  const out = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)(\s+\d+)?$/.exec(line);
    if (!m) throw new Error(`malformed metrics line: ${JSON.stringify(line)}`);
    const labels = {};
    if (m[3]) {
      const re = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*,?/g;
      let lm;
      while ((lm = re.exec(m[3]))) labels[lm[1]] = lm[2].replace(/\\(.)/g, (x, c) => (c === 'n' ? '\n' : c));
    }
    const v = m[4] === '+Inf' ? Infinity : m[4] === '-Inf' ? -Infinity : Number(m[4]);
    out.push({ name: m[1], labels, value: v });
  }
  return out;
}

// Sum of the samples of `name` whose labels include `match`.
export function metricValue(samples, name, match = {}) {
  let sum = 0;
  for (const s of samples) {
    if (s.name !== name) continue;
    if (Object.entries(match).every(([k, v]) => s.labels[k] === v)) sum += s.value;
  }
  return sum;
}
