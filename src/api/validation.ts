// Two validators: bodies are strict (no type coercion, unknown properties refused — a typo
// in a parameter must not be silently dropped); query strings and path params are text by
// nature, so they are coerced. Errors are rewritten into one line naming the property.
import { Ajv, type ErrorObject } from 'ajv';
import addFormats from 'ajv-formats';
import type { FastifySchemaCompiler } from 'fastify';

function make(coerce: boolean): Ajv {
  const ajv = new Ajv({ coerceTypes: coerce, useDefaults: true, removeAdditional: false, allErrors: false, strict: false });
  (addFormats as unknown as (a: Ajv) => void)(ajv);
  return ajv;
}

const strict = make(false);
const coercing = make(true);

export const validatorCompiler: FastifySchemaCompiler<unknown> = ({ schema, httpPart }) => {
  const ajv = httpPart === 'body' ? strict : coercing;
  return ajv.compile(schema as object) as ReturnType<FastifySchemaCompiler<unknown>>;
};

export function describeValidationError(errors: ErrorObject[], part: string): string {
  const e = errors[0];
  if (!e) return `invalid ${part}`;
  const where = e.instancePath ? e.instancePath.slice(1).replace(/\//g, '.') : '';
  switch (e.keyword) {
    case 'additionalProperties':
      return `unknown parameter '${String((e.params as { additionalProperty: string }).additionalProperty)}'`;
    case 'required':
      return `missing required parameter '${String((e.params as { missingProperty: string }).missingProperty)}'`;
    default:
      return `${where || part}: ${e.message ?? 'is invalid'}`;
  }
}
