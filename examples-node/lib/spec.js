// Where the protocol's files live and the few facts read from them at run time: the version,
// the job schema, the Lua scripts. In order: $JOBWIRE_SPEC_DIR; the copy an installed package
// carries (<package>/spec, made from the repository's spec/ by `npm pack`, see
// scripts/copy-spec.js); the repository's spec/ next to examples-node.
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const here = path.dirname(fileURLToPath(import.meta.url));

const PACKAGED = path.resolve(here, '..', 'spec');
const REPOSITORY = path.resolve(here, '..', '..', 'spec');

/** Absolute path of the spec directory. */
export function specDir() {
  if (process.env.JOBWIRE_SPEC_DIR) return path.resolve(process.env.JOBWIRE_SPEC_DIR);
  return existsSync(path.join(PACKAGED, 'VERSION')) ? PACKAGED : REPOSITORY;
}

export function specPath(...parts) {
  return path.join(specDir(), ...parts);
}

let version;
/** The protocol version this implementation speaks, from spec/VERSION, e.g. "1.0.0". */
export function specVersion() {
  if (version === undefined) version = readFileSync(specPath('VERSION'), 'utf8').trim();
  return version;
}

/** The protocol major version, e.g. "1". */
export function specMajor() {
  return specVersion().split('.')[0];
}

export function readSpecJson(...parts) {
  return JSON.parse(readFileSync(specPath(...parts), 'utf8'));
}

let implVersion;
/** This package's own version. */
export function packageVersion() {
  if (implVersion === undefined) {
    implVersion = JSON.parse(readFileSync(path.join(here, '..', 'package.json'), 'utf8')).version;
  }
  return implVersion;
}
