import type { z } from 'zod';
import { ApiError } from './errors.js';

/** What is wrong, naming the first bad field. */
export function firstIssue(error: z.ZodError): string {
  const issue = error.issues[0];
  const where = issue && issue.path.length > 0 ? `${issue.path.join('.')}: ` : '';
  return `${where}${issue?.message ?? 'invalid request'}`;
}

/** Parses `value` against `schema`, or throws `invalid_request` naming the first bad field. */
export function parse<S extends z.ZodType>(schema: S, value: unknown): z.infer<S> {
  const result = schema.safeParse(value);
  if (!result.success) throw new ApiError('invalid_request', firstIssue(result.error));
  return result.data;
}
