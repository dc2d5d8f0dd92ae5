import type { SwitchboardOptions } from './client.js';
import { SwitchboardError } from './errors.js';

/** The app's access token; a failure that is not already a SwitchboardError becomes `unauthorized`. */
export async function accessTokenFrom(options: SwitchboardOptions, forceRefresh: boolean): Promise<string> {
  try {
    return await options.getAccessToken({ forceRefresh });
  } catch (error) {
    if (error instanceof SwitchboardError) throw error;
    const reason = error instanceof Error ? `: ${error.message}` : '';
    throw new SwitchboardError('unauthorized', `could not get an access token${reason}`, { cause: error });
  }
}
