import type { MintTokenResponse } from '@switchboard/contract';
import type { RtcTokenRequest, SwitchboardOptions } from './client.js';
import { SwitchboardError } from './errors.js';

/** The app's access token; a failure that is not already a SwitchboardError becomes `unauthorized`. */
export async function accessTokenFrom(options: SwitchboardOptions, forceRefresh: boolean): Promise<string> {
  const get = options.getAccessToken;
  if (!get) throw new SwitchboardError('unauthorized', 'this needs an access token: pass getAccessToken');
  try {
    return await get({ forceRefresh });
  } catch (error) {
    if (error instanceof SwitchboardError) throw error;
    const reason = error instanceof Error ? `: ${error.message}` : '';
    throw new SwitchboardError('unauthorized', `could not get an access token${reason}`, { cause: error });
  }
}

/** An RTC token from the app's backend, failures mapped as for access tokens. */
export async function rtcTokenFrom(
  get: NonNullable<SwitchboardOptions['getRtcToken']>,
  request: RtcTokenRequest,
): Promise<MintTokenResponse> {
  try {
    const minted = await get(request);
    if (typeof minted?.token !== 'string') throw new Error('getRtcToken returned no token');
    return minted;
  } catch (error) {
    if (error instanceof SwitchboardError) throw error;
    const reason = error instanceof Error ? `: ${error.message}` : '';
    throw new SwitchboardError('unauthorized', `could not get an RTC token${reason}`, { cause: error });
  }
}
