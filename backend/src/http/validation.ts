import type { z } from 'zod';
import { ApiError } from './errors.js';

/** Parses `value` against `schema`, or throws `invalid_request` naming the first bad field. */
export function parse<S extends z.ZodType>(schema: S, value: unknown): z.infer<S> {
  const result = schema.safeParse(value);
  if (!result.success) {
    const issue = result.error.issues[0];
    const where = issue && issue.path.length > 0 ? `${issue.path.join('.')}: ` : '';
    throw new ApiError('invalid_request', `${where}${issue?.message ?? 'invalid request'}`);
  }
  return result.data;
}
