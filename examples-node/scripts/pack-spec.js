#!/usr/bin/env node
// npm pack's prepack/postpack step: `copy` puts the protocol files the package reads at run time
// (every file of spec/ but the Markdown prose) and the repository's LICENSE into the
// package folder, so the tarball carries them; `clean` removes them again right after, so the
// repository's spec/ stays the one source (lib/spec.js prefers a packaged copy when it exists).
// Both copies are .gitignored; none is ever committed.
import { cpSync, existsSync, mkdirSync, readdirSync, renameSync, rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const pkg = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const repo = path.resolve(pkg, '..');
const from = path.join(repo, 'spec');
const to = path.join(pkg, 'spec');

/**
 * The spec files shipped in the package, relative to spec/: every file but the Markdown prose
 * (VERSION, errors.json, lua/*, schemas/*.json, and whatever machine-readable file the spec
 * adds later), sorted.
 */
export function packagedSpecFiles(specRoot = from, dir = '') {
  const out = [];
  for (const e of readdirSync(path.join(specRoot, dir), { withFileTypes: true })) {
    const rel = dir ? `${dir}/${e.name}` : e.name;
    if (e.isDirectory()) out.push(...packagedSpecFiles(specRoot, rel));
    else if (e.isFile() && !e.name.endsWith('.md')) out.push(rel);
  }
  return out.sort();
}

// The copy appears and disappears with one rename each, so a worker starting meanwhile in
// this folder sees either a complete spec/ copy or none.
const staging = `${to}.tmp-${process.pid}`;

/** Removes the packaged copies. */
function clean() {
  if (existsSync(to)) {
    renameSync(to, staging);
    rmSync(staging, { recursive: true, force: true });
  }
  rmSync(path.join(pkg, 'LICENSE'), { force: true });
}

/** Copies spec files and LICENSE into the package folder (after removing any old copy). */
function copy() {
  if (!existsSync(path.join(from, 'VERSION'))) {
    throw new Error(`${from}/VERSION not found: pack from a checkout of the jobwire repository`);
  }
  clean();
  rmSync(staging, { recursive: true, force: true });
  for (const rel of packagedSpecFiles()) {
    mkdirSync(path.dirname(path.join(staging, rel)), { recursive: true });
    cpSync(path.join(from, rel), path.join(staging, rel));
  }
  renameSync(staging, to);
  cpSync(path.join(repo, 'LICENSE'), path.join(pkg, 'LICENSE'));
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const mode = process.argv[2];
  if (mode === 'copy') copy();
  else if (mode === 'clean') clean();
  else {
    process.stderr.write('usage: node scripts/pack-spec.js copy|clean\n');
    process.exit(2);
  }
}
