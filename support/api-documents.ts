import { Ajv, type ValidateFunction } from 'ajv';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';

export type JsonObject = Record<string, unknown>;

const COMPONENTS = '#/components/schemas/';

export function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Follows a local `$ref` (`#/a/b`) within `document`. */
export function resolvePointer(document: unknown, ref: string): unknown {
  if (!ref.startsWith('#/')) throw new Error(`not a local $ref: ${ref}`);
  return ref
    .slice(2)
    .split('/')
    .map((part) => part.replaceAll('~1', '/').replaceAll('~0', '~'))
    .reduce<unknown>((node, part) => (isObject(node) ? node[part] : undefined), document);
}

/**
 * A copy whose `$ref`s into `components.schemas` point at `$defs` instead, and whose
 * objects admit no property the document does not list: a gateway that sends a field
 * its document leaves out fails here, although clients are told to tolerate new ones.
 */
function forValidation(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(forValidation);
  if (!isObject(node)) return node;
  const copy = Object.fromEntries(
    Object.entries(node).map(([key, value]) => [
      key,
      key === '$ref' && typeof value === 'string' ? value.replace(COMPONENTS, '#/$defs/') : forValidation(value),
    ]),
  );
  if (copy.type === 'object' && isObject(copy.properties) && copy.additionalProperties === undefined) {
    copy.additionalProperties = false;
  }
  return copy;
}

/**
 * Checks values against the schemas of an API document (OpenAPI 3.1: JSON Schema
 * 2020-12; AsyncAPI 3.0: draft-07) whose `$ref`s point into `components.schemas`.
 * Returns Ajv's complaints, none when the value fits.
 */
export function documentValidator(
  components: JsonObject,
  dialect: '2020-12' | 'draft-07',
): (schema: unknown, value: unknown) => string[] {
  const ajv = dialect === '2020-12' ? new Ajv2020({ allErrors: true }) : new Ajv({ allErrors: true });
  addFormatsModule.default(ajv);
  const defs = forValidation(components);
  const compiled = new Map<string, ValidateFunction>();
  return (schema, value) => {
    const key = JSON.stringify(schema);
    let validate = compiled.get(key);
    if (!validate) {
      validate = ajv.compile({ ...(forValidation(schema) as JsonObject), $defs: defs });
      compiled.set(key, validate);
    }
    if (validate(value)) return [];
    return (validate.errors ?? []).map((error) => `${error.instancePath || '/'} ${error.message ?? ''}`);
  };
}
