/**
 * Headless Chromium for the Web UI test: Debian's `chromium` (installed by .ci/run with apt-get), driven by
 * playwright-core — no browser download. Missing, the test FAILS with the install command; only where .ci/run
 * could not install it (RECAPTION_NO_BROWSER set, with its reason) is the test skipped, saying so.
 */
import { existsSync } from 'node:fs';
import * as path from 'node:path';
import { chromium, type Browser } from 'playwright-core';

const CANDIDATES = ['/usr/bin/chromium', '/usr/bin/chromium-browser', '/usr/bin/google-chrome'];

export function chromiumPath(): string | undefined {
  const explicit = process.env.CHROMIUM_PATH;
  if (explicit) return existsSync(explicit) ? explicit : undefined;
  const onPath = (process.env.PATH ?? '').split(path.delimiter).map((d) => path.join(d, 'chromium'));
  return [...CANDIDATES, ...onPath].find((p) => existsSync(p));
}

/** Why the browser test cannot run here, when .ci/run said so; undefined: it must run. */
export function browserUnavailable(): string | undefined {
  return process.env.RECAPTION_NO_BROWSER || undefined;
}

export async function launchChromium(): Promise<Browser> {
  const executablePath = chromiumPath();
  if (!executablePath) {
    throw new Error('Chromium was not found (looked at $CHROMIUM_PATH, /usr/bin/chromium, PATH). Install it: apt-get install -y chromium (or set CHROMIUM_PATH).');
  }
  // --no-sandbox: CI runs as root, where Chromium's sandbox refuses to start.
  return chromium.launch({ executablePath, args: ['--no-sandbox', '--disable-dev-shm-usage'] });
}
