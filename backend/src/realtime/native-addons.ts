import { createRequire } from 'node:module';

/**
 * Whether ws's optional native add-ons loaded. npm 11 skips their install scripts,
 * so they work only through the prebuilt binaries they ship; if a platform has none,
 * ws silently falls back to JavaScript masking, which costs CPU on every frame.
 */
export function nativeWsAddons(): { bufferutil: boolean; utf8Validate: boolean } {
  const require = createRequire(import.meta.url);
  const isNative = (name: string, fn?: string): boolean => {
    try {
      const addon = require(name) as unknown;
      const candidate = fn ? (addon as Record<string, unknown>)[fn] : addon;
      return typeof candidate === 'function' && candidate.toString().includes('[native code]');
    } catch {
      return false;
    }
  };
  return { bufferutil: isNative('bufferutil', 'mask'), utf8Validate: isNative('utf-8-validate') };
}
