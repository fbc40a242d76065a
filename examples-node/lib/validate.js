// Payload validation against spec/schemas/job.schema.json (JSON Schema draft 2020-12), loaded
// from the spec directory at run time.
import Ajv2020 from 'ajv/dist/2020.js';
import { readSpecJson } from './spec.js';

let validator;

function compile() {
  const ajv = new Ajv2020({ allErrors: false, strict: false });
  return ajv.compile(readSpecJson('schemas', 'job.schema.json'));
}

/** Returns null when `doc` is a valid job payload, else a one-line description of why not. */
export function jobPayloadError(doc) {
  if (!validator) validator = compile();
  if (validator(doc)) return null;
  return validator.errors
    .map((e) => `${e.instancePath || '/'} ${e.message}`)
    .join('; ');
}

export class InvalidPayloadError extends Error {
  constructor(message) {
    super(message);
    this.name = 'jobwire.InvalidPayload';
  }
}
