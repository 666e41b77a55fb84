// Regression tests of the review of issue 4's sending-side and incoming
// APIs (OMobilities v3, OMobility LAs v1.2, IMobilities v2): bad inputs
// answered with a precise error-response (never a 500, never a partial
// write), hostile XML refused, permissions per the specs. One real ewpd,
// one real PostgreSQL, real signatures; the callers are the fixture's
// partner.example.org key (the receiving HEI of our outgoing mobilities,
// the sending HEI of our incoming one), our own key (the sending HEI) and
// the D hosts' key (a third HEI).
import assert from 'node:assert/strict';
import { after, before } from 'node:test';

import { Ewpd, HEI_ID, PARTNER_HEI, itest } from './lib/daemon.mjs';
import { assertErrorResponse, assertStatus, exchange } from './lib/ewp.mjs';
import { PROJECT_SCHEMAS } from './lib/env.mjs';
import { parseXml, xmlEscape } from './lib/xml.mjs';

const GH = 'https://github.com/erasmus-without-paper';
const OMOB = `${GH}/ewp-specs-api-omobilities/blob/stable-v3/endpoints`;
const LAS = `${GH}/ewp-specs-api-omobility-las/blob/stable-v1/endpoints`;
const IMOB = `${GH}/ewp-specs-api-imobilities/blob/stable-v2/endpoints`;
const OMOB_ID = 'review-omob-1';
const IN_ID = 'review-in-1';

let fx;

const sql = (s) => fx.pg.psql(s).trim();
const q = (s) => `'${String(s).replace(/'/g, "''")}'`;
const form = (params) => params.map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join('&');

before(async () => {
  fx = await Ewpd.create('review-mob', { pg: true, start: false, conf: { ewp: { schema_dir: PROJECT_SCHEMAS } } });
  sql(`INSERT INTO smile.etablissement (schac_id, names, is_local)
       VALUES (${q(HEI_ID)}, '[{"name":"SMILE Test University"}]', true)`);
  // our outgoing student, received by PARTNER_HEI
  sql(`INSERT INTO smile.mobility (sending_hei_id, omobility_id, receiving_hei_id, is_outgoing, given_names,
       family_name, global_id, receiving_academic_year_id, proposal_id)
       VALUES (${q(HEI_ID)}, ${q(OMOB_ID)}, ${q(PARTNER_HEI)}, true, 'Jeanne', 'Dupont',
       'urn:schac:personalUniqueCode:int:esi:smile.test:r1', '2026/2027', 'x')`);
  // PARTNER_HEI's student coming to us, with the dates our staff entered
  sql(`INSERT INTO smile.mobility (sending_hei_id, omobility_id, receiving_hei_id, is_outgoing, given_names,
       family_name, global_id, receiving_academic_year_id, proposal_id, actual_arrival_date)
       VALUES (${q(PARTNER_HEI)}, ${q(IN_ID)}, ${q(HEI_ID)}, false, 'Ola', 'Nordmann',
       'urn:schac:personalUniqueCode:int:esi:partner.example.org:r2', '2026/2027', 'p1', '2026-09-01')`);
  await fx.start();
});

after(async () => {
  await fx?.cleanup();
});

async function send(o, key = fx.partnerKey) {
  const req = fx.signed({ key, ...o });
  const res = await fx.send(req);
  return { req, res };
}

const getForm = (path, params, key) => send({ path: `${path}?${form(params)}` }, key);
const postXml = (path, body, key, contentType = 'text/xml; charset=utf-8') =>
  send({ method: 'POST', path, body, contentType }, key);

const proposalId = () => sql(`SELECT proposal_id FROM smile.mobility WHERE omobility_id = ${q(OMOB_ID)}`);
const status = () => sql(`SELECT status || '|' || coalesce(status_comment, '') FROM smile.mobility WHERE omobility_id = ${q(OMOB_ID)}`);

itest(() => fx, 'OMobility LAs index: modified_since with out-of-range fields → 400, not a database error', async () => {
  for (const ms of ['2026-13-01T00:00:00Z', '2026-02-30T10:00:00Z', '0000-01-01T00:00:00Z', '2026-01-01T25:00:00+01:00',
    '2026-01-01T10:00:00+99:00']) {
    const { req, res } = await getForm('/ewp/omobility-las/index', [['sending_hei_id', HEI_ID], ['modified_since', ms]]);
    const msg = assertErrorResponse(res, 400, req, `modified_since=${ms}`);
    assert.match(msg, /modified_since/, `the message names the parameter${exchange(req, res)}`);
  }
  const { req, res } = await getForm('/ewp/omobility-las/index', [['sending_hei_id', HEI_ID], ['modified_since', '2024-02-29T23:59:59.5-03:00']]);
  assertStatus(res, 200, req, 'a valid modified_since (leap day, fraction, offset)');
});
