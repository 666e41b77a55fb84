// Paths and environment of the integration suite.
//
// Binaries: $EWPD (default build/ewpd) and $EWPCTL (default build/ewpctl),
// relative to the repository root. Official EWP schemas: $EWP_SPECS or
// ../shared/ewp-specs (relative to the repository root). Project schemas:
// ewp-schemas/.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
export const REPO_ROOT = path.resolve(here, '..', '..', '..');

function fromRoot(p) {
  return path.isAbsolute(p) ? p : path.resolve(REPO_ROOT, p);
}

export const EWPD = fromRoot(process.env.EWPD || 'build/ewpd');
export const EWPCTL = fromRoot(process.env.EWPCTL || 'build/ewpctl');
export const SPECS = fromRoot(process.env.EWP_SPECS || '../shared/ewp-specs');
export const PROJECT_SCHEMAS = path.join(REPO_ROOT, 'ewp-schemas');
export const PROJECT_PORTAL_STRINGS = path.join(REPO_ROOT, 'conf', 'portal');

// Keep temporary directories after the run (for post-mortem) when set.
export const KEEP_TMP = !!process.env.KEEP_TMP;

export function requireBinary(p, what) {
  if (!fs.existsSync(p)) {
    throw new Error(`${what} binary not found at ${p} (build it with "make all" ` +
      `or point ${what === 'ewpd' ? 'EWPD' : 'EWPCTL'} at it)`);
  }
  try {
    fs.accessSync(p, fs.constants.X_OK);
  } catch {
    throw new Error(`${what} at ${p} is not executable`);
  }
}

// The official specs are needed by every conformance check: fail plainly
// (never skip) when they are missing.
export function requireSpecs() {
  const cat = path.join(SPECS, 'catalog.xml');
  if (!fs.existsSync(cat)) {
    throw new Error(`EWP specs directory not found: ${SPECS} (no catalog.xml there). ` +
      'The conformance tests need the official EWP schemas: set EWP_SPECS to the ' +
      'directory holding them (normally ../shared/ewp-specs).');
  }
  return SPECS;
}

export function specPath(...parts) {
  requireSpecs();
  const p = path.join(SPECS, ...parts);
  if (!fs.existsSync(p)) throw new Error(`official schema file missing: ${p}`);
  return p;
}

export function projectSchema(name) {
  const p = path.join(PROJECT_SCHEMAS, name);
  if (!fs.existsSync(p)) {
    throw new Error(`project schema missing: ${p} (ewp-schemas/${name} must exist ` +
      'and describe what ewpd produces)');
  }
  return p;
}

export const NS = {
  registry: 'https://github.com/erasmus-without-paper/ewp-specs-api-registry/tree/stable-v1',
  manifest: 'https://github.com/erasmus-without-paper/ewp-specs-api-discovery/tree/stable-v6',
  discoveryEntry: 'https://github.com/erasmus-without-paper/ewp-specs-api-discovery/blob/stable-v6/manifest-entry.xsd',
  echoEntry: 'https://github.com/erasmus-without-paper/ewp-specs-api-echo/blob/stable-v2/manifest-entry.xsd',
  echoResponse: 'https://github.com/erasmus-without-paper/ewp-specs-api-echo/tree/stable-v2',
  ewp: 'https://github.com/erasmus-without-paper/ewp-specs-architecture/blob/stable-v1/common-types.xsd',
  sec: 'https://github.com/erasmus-without-paper/ewp-specs-sec-intro/tree/stable-v2',
  cliauthHttpsig: 'https://github.com/erasmus-without-paper/ewp-specs-sec-cliauth-httpsig/tree/stable-v1',
  cliauthTlscert: 'https://github.com/erasmus-without-paper/ewp-specs-sec-cliauth-tlscert/tree/stable-v1',
  cliauthNone: 'https://github.com/erasmus-without-paper/ewp-specs-sec-cliauth-none/tree/stable-v1',
  srvauthTlscert: 'https://github.com/erasmus-without-paper/ewp-specs-sec-srvauth-tlscert/tree/stable-v1',
  srvauthHttpsig: 'https://github.com/erasmus-without-paper/ewp-specs-sec-srvauth-httpsig/tree/stable-v1',
  xml: 'http://www.w3.org/XML/1998/namespace',
};
