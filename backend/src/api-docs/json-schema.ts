import { contractRegistry } from '@switchboard/contract/schemas';
import { z } from 'zod';

/** A JSON Schema as the API documents hold it. */
export type JsonSchema = Record<string, unknown>;

export interface SchemaComponents {
  /** Every named contract schema, by name, for `components.schemas`. */
  readonly schemas: Record<string, JsonSchema>;
  /** A `$ref` to a named schema, or the schema itself when it has no name. */
  schemaFor(schema: z.ZodType): JsonSchema;
}

const COMPONENTS = '#/components/schemas/';

const without = (schema: JsonSchema, ...keys: string[]): JsonSchema =>
  Object.fromEntries(Object.entries(schema).filter(([key]) => !keys.includes(key)));

/**
 * Where zod has no JSON Schema: `JsonValue` is a custom check (any JSON value, which
 * `{}` describes), and `undefined` (a Socket.IO event sent without a payload) is no
 * JSON value at all, so it matches nothing.
 */
const unrepresentable: NonNullable<z.core.ToJSONSchemaParams['unrepresentable']> = ({ zodSchema }) => {
  if (zodSchema._zod.def.type === 'custom') return 'any';
  if (zodSchema._zod.def.type === 'undefined') return { not: {} };
  return 'throw';
};

/**
 * The contract's zod schemas as JSON Schema: OpenAPI 3.1 takes draft 2020-12, AsyncAPI
 * 3.0 its own superset of draft-07. Input types throughout, because that is what the
 * gateway accepts; objects a client may not extend (`z.strictObject`) say so with
 * `additionalProperties: false`, the rest stay open for fields added later.
 */
export function schemaComponents(target: 'draft-2020-12' | 'draft-07'): SchemaComponents {
  const params = { target, io: 'input', metadata: contractRegistry, unrepresentable } as const;
  const generated = z.toJSONSchema(contractRegistry, { ...params, uri: (id) => `${COMPONENTS}${id}` });
  // Each is a part of one document, not a document of its own.
  const schemas = Object.fromEntries(
    Object.entries(generated.schemas).map(([id, schema]) => [id, without(schema, '$schema', '$id')]),
  );
  return {
    schemas,
    schemaFor(schema) {
      const id = contractRegistry.get(schema)?.id;
      if (id !== undefined) return { $ref: `${COMPONENTS}${id}` };
      const inline = without(z.toJSONSchema(schema, params), '$schema');
      // Named parts would land in a `$defs` of their own, which a `$ref` inside one document cannot reach.
      if ('$defs' in inline) throw new Error('an unnamed schema holds named ones: name it with the contract registry');
      return inline;
    },
  };
}

/**
 * `schemas` less those nothing in `document` reaches: both documents draw on one set of
 * contract schemas, and each lists only its own.
 */
export function referencedSchemas(schemas: Record<string, JsonSchema>, document: unknown): Record<string, JsonSchema> {
  const used = new Set<string>();
  const visit = (node: unknown): void => {
    if (Array.isArray(node)) {
      node.forEach(visit);
    } else if (typeof node === 'object' && node !== null) {
      for (const [key, value] of Object.entries(node)) {
        if (key === '$ref' && typeof value === 'string' && value.startsWith(COMPONENTS)) {
          const id = value.slice(COMPONENTS.length);
          if (!used.has(id)) {
            used.add(id);
            visit(schemas[id]);
          }
        } else visit(value);
      }
    }
  };
  visit(document);
  return Object.fromEntries(Object.entries(schemas).filter(([id]) => used.has(id)));
}
